//! Push webhooks against the real control plane: a signed GitHub push refreshes the application
//! of that repository and branch at once (its poll interval is an hour), and its new commit is
//! applied; forged, unsigned, oversized, malformed and unconfigured requests change nothing.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_engine::Controller;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use hmac::{Hmac, Mac as _};
use k8s_openapi::api::core::v1::ConfigMap;

const SECRET: &str = "webhook s3cret";

fn signed(key: &[u8], body: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("key");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::from("sha256="), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn signature(body: &[u8]) -> String {
    signed(SECRET.as_bytes(), body)
}

fn config_map(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: pushed}}\ndata: {{value: '{value}'}}\n")
}

async fn value(env: &TestEnv) -> Option<String> {
    let found = env.api::<ConfigMap>().get_opt("pushed").await.ok().flatten()?;
    found.data?.get("value").cloned()
}

/// A controller and the TCP API for one automated application of `repo`, polling hourly.
struct Served {
    controller: Arc<Controller>,
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn serve(env: &TestEnv, repo: &TestRepo) -> Served {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("github-secret"), SECRET).expect("secret");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\nwebhooks:\n  github: {{ file: github-secret }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', revision: main, path: app }}\n      destination: {{ cluster: local, namespace: '{}' }}\n      syncPolicy: {{ automated: {{ prune: true }}, interval: 1h }}\n",
        env.kubeconfig_path().display(),
        repo.file_url(),
        env.namespace
    );
    let engine = common::engine(&text, dir.path());
    let controller = Controller::new(Arc::clone(&engine), 2);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let controller = Arc::clone(&controller);
        async move {
            controller
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!(
        "http://{}/api/webhooks/github",
        listener.local_addr().expect("address")
    );
    tokio::spawn(driftless_server::serve_tcp(
        Arc::clone(&controller),
        listener,
        std::future::pending(),
    ));
    Served {
        controller,
        url,
        stop,
        running,
        _dir: dir,
    }
}

fn push_payload(url: &str, reference: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": reference,
        "repository": { "clone_url": url, "html_url": url },
        "commits": [{ "added": [], "modified": ["app/cm.yaml"], "removed": [] }],
    }))
    .expect("json")
}

async fn post(url: &str, body: Vec<u8>, signature: Option<String>, event: &str) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("x-github-event", event)
        .body(body);
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    let response = request.send().await.expect("post");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// Forged (unsigned, another secret, another body's signature), malformed, oversized, for another
/// branch or repository, not a push, or for an unconfigured receiver: none refreshes anything.
async fn refused_or_ignored(url: &str, repo_url: &str) {
    let body = push_payload(repo_url, "refs/heads/main");
    assert_eq!(post(url, body.clone(), None, "push").await.0, 401);
    assert_eq!(
        post(url, body.clone(), Some(signed(b"guess", &body)), "push")
            .await
            .0,
        401
    );
    assert_eq!(
        post(url, body.clone(), Some(signature(b"other")), "push").await.0,
        401
    );
    assert_eq!(
        post(url, b"{not json".to_vec(), Some(signature(b"{not json")), "push")
            .await
            .0,
        400
    );
    let huge = vec![b' '; 3 * 1024 * 1024];
    assert_eq!(
        post(url, huge.clone(), Some(signature(&huge)), "push").await.0,
        413
    );
    for other in [
        push_payload(repo_url, "refs/heads/dev"),
        push_payload("https://example.invalid/other.git", "refs/heads/main"),
    ] {
        let (status, answer) = post(url, other.clone(), Some(signature(&other)), "push").await;
        assert_eq!((status, answer["refreshed"].as_u64()), (202, Some(0)));
    }
    let ping = b"{\"zen\":\"hi\"}".to_vec();
    assert_eq!(
        post(url, ping.clone(), Some(signature(&ping)), "ping").await.0,
        200
    );
    assert_eq!(
        post(&url.replace("github", "gitlab"), b"{}".to_vec(), None, "push")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_signed_push_deploys_at_once_and_forged_ones_change_nothing() {
    let env = TestEnv::new("webhooks").await;
    let repo = TestRepo::new();
    repo.write("app/cm.yaml", &config_map("one"));
    repo.commit("one");
    let served = serve(&env, &repo).await;
    let deadline = Instant::now() + Duration::from_mins(1);
    while value(&env).await.as_deref() != Some("one") {
        assert!(Instant::now() < deadline, "the first sync did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    repo.write("app/cm.yaml", &config_map("two"));
    repo.commit("two");
    refused_or_ignored(&served.url, &repo.file_url()).await;
    // Each answer above already said nothing was refreshed; this only watches, for half a second,
    // that no refresh was queued despite it (an absence has no event to wait for).
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_millis(500) {
        assert_eq!(
            value(&env).await.as_deref(),
            Some("one"),
            "nothing refused was deployed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let body = push_payload(&repo.file_url(), "refs/heads/main");
    let pushed = Instant::now();
    let (status, answer) = post(&served.url, body.clone(), Some(signature(&body)), "push").await;
    assert_eq!((status, answer["refreshed"].as_u64()), (202, Some(1)));
    while value(&env).await.as_deref() != Some("two") {
        assert!(
            pushed.elapsed() < Duration::from_secs(30),
            "the push was not deployed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("webhook → applied in {:?}", pushed.elapsed());
    let metrics = served.controller.engine().metrics().encode();
    for expected in [
        "driftless_syncs_total{result=\"succeeded\"}",
        "driftless_git_fetch_duration_seconds_count",
        "driftless_api_requests_total{method=\"POST\",code=\"401\"} 3",
        "driftless_api_requests_total{method=\"POST\",code=\"202\"} 3",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected:?} missing from:\n{metrics}"
        );
    }
    drop(served.controller);
    let _ = served.stop.send(());
    served.running.await.expect("the controller stops");
}
