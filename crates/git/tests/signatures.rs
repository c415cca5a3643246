//! Commit signatures made by real `ssh-keygen` and `gpg` keys through `git commit -S`, verified by
//! driftless and, as an oracle, by `git verify-commit`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use driftless_git::{
    CommitId, GitError, Mirrors, SignatureError, SignaturePolicy, Signer, VerifyError, verify_commit,
};
use driftless_testenv::git::{TestRepo, git};

const INSTALL: &str = "apt-get install git openssh-client gnupg";

/// Runs a prerequisite program; a missing one fails the test with the command that installs it.
fn run(program: &str, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run {program} ({err}); install it with `{INSTALL}`"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input)
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait for the program")
}

fn run_ok(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(program, args, env, None);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// An SSH key pair made by `ssh-keygen`.
struct SshKey {
    private: PathBuf,
}

impl SshKey {
    fn generate(dir: &Path, name: &str, key_type: &str) -> Self {
        let private = dir.join(name);
        let path = private.to_str().expect("UTF-8 temporary path");
        run_ok(
            "ssh-keygen",
            &["-q", "-t", key_type, "-N", "", "-C", name, "-f", path],
            &[],
        );
        Self { private }
    }

    /// `ssh-ed25519 AAAA…` without the comment.
    fn public(&self) -> String {
        let text = std::fs::read_to_string(self.private.with_extension("pub")).expect("public key");
        text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// `SHA256:…` as ssh-keygen itself computes it.
    fn fingerprint(&self) -> String {
        let path = self.private.with_extension("pub");
        let listing = run_ok(
            "ssh-keygen",
            &["-l", "-f", path.to_str().expect("UTF-8 path")],
            &[],
        );
        listing
            .split_whitespace()
            .nth(1)
            .expect("a fingerprint")
            .to_owned()
    }

    fn signing_config(&self) -> [String; 3] {
        [
            "commit.gpgSign=true".to_owned(),
            "gpg.format=ssh".to_owned(),
            format!("user.signingkey={}", self.private.display()),
        ]
    }
}

/// A private GnuPG home; its agent is stopped when it is dropped.
struct GpgHome {
    dir: tempfile::TempDir,
}

impl GpgHome {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("temporary GNUPGHOME");
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod GNUPGHOME");
        Self { dir }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("GNUPGHOME", self.dir.path().to_str().expect("UTF-8 path"))]
    }

    fn gpg(&self, args: &[&str]) -> String {
        run_ok(
            "gpg",
            &[&["--batch", "--passphrase", ""], args].concat(),
            &self.env(),
        )
    }

    /// Generates a signing key for `user_id`; returns its fingerprint.
    fn generate(&self, user_id: &str, algorithm: &str) -> String {
        self.gpg(&["--quick-gen-key", user_id, algorithm, "sign", "never"]);
        self.fingerprint_of(user_id)
    }

    fn fingerprint_of(&self, user_id: &str) -> String {
        let listing = self.gpg(&["--with-colons", "--list-keys", user_id]);
        let fpr = listing
            .lines()
            .find(|line| line.starts_with("fpr:"))
            .expect("a fingerprint line");
        fpr.split(':').nth(9).expect("the fingerprint field").to_owned()
    }

    fn export(&self, fingerprints: &[&str]) -> String {
        self.gpg(&[&["--export", "--armor"], fingerprints].concat())
    }

    fn signing_config(fingerprint: &str) -> [String; 3] {
        [
            "commit.gpgSign=true".to_owned(),
            "gpg.program=gpg".to_owned(),
            format!("user.signingkey={fingerprint}"),
        ]
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        let home = self.dir.path().to_str().unwrap_or_default();
        let _ = run("gpgconf", &["--homedir", home, "--kill", "all"], &[], None);
    }
}

fn signed_commit(repo: &TestRepo, message: &str, config: &[String], env: &[(&str, &str)]) -> CommitId {
    let config: Vec<&str> = config.iter().map(String::as_str).collect();
    let id = repo.commit_with(message, &config, env);
    CommitId::parse(&id).expect("a full commit id")
}

fn unsigned_commit(repo: &TestRepo, message: &str) -> CommitId {
    CommitId::parse(&repo.commit(message)).expect("a full commit id")
}

/// `git verify-commit`'s verdict, with `config` (an allowed signers file) and `env` (a GNUPGHOME).
fn git_verifies(repo: &TestRepo, commit: &CommitId, config: &[&str], env: &[(&str, &str)]) -> bool {
    let mut args: Vec<&str> = config.iter().flat_map(|setting| ["-c", setting]).collect();
    args.extend(["verify-commit", commit.as_str()]);
    let env = [env, &[("TZ", "UTC")]].concat();
    let mut command = Command::new("git");
    command
        .arg("-C")
        .arg(repo.work_tree())
        .args(&args)
        .envs(env.iter().copied())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null());
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("cannot run git ({err}); install it with `{INSTALL}`"));
    output.status.success()
}

/// An allowed signers file for the oracle, and its `-c` setting.
fn allowed_signers_file(dir: &Path, text: &str) -> String {
    static WRITTEN: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!(
        "allowed_signers-{}",
        WRITTEN.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text).expect("write allowed signers");
    format!("gpg.ssh.allowedSignersFile={}", path.display())
}

async fn fetched_mirrors(repo: &TestRepo) -> (tempfile::TempDir, Mirrors) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mirrors = Mirrors::new(dir.path().join("git"), Vec::new());
    mirrors
        .fetch(&repo.file_url())
        .await
        .expect("fetch the test repository");
    (dir, mirrors)
}

async fn verdict(
    mirrors: &Mirrors,
    repo: &TestRepo,
    commit: &CommitId,
    policy: &SignaturePolicy,
) -> Result<Signer, SignatureError> {
    let raw = mirrors
        .raw_commit(&repo.file_url(), commit)
        .await
        .expect("read the commit");
    verify_commit(&raw, policy)
}

/// Writes `raw` as a commit object into the origin and points `refs/heads/<branch>` at it.
fn write_commit(repo: &TestRepo, raw: &[u8], branch: &str) -> CommitId {
    let origin = repo.root().join("origin.git");
    let origin = origin.to_str().expect("UTF-8 path");
    let output = run(
        "git",
        &["-C", origin, "hash-object", "-t", "commit", "-w", "--stdin"],
        &[],
        Some(raw),
    );
    assert!(
        output.status.success(),
        "hash-object: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    git(
        Path::new(origin),
        &["update-ref", &format!("refs/heads/{branch}"), &id],
    );
    // The work tree's object database must have it too, for the `git verify-commit` oracle.
    git(&repo.work_tree(), &["fetch", "--quiet", "origin", branch]);
    CommitId::parse(&id).expect("a full commit id")
}

fn replace_once(raw: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = raw
        .windows(from.len())
        .position(|w| w == from)
        .expect("the text to replace");
    [&raw[..at], to, &raw[at + from.len()..]].concat()
}

#[tokio::test]
async fn ssh_signatures_of_allowed_signers_verify_as_git_verify_commit_says() {
    let keys = tempfile::tempdir().expect("tempdir");
    let alice = SshKey::generate(keys.path(), "alice", "ed25519");
    let bob = SshKey::generate(keys.path(), "bob", "rsa");
    let mallory = SshKey::generate(keys.path(), "mallory", "ed25519");
    let repo = TestRepo::new();
    let by_alice = signed_commit(&repo, "by alice", &alice.signing_config(), &[]);
    let by_bob = signed_commit(&repo, "by bob", &bob.signing_config(), &[]);
    let by_mallory = signed_commit(&repo, "by mallory", &mallory.signing_config(), &[]);
    let text = format!(
        "# the team\nalice@example.com {}\n\"bob@example.com,*@ops.example.com\" namespaces=\"git\" {}\n",
        alice.public(),
        bob.public()
    );
    let policy = SignaturePolicy::default()
        .with_allowed_signers(&text)
        .expect("allowed signers");
    let oracle = allowed_signers_file(keys.path(), &text);
    let (_dir, mirrors) = fetched_mirrors(&repo).await;

    for (commit, key, principals) in [
        (&by_alice, &alice, vec!["alice@example.com"]),
        (&by_bob, &bob, vec!["bob@example.com,*@ops.example.com"]),
    ] {
        assert!(
            git_verifies(&repo, commit, &[&oracle], &[]),
            "git accepts {commit}"
        );
        let signer = verdict(&mirrors, &repo, commit, &policy).await;
        assert_eq!(
            signer.expect("an allowed signer"),
            Signer::Ssh {
                principals: principals.into_iter().map(str::to_owned).collect(),
                fingerprint: key.fingerprint(),
            }
        );
    }
    assert!(
        !git_verifies(&repo, &by_mallory, &[&oracle], &[]),
        "git refuses mallory"
    );
    match verdict(&mirrors, &repo, &by_mallory, &policy).await {
        Err(err @ SignatureError::UntrustedSshKey { .. }) => assert_eq!(
            err.to_string(),
            format!(
                "signed by SSH key {}, which is not an allowed signer",
                mallory.fingerprint()
            )
        ),
        other => panic!("expected UntrustedSshKey, got {other:?}"),
    }
}

#[tokio::test]
async fn pgp_signatures_of_configured_keys_verify_as_git_verify_commit_says() {
    let home = GpgHome::new();
    let ed25519 = home.generate("Test <test@example.com>", "ed25519");
    let rsa = home.generate("Rsa <rsa@example.com>", "rsa3072");
    // gpg signs with the newest signing subkey when there is one.
    let with_subkey = home.generate("Sub <sub@example.com>", "ed25519");
    home.gpg(&["--quick-add-key", &with_subkey, "ed25519", "sign", "never"]);
    let stranger_home = GpgHome::new();
    let stranger = stranger_home.generate("Stranger <stranger@example.com>", "ed25519");

    let repo = TestRepo::new();
    let by_ed25519 = signed_commit(&repo, "ed25519", &GpgHome::signing_config(&ed25519), &home.env());
    let by_rsa = signed_commit(&repo, "rsa", &GpgHome::signing_config(&rsa), &home.env());
    let by_subkey = signed_commit(
        &repo,
        "subkey",
        &GpgHome::signing_config(&with_subkey),
        &home.env(),
    );
    let by_stranger = signed_commit(
        &repo,
        "stranger",
        &GpgHome::signing_config(&stranger),
        &stranger_home.env(),
    );
    let policy = SignaturePolicy::default()
        .with_pgp_keys(&home.export(&[&ed25519, &rsa, &with_subkey]))
        .expect("the exported keys");
    let (_dir, mirrors) = fetched_mirrors(&repo).await;

    for (commit, fingerprint, user_id) in [
        (&by_ed25519, &ed25519, "Test <test@example.com>"),
        (&by_rsa, &rsa, "Rsa <rsa@example.com>"),
        (&by_subkey, &with_subkey, "Sub <sub@example.com>"),
    ] {
        assert!(
            git_verifies(&repo, commit, &[], &home.env()),
            "git accepts {commit}"
        );
        match verdict(&mirrors, &repo, commit, &policy).await {
            Ok(Signer::Pgp {
                fingerprint: primary,
                subkey_fingerprint,
                user_id: Some(found_user_id),
            }) => {
                assert_eq!((&primary, found_user_id.as_str()), (fingerprint, user_id));
                assert_eq!(
                    subkey_fingerprint.is_some(),
                    commit == &by_subkey,
                    "{subkey_fingerprint:?}"
                );
            }
            other => panic!("{user_id}: expected a PGP signer, got {other:?}"),
        }
    }
    assert!(
        !git_verifies(&repo, &by_stranger, &[], &home.env()),
        "git refuses the stranger"
    );
    match verdict(&mirrors, &repo, &by_stranger, &policy).await {
        Err(SignatureError::UntrustedPgpKey { issuer }) => assert_eq!(issuer, stranger),
        other => panic!("expected UntrustedPgpKey, got {other:?}"),
    }
}

#[tokio::test]
async fn unsigned_and_forged_commits_are_refused_as_git_verify_commit_does() {
    let keys = tempfile::tempdir().expect("tempdir");
    let alice = SshKey::generate(keys.path(), "alice", "ed25519");
    let home = GpgHome::new();
    let pgp_key = home.generate("Test <test@example.com>", "ed25519");
    let repo = TestRepo::new();
    repo.write("deploy.yaml", "replicas: 1\n");
    let unsigned = unsigned_commit(&repo, "unsigned");
    repo.write("deploy.yaml", "replicas: 2\n");
    let by_ssh = signed_commit(&repo, "signed by ssh", &alice.signing_config(), &[]);
    let by_pgp = signed_commit(
        &repo,
        "signed by pgp",
        &GpgHome::signing_config(&pgp_key),
        &home.env(),
    );
    let text = format!("alice {}\n", alice.public());
    let oracle = allowed_signers_file(keys.path(), &text);
    let policy = SignaturePolicy::default()
        .with_allowed_signers(&text)
        .expect("allowed signers")
        .with_pgp_keys(&home.export(&[&pgp_key]))
        .expect("the exported key");
    let (_dir, mirrors) = fetched_mirrors(&repo).await;
    let url = repo.file_url();

    assert!(!git_verifies(&repo, &unsigned, &[&oracle], &home.env()));
    assert!(matches!(
        verdict(&mirrors, &repo, &unsigned, &policy).await,
        Err(SignatureError::NotSigned)
    ));

    // Forgeries: the signature header kept, the message or the tree changed.
    let unsigned_tree = git(&repo.work_tree(), &["rev-parse", &format!("{unsigned}^{{tree}}")]);
    let mut forged = Vec::new();
    for (signed, message, key) in [
        (
            &by_ssh,
            "signed by ssh",
            format!("SSH key {}", alice.fingerprint()),
        ),
        (&by_pgp, "signed by pgp", format!("OpenPGP key {pgp_key}")),
    ] {
        let raw = mirrors.raw_commit(&url, signed).await.expect("read the commit");
        let signed_tree = git(&repo.work_tree(), &["rev-parse", &format!("{signed}^{{tree}}")]);
        let new_message = replace_once(
            &raw,
            format!("\n\n{message}").as_bytes(),
            b"\n\nreplicas: 2, trust me",
        );
        let new_tree = replace_once(&raw, signed_tree.as_bytes(), unsigned_tree.as_bytes());
        for (n, raw) in [new_message, new_tree].into_iter().enumerate() {
            let branch = format!("forged-{}-{n}", signed.short());
            forged.push((write_commit(&repo, &raw, &branch), key.clone()));
        }
    }
    mirrors.fetch(&url).await.expect("fetch the forgeries");
    for (commit, key) in &forged {
        assert!(
            !git_verifies(&repo, commit, &[&oracle], &home.env()),
            "git refuses {commit}"
        );
        match verdict(&mirrors, &repo, commit, &policy).await {
            Err(SignatureError::DoesNotVerify { key: named }) => assert_eq!(&named, key),
            other => panic!("{commit}: expected DoesNotVerify, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn ssh_signers_sign_only_within_valid_after_and_valid_before() {
    let keys = tempfile::tempdir().expect("tempdir");
    let alice = SshKey::generate(keys.path(), "alice", "ed25519");
    let repo = TestRepo::new();
    let commit = signed_commit(
        &repo,
        "at noon",
        &alice.signing_config(),
        &[("GIT_COMMITTER_DATE", "2024-06-01T12:00:00Z")],
    );
    let (_dir, mirrors) = fetched_mirrors(&repo).await;
    for (options, valid) in [
        ("valid-after=\"20240601120000Z\"", true),
        ("valid-before=\"20240601120000Z\"", true),
        (
            "valid-after=\"20240601115959Z\",valid-before=\"20240601120001Z\"",
            true,
        ),
        ("valid-after=\"20240101Z\"", true),
        ("valid-after=\"20240601120001Z\"", false),
        ("valid-before=\"20240601115959Z\"", false),
        ("namespaces=\"file\"", false),
    ] {
        let text = format!("alice {options} {}\n", alice.public());
        let policy = SignaturePolicy::default()
            .with_allowed_signers(&text)
            .expect("allowed signers");
        let oracle = allowed_signers_file(keys.path(), &text);
        assert_eq!(
            git_verifies(&repo, &commit, &[&oracle], &[]),
            valid,
            "git with {options}"
        );
        match (verdict(&mirrors, &repo, &commit, &policy).await, valid) {
            (Ok(_), true) | (Err(SignatureError::SshSignerNotValid { .. }), false) => {}
            (other, _) => panic!("{options}: expected valid = {valid}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_commit_since_the_last_sync_must_be_signed() {
    let keys = tempfile::tempdir().expect("tempdir");
    let alice = SshKey::generate(keys.path(), "alice", "ed25519");
    let repo = TestRepo::new();
    let synced = signed_commit(&repo, "last synced", &alice.signing_config(), &[]);
    let second = signed_commit(&repo, "signed", &alice.signing_config(), &[]);
    let unsigned = unsigned_commit(&repo, "sneaked in");
    let head = signed_commit(&repo, "signed again", &alice.signing_config(), &[]);
    let policy = SignaturePolicy::default()
        .with_allowed_signers(&format!("alice {}\n", alice.public()))
        .expect("allowed signers");
    let (dir, mirrors) = fetched_mirrors(&repo).await;
    let url = repo.file_url();

    assert_eq!(
        mirrors
            .commits_between(&url, Some(&synced), &head)
            .await
            .expect("walk"),
        [second.clone(), unsigned.clone(), head.clone()]
    );
    assert_eq!(
        mirrors.commits_between(&url, None, &head).await.expect("walk"),
        std::slice::from_ref(&head)
    );
    match mirrors.verify_commits(&url, Some(&synced), &head, &policy).await {
        Err(err @ VerifyError::Commit { .. }) => {
            assert_eq!(
                err.to_string(),
                format!("commit {}: not signed", unsigned.short())
            );
        }
        other => panic!("expected the unsigned commit to fail, got {other:?}"),
    }
    let verified = mirrors
        .verify_commits(&url, Some(&unsigned), &head, &policy)
        .await
        .expect("only the signed head");
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].0, head);
    assert!(mirrors.verify_commits(&url, None, &head, &policy).await.is_ok());

    let bounded = Mirrors::new(dir.path().join("git"), Vec::new()).with_commit_walk_limit(2);
    match bounded.commits_between(&url, Some(&synced), &head).await {
        Err(err @ GitError::TooManyCommits { limit: 2, .. }) => assert!(
            err.to_string().contains(&format!(
                "more than 2 commits from {} to {}",
                synced.short(),
                head.short()
            )),
            "{err}"
        ),
        other => panic!("expected TooManyCommits, got {other:?}"),
    }
    assert_eq!(
        bounded
            .commits_between(&url, Some(&second), &head)
            .await
            .expect("within the bound")
            .len(),
        2
    );
}
