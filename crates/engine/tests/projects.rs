//! Tenancy guards (projects) against the real control plane: what a tenant's repository may
//! declare, and that a refused application applies and prunes nothing.

mod common;

use common::{application, engine_with_projects};
use driftless_core::application::Application;
use driftless_core::project::{GroupKind, Project, ProjectDestination};
use driftless_engine::{Engine, SyncOptions, SyncReport};
use driftless_store::{ObjectAction, SyncResult};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;

fn prune() -> SyncOptions {
    SyncOptions {
        prune: true,
        ..SyncOptions::default()
    }
}

/// A tenant's project: any repository, only `namespace` on the cluster `local`, no
/// cluster-scoped kind.
fn tenant(name: &str, namespace: &str) -> Project {
    Project {
        name: name.to_owned(),
        source_repos: None,
        destinations: Some(vec![ProjectDestination {
            cluster: "local".into(),
            namespace: namespace.to_owned(),
        }]),
        cluster_resource_whitelist: Vec::new(),
        namespace_resource_blacklist: Vec::new(),
    }
}

fn in_project(mut app: Application, project: &str) -> Application {
    app.project = Some(project.to_owned());
    app
}

fn engine(
    env: &TestEnv,
    applications: Vec<Application>,
    projects: Vec<Project>,
) -> (tempfile::TempDir, Engine) {
    let data = tempfile::tempdir().expect("tempdir");
    let engine = engine_with_projects(env.kubeconfig_path(), data.path(), applications, projects);
    (data, engine)
}

fn config_map(name: &str, namespace: Option<&str>) -> String {
    let namespace = namespace.map_or(String::new(), |namespace| format!(", namespace: {namespace}"));
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}{namespace}}}\ndata: {{key: value}}\n")
}

fn outcome<'a>(report: &'a SyncReport, name: &str) -> (&'a ObjectAction, &'a str) {
    let found = report
        .outcomes
        .iter()
        .find(|outcome| outcome.object.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the report: {report:#?}"));
    (&found.action, found.message.as_str())
}

async fn config_map_exists(env: &TestEnv, namespace: &str, name: &str) -> bool {
    kube::Api::<ConfigMap>::namespaced(env.client.clone(), namespace)
        .get_opt(name)
        .await
        .expect("get")
        .is_some()
}

#[tokio::test]
async fn a_cluster_admin_binding_in_a_tenants_repository_applies_nothing_of_it() {
    let env = TestEnv::new("project_cluster_admin").await;
    let binding = format!("{}-admin", env.namespace);
    let repo = TestRepo::new();
    repo.write("tenant/cm.yaml", &config_map("tenant-settings", None))
        .write(
            "tenant/admin.yaml",
            &format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {binding}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\nsubjects: [{{kind: ServiceAccount, name: default, namespace: {}}}]\n",
                env.namespace
            ),
        )
        .write("allowed/cm.yaml", &config_map("allowed-settings", None));
    repo.commit("a tenant asks for cluster-admin");
    let (_data, engine) = engine(
        &env,
        vec![
            in_project(application("tenant", &repo, "tenant", &env.namespace), "team-a"),
            in_project(application("allowed", &repo, "allowed", &env.namespace), "team-a"),
        ],
        vec![tenant("team-a", &env.namespace)],
    );

    let report = engine.sync("tenant", prune()).await.expect("the sync runs");
    assert_eq!(report.result, SyncResult::Failed);
    assert_eq!(
        report.message,
        "project team-a refuses 1 object(s); nothing is applied or pruned"
    );
    assert_eq!(
        outcome(&report, &binding),
        (
            &ObjectAction::Failed,
            "project team-a does not allow cluster-scoped kind rbac.authorization.k8s.io/ClusterRoleBinding"
        )
    );
    assert_eq!(outcome(&report, "tenant-settings").0, &ObjectAction::Skipped);
    assert!(!config_map_exists(&env, &env.namespace, "tenant-settings").await);
    let bindings = kube::Api::<ClusterRoleBinding>::all(env.client.clone());
    assert!(bindings.get_opt(&binding).await.expect("get").is_none());
    let history = engine.store().history("tenant", 1).expect("history");
    assert_eq!(
        history[0].result,
        SyncResult::Failed,
        "the refusal is in the history"
    );

    let err = engine.compare("tenant").await.expect_err("compare refuses too");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "tenant: its project refuses 1 object(s); nothing is applied or pruned:\n  rbac.authorization.k8s.io/ClusterRoleBinding/{binding}: project team-a does not allow cluster-scoped kind"
        )),
        "{message}"
    );

    let report = engine.sync("allowed", prune()).await.expect("allowed");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert!(config_map_exists(&env, &env.namespace, "allowed-settings").await);
}

#[tokio::test]
async fn an_object_naming_another_tenants_namespace_is_refused() {
    let env = TestEnv::new("project_foreign_namespace").await;
    let other = TestEnv::new("project_foreign_namespace_other").await;
    let repo = TestRepo::new();
    repo.write("tenant/own.yaml", &config_map("own", None)).write(
        "tenant/planted.yaml",
        &config_map("planted", Some(&other.namespace)),
    );
    repo.commit("an object in another tenant's namespace");
    let (_data, engine) = engine(
        &env,
        vec![in_project(
            application("tenant", &repo, "tenant", &env.namespace),
            "team-a",
        )],
        vec![
            tenant("team-a", &env.namespace),
            tenant("team-b", &other.namespace),
        ],
    );
    let report = engine.sync("tenant", prune()).await.expect("the sync runs");
    assert_eq!(report.result, SyncResult::Failed);
    assert_eq!(
        outcome(&report, "planted"),
        (
            &ObjectAction::Failed,
            format!(
                "project team-a does not allow the destination local/{}",
                other.namespace
            )
            .as_str()
        )
    );
    assert_eq!(outcome(&report, "own").0, &ObjectAction::Skipped);
    assert!(!config_map_exists(&env, &other.namespace, "planted").await);
    assert!(!config_map_exists(&env, &env.namespace, "own").await);
}

#[tokio::test]
async fn a_disallowed_source_or_destination_fails_the_whole_application() {
    let env = TestEnv::new("project_source_destination").await;
    let allowed = TestRepo::new();
    let foreign = TestRepo::new();
    for repo in [&allowed, &foreign] {
        repo.write("app/cm.yaml", &config_map("project-guarded", None));
        repo.commit("one ConfigMap");
    }
    let mut project = tenant("team-a", &env.namespace);
    project.source_repos = Some(vec![allowed.file_url()]);
    let (_data, engine) = engine(
        &env,
        vec![
            in_project(application("foreign", &foreign, "app", &env.namespace), "team-a"),
            in_project(application("system", &allowed, "app", "kube-system"), "team-a"),
            in_project(application("own", &allowed, "app", &env.namespace), "team-a"),
        ],
        vec![project],
    );

    let err = engine.sync("foreign", prune()).await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "foreign: project team-a does not allow the source repository {}",
            foreign.file_url()
        )
    );
    let err = engine.compare("foreign").await.expect_err("refused");
    assert!(
        err.to_string().contains("does not allow the source repository"),
        "{err}"
    );
    let err = engine.sync("system", prune()).await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        "system: project team-a does not allow the destination local/kube-system"
    );
    let err = engine
        .render("system", None)
        .await
        .expect_err("not even rendered");
    assert!(err.to_string().contains("local/kube-system"), "{err}");
    assert!(!config_map_exists(&env, "kube-system", "project-guarded").await);
    assert_eq!(
        engine.store().history("system", 1).expect("history")[0].result,
        SyncResult::Failed
    );

    let report = engine.sync("own", prune()).await.expect("own");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert!(config_map_exists(&env, &env.namespace, "project-guarded").await);
}

fn child(name: &str, repo: &TestRepo, namespace: &str, project: Option<&str>) -> String {
    let project = project.map_or(String::new(), |project| format!("  project: {project}\n"));
    format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n{project}  source: {{repoURL: '{}', path: {name}}}\n  destination: {{cluster: local, namespace: {namespace}}}\n",
        repo.file_url()
    )
}

#[tokio::test]
async fn an_application_declared_in_git_stays_in_its_roots_project() {
    let env = TestEnv::new("project_app_of_apps").await;
    let repo = TestRepo::new();
    repo.write("apps/child.yaml", &child("child", &repo, &env.namespace, None))
        .write("child/cm.yaml", &config_map("from-child", None));
    repo.commit("a child without a project");
    let mut platform = tenant("platform", "*");
    platform.cluster_resource_whitelist = vec![GroupKind {
        group: "*".into(),
        kind: "*".into(),
    }];
    let (_data, engine) = engine(
        &env,
        vec![in_project(
            application("root", &repo, "apps", &env.namespace),
            "team-a",
        )],
        vec![tenant("team-a", &env.namespace), platform],
    );
    engine.discover().await;
    let registered = engine.application("child").expect("registered");
    assert_eq!(
        registered.project.as_deref(),
        Some("team-a"),
        "inherits its root's project"
    );

    repo.write(
        "apps/child.yaml",
        &child("child", &repo, "kube-system", Some("platform")),
    );
    repo.commit("the child moves itself to the platform project");
    let err = engine.compare("root").await.expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains(
            "spec.project: application \"child\" names project platform, but its root is in project team-a"
        ),
        "{message}"
    );
    let kept = engine.application("child").expect("the previous child stays");
    assert_eq!(kept.project.as_deref(), Some("team-a"));
    assert_eq!(
        kept.destination.namespace.as_deref(),
        Some(env.namespace.as_str())
    );

    repo.write(
        "apps/child.yaml",
        &child("child", &repo, "kube-system", Some("nowhere")),
    );
    repo.commit("an unknown project");
    let err = engine.compare("root").await.expect_err("refused");
    assert!(
        err.to_string()
            .contains("names project nowhere, but its root is in project team-a"),
        "{err}"
    );

    repo.write("apps/child.yaml", &child("child", &repo, "kube-system", None));
    repo.commit("the inherited project bounds the child's destination");
    engine.compare("root").await.expect("a valid child");
    let err = engine.sync("child", prune()).await.expect_err("refused");
    assert_eq!(
        err.to_string(),
        "child: project team-a does not allow the destination local/kube-system"
    );
    assert!(!config_map_exists(&env, "kube-system", "from-child").await);
}

#[tokio::test]
async fn applications_in_different_projects_never_take_or_prune_each_others_objects() {
    let env = TestEnv::new("project_ownership").await;
    let repo = TestRepo::new();
    repo.write("one/shared.yaml", &config_map("shared", None))
        .write("two/shared.yaml", &config_map("shared", None))
        .write("two/own.yaml", &config_map("two-own", None));
    repo.commit("two tenants, one object name");
    let (_data, engine) = engine(
        &env,
        vec![
            in_project(application("one", &repo, "one", &env.namespace), "team-a"),
            in_project(application("two", &repo, "two", &env.namespace), "team-b"),
        ],
        vec![tenant("team-a", &env.namespace), tenant("team-b", &env.namespace)],
    );
    assert_eq!(
        engine.sync("one", prune()).await.expect("one").result,
        SyncResult::Succeeded
    );
    let report = engine.sync("two", prune()).await.expect("two runs");
    assert_eq!(report.result, SyncResult::Failed);
    let (action, message) = outcome(&report, "shared");
    assert_eq!(action, &ObjectAction::Skipped);
    assert!(message.contains("belongs to application \"one\""), "{message}");
    let live = env.api::<ConfigMap>().get("shared").await.expect("get");
    assert_eq!(
        live.metadata.labels.unwrap_or_default()["driftless.dev/application"],
        "one"
    );

    // `two` applied `two-own`; another application's label on it (as if `one` owned it now)
    // keeps `two` from pruning it when it leaves `two`'s Git.
    common::patch(
        &env.api::<ConfigMap>(),
        "two-own",
        "someone",
        serde_json::json!({ "metadata": { "labels": { "driftless.dev/application": "one" } } }),
    )
    .await;
    repo.remove("two/own.yaml").remove("two/shared.yaml");
    repo.write("two/other.yaml", &config_map("two-other", None));
    repo.commit("two-own leaves two's Git");
    let report = engine.sync("two", prune()).await.expect("two runs");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert_eq!(
        outcome(&report, "two-own"),
        (
            &ObjectAction::Kept,
            "left Git; now owned by another application, not pruned"
        )
    );
    assert!(config_map_exists(&env, &env.namespace, "two-own").await);
}

#[tokio::test]
async fn an_object_the_project_no_longer_allows_is_never_pruned() {
    let env = TestEnv::new("project_prune").await;
    let repo = TestRepo::new();
    repo.write("app/cm.yaml", &config_map("narrowed", None));
    repo.commit("a ConfigMap");
    let data = tempfile::tempdir().expect("tempdir");
    let app = in_project(application("tenant", &repo, "app", &env.namespace), "team-a");
    let before = engine_with_projects(
        env.kubeconfig_path(),
        data.path(),
        vec![app.clone()],
        vec![tenant("team-a", &env.namespace)],
    );
    assert_eq!(
        before.sync("tenant", prune()).await.expect("sync").result,
        SyncResult::Succeeded
    );
    drop(before);

    let mut narrowed = tenant("team-a", &env.namespace);
    narrowed.namespace_resource_blacklist = vec![GroupKind {
        group: String::new(),
        kind: "ConfigMap".into(),
    }];
    let after = engine_with_projects(env.kubeconfig_path(), data.path(), vec![app], vec![narrowed]);
    repo.remove("app/cm.yaml");
    repo.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: still-allowed}\n",
    );
    repo.commit("the ConfigMap leaves Git");
    let comparison = after.compare("tenant").await.expect("compare");
    assert!(comparison.to_prune.is_empty(), "{comparison:#?}");
    let report = after.sync("tenant", prune()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert_eq!(
        outcome(&report, "narrowed"),
        (
            &ObjectAction::Kept,
            "left Git; not pruned: project team-a does not allow namespaced kind ConfigMap"
        )
    );
    assert!(config_map_exists(&env, &env.namespace, "narrowed").await);
}
