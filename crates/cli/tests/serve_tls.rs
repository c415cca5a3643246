//! `driftless serve --listen` and TLS, through the binary: plain HTTP on an address other hosts
//! can reach is refused before anything is opened or bound; with `--tls-cert`/`--tls-key` the
//! CLI reaches it over HTTPS with the server's CA, and neither an untrusted certificate nor plain
//! HTTP gets an answer. No cluster is contacted (listing applications needs none).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use driftless_testenv::git::TestRepo;

mod listening;

struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
    _repo: TestRepo,
}

fn fixture() -> Fixture {
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    );
    repo.commit("first");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - name: local\n    kubeconfig: /nonexistent/kubeconfig\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', path: app }}\n      destination: {{ cluster: local, namespace: default }}\n      syncPolicy: {{ interval: 1h }}\n",
            repo.file_url()
        ),
    )
    .expect("config");
    Fixture {
        dir,
        config,
        _repo: repo,
    }
}

/// A `driftless serve` that is killed when dropped.
struct Serve(std::process::Child);

impl Serve {
    /// Its standard output (where it says the address it listens on) goes to `serve.out` beside
    /// the configuration.
    fn start(config: &Path, args: &[&str]) -> Self {
        let out = std::fs::File::create(config.with_file_name("serve.out")).expect("serve.out");
        let child = Command::new(env!("CARGO_BIN_EXE_driftless"))
            .arg("serve")
            .args(args)
            .arg("--config")
            .arg(config)
            .stdout(out)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start driftless serve");
        Self(child)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn plain_http_off_loopback_is_refused_before_anything_is_bound() {
    let fixture = fixture();
    let mut serve = Serve::start(&fixture.config, &["--listen", "0.0.0.0:0"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = serve.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve --listen 0.0.0.0:0 kept running over plain HTTP"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.0.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to serve the API on 0.0.0.0:0 over plain HTTP")
            && stderr.contains("--tls-cert")
            && stderr.contains("--insecure-http"),
        "{stderr}"
    );
    assert!(
        !fixture.dir.path().join("state").exists(),
        "the state was opened before the refusal"
    );
}

fn driftless(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_driftless"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1");
    command.env_remove("DRIFTLESS_SERVER_CA");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run driftless")
}

#[test]
fn the_cli_reaches_a_tls_listener_with_the_servers_ca() {
    let fixture = fixture();
    let config = &fixture.config;
    let created = driftless(config, &["token", "create", "ops", "--role", "viewer"], &[]);
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();

    let (ca, cert, key) = driftless_testenv::certs::loopback_server();
    let (ca_file, cert_file, key_file) = (
        fixture.dir.path().join("ca.crt"),
        fixture.dir.path().join("tls.crt"),
        fixture.dir.path().join("tls.key"),
    );
    for (file, pem) in [(&ca_file, &ca), (&cert_file, &cert), (&key_file, &key)] {
        std::fs::write(file, pem).expect("PEM");
    }
    let mut serve = Serve::start(
        config,
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert_file.display().to_string(),
            "--tls-key",
            &key_file.display().to_string(),
        ],
    );
    let https = listening::api_url(&config.with_file_name("serve.out"), &mut serve.0);
    let address = https.strip_prefix("https://").expect("TLS").to_owned();
    let ca_path = ca_file.display().to_string();
    let status = |server: &str, ca: Option<&str>| {
        let mut args = vec!["status", "--server", server];
        if let Some(ca) = ca {
            args.extend(["--server-ca", ca]);
        }
        driftless(config, &args, &[("DRIFTLESS_TOKEN", &token)])
    };
    // Bound before it said so: connections wait in the backlog until it accepts them.
    let through = status(&https, Some(&ca_path));
    assert!(through.status.success(), "{through:?}");
    assert!(
        String::from_utf8_lossy(&through.stdout).contains("web"),
        "{through:?}"
    );

    let untrusted = status(&https, None);
    assert!(
        !untrusted.status.success(),
        "a certificate no trusted CA signed: {untrusted:?}"
    );
    let plain = status(&format!("http://{address}"), None);
    assert!(!plain.status.success(), "plain HTTP to the TLS port: {plain:?}");
}
