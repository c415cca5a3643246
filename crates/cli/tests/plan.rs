//! `driftless plan` as a CI job runs it, offline (no cluster is reachable: the configured
//! kubeconfig does not exist): plain and Kustomize applications of one repository, branches
//! that add, change and delete objects, touch a shared base, touch nothing deployable, or break
//! a render; and a CI checkout (`--repo`) whose pull-request branch exists only locally.

use std::path::Path;
use std::process::{Command, Output};

use driftless_testenv::git::{TestRepo, git};

const BASE_KUSTOMIZATION: &str = "resources: [cm.yaml]\n";

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{value: '{value}'}}\n")
}

fn overlay(namespace: &str) -> String {
    format!("namespace: {namespace}\nresources: [../../base]\n")
}

/// `main` with `web` (plain: two ConfigMaps and a Secret) and `shop-dev`/`shop-prod`
/// (Kustomize overlays of one base).
fn repository() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("apps/web/a.yaml", &config_map("a", "1"))
        .write("apps/web/b.yaml", &config_map("b", "1"))
        .write(
            "apps/web/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: before-secret}\n",
        )
        .write("shop/base/kustomization.yaml", BASE_KUSTOMIZATION)
        .write("shop/base/cm.yaml", &config_map("shop", "1"))
        .write("shop/overlays/dev/kustomization.yaml", &overlay("dev"))
        .write("shop/overlays/prod/kustomization.yaml", &overlay("prod"))
        .write("README.md", "docs\n");
    repo.commit("main");
    repo
}

fn config(dir: &Path, repo_url: &str) -> std::path::PathBuf {
    let app = |name: &str, path: &str, namespace: &str| {
        format!(
            "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{repo_url}', path: {path} }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n"
        )
    };
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - {{ name: local, kubeconfig: /nonexistent/kubeconfig }}\napplications:\n{}{}{}",
        app("web", "apps/web", "web"),
        app("shop-dev", "shop/overlays/dev", "dev"),
        app("shop-prod", "shop/overlays/prod", "prod"),
    );
    let path = dir.join("driftless.yaml");
    std::fs::write(&path, text).expect("config");
    path
}

fn plan(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("plan")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run driftless plan")
}

fn json_plan(config: &Path, head: &str) -> (Option<i32>, serde_json::Value) {
    let output = plan(config, &["--base", "main", "--head", head, "-o", "json"]);
    let value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&output.stdout)));
    (output.status.code(), value)
}

/// `application → [(change, kind/name)]` of a JSON plan.
fn changes(plans: &serde_json::Value) -> Vec<(String, Vec<(String, String)>)> {
    plans
        .as_array()
        .expect("a list")
        .iter()
        .map(|plan| {
            let changes = plan["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|change| {
                    (
                        change["change"].as_str().unwrap_or_default().to_owned(),
                        format!(
                            "{}/{}",
                            change["object"]["kind"].as_str().unwrap_or_default(),
                            change["object"]["name"].as_str().unwrap_or_default()
                        ),
                    )
                })
                .collect();
            (
                plan["application"].as_str().unwrap_or_default().to_owned(),
                changes,
            )
        })
        .collect()
}

fn pair(change: &str, object: &str) -> (String, String) {
    (change.to_owned(), object.to_owned())
}

#[test]
fn a_branch_that_adds_changes_and_removes_objects_is_planned_per_application() {
    let repo = repository();
    repo.checkout("change");
    repo.write("apps/web/a.yaml", &config_map("a", "2"))
        .write("apps/web/c.yaml", &config_map("c", "1"))
        .write(
            "apps/web/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: after-secret}\n",
        )
        .remove("apps/web/b.yaml");
    repo.commit("change web");
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), &repo.file_url());

    let (code, plans) = json_plan(&config, "change");
    assert_eq!(code, Some(1), "changes: exit 1");
    let web = changes(&plans)
        .into_iter()
        .find(|(name, _)| name == "web")
        .expect("web");
    assert_eq!(
        web.1,
        [
            pair("changed", "ConfigMap/a"),
            pair("removed", "ConfigMap/b"),
            pair("added", "ConfigMap/c"),
            pair("changed", "Secret/creds"),
        ]
    );
    let text = plans.to_string();
    assert!(
        !text.contains("before-secret") && !text.contains("after-secret"),
        "{text}"
    );
    assert!(
        changes(&plans)
            .iter()
            .all(|(name, c)| name == "web" || c.is_empty()),
        "only web changed: {plans}"
    );

    let markdown = plan(&config, &["--base", "main", "--head", "change", "--markdown"]);
    let comment = String::from_utf8_lossy(&markdown.stdout);
    assert!(comment.starts_with("<!-- driftless-plan -->"), "{comment}");
    assert!(
        comment.contains("<b>web</b>: 1 to add, 2 to change, 1 to remove"),
        "{comment}"
    );
    assert!(
        comment.contains("+  value: '2'") || comment.contains("+  value: \"2\""),
        "{comment}"
    );

    let terminal = plan(&config, &["--base", "main", "--head", "change"]);
    let shown = String::from_utf8_lossy(&terminal.stdout);
    assert!(
        shown.contains("web: 1 to add, 2 to change, 1 to remove"),
        "{shown}"
    );
    assert!(shown.contains("  - ConfigMap/web/b (would be pruned)"), "{shown}");
}

#[test]
fn a_shared_base_plans_every_overlay_and_documentation_plans_nothing() {
    let repo = repository();
    repo.checkout("base");
    repo.write("shop/base/cm.yaml", &config_map("shop", "2"));
    repo.commit("shared base");
    repo.checkout("main");
    repo.checkout("docs");
    repo.write("README.md", "more docs\n");
    repo.commit("docs");
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), &repo.file_url());

    let (code, plans) = json_plan(&config, "base");
    assert_eq!(code, Some(1));
    let planned = changes(&plans);
    for overlay in ["shop-dev", "shop-prod"] {
        let (_, changed) = planned.iter().find(|(name, _)| name == overlay).expect("overlay");
        assert_eq!(changed, &[pair("changed", "ConfigMap/shop")], "{overlay}");
    }

    let (code, plans) = json_plan(&config, "docs");
    assert_eq!(code, Some(0), "nothing deployable changed: exit 0: {plans}");
    assert_eq!(
        plans,
        serde_json::json!([]),
        "no render read README.md (web's files, the overlays' kustomize reads): none is planned"
    );
    let shown = plan(&config, &["--base", "main", "--head", "docs"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "No changes.");
}

#[test]
fn a_broken_render_is_an_error_naming_the_file_and_the_rest_is_still_planned() {
    let repo = repository();
    repo.checkout("broken");
    repo.write(
        "apps/web/a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
    );
    repo.write("shop/base/cm.yaml", &config_map("shop", "3"));
    repo.commit("broken");
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), &repo.file_url());
    let (code, plans) = json_plan(&config, "broken");
    assert_eq!(code, Some(2), "an error: exit 2");
    let web = plans
        .as_array()
        .and_then(|plans| plans.iter().find(|plan| plan["application"] == "web"))
        .expect("web");
    assert!(
        web["error"]
            .as_str()
            .is_some_and(|error| error.contains("apps/web/a.yaml")),
        "{web}"
    );
    let planned = changes(&plans);
    assert!(
        planned
            .iter()
            .any(|(name, c)| name == "shop-dev" && !c.is_empty()),
        "the other applications are planned: {plans}"
    );
}

#[test]
fn a_ci_checkout_is_read_for_the_applications_of_its_origin() {
    let repo = repository();
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), &repo.file_url());
    // A CI job's clone, with the pull request's commit on a branch the origin does not have.
    let checkout = dir.path().join("checkout");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            &repo.file_url(),
            checkout.to_str().expect("utf-8"),
        ],
    );
    git(&checkout, &["checkout", "--quiet", "-b", "pull-request"]);
    std::fs::write(
        checkout.join("apps/web/b.yaml"),
        config_map("b", "from the pull request"),
    )
    .expect("write");
    git(
        &checkout,
        &[
            "-c",
            "user.name=ci",
            "-c",
            "user.email=ci@example.invalid",
            "commit",
            "--quiet",
            "-am",
            "pr",
        ],
    );

    let output = plan(
        &config,
        &[
            "--base",
            "main",
            "--head",
            "pull-request",
            "--repo",
            checkout.to_str().expect("utf-8"),
            "-o",
            "json",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plans: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let web = changes(&plans)
        .into_iter()
        .find(|(name, _)| name == "web")
        .expect("web");
    assert_eq!(web.1, [pair("changed", "ConfigMap/b")]);
    // A clone of another repository plans nothing, and says so instead of "no changes".
    let other = TestRepo::new();
    other.write("x.yaml", &config_map("x", "1"));
    other.commit("other");
    let stranger = dir.path().join("stranger");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            &other.file_url(),
            stranger.to_str().expect("utf-8"),
        ],
    );
    let output = plan(
        &config,
        &[
            "--base",
            "main",
            "--head",
            "main",
            "--repo",
            stranger.to_str().expect("utf-8"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no application's source is this clone"),
        "{stderr}"
    );
    // Without --repo the pull request's branch is nowhere to be found.
    let (code, _) = json_plan(&config, "pull-request");
    assert_eq!(code, Some(2));
}

/// What a loopback double of GitHub's or GitLab's REST API (the endpoints `plan --post` uses, as
/// documented) holds: the request's comments and the statuses set.
#[derive(Default)]
struct Forge {
    /// `(id, author, body)`.
    comments: Vec<(u64, String, String)>,
    statuses: Vec<(String, serde_json::Value)>,
    /// Requests without the token, refused.
    unauthorized: usize,
}

type Shared = std::sync::Arc<std::sync::Mutex<Forge>>;

/// Serves GitHub's `/repos/acme/shop/…` (pull request 7) and GitLab's `/projects/9/…` (merge
/// request 3) for the token `forge-token`; an unrelated comment is there from the start.
async fn forge_double() -> (String, Shared) {
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    let shared: Shared = std::sync::Arc::default();
    {
        let mut forge = shared.lock().expect("lock");
        forge.comments.push((1, "alice".to_owned(), "LGTM".to_owned()));
        // Anyone can write the marker; only driftless's own comment may be edited.
        forge.comments.push((
            2,
            "mallory".to_owned(),
            "<!-- driftless-plan -->\nNo changes, merge away".to_owned(),
        ));
    }
    let state = std::sync::Arc::clone(&shared);
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let state = std::sync::Arc::clone(&state);
            async move {
                let mut forge = state.lock().expect("lock");
                let token = headers
                    .get("authorization")
                    .or_else(|| headers.get("private-token"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !token.ends_with("forge-token") {
                    forge.unauthorized += 1;
                    return (StatusCode::UNAUTHORIZED, String::new());
                }
                let path = uri.path();
                let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                // Each forge's own field names: GitHub `user.login`, GitLab `author.username`.
                let gitlab = headers.contains_key("private-token");
                let author = |name: &str| {
                    if gitlab {
                        serde_json::json!({ "username": name })
                    } else {
                        serde_json::json!({ "login": name })
                    }
                };
                let listing = serde_json::to_string(
                    &forge
                        .comments
                        .iter()
                        .map(|(id, who, body)| {
                            let key = if gitlab { "author" } else { "user" };
                            serde_json::json!({ "id": id, "body": body, key: author(who) })
                        })
                        .collect::<Vec<_>>(),
                )
                .expect("json");
                let comments = [
                    "/repos/acme/shop/issues/7/comments",
                    "/projects/9/merge_requests/3/notes",
                ];
                match (method.as_str(), path) {
                    ("GET", "/user") => (StatusCode::OK, author("driftless-bot").to_string()),
                    ("GET", p) if comments.contains(&p) => (StatusCode::OK, listing),
                    ("POST", p) if comments.contains(&p) => {
                        let id = 100 + forge.comments.len() as u64;
                        let body = json["body"].as_str().unwrap_or_default().to_owned();
                        forge.comments.push((id, "driftless-bot".to_owned(), body));
                        (StatusCode::CREATED, serde_json::json!({ "id": id }).to_string())
                    }
                    ("PATCH" | "PUT", p)
                        if p.starts_with("/repos/acme/shop/issues/comments/")
                            || p.starts_with("/projects/9/merge_requests/3/notes/") =>
                    {
                        let id: u64 = p
                            .rsplit('/')
                            .next()
                            .and_then(|id| id.parse().ok())
                            .unwrap_or_default();
                        match forge.comments.iter_mut().find(|(known, _, _)| *known == id) {
                            Some(comment) => {
                                json["body"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .clone_into(&mut comment.2);
                                (StatusCode::OK, "{}".to_owned())
                            }
                            None => (StatusCode::NOT_FOUND, String::new()),
                        }
                    }
                    ("POST", p)
                        if p.starts_with("/repos/acme/shop/statuses/")
                            || p.starts_with("/projects/9/statuses/") =>
                    {
                        forge
                            .statuses
                            .push((p.rsplit('/').next().unwrap_or_default().to_owned(), json));
                        (StatusCode::CREATED, "{}".to_owned())
                    }
                    _ => (StatusCode::NOT_FOUND, String::new()),
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_edits_one_comment_per_pull_request_and_sets_the_head_status() {
    let repo = repository();
    repo.checkout("change");
    repo.write("apps/web/a.yaml", &config_map("a", "2"));
    let head = repo.commit("change");
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), &repo.file_url());
    let (base, forge) = forge_double().await;
    let github = [
        ("GITHUB_TOKEN", "forge-token".to_owned()),
        ("GITHUB_REPOSITORY", "acme/shop".to_owned()),
        ("GITHUB_REF", "refs/pull/7/merge".to_owned()),
        ("GITHUB_API_URL", base.clone()),
        ("DRIFTLESS_HEAD_SHA", head.clone()),
    ];
    let gitlab = [
        ("GITLAB_TOKEN", "forge-token".to_owned()),
        ("CI_API_V4_URL", base.clone()),
        ("CI_PROJECT_ID", "9".to_owned()),
        ("CI_MERGE_REQUEST_IID", "3".to_owned()),
        ("DRIFTLESS_HEAD_SHA", head.clone()),
    ];
    let run = |forge: &str, env: &[(&str, String)]| {
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args([
                "plan", "--base", "main", "--head", "change", "--post", forge, "--config",
            ])
            .arg(&config)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run")
    };
    let post = |forge: &str, env: &[(&str, String)]| {
        let output = run(forge, env);
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert_eq!(
        post("github", &github),
        (Some(1), "plan posted on the pull request\n".to_owned())
    );
    assert_eq!(
        post("github", &github),
        (Some(1), "plan updated on the pull request\n".to_owned())
    );
    assert_eq!(
        post("gitlab", &gitlab),
        (Some(1), "plan updated on the merge request\n".to_owned())
    );
    let forge = forge.lock().expect("lock");
    assert_eq!(forge.unauthorized, 0);
    assert_eq!(
        forge.comments.len(),
        3,
        "alice's, mallory's and one plan: {:?}",
        forge.comments
    );
    assert_eq!(forge.comments[0].2, "LGTM", "others' comments are left alone");
    assert_eq!(
        forge.comments[1].2, "<!-- driftless-plan -->\nNo changes, merge away",
        "a forged marker is not ours to edit"
    );
    assert!(
        forge.comments[2]
            .2
            .contains("<b>web</b>: 0 to add, 1 to change, 0 to remove"),
        "{}",
        forge.comments[2].2
    );
    let states: Vec<(&str, &str, &str)> = forge
        .statuses
        .iter()
        .map(|(sha, json)| {
            (
                sha.as_str(),
                json["state"].as_str().unwrap_or_default(),
                json["context"]
                    .as_str()
                    .or(json["name"].as_str())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (head.as_str(), "success", "driftless/plan"),
            (head.as_str(), "success", "driftless/plan"),
            (head.as_str(), "success", "driftless/plan"),
        ]
    );
    drop(forge);
    // Without the token nothing is planned at all, and the error names the variable.
    let output = run("github", &github[1..]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("GITHUB_TOKEN is not set"), "{stderr}");
    assert!(output.stdout.is_empty(), "planned anyway");
}

#[test]
fn an_application_that_decrypts_sops_files_is_planned_with_its_content_withheld() {
    const BEFORE: &str = "canary-before-3f1c";
    const AFTER: &str = "canary-after-9b2e";
    let lab = driftless_testenv::sops::Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let key_file = lab.write("team.agekey", identity.as_bytes());
    let encrypted = |password: &str| {
        let plain = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\nstringData: {{password: {password}}}\n"
        );
        String::from_utf8(lab.encrypt(
            "secret.yaml",
            plain.as_bytes(),
            &["--age", &recipient, "--encrypted-regex", "^(data|stringData)$"],
            &[],
        ))
        .expect("utf-8")
    };
    let repo = TestRepo::new();
    repo.write("vault/secret.yaml", &encrypted(BEFORE))
        .write("vault/settings.yaml", &config_map("settings", BEFORE));
    repo.commit("main");
    repo.checkout("rotate");
    repo.write("vault/secret.yaml", &encrypted(AFTER))
        .write("vault/settings.yaml", &config_map("settings", AFTER));
    repo.commit("rotate");
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - {{ name: local, kubeconfig: /nonexistent/kubeconfig }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: vault }}\n    spec:\n      source: {{ repoURL: '{}', path: vault }}\n      destination: {{ cluster: local, namespace: vault }}\n      decryption: {{ keys: [ {{ file: '{}' }} ] }}\n",
            repo.file_url(),
            key_file.display()
        ),
    )
    .expect("config");

    let (code, plans) = json_plan(&config, "rotate");
    assert_eq!(code, Some(1), "{plans}");
    let vault = changes(&plans)
        .into_iter()
        .find(|(name, _)| name == "vault")
        .expect("vault");
    assert_eq!(
        vault.1,
        [
            pair("changed", "ConfigMap/settings"),
            pair("changed", "Secret/db")
        ]
    );
    let markdown = plan(&config, &["--base", "main", "--head", "rotate", "--markdown"]);
    for shown in [
        plans.to_string(),
        String::from_utf8_lossy(&markdown.stdout).into_owned(),
    ] {
        assert!(
            !shown.contains(BEFORE) && !shown.contains(AFTER),
            "a decrypted value shown: {shown}"
        );
        assert!(shown.contains("content withheld"), "{shown}");
    }
}

const DEPLOYMENT_TEMPLATE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers:\n        - name: api\n          image: {{ .Values.image }}\n          resources: {limits: {cpu: 100m, memory: 64Mi}}\n";

/// A chart application (`api`, values from `env/prod.yaml`) and a plain one (`web`), with the
/// starter policy set denying.
fn checked_repository(dir: &Path) -> (TestRepo, std::path::PathBuf) {
    let repo = TestRepo::new();
    repo.write(
        "charts/api/Chart.yaml",
        "apiVersion: v2\nname: api\nversion: 1.0.0\n",
    )
    .write("charts/api/values.yaml", "replicas: 1\nimage: nginx:1.27\n")
    .write("charts/api/templates/deployment.yaml", DEPLOYMENT_TEMPLATE)
    .write("env/prod.yaml", "replicas: 2\n")
    .write("apps/web/a.yaml", &config_map("a", "1"));
    repo.commit("main");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - {{ name: local, kubeconfig: /nonexistent/kubeconfig }}\npolicy:\n  starter: deny\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: api }}\n    spec:\n      source: {{ repoURL: '{url}', path: charts/api, helm: {{ valueFiles: [../../env/prod.yaml] }} }}\n      destination: {{ cluster: local, namespace: api }}\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{url}', path: apps/web }}\n      destination: {{ cluster: local, namespace: web }}\n",
        url = repo.file_url()
    );
    let path = dir.join("driftless.yaml");
    std::fs::write(&path, text).expect("config");
    (repo, path)
}

#[test]
fn charts_are_planned_and_policy_and_schema_failures_fail_the_plan_with_file_and_path() {
    driftless_testenv::helm::assert_helm_on_path();
    let dir = tempfile::tempdir().expect("dir");
    let (repo, config) = checked_repository(dir.path());
    // Values shared by the chart change: the chart's application is planned.
    repo.checkout("scale");
    repo.write("env/prod.yaml", "replicas: 3\n");
    repo.commit("scale");
    let (code, plans) = json_plan(&config, "scale");
    assert_eq!(code, Some(1), "{plans:#}");
    assert_eq!(
        changes(&plans),
        [("api".to_owned(), vec![pair("changed", "Deployment/api")])],
        "web reads nothing that changed: {plans:#}"
    );
    let unified = plans[0]["changes"][0]["unified"].as_str().unwrap_or_default();
    assert!(
        unified.contains("-  replicas: 2") && unified.contains("+  replicas: 3"),
        "{unified}"
    );
    assert_eq!(
        plans[0]["live"]["state"], "notCompared",
        "no cluster is reachable: {plans:#}"
    );

    repo.checkout("main");
    repo.checkout("unsafe");
    repo.write("env/prod.yaml", "replicas: 2\nimage: nginx:latest\n")
        .remove("apps/web/a.yaml")
        .write(
            "apps/web/b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndataa: {value: '1'}\n",
        );
    repo.commit("unsafe");
    let (code, plans) = json_plan(&config, "unsafe");
    assert_eq!(
        code,
        Some(2),
        "a denying policy and a schema violation fail the plan: {plans:#}"
    );
    let problems: Vec<(String, String, String, String)> = plans
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|plan| plan["problems"].as_array().cloned().unwrap_or_default())
        .map(|problem| {
            let field = |name: &str| problem[name].as_str().unwrap_or_default().to_owned();
            (field("severity"), field("check"), field("file"), field("path"))
        })
        .collect();
    assert_eq!(
        problems,
        [
            (
                "error".to_owned(),
                "policy/no-latest-tag".to_owned(),
                "helm template charts/api (document 1, line 3)".to_owned(),
                String::new()
            ),
            (
                "error".to_owned(),
                "schema".to_owned(),
                "apps/web/b.yaml (document 1, line 1)".to_owned(),
                "dataa".to_owned()
            ),
        ],
        "{plans:#}"
    );
    let markdown = plan(
        &config,
        &["--base", "main", "--head", "unsafe", "--markdown", "--offline"],
    );
    assert_eq!(markdown.status.code(), Some(2));
    insta::assert_snapshot!(String::from_utf8_lossy(&markdown.stdout));
}

fn child_application(name: &str, repo_url: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  source: {{repoURL: '{repo_url}', path: services/{name}}}\n  destination: {{cluster: local, namespace: {name}}}\n"
    )
}

#[test]
fn applications_declared_in_git_are_planned_when_changed_added_or_removed() {
    let repo = TestRepo::new();
    let url = repo.file_url();
    repo.write("roots/svc.yaml", &child_application("svc", &url))
        .write("roots/README.md", "the applications of this repository\n")
        .write("services/svc/cm.yaml", &config_map("svc", "1"));
    repo.commit("main");
    repo.checkout("svc-change");
    repo.write("services/svc/cm.yaml", &config_map("svc", "2"));
    repo.commit("change svc");
    repo.checkout("main");
    repo.checkout("new-child");
    repo.write("roots/api.yaml", &child_application("api", &url))
        .write("services/api/cm.yaml", &config_map("api", "1"));
    repo.commit("add api");
    repo.checkout("main");
    repo.checkout("drop-child");
    repo.remove("roots/svc.yaml");
    repo.commit("drop svc");
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - {{ name: local, kubeconfig: /nonexistent/kubeconfig }}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: root }}\n    spec:\n      source: {{ repoURL: '{url}', path: roots }}\n      destination: {{ cluster: local, namespace: default }}\n      syncPolicy: {{ allowEmpty: true }}\n"
        ),
    )
    .expect("config");

    // allowEmpty: dropping the root's last child leaves it rendering nothing, which is intended
    // here (without it, that render is an error naming what `roots` holds).
    // The root reads nothing that changed; its child does.
    let (code, plans) = json_plan(&config, "svc-change");
    assert_eq!(code, Some(1), "{plans:#}");
    assert_eq!(
        changes(&plans),
        [("svc".to_owned(), vec![pair("changed", "ConfigMap/svc")])],
        "{plans:#}"
    );
    let (code, plans) = json_plan(&config, "new-child");
    assert_eq!(code, Some(1), "{plans:#}");
    let planned = changes(&plans);
    assert!(
        planned.contains(&("api".to_owned(), vec![pair("added", "ConfigMap/api")])),
        "a new child is planned with everything it adds: {plans:#}"
    );
    assert!(
        planned
            .iter()
            .all(|(name, changed)| name == "api" || changed.is_empty()),
        "{plans:#}"
    );
    let (code, plans) = json_plan(&config, "drop-child");
    assert_eq!(code, Some(1), "{plans:#}");
    assert!(
        changes(&plans).contains(&("svc".to_owned(), vec![pair("removed", "ConfigMap/svc")])),
        "a child no longer declared is planned with everything it leaves: {plans:#}"
    );
}
