//! The TCP API over a real loopback socket: every request needs a bearer token from the store;
//! its role bounds what it may do and its patterns which applications it sees, and an application
//! outside them is answered exactly as one that does not exist.

mod common;

use std::sync::Arc;

use driftless_core::access::{Grant, Role};
use driftless_engine::{Controller, Engine};
use driftless_testenv::git::TestRepo;

struct Api {
    base: String,
    http: reqwest::Client,
    engine: Arc<Engine>,
    controller: Arc<Controller>,
    _data: tempfile::TempDir,
    _repo: TestRepo,
}

async fn start() -> Api {
    let repo = TestRepo::new();
    repo.write(
        "web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    );
    repo.commit("apps");
    let app = |name: &str| {
        let team = if name.starts_with("shop") { "shop" } else { "money" };
        format!(
            "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name}, labels: {{ team: {team} }} }}\n    spec:\n      source: {{ repoURL: '{}', path: web }}\n      destination: {{ cluster: local, namespace: default }}\n",
            repo.file_url()
        )
    };
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: /nonexistent/kubeconfig }}\napplications:\n{}{}{}",
        app("shop-web"),
        app("shop-db"),
        app("payments")
    );
    let data = tempfile::tempdir().expect("data");
    let engine = common::engine(&text, data.path());
    let controller = Controller::new(Arc::clone(&engine), 1);
    let base = common::serve_tcp(&controller).await;
    Api {
        base,
        http: reqwest::Client::new(),
        engine,
        controller,
        _data: data,
        _repo: repo,
    }
}

impl Api {
    fn token(&self, name: &str, role: Role, applications: &[&str]) -> String {
        let grant = Grant {
            role,
            applications: applications.iter().map(|a| (*a).to_owned()).collect(),
            labels: std::collections::BTreeMap::new(),
        };
        self.engine.store().create_token(name, &grant, 0).expect("token")
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&serde_json::json!({})),
        };
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let api = start().await;
    let response = reqwest::get(format!("{}/api/v1/applications", api.base))
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let (status, _) = api.call("GET", "/api/v1/applications", Some("dlt_forged")).await;
    assert_eq!(status, 401);
    let (status, _) = api.call("POST", "/api/v1/applications/shop-web/sync", None).await;
    assert_eq!(status, 401, "no anonymous write");

    let token = api.token("revoked", Role::Admin, &[]);
    assert_eq!(api.call("GET", "/api/v1/applications", Some(&token)).await.0, 200);
    assert!(api.engine.store().revoke_token("revoked").expect("revoke"));
    assert_eq!(api.call("GET", "/api/v1/applications", Some(&token)).await.0, 401);
}

#[tokio::test]
async fn roles_bound_actions_and_scopes_hide_other_applications() {
    let api = start().await;
    let viewer = api.token("viewer", Role::Viewer, &["shop-*"]);
    let (status, listed) = api.call("GET", "/api/v1/applications", Some(&viewer)).await;
    assert_eq!(status, 200);
    let names: Vec<&String> = listed.as_object().expect("a map").keys().collect();
    assert_eq!(names, ["shop-db", "shop-web"], "only its applications");

    // A viewer may not act, on any application: 403 before anything is looked up.
    for path in [
        "/api/v1/applications/shop-web/sync",
        "/api/v1/applications/payments/sync",
        "/api/v1/applications/nope/refresh",
    ] {
        let (status, body) = api.call("POST", path, Some(&viewer)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("this needs the operator role")),
            "{path}"
        );
    }
    // Outside its scope is indistinguishable from not existing.
    let (hidden_status, hidden) = api
        .call("GET", "/api/v1/applications/payments/diff", Some(&viewer))
        .await;
    let (missing_status, missing) = api
        .call("GET", "/api/v1/applications/nope/diff", Some(&viewer))
        .await;
    assert_eq!((hidden_status, missing_status), (404, 404));
    assert_eq!(
        hidden["error"].as_str().map(|e| e.replace("payments", "X")),
        missing["error"].as_str().map(|e| e.replace("nope", "X"))
    );

    let operator = api.token("operator", Role::Operator, &["shop-*"]);
    assert_eq!(
        api.call("POST", "/api/v1/applications/shop-web/refresh", Some(&operator))
            .await
            .0,
        202
    );
    assert_eq!(
        api.call("POST", "/api/v1/applications/payments/refresh", Some(&operator))
            .await
            .0,
        404
    );
    assert_eq!(
        api.call("POST", "/api/v1/refresh", Some(&operator)).await.0,
        403,
        "all repositories needs an unscoped grant"
    );
    assert_eq!(api.call("GET", "/api/v1/stats", Some(&operator)).await.0, 403);

    let (status, refused) = api
        .call("POST", "/api/v1/applications/shop-web/pin", Some(&operator))
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (
            422,
            Some("shop-web: never synced successfully, so there is no deployed revision to pin")
        )
    );

    let everyone = api.token("ops", Role::Operator, &[]);
    // A cluster driftless cannot reach is a bad gateway, not a bad request.
    let (status, unreachable) = api
        .call("GET", "/api/v1/applications/shop-web/diff", Some(&everyone))
        .await;
    assert_eq!(status, 502, "{unreachable}");
    assert!(
        unreachable["error"]
            .as_str()
            .is_some_and(|e| e.contains("/nonexistent/kubeconfig")),
        "{unreachable}"
    );
    let (status, refreshed) = api.call("POST", "/api/v1/refresh", Some(&everyone)).await;
    assert_eq!(status, 200);
    assert_eq!(refreshed["applications"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn label_scopes_and_list_filters_narrow_what_a_token_sees() {
    let api = start().await;
    let viewer = api.token("viewer", Role::Viewer, &["shop-*"]);
    // A label scope: the applications carrying every label, and answers as for a name scope.
    let labelled = Grant {
        role: Role::Viewer,
        applications: Vec::new(),
        labels: std::collections::BTreeMap::from([("team".to_owned(), "money".to_owned())]),
    };
    let money = api
        .engine
        .store()
        .create_token("money", &labelled, 0)
        .expect("token");
    let (_, listed) = api
        .call("GET", "/api/v1/applications?sync=Unknown", Some(&money))
        .await;
    let names: Vec<&String> = listed.as_object().expect("a map").keys().collect();
    assert_eq!(names, ["payments"]);
    assert_eq!(
        api.call("GET", "/api/v1/applications/shop-web", Some(&money))
            .await
            .0,
        404
    );
    let (status, whoami) = api.call("GET", "/api/v1/whoami", Some(&money)).await;
    assert_eq!((status, whoami["role"].as_str()), (200, Some("viewer")));
    assert_eq!(whoami["labels"]["team"], "money", "the scope is told");
    let (_, none) = api
        .call(
            "GET",
            "/api/v1/applications?search=WEB&sync=Synced",
            Some(&viewer),
        )
        .await;
    assert_eq!(
        none.as_object().map(serde_json::Map::len),
        Some(0),
        "filters all match"
    );
    let (_, found) = api
        .call("GET", "/api/v1/applications?search=WEB", Some(&viewer))
        .await;
    assert_eq!(
        found.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["shop-web".to_owned()])
    );
}

#[tokio::test]
async fn metrics_and_probes_need_no_token_and_name_no_application() {
    let api = start().await;
    assert_eq!(api.call("GET", "/api/v1/applications", None).await.0, 401);
    let health = reqwest::get(format!("{}/healthz", api.base))
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let ready = reqwest::get(format!("{}/readyz", api.base))
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let response = reqwest::get(format!("{}/metrics", api.base))
        .await
        .expect("metrics");
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text")),
        "{:?}",
        response.headers()
    );
    let text = response.text().await.expect("text");
    for expected in [
        "driftless_applications{sync=\"Unknown\",health=\"Unknown\"} 3",
        "driftless_api_requests_total{method=\"GET\",code=\"401\"} 1",
        "# TYPE driftless_drift_events counter",
        "# TYPE driftless_git_fetch_duration_seconds histogram",
        "driftless_reconcile_queue_depth 0",
        "# EOF",
    ] {
        assert!(text.contains(expected), "{expected:?} missing from:\n{text}");
    }
    for name in ["shop-web", "shop-db", "payments"] {
        assert!(!text.contains(name), "{name} appears in /metrics");
    }
}

#[tokio::test]
async fn detail_history_events_rollback_and_unpin_are_bounded_by_the_grant() {
    let api = start().await;
    let viewer = api.token("viewer", Role::Viewer, &["shop-*"]);
    let (status, detail) = api
        .call("GET", "/api/v1/applications/shop-web", Some(&viewer))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            detail["name"].as_str(),
            detail["path"].as_str(),
            detail["renderer"].as_str()
        ),
        (Some("shop-web"), Some("web"), Some("detect"))
    );
    for path in [
        "/api/v1/applications/shop-web/history?limit=5",
        "/api/v1/applications/shop-web/events",
    ] {
        let (status, listed) = api.call("GET", path, Some(&viewer)).await;
        assert_eq!(
            (status, listed.as_array().map(Vec::len)),
            (200, Some(0)),
            "{path}"
        );
    }
    for path in [
        "/api/v1/applications/payments",
        "/api/v1/applications/payments/history",
        "/api/v1/applications/payments/events",
    ] {
        assert_eq!(api.call("GET", path, Some(&viewer)).await.0, 404, "{path}");
    }
    for path in [
        "/api/v1/applications/shop-web/rollback",
        "/api/v1/applications/shop-web/unpin",
    ] {
        assert_eq!(api.call("POST", path, Some(&viewer)).await.0, 403, "{path}");
    }
    let operator = api.token("operator", Role::Operator, &["shop-*"]);
    let (status, unpinned) = api
        .call("POST", "/api/v1/applications/shop-web/unpin", Some(&operator))
        .await;
    assert_eq!((status, unpinned["unpinned"].as_bool()), (200, Some(false)));
    assert_eq!(
        api.call("POST", "/api/v1/applications/payments/unpin", Some(&operator))
            .await
            .0,
        404
    );
}

/// The OpenAPI document is generated from the same registrations as the routes; here every
/// documented operation is called and must be routed (answered by a handler, not by the
/// router's fallback), with the bearer scheme on each.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let api = start().await;
    let document: serde_json::Value = reqwest::get(format!("{}/api/openapi.json", api.base))
        .await
        .expect("document")
        .json()
        .await
        .expect("json");
    assert_eq!(document["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("a path item") {
            assert!(
                operation["security"].is_array(),
                "{method} {path} names its security"
            );
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
            operations.push((method.to_uppercase(), path.clone()));
        }
    }
    operations.sort();
    let mut expected: Vec<(String, String)> = [
        ("GET", "/api/v1/applications"),
        ("GET", "/api/v1/applications/{name}"),
        ("GET", "/api/v1/applications/{name}/diff"),
        ("GET", "/api/v1/applications/{name}/events"),
        ("GET", "/api/v1/applications/{name}/history"),
        ("GET", "/api/v1/applications/{name}/tree"),
        ("GET", "/api/v1/stats"),
        ("GET", "/api/v1/stream"),
        ("GET", "/api/v1/whoami"),
        ("POST", "/api/v1/applications/{name}/pin"),
        ("POST", "/api/v1/applications/{name}/refresh"),
        ("POST", "/api/v1/applications/{name}/resume"),
        ("POST", "/api/v1/applications/{name}/rollback"),
        ("POST", "/api/v1/applications/{name}/suspend"),
        ("POST", "/api/v1/applications/{name}/sync"),
        ("POST", "/api/v1/applications/{name}/unpin"),
        ("POST", "/api/v1/refresh"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    expected.sort();
    assert_eq!(operations, expected);

    let admin = api.token("admin", Role::Admin, &[]);
    // The event stream never ends; `live_updates_stream_only_the_tokens_applications` calls it.
    for (method, path) in operations.iter().filter(|(_, path)| path != "/api/v1/stream") {
        // A name no application has: the handler answers (JSON), the fallback would not.
        let concrete = path.replace("{name}", "no-such-application");
        let (status, body) = api.call(method, &concrete, Some(&admin)).await;
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            status != 404 || body["error"].is_string(),
            "{method} {path}: routed"
        );
    }
    let (status, body) = api.call("GET", "/api/v1/undocumented", Some(&admin)).await;
    assert_eq!(
        (status, body),
        (404, serde_json::Value::Null),
        "the fallback has no body"
    );
}

#[tokio::test]
async fn live_updates_stream_only_the_tokens_applications() {
    let api = start().await;
    let viewer = api.token("viewer", Role::Viewer, &["shop-*"]);
    let mut response = api
        .http
        .get(format!("{}/api/v1/stream", api.base))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    // The controller's first reconciles (they fail: there is no cluster) change every status.
    let controller = Arc::clone(&api.controller);
    tokio::spawn(async move { controller.run(std::future::pending()).await });
    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !(received.contains("\"application\":\"shop-web\"")
        && received.contains("\"application\":\"shop-db\""))
    {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("both shop applications' updates within 30 s")
            .expect("read the stream")
            .expect("the stream stays open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: status"), "{received}");
    assert!(
        !received.contains("payments"),
        "outside the token's scope: {received}"
    );
}
