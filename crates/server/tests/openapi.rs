//! The OpenAPI document describes what the API really answers: real responses (after a real
//! sync on the local control plane) are validated against the document's own response schemas.

mod common;

use std::sync::Arc;

use driftless_core::access::{Grant, Role};
use driftless_engine::{Controller, SyncOptions};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;

/// The 200 response schema of `method path` in `document`, made a schema of its own that can
/// resolve the document's `#/components/...` references.
fn response_schema(document: &serde_json::Value, method: &str, path: &str) -> serde_json::Value {
    let operation = &document["paths"][path][method];
    let mut schema = operation["responses"]["200"]["content"]["application/json"]["schema"].clone();
    assert!(
        schema.is_object(),
        "{method} {path} documents a JSON 200: {operation}"
    );
    schema["components"] = document["components"].clone();
    schema
}

/// Serves the controller's API over TCP: its base URL, an unscoped `role` token, and the
/// OpenAPI document it serves.
async fn serve(
    controller: &Arc<Controller>,
    role: Role,
    http: &reqwest::Client,
) -> (String, String, serde_json::Value) {
    let base = common::serve_tcp(controller).await;
    let grant = Grant {
        role,
        applications: Vec::new(),
        labels: std::collections::BTreeMap::new(),
    };
    let token = controller
        .engine()
        .store()
        .create_token("schema", &grant, 0)
        .expect("token");
    let document: serde_json::Value = http
        .get(format!("{base}/api/openapi.json"))
        .send()
        .await
        .expect("document")
        .json()
        .await
        .expect("json");
    (base, token, document)
}

/// A served application synced once at `first`, with a later commit in Git.
struct Served {
    base: String,
    token: String,
    first: String,
    http: reqwest::Client,
    document: serde_json::Value,
    _env: TestEnv,
    _repo: TestRepo,
    _dir: tempfile::TempDir,
}

async fn start() -> Served {
    let env = TestEnv::new("openapi").await;
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n",
    );
    repo.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: not-in-answers}\n",
    );
    let first = repo.commit("first");
    let dir = tempfile::tempdir().expect("dir");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', path: app }}\n      destination: {{ cluster: local, namespace: '{}' }}\n      syncPolicy: {{ interval: 1h }}\n",
        env.kubeconfig_path().display(),
        repo.file_url(),
        env.namespace
    );
    let engine = common::engine(&text, dir.path());
    let controller = Controller::new(Arc::clone(&engine), 1);
    controller
        .sync_now("web", SyncOptions::default())
        .await
        .expect("sync");
    // A change in Git, so that the diff has a changed object with its field changes.
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '2'}\n",
    );
    repo.commit("second");
    let running = Arc::clone(&controller);
    tokio::spawn(async move { running.run(std::future::pending()).await });
    let http = reqwest::Client::new();
    let (base, token, document) = serve(&controller, Role::Admin, &http).await;

    // The controller's first reconcile gives the list a status to show.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while controller
        .statuses()
        .await
        .get("web")
        .and_then(|s| s.sync)
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "no status for web");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Served {
        base,
        token,
        first,
        http,
        document,
        _env: env,
        _repo: repo,
        _dir: dir,
    }
}

impl Served {
    async fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> serde_json::Value {
        let url = format!("{}{}", self.base, path.replace("{name}", "web"));
        let request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        let response = request.bearer_auth(&self.token).send().await.expect("answer");
        assert_eq!(response.status().as_u16(), 200, "{method} {path}");
        response.json().await.expect("json")
    }

    /// The answer of `method path` validates against the document's schema for it.
    async fn answers_as_documented(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let answer = self.call(method, path, body).await;
        let schema = response_schema(&self.document, method, path);
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|err| panic!("{method} {path}: the documented schema is not valid: {err}"));
        let errors: Vec<String> = validator.iter_errors(&answer).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{method} {path}: {errors:?}\nanswer: {answer}");
        assert!(!answer.to_string().contains("not-in-answers"), "{method} {path}");
        answer
    }
}

#[tokio::test]
async fn real_answers_match_the_documented_schemas() {
    let served = start().await;
    // The diff carries a change in both forms, so that part of its schema is exercised.
    let comparison = served.call("get", "/api/v1/applications/{name}/diff", None).await;
    let changed = comparison["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|object| object["diff"].get("Changed"))
        .unwrap_or_else(|| panic!("a changed object: {comparison}"));
    assert_eq!(changed["changes"][0]["path"], "/data/a", "{changed}");
    for path in [
        "/api/v1/applications",
        "/api/v1/applications/{name}",
        "/api/v1/applications/{name}/diff",
        "/api/v1/applications/{name}/history",
        "/api/v1/applications/{name}/events",
        "/api/v1/applications/{name}/tree",
        "/api/v1/stats",
        "/api/v1/whoami",
    ] {
        served.answers_as_documented("get", path, None).await;
    }
    let posts = [
        (
            "/api/v1/applications/{name}/sync",
            serde_json::json!({ "dryRun": true }),
        ),
        (
            "/api/v1/applications/{name}/rollback",
            serde_json::json!({ "revision": served.first }),
        ),
        ("/api/v1/refresh", serde_json::json!({})),
    ];
    for (path, body) in posts {
        served.answers_as_documented("post", path, Some(body)).await;
    }
    // Pinned where the rollback left it: the commit the cluster runs.
    let pinned = served
        .answers_as_documented(
            "post",
            "/api/v1/applications/{name}/pin",
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(pinned["pinned"].as_str(), Some(served.first.as_str()));
    let document = &served.document;
    // The schemas are strict enough to catch a wrong answer.
    let list =
        jsonschema::validator_for(&response_schema(document, "get", "/api/v1/applications")).expect("valid");
    assert!(
        !list.is_valid(&serde_json::json!({ "web": { "sync": "Sideways", "failures": 0, "pinned": false } }))
    );
    let diff = jsonschema::validator_for(&response_schema(
        document,
        "get",
        "/api/v1/applications/{name}/diff",
    ))
    .expect("valid");
    assert!(
        !diff.is_valid(&serde_json::json!({ "application": "web" })),
        "required fields"
    );
    // The engine's and store's types are described, not left as bare objects.
    let schemas = &document["components"]["schemas"];
    for name in [
        "AppStatus",
        "AppComparison",
        "ObjectDiff",
        "FieldChange",
        "SyncReport",
        "SyncRecord",
    ] {
        assert!(schemas[name].is_object(), "{name} is in the document");
    }
}

/// A child an app-of-apps root declares as an Argo CD Application keeps, in its detail, the
/// fields it syncs without because they only change how Argo CD behaves (issue 21); the root,
/// converted from nothing, has none and leaves the field out. Both answers are as documented.
#[tokio::test]
async fn the_detail_of_a_converted_child_lists_what_differs_from_argo_cd() {
    let env = TestEnv::new("openapi-notes").await;
    let repo = TestRepo::new();
    repo.write(
        "apps/history.yaml",
        &common::argo_application_keeping_history(&repo, &env.namespace),
    )
    .write(
        "web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    );
    repo.commit("an Argo CD Application keeping a revision history");
    let dir = tempfile::tempdir().expect("dir");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: root }}\n    spec:\n      source: {{ repoURL: '{}', path: apps }}\n      destination: {{ cluster: local, namespace: '{}' }}\n",
        env.kubeconfig_path().display(),
        repo.file_url(),
        env.namespace
    );
    let controller = Controller::new(common::engine(&text, dir.path()), 1);
    let http = reqwest::Client::new();
    let (base, token, document) = serve(&controller, Role::Viewer, &http).await;
    let schema = response_schema(&document, "get", "/api/v1/applications/{name}");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let mut answers = Vec::new();
    for name in ["with-history", "root"] {
        let response = http
            .get(format!("{base}/api/v1/applications/{name}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 200, "{name}");
        let answer: serde_json::Value = response.json().await.expect("json");
        let errors: Vec<String> = validator.iter_errors(&answer).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}\nanswer: {answer}");
        answers.push(answer);
    }
    let [child, root] = &answers[..] else {
        unreachable!("one answer per name")
    };
    assert_eq!(
        child["conversionNotes"],
        serde_json::json!([common::HISTORY_NOTE]),
        "{child}"
    );
    assert!(root.get("conversionNotes").is_none(), "{root}");
    let documented = &document["components"]["schemas"]["ApplicationDetail"];
    assert_eq!(
        documented["properties"]["conversionNotes"]["items"]["type"], "string",
        "{documented}"
    );
    assert!(
        documented["required"]
            .as_array()
            .is_some_and(|required| !required.contains(&serde_json::json!("conversionNotes"))),
        "optional: {documented}"
    );
}
