//! The TCP listener against what an attacker on the network can send: request methods made up to
//! grow `/metrics` without bound, a revoked token's open event stream, replayed push webhooks,
//! plain HTTP where TLS is required; and the data directory's permissions. Over real loopback
//! sockets, with a real store and Git repository (no cluster is needed: nothing here syncs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use driftless_core::access::{Grant, Role};
use driftless_engine::{Controller, Engine};
use driftless_testenv::git::TestRepo;
use hmac::{Hmac, Mac as _};

const SECRET: &str = "webhook s3cret";

struct Api {
    base: String,
    http: reqwest::Client,
    engine: Arc<Engine>,
    controller: Arc<Controller>,
    repo: TestRepo,
    data: tempfile::TempDir,
}

/// One application of a real repository, every webhook receiver configured with `SECRET`, the
/// TCP API served; the controller does not run, so every refresh stays in its queue, counted.
async fn start() -> Api {
    let repo = TestRepo::new();
    repo.write(
        "web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    );
    repo.commit("apps");
    let data = tempfile::tempdir().expect("data");
    std::fs::write(data.path().join("secret"), SECRET).expect("secret");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: /nonexistent/kubeconfig }}\nwebhooks:\n  github: {{ file: secret }}\n  gitlab: {{ file: secret }}\n  gitea: {{ file: secret }}\n  bitbucket: {{ file: secret }}\n  generic: {{ file: secret }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', revision: main, path: web }}\n      destination: {{ cluster: local, namespace: default }}\n",
        repo.file_url()
    );
    let engine = common::engine(&text, data.path());
    let controller = Controller::new(Arc::clone(&engine), 1);
    let base = common::serve_tcp(&controller).await;
    Api {
        base,
        http: reqwest::Client::new(),
        engine,
        controller,
        repo,
        data,
    }
}

impl Api {
    fn token(&self, name: &str) -> String {
        let grant = Grant {
            role: Role::Viewer,
            applications: Vec::new(),
            labels: std::collections::BTreeMap::new(),
        };
        self.engine.store().create_token(name, &grant, 0).expect("token")
    }

    async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics");
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.expect("metrics text")
    }
}

/// A small deterministic generator, so a failure can be reproduced.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A valid HTTP method token of 4 to 15 characters, unlike any standard one.
    fn method(&mut self) -> String {
        const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
        let length = 3 + usize::try_from(self.next() % 12).expect("small");
        let mut method = String::from("Z");
        for _ in 0..length {
            let at = usize::try_from(self.next() % CHARS.len() as u64).expect("small");
            method.push(char::from(CHARS[at]));
        }
        method
    }
}

fn series(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

#[tokio::test]
async fn made_up_request_methods_do_not_grow_the_metrics() {
    let api = start().await;
    let mut random = Random(0x5eed_1234_abcd_0001);
    let mut send = async |count: usize| {
        for _ in 0..count {
            let method = reqwest::Method::from_bytes(random.method().as_bytes()).expect("method token");
            let response = api
                .http
                .request(method, format!("{}/healthz", api.base))
                .send()
                .await
                .expect("request");
            assert!(response.status().is_client_error(), "{}", response.status());
        }
    };
    // Every series a scrape itself makes exists from here on.
    api.metrics().await;
    send(500).await;
    let before = api.metrics().await;
    send(1_000).await;
    let after = api.metrics().await;
    assert_eq!(
        series(&before),
        series(&after),
        "1,000 made-up methods added series:\n{after}"
    );
    assert!(
        !after.contains("method=\"Z"),
        "a request's own method became a label:\n{after}"
    );
    assert!(
        after.contains("driftless_api_requests_total{method=\"OTHER\",code=\"405\"} 1500"),
        "{after}"
    );
}

#[tokio::test]
async fn revoking_a_token_ends_its_open_event_streams() {
    let api = start().await;
    let token = api.token("watcher");
    let open_stream = || {
        api.http
            .get(format!("{}/api/v1/stream", api.base))
            .bearer_auth(&token)
            .send()
    };
    let mut response = open_stream().await.expect("stream");
    assert_eq!(response.status().as_u16(), 200);
    // A valid token's stream stays open across its re-checks.
    let open = tokio::time::timeout(Duration::from_secs(3), response.chunk()).await;
    assert!(open.is_err(), "the stream of a valid token ended: {open:?}");

    assert!(api.engine.store().revoke_token("watcher").expect("revoke"));
    let revoked = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = response.chunk().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the revoked token's stream was still open 5 s after revocation"
    );
    eprintln!("stream ended {:?} after revocation", revoked.elapsed());
    let again = open_stream().await.expect("stream");
    assert_eq!(again.status().as_u16(), 401);
}

fn hmac_hex(message: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A signed push of `repo_url`'s `main` (commit `after`) as `provider` sends it, with the delivery
/// identifier `delivery`.
fn delivery(provider: &str, repo_url: &str, after: &str, delivery: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let commits =
        serde_json::json!([{ "id": after, "added": [], "modified": ["web/cm.yaml"], "removed": [] }]);
    let body = match provider {
        "github" | "gitea" => serde_json::json!({
            "ref": "refs/heads/main", "after": after,
            "repository": { "clone_url": repo_url }, "commits": commits,
        }),
        "gitlab" => serde_json::json!({
            "object_kind": "push", "ref": "refs/heads/main", "after": after,
            "project": { "git_http_url": repo_url }, "commits": commits,
        }),
        "bitbucket" => serde_json::json!({
            "repository": { "links": { "html": { "href": repo_url } } },
            "push": { "changes": [{ "new": { "name": "main", "target": { "hash": after } } }] },
        }),
        _ => serde_json::json!({ "repoURL": repo_url, "revision": "main", "commit": after }),
    };
    let body = serde_json::to_vec(&body).expect("json");
    let signature = hmac_hex(&body);
    let headers: Vec<(&str, String)> = match provider {
        "github" => vec![
            ("x-github-event", "push".into()),
            ("x-github-delivery", delivery.into()),
            ("x-hub-signature-256", format!("sha256={signature}")),
        ],
        "gitlab" => vec![
            ("x-gitlab-event", "Push Hook".into()),
            ("idempotency-key", delivery.into()),
            ("x-gitlab-event-uuid", delivery.into()),
            ("x-gitlab-token", SECRET.into()),
        ],
        "gitea" => vec![
            ("x-gitea-event", "push".into()),
            ("x-gitea-delivery", delivery.into()),
            ("x-gitea-signature", signature),
        ],
        "bitbucket" => vec![
            ("x-event-key", "repo:push".into()),
            ("x-request-uuid", delivery.into()),
            ("x-hub-signature", format!("sha256={signature}")),
        ],
        _ => {
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let mut message = format!("{timestamp}.").into_bytes();
            message.extend_from_slice(&body);
            vec![
                ("x-driftless-timestamp", timestamp.to_string()),
                ("x-driftless-signature", format!("sha256={}", hmac_hex(&message))),
            ]
        }
    };
    let headers = headers
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    (headers, body)
}

impl Api {
    async fn deliver(
        &self,
        provider: &str,
        (headers, body): &(Vec<(String, String)>, Vec<u8>),
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .post(format!("{}/api/webhooks/{provider}", self.base))
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("deliver");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Reconciles asked for and not yet taken (the controller does not run).
    fn refreshes(&self) -> i64 {
        self.engine.metrics().queue_depth.get()
    }
}

#[tokio::test]
async fn a_replayed_push_delivery_refreshes_nothing() {
    let api = start().await;
    let url = api.repo.file_url();
    for (at, provider) in ["github", "gitlab", "gitea", "bitbucket", "generic"]
        .into_iter()
        .enumerate()
    {
        let before = api.refreshes();
        let first = delivery(
            provider,
            &url,
            &format!("{at:040x}"),
            &format!("72d3162e-cc78-11e3-81ab-4c9367dc0958-{at}"),
        );
        let (status, answer) = api.deliver(provider, &first).await;
        assert_eq!(
            (status, answer["refreshed"].as_u64()),
            (202, Some(1)),
            "{provider}: {answer}"
        );
        let (status, answer) = api.deliver(provider, &first).await;
        assert_eq!(
            (
                status,
                answer["refreshed"].as_u64(),
                answer["duplicate"].as_bool()
            ),
            (200, Some(0), Some(true)),
            "{provider}: the same delivery again: {answer}"
        );
        assert_eq!(
            api.refreshes() - before,
            1,
            "{provider}: one refresh for one delivery"
        );
        // A new push is not a replay.
        let second = delivery(
            provider,
            &url,
            &format!("{:040x}", at + 100),
            &format!("d0c5-{at}-second"),
        );
        let (status, answer) = api.deliver(provider, &second).await;
        assert_eq!(
            (status, answer["refreshed"].as_u64()),
            (202, Some(1)),
            "{provider}: {answer}"
        );
        assert_eq!(api.refreshes() - before, 2, "{provider}");
    }
    // A captured GitHub delivery sent again under a new delivery identifier (which the signature
    // does not cover) is still the same push.
    let captured = delivery(
        "github",
        &url,
        &format!("{:040x}", 0),
        "72d3162e-cc78-11e3-81ab-4c9367dc0958-0",
    );
    let (mut headers, body) = captured;
    for (name, value) in &mut headers {
        if name == "x-github-delivery" {
            "a-fresh-identifier".clone_into(value);
        }
    }
    let before = api.refreshes();
    let (status, answer) = api.deliver("github", &(headers, body)).await;
    assert_eq!(
        (status, answer["duplicate"].as_bool()),
        (200, Some(true)),
        "{answer}"
    );
    assert_eq!(api.refreshes(), before);
    drop(api.controller);
}

/// Every directory under `root` 0700, every other file 0600 or stricter.
fn loose_permissions(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut loose = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).expect("metadata");
        let mode = metadata.permissions().mode() & 0o777;
        if metadata.is_dir() {
            if mode != 0o700 {
                loose.push(format!("{} is a directory of mode {mode:o}", path.display()));
            }
            for entry in std::fs::read_dir(&path).expect("list") {
                pending.push(entry.expect("entry").path());
            }
        } else if mode & 0o077 != 0 {
            loose.push(format!("{} has mode {mode:o}", path.display()));
        }
    }
    loose
}

#[tokio::test]
async fn the_data_directory_is_private_to_its_user() {
    let api = start().await;
    let state = api.data.path().join("state");
    api.token("someone");
    api.engine.store().suspend("web", 0).expect("write");
    let socket = driftless_server::socket_path(&state);
    tokio::spawn({
        let (controller, socket) = (Arc::clone(&api.controller), socket.clone());
        async move { driftless_server::serve_local(controller, &socket, std::future::pending()).await }
    });
    let mut waited = 0;
    while !socket.exists() {
        assert!(waited < 100, "the socket did not appear");
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    let names: Vec<String> = std::fs::read_dir(&state)
        .expect("state")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "driftless.db",
        "driftless.db-wal",
        "driftless.db-shm",
        "driftless.sock",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert_eq!(loose_permissions(&state), Vec::<String>::new());
}

#[test]
fn plain_http_is_refused_off_loopback_before_anything_is_bound() {
    let refused = driftless_server::check_listen("0.0.0.0:8080".parse().expect("address"), false, false)
        .expect_err("plain HTTP on every interface");
    let message = refused.to_string();
    assert!(
        message.contains("0.0.0.0:8080")
            && message.contains("--tls-cert")
            && message.contains("--insecure-http"),
        "{message}"
    );
    for address in ["127.0.0.1:8080", "[::1]:8080", "127.0.0.2:8080"] {
        let address = address.parse().expect("address");
        assert!(
            driftless_server::check_listen(address, false, false).is_ok(),
            "{address}"
        );
    }
    for address in ["0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080"] {
        let address = address.parse().expect("address");
        assert!(
            driftless_server::check_listen(address, true, false).is_ok(),
            "{address} with TLS"
        );
        assert!(
            driftless_server::check_listen(address, false, true).is_ok(),
            "{address} asked for"
        );
        assert!(
            driftless_server::check_listen(address, false, false).is_err(),
            "{address}"
        );
    }
}

#[tokio::test]
async fn the_api_is_served_over_tls_and_plain_http_to_it_fails() {
    let api = start().await;
    let (ca, cert, key) = driftless_testenv::certs::loopback_server();
    let files = tempfile::tempdir().expect("dir");
    let (cert_file, key_file) = (files.path().join("tls.crt"), files.path().join("tls.key"));
    std::fs::write(&cert_file, &cert).expect("cert");
    std::fs::write(&key_file, &key).expect("key");
    let tls = driftless_server::TlsConfig::from_pem_files(&cert_file, &key_file).expect("TLS configuration");
    let refused = driftless_server::TlsConfig::from_pem_files(&cert_file, &cert_file)
        .expect_err("a certificate as the key");
    assert!(refused.to_string().contains("tls.crt"), "{refused}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn({
        let controller = Arc::clone(&api.controller);
        async move { driftless_server::serve_tls(controller, listener, &tls, std::future::pending()).await }
    });
    // A client that connects and says nothing holds up no one.
    let _silent = tokio::net::TcpStream::connect(address).await.expect("connect");

    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).expect("CA"))
        .build()
        .expect("client");
    let response = https
        .get(format!("https://127.0.0.1:{}/healthz", address.port()))
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(response.status().as_u16(), 200);

    let token = api.token("remote");
    let base = format!("https://127.0.0.1:{}", address.port());
    let client =
        driftless_server::ApiClient::remote_with_ca(&base, &token, Some(ca.as_bytes())).expect("client");
    let whoami: serde_json::Value = client.get("/api/v1/whoami").await.expect("whoami over TLS");
    assert_eq!(whoami["role"], "viewer");
    let untrusted = driftless_server::ApiClient::remote(&base, &token).expect("client");
    assert!(
        untrusted
            .get::<serde_json::Value>("/api/v1/whoami")
            .await
            .is_err(),
        "a server certificate no trusted CA signed"
    );

    let plain = api
        .http
        .get(format!("http://127.0.0.1:{}/healthz", address.port()))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[test]
fn a_data_directory_others_could_read_is_made_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // As an older driftless left them: the database and its WAL readable by everyone.
    drop(driftless_store::Store::open(&state.join("driftless.db")).expect("store"));
    // SQLite removed the WAL when it closed; an empty one is valid.
    std::fs::write(state.join("driftless.db-wal"), b"").expect("WAL");
    for file in ["driftless.db", "driftless.db-wal"] {
        std::fs::set_permissions(state.join(file), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - { name: local, kubeconfig: /nonexistent/kubeconfig }\napplications: []\n";
    let engine = common::engine(text, dir.path());
    assert_eq!(loose_permissions(&state), Vec::<String>::new());
    drop(engine);
}
