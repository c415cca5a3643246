//! `driftless plan` with the application's cluster reachable (the real local control plane):
//! head is compared with the live state by server-side dry-run, drift already in the cluster
//! included; the cluster's own OpenAPI schemas validate; what the server refuses is an error;
//! nothing is changed by a plan. And policy gating `driftless sync`: a denied change applies
//! nothing.

mod common;

use std::path::Path;

use common::{driftless, text};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{key: '{value}'}}\n")
}

fn write_config(dir: &Path, env: &TestEnv, repo: &TestRepo, policy: &str) -> std::path::PathBuf {
    let path = dir.join("driftless.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - name: local\n    kubeconfig: {}\n{policy}applications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', revision: main, path: app }}\n      destination: {{ cluster: local, namespace: {} }}\n",
            env.kubeconfig_path().display(),
            repo.file_url(),
            env.namespace
        ),
    )
    .expect("write config");
    path
}

fn json_plan(config: &Path, head: &str) -> (Option<i32>, Value) {
    let output = driftless(config, &["plan", "--base", "main", "--head", head, "-o", "json"]);
    let value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(&output)));
    (output.status.code(), value)
}

/// `[(change, name)]` of a list of changes.
fn names(changes: &Value) -> Vec<(String, String)> {
    changes
        .as_array()
        .into_iter()
        .flatten()
        .map(|change| {
            (
                change["change"].as_str().unwrap_or_default().to_owned(),
                change["object"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(change, name)| ((*change).to_owned(), (*name).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_plan_compares_head_with_the_live_cluster_including_drift_and_changes_nothing() {
    let env = TestEnv::new("plan_live").await;
    let repo = TestRepo::new();
    repo.write("app/a.yaml", &config_map("a", "1"))
        .write("app/b.yaml", &config_map("b", "1"));
    repo.commit("main");
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &env, &repo, "");
    let sync = driftless(&config, &["sync", "web", "--prune"]);
    assert!(sync.status.success(), "{}", text(&sync));

    // Drift the pull request does not know of.
    let config_maps = env.api::<ConfigMap>();
    config_maps
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"key": "drifted", "extra": "by-hand"}})),
        )
        .await
        .expect("drift a");

    repo.checkout("change");
    repo.write("app/a.yaml", &config_map("a", "2"))
        .write("app/c.yaml", &config_map("c", "1"))
        .remove("app/b.yaml");
    repo.commit("change");
    let (code, plans) = json_plan(&config, "change");
    assert_eq!(code, Some(1), "changes exit 1: {plans:#}");
    let plan = &plans[0];
    assert_eq!(
        names(&plan["changes"]),
        pairs(&[("changed", "a"), ("removed", "b"), ("added", "c")]),
        "{plan:#}"
    );
    let live = &plan["live"];
    assert_eq!(live["state"], "compared", "{live:#}");
    assert_eq!(live["cluster"], "local");
    assert_eq!(
        names(&live["changes"]),
        pairs(&[("changed", "a"), ("removed", "b"), ("added", "c")]),
        "{live:#}"
    );
    let unified = live["changes"][0]["unified"].as_str().unwrap_or_default();
    assert!(
        unified.contains("-  key: drifted") && unified.contains("+  key: \"2\""),
        "the live diff shows the drift it would repair:\n{unified}"
    );
    assert!(
        plan.get("problems").is_none(),
        "valid objects, no policy: {plan:#}"
    );
    // A plan only reads.
    assert!(config_maps.get_opt("c").await.expect("get c").is_none());
    assert!(config_maps.get_opt("b").await.expect("get b").is_some());

    let markdown = driftless(
        &config,
        &["plan", "--base", "main", "--head", "change", "--markdown"],
    );
    let comment = String::from_utf8_lossy(&markdown.stdout);
    assert!(
        comment.contains("live: 1 to create, 1 to change, 1 to prune")
            && comment.contains("**Against the live cluster `local`**"),
        "{comment}"
    );

    failing_branches_exit_2(&repo, &config);
    assert!(config_maps.get_opt("bad").await.expect("get bad").is_none());
}

/// Branches the plan must fail (exit 2), the cluster reachable: an unknown field by the cluster's
/// own schemas, a render error naming its file, and a value the server's dry-run refuses.
fn failing_branches_exit_2(repo: &TestRepo, config: &Path) {
    // The cluster's own schemas validate, and what its dry-run refuses is an error.
    repo.checkout("main");
    repo.checkout("broken");
    repo.write(
        "app/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\ndataa: {key: x}\n",
    );
    repo.commit("broken");
    let (code, plans) = json_plan(config, "broken");
    assert_eq!(code, Some(2), "errors exit 2: {plans:#}");
    let problem = &plans[0]["problems"][0];
    assert_eq!(
        (&problem["check"], &problem["path"], &problem["file"]),
        (
            &json!("schema"),
            &json!("dataa"),
            &json!("app/bad.yaml (document 1, line 1)")
        ),
        "{plans:#}"
    );
    repo.checkout("main");
    repo.checkout("unrenderable");
    repo.write(
        "app/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n",
    );
    repo.commit("unrenderable");
    let (code, plans) = json_plan(config, "unrenderable");
    assert_eq!(code, Some(2), "a broken render exits 2: {plans:#}");
    let error = plans[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("app/broken.yaml"), "the file is named: {plans:#}");
    repo.checkout("main");
    repo.checkout("refused");
    repo.write(
        "app/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{port: 99999, protocol: TCP}]\n",
    );
    repo.commit("refused");
    let (code, plans) = json_plan(config, "refused");
    assert_eq!(code, Some(2), "errors exit 2: {plans:#}");
    let refusal = &plans[0]["problems"][0];
    assert_eq!(
        (&refusal["check"], &refusal["file"]),
        (&json!("dry-run"), &json!("app/service.yaml (document 1, line 1)")),
        "{plans:#}"
    );
    let message = refusal["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("99999"),
        "the server's refusal is told: {plans:#}"
    );
    assert_eq!(
        plans[0]["live"]["state"], "compared",
        "the other objects are still compared: {plans:#}"
    );
}

#[tokio::test]
async fn a_denying_policy_stops_a_sync_before_anything_is_applied() {
    let env = TestEnv::new("plan_policy_sync").await;
    let repo = TestRepo::new();
    repo.write("app/settings.yaml", &config_map("settings", "1"));
    let before = repo.commit("settings");
    repo.write(
        "app/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: 'nginx:latest', resources: {limits: {cpu: 100m, memory: 64Mi}}}]\n",
    );
    repo.commit("main");
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &env, &repo, "policy:\n  starter: deny\n");
    // The plan of the change that brought the Deployment fails on the policy, cluster or not.
    let plan = driftless(
        &config,
        &["plan", "--base", &before, "--head", "main", "-o", "json"],
    );
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let plans: Value = serde_json::from_slice(&plan.stdout).expect("JSON");
    assert_eq!(
        plans[0]["problems"][0]["check"], "policy/no-latest-tag",
        "{plans:#}"
    );
    assert_eq!(plans[0]["live"]["state"], "compared", "{plans:#}");
    let sync = driftless(&config, &["sync", "web"]);
    assert!(!sync.status.success(), "a denied sync fails: {}", text(&sync));
    assert!(
        text(&sync).contains("policy rule no-latest-tag"),
        "the rule is named: {}",
        text(&sync)
    );
    assert!(
        env.api::<Deployment>()
            .get_opt("web")
            .await
            .expect("get")
            .is_none()
            && env
                .api::<ConfigMap>()
                .get_opt("settings")
                .await
                .expect("get")
                .is_none(),
        "nothing is applied, not even the allowed objects"
    );
    // The same policy as a warning lets the sync through.
    let config = write_config(
        dir.path(),
        &env,
        &repo,
        "policy:\n  starter: deny\n  rules: [{name: no-latest-tag, action: warn}]\n",
    );
    let sync = driftless(&config, &["sync", "web"]);
    assert!(sync.status.success(), "{}", text(&sync));
    assert!(
        env.api::<Deployment>()
            .get_opt("web")
            .await
            .expect("get")
            .is_some()
    );
}
