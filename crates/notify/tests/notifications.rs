//! Notifications from a real sync on the local control plane to loopback receivers: a signed
//! JSON webhook (whose first delivery fails, so it is retried) and a Slack-compatible one, whose
//! URL is read from a secret file. No Secret value reaches a message.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use driftless_engine::{Controller, Engine, EngineOptions};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use hmac::{Hmac, Mac as _};

/// An engine for the configuration `text` (relative paths from `dir`), its state under
/// `dir/state`.
fn engine(text: &str, dir: &Path) -> Arc<Engine> {
    let config = driftless_config::parse(text, "driftless.yaml", dir).expect("config");
    let options = EngineOptions {
        data_dir: dir.join("state"),
        ..EngineOptions::default()
    };
    Arc::new(Engine::new(config, options).expect("engine"))
}

type Received = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A receiver on loopback recording every request; the first one to `/flaky` gets a 500.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let failed_once = Arc::new(Mutex::new(false));
    let app = axum::Router::new().fallback({
        let received = Arc::clone(&received);
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let (received, failed_once) = (Arc::clone(&received), Arc::clone(&failed_once));
            async move {
                let path = uri.path().to_owned();
                let fail =
                    path == "/flaky" && !std::mem::replace(&mut *failed_once.lock().expect("lock"), true);
                received.lock().expect("lock").push((path, headers, body));
                if fail {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

fn verifies(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let (Some(timestamp), Some(signature)) = (
        headers.get("x-driftless-timestamp").and_then(|v| v.to_str().ok()),
        headers.get("x-driftless-signature").and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let expected: Vec<u8> = (0..hex.len())
        .step_by(2)
        .filter_map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[tokio::test]
async fn a_sync_is_told_to_subscribed_webhooks_retried_and_signed_without_secret_values() {
    let env = TestEnv::new("notify").await;
    let (base, received) = receiver().await;
    let repo = TestRepo::new();
    repo.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2-do-not-leak}\n",
    );
    repo.commit("a secret");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("slack-url"),
        format!("{base}/slack/T000/B000/XXXX\n"),
    )
    .expect("slack url");
    std::fs::write(dir.path().join("hook-secret"), "sign me").expect("secret");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\nnotifications:\n  targets:\n    - {{ name: audit, webhook: {{ url: '{base}/flaky', secret: {{ file: hook-secret }} }} }}\n    - {{ name: chat, slack: {{ url: {{ file: slack-url }} }} }}\n    - {{ name: unused, webhook: {{ url: '{base}/unused' }} }}\n  subscriptions:\n    - {{ applications: ['web*'], on: [sync-succeeded, sync-failed], targets: [audit, chat] }}\n    - {{ applications: ['other'], targets: [unused] }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', path: app }}\n      destination: {{ cluster: local, namespace: '{}' }}\n      syncPolicy: {{ automated: {{ prune: true }}, interval: 1h }}\n",
        env.kubeconfig_path().display(),
        repo.file_url(),
        env.namespace
    );
    let engine = engine(&text, dir.path());
    let controller = Controller::new(engine, 1);
    let _delivering = driftless_notify::spawn(&controller);
    let running = Arc::clone(&controller);
    tokio::spawn(async move { running.run(std::future::pending()).await });

    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let paths: Vec<String> = received
            .lock()
            .expect("lock")
            .iter()
            .map(|(p, _, _)| p.clone())
            .collect();
        // The flaky one twice (failed, then retried), Slack once.
        if paths.iter().filter(|p| *p == "/flaky").count() >= 2
            && paths.iter().any(|p| p.starts_with("/slack/"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "notifications not delivered: {paths:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = received.lock().expect("lock").clone();
    assert!(
        received.iter().all(|(path, _, _)| path != "/unused"),
        "not subscribed"
    );
    for (path, headers, body) in &received {
        let text = String::from_utf8_lossy(body);
        assert!(
            !text.contains("hunter2"),
            "a Secret value in a notification: {text}"
        );
        let json: serde_json::Value = serde_json::from_slice(body).expect("json");
        if path == "/flaky" {
            assert_eq!(
                (json["application"].as_str(), json["event"].as_str()),
                (Some("web"), Some("sync-succeeded"))
            );
            assert!(verifies("sign me", headers, body), "signed: {headers:?}");
        } else {
            let line = json["text"].as_str().expect("slack text");
            assert!(line.starts_with("web: sync-succeeded at "), "{line}");
        }
    }
}

/// The aiosmtpd server of tests/smtp/server.py, running until dropped.
struct SmtpServer {
    port: u16,
    log_dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpServer {
    fn start(tls: Option<(&Path, &Path, &str, &str)>) -> Self {
        let python = driftless_testenv::sops::tools_bin().join("../../tools-venv/bin/python");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py");
        let log_dir = tempfile::tempdir().expect("log dir");
        let mut command = std::process::Command::new(&python);
        command.arg(&script).arg(log_dir.path());
        if let Some((cert, key, user, password)) = tls {
            command.arg("--tls").arg(cert).arg(key).arg(user).arg(password);
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "{} does not run ({err}): run scripts/testenv (installs PyPI aiosmtpd)",
                    python.display()
                )
            });
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP server did not start (is aiosmtpd installed? run scripts/testenv): {line:?}")
        });
        Self { port, log_dir, child }
    }

    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_dir.path().join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn message(&self, n: usize) -> String {
        std::fs::read_to_string(self.log_dir.path().join(format!("message-{n}.eml"))).expect("message")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A one-app configuration with the given notification targets, all subscribed.
fn notifying_config(env: &TestEnv, repo: &TestRepo, targets: &str, names: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\nnotifications:\n  targets:\n{targets}  subscriptions:\n    - {{ targets: [{names}] }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', path: app }}\n      destination: {{ cluster: local, namespace: '{}' }}\n      syncPolicy: {{ automated: {{ prune: true }}, interval: 1h }}\n",
        env.kubeconfig_path().display(),
        repo.file_url(),
        env.namespace
    )
}

fn start_controller(text: &str, dir: &Path) -> Arc<Controller> {
    let controller = Controller::new(engine(text, dir), 1);
    let _delivering = driftless_notify::spawn(&controller);
    let running = Arc::clone(&controller);
    tokio::spawn(async move { running.run(std::future::pending()).await });
    controller
}

#[tokio::test]
async fn mail_goes_out_over_starttls_with_a_login_and_never_to_a_server_without_it() {
    let env = TestEnv::new("notify-mail").await;
    let dir = tempfile::tempdir().expect("dir");
    let (ca, cert, key) = driftless_testenv::certs::loopback_server();
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key)] {
        std::fs::write(dir.path().join(name), pem).expect("pem");
    }
    std::fs::write(dir.path().join("smtp-password"), "mail-pass-never-logged\n").expect("password");
    let tls = SmtpServer::start(Some((
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
        "driftless",
        "mail-pass-never-logged",
    )));
    let plain = SmtpServer::start(None);
    let repo = TestRepo::new();
    repo.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2-not-in-mail}\n",
    );
    repo.commit("a secret");
    let targets = format!(
        "    - {{ name: mail, email: {{ host: 127.0.0.1, port: {}, from: cd@example.com, to: [ops@example.com, dev@example.com], username: driftless, password: {{ file: smtp-password }}, caFile: ca.pem }} }}\n    - {{ name: cleartext, email: {{ host: 127.0.0.1, port: {}, from: cd@example.com, to: [ops@example.com] }} }}\n",
        tls.port, plain.port
    );
    let _controller = start_controller(
        &notifying_config(&env, &repo, &targets, "mail, cleartext"),
        dir.path(),
    );

    wait_for("the mail", || tls.events().iter().any(|e| e.starts_with("data"))).await;
    let data = tls
        .events()
        .into_iter()
        .find(|e| e.starts_with("data"))
        .expect("data");
    assert_eq!(
        data,
        "data tls=True auth=driftless to=ops@example.com,dev@example.com"
    );
    let message = tls.message(1);
    assert!(
        message.contains("Subject: driftless: web sync-succeeded"),
        "{message}"
    );
    assert!(message.contains("web: sync-succeeded at "), "{message}");
    assert!(
        !message.contains("hunter2") && !message.contains("mail-pass"),
        "{message}"
    );

    // Without STARTTLS on offer driftless says EHLO, finds no STARTTLS and leaves; it retries,
    // and never sends the message in the clear.
    wait_for("four attempts at the plaintext server", || {
        plain.events().iter().filter(|e| *e == "ehlo").count() >= 4
    })
    .await;
    assert!(
        plain.events().iter().all(|e| e == "ehlo"),
        "nothing but EHLO in the clear: {:?}",
        plain.events()
    );
}

#[tokio::test]
async fn the_synced_commit_gets_pending_then_success_statuses_on_github_and_gitlab() {
    let env = TestEnv::new("notify-status").await;
    let (base, received) = receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("github-token"), "ghp_not_a_real_token\n").expect("token");
    std::fs::write(dir.path().join("gitlab-token"), "glpat-not-a-real-token\n").expect("token");
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
    );
    let commit = repo.commit("settings");
    let targets = format!(
        "    - {{ name: gh, github: {{ apiURL: '{base}/github', token: {{ file: github-token }} }} }}\n    - {{ name: gl, gitlab: {{ apiURL: '{base}/gitlab/api/v4', token: {{ file: gitlab-token }}, context: 'deploy/{{application}}' }} }}\n"
    );
    let _controller = start_controller(&notifying_config(&env, &repo, &targets, "gh, gl"), dir.path());
    let path = driftless_core::notifications::repository_path(&repo.file_url()).expect("a path");
    let github = format!("/github/repos/{path}/statuses/{commit}");
    let gitlab = format!(
        "/gitlab/api/v4/projects/{}/statuses/{commit}",
        path.replace('/', "%2F")
    );
    let states = |at: &str| {
        received
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _, _)| p == at)
            .map(|(_, headers, body)| {
                let json: serde_json::Value = serde_json::from_slice(body).expect("json");
                (headers.clone(), json)
            })
            .collect::<Vec<_>>()
    };
    wait_for(&format!("both statuses at {github} and {gitlab}"), || {
        states(&github).len() >= 2 && states(&gitlab).len() >= 2
    })
    .await;

    let github = states(&github);
    assert_eq!(
        github
            .iter()
            .map(|(_, j)| j["state"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["pending", "success"]
    );
    let (headers, json) = &github[1];
    assert_eq!(json["context"], "driftless/web");
    assert_eq!(headers["authorization"], "Bearer ghp_not_a_real_token");
    assert_eq!(headers["accept"], "application/vnd.github+json");
    assert_eq!(headers["x-github-api-version"], "2022-11-28");

    let gitlab = states(&gitlab);
    assert_eq!(
        gitlab
            .iter()
            .map(|(_, j)| j["state"].as_str().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["running", "success"]
    );
    let (headers, json) = &gitlab[1];
    assert_eq!(json["name"], "deploy/web");
    assert_eq!(headers["private-token"], "glpat-not-a-real-token");
}
