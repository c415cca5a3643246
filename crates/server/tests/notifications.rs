//! Notifications from a real sync on the local control plane to loopback receivers: a signed
//! JSON webhook (whose first delivery fails, so it is retried) and a Slack-compatible one, whose
//! URL is read from a secret file. No Secret value reaches a message.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use driftless_engine::Controller;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use hmac::{Hmac, Mac as _};

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
    let engine = common::engine(&text, dir.path());
    let controller = Controller::new(engine, 1);
    let _delivering = driftless_server::notify::spawn(&controller);
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
