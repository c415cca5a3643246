//! Roots whose Git was written for Argo CD or Flux (issue 21): against the real control plane,
//! their argoproj.io Applications, and their Flux Kustomizations and HelmReleases with the
//! GitRepository they name, become the root's children and sync; the Argo CD and Flux objects
//! themselves are never applied (the API server does not serve their kinds); a child with a
//! field driftless has no equivalent for is listed but refuses to sync, naming the field; and
//! an AppProject declared in Git cannot widen the root's project.

mod common;

use driftless_core::project::{Project, ProjectDestination};
use driftless_engine::SyncOptions;
use driftless_store::SyncResult;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use driftless_testenv::helm::assert_helm_on_path;
use k8s_openapi::api::core::v1::ConfigMap;

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{key: value}}\n")
}

/// An Argo CD Application as `argocd-example-apps/apps` renders them, with `extra` under
/// `spec.source`.
fn argo_application(name: &str, repo: &TestRepo, path: &str, namespace: &str, extra: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
  finalizers: [resources-finalizer.argocd.argoproj.io]
spec:
  project: default
  destination:
    server: https://kubernetes.default.svc
    namespace: {namespace}
  source:
    repoURL: '{url}'
    targetRevision: main
    path: {path}
{extra}  syncPolicy:
    automated: {{prune: true, selfHeal: true}}
---
",
        url = repo.file_url()
    )
}

/// An Argo CD Application with a field driftless has no equivalent for (an images override).
fn kustomized_with_images(repo: &TestRepo, namespace: &str) -> String {
    argo_application(
        "kustomized",
        repo,
        "kustomized",
        namespace,
        "    kustomize:\n      images: ['example/app:2.0']\n",
    )
}

/// The paths a Flux root's Kustomizations and HelmRelease name. No kustomization at `apps`:
/// Flux generates one taking subdirectories too, and builds a subdirectory that has its own.
fn write_flux_paths(repo: &TestRepo) {
    repo.write("apps/cm.yaml", &config_map("flux-app"))
        .write("apps/nested/deeper/cm.yaml", &config_map("flux-nested"))
        .write("apps/overlay/kustomization.yaml", "resources: [cm.yaml]\nnameSuffix: -built\n")
        .write("apps/overlay/cm.yaml", &config_map("flux-overlay"))
        .write("patched/cm.yaml", &config_map("patched"))
        .write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
        .write(
            "charts/web/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting }}\n",
        );
}

/// The API server URL of the test's kubeconfig.
fn server_of(env: &TestEnv) -> String {
    let kubeconfig = kube::config::Kubeconfig::read_from(env.kubeconfig_path()).expect("kubeconfig");
    kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .and_then(|cluster| cluster.server.clone())
        .expect("a server URL")
}

async fn sync(engine: &driftless_engine::Engine, name: &str) -> SyncResult {
    engine
        .sync(name, SyncOptions::default())
        .await
        .unwrap_or_else(|err| panic!("sync {name}: {err}"))
        .result
}

#[tokio::test]
async fn an_argo_app_of_apps_root_syncs_its_children_and_holds_back_what_has_no_equivalent() {
    let env = TestEnv::new("foreign-argo").await;
    let ns = env.namespace.clone();
    let repo = TestRepo::new();
    repo.write(
        "apps/applications.yaml",
        &[
            argo_application("example.guestbook", &repo, "guestbook", &ns, ""),
            kustomized_with_images(&repo, &ns),
            // The configured cluster named by its API server's URL.
            argo_application("by-server", &repo, "guestbook", &ns, "")
                .replace("https://kubernetes.default.svc", &server_of(&env)),
        ]
        .concat(),
    )
    .write(
        "apps/project.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {name: default, namespace: argocd}\nspec:\n  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n",
    )
    .write("guestbook/cm.yaml", &config_map("guestbook"))
    .write(
        "kustomized/kustomization.yaml",
        "resources: [cm.yaml]\n",
    )
    .write("kustomized/cm.yaml", &config_map("kustomized"));
    repo.commit("an Argo CD app-of-apps");
    let (_data, engine) = common::engine(&env, vec![common::application("root", &repo, "apps", &ns)]);

    // The root applies nothing of its own: its Argo CD objects are not for the cluster.
    assert_eq!(sync(&engine, "root").await, SyncResult::Succeeded);
    assert_eq!(
        engine.application_names(),
        vec!["by-server", "example-guestbook", "kustomized", "root"]
    );
    assert_eq!(
        engine
            .application("by-server")
            .expect("converted")
            .destination
            .cluster,
        "local"
    );
    let guestbook = engine.application("example-guestbook").expect("converted");
    assert_eq!(
        guestbook.destination.cluster, "local",
        "in-cluster is the root's cluster"
    );
    assert_eq!(guestbook.source.path, "guestbook");
    assert_eq!(sync(&engine, "example-guestbook").await, SyncResult::Succeeded);
    let config_maps = env.api::<ConfigMap>();
    assert!(config_maps.get_opt("guestbook").await.expect("get").is_some());

    // Listed, with why, and never synced without its images override.
    let err = engine.compare("kustomized").await.expect_err("held back");
    assert!(
        err.to_string()
            .contains("Application argocd/kustomized (apps/applications.yaml"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("spec.source.kustomize.images: not supported yet"),
        "{err}"
    );
    engine
        .sync("kustomized", SyncOptions::default())
        .await
        .expect_err("held back");
    assert!(config_maps.get_opt("kustomized").await.expect("get").is_none());

    // Once Git drops the unsupported field, it syncs.
    repo.write(
        "apps/applications.yaml",
        &[
            argo_application("example.guestbook", &repo, "guestbook", &ns, ""),
            argo_application("kustomized", &repo, "kustomized", &ns, "    kustomize: {}\n"),
        ]
        .concat(),
    );
    repo.commit("no images override");
    engine.compare("root").await.expect("root");
    assert_eq!(sync(&engine, "kustomized").await, SyncResult::Succeeded);
    assert!(config_maps.get_opt("kustomized").await.expect("get").is_some());
}

#[tokio::test]
async fn a_flux_root_syncs_its_kustomizations_and_helm_releases_from_their_git_repository() {
    assert_helm_on_path();
    let env = TestEnv::new("foreign-flux").await;
    let ns = env.namespace.clone();
    let repo = TestRepo::new();
    let url = repo.file_url();
    repo.write(
        "clusters/local/sync.yaml",
        &format!(
            "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: fleet, namespace: flux-system}}
spec:
  interval: 1m0s
  ref: {{branch: main}}
  url: '{url}'
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: apps, namespace: flux-system}}
spec:
  interval: 10m0s
  path: ./apps
  prune: true
  targetNamespace: {ns}
  timeout: 5m
  sourceRef: {{kind: GitRepository, name: fleet}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
kind: Kustomization
metadata: {{name: patched, namespace: flux-system}}
spec:
  interval: 10m0s
  path: ./patched
  prune: true
  targetNamespace: {ns}
  sourceRef: {{kind: GitRepository, name: fleet}}
  patches:
    - patch: '[{{\"op\": \"add\", \"path\": \"/data/patched\", \"value\": \"yes\"}}]'
      target: {{kind: ConfigMap}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {{name: web, namespace: {ns}}}
spec:
  interval: 5m
  releaseName: web
  chart:
    spec:
      chart: ./charts/web
      sourceRef: {{kind: GitRepository, name: fleet, namespace: flux-system}}
  values: {{greeting: hello}}
  install: {{remediation: {{retries: 3}}}}
"
        ),
    );
    write_flux_paths(&repo);
    repo.commit("a Flux repository");
    let (_data, engine) = common::engine(
        &env,
        vec![common::application("root", &repo, "clusters/local", &ns)],
    );
    assert_eq!(sync(&engine, "root").await, SyncResult::Succeeded);
    assert_eq!(engine.application_names(), vec!["apps", "patched", "root", "web"]);
    let apps = engine.application("apps").expect("converted");
    assert_eq!(apps.source.repo_url, url);
    assert_eq!(apps.destination.namespace.as_deref(), Some(ns.as_str()));
    let automated = apps.sync_policy.automated.expect("Flux reconciles: automated");
    assert!(automated.prune && automated.self_heal);
    assert_eq!(sync(&engine, "apps").await, SyncResult::Succeeded);
    assert_eq!(sync(&engine, "web").await, SyncResult::Succeeded);
    let config_maps = env.api::<ConfigMap>();
    for name in ["flux-app", "flux-nested", "flux-overlay-built"] {
        assert!(config_maps.get_opt(name).await.expect("get").is_some(), "{name}");
    }
    let greeting = config_maps
        .get("web-greeting")
        .await
        .expect("rendered from the chart in Git");
    assert_eq!(greeting.data.unwrap_or_default()["greeting"], "hello");
    assert_conversion_notes(&engine);

    // Flux's patches would change what is deployed: held back, named.
    let err = engine
        .sync("patched", SyncOptions::default())
        .await
        .expect_err("held back");
    assert!(
        err.to_string().contains("Kustomization flux-system/patched"),
        "{err}"
    );
    assert!(
        err.to_string().contains("spec.patches: not supported yet"),
        "{err}"
    );
    assert!(config_maps.get_opt("patched").await.expect("get").is_none());
}

/// The Flux fields that only change how Flux behaves stay visible on the child that synced
/// without them, naming object and field; a held-back child's blocking fields are not among
/// its notes (they are its error), and an application not converted has none.
fn assert_conversion_notes(engine: &driftless_engine::Engine) {
    let apps = engine.conversion_notes("apps");
    for field in [
        "spec.targetNamespace: the destination namespace",
        "spec.timeout: has no equivalent",
    ] {
        assert!(
            apps.iter()
                .any(|note| note.starts_with("Kustomization flux-system/apps (") && note.contains(field)),
            "{field} in {apps:#?}"
        );
    }
    let web = engine.conversion_notes("web");
    assert!(
        web.iter()
            .any(|note| note.contains("spec.install: driftless renders with helm template")),
        "{web:#?}"
    );
    let patched = engine.conversion_notes("patched");
    assert!(
        patched.iter().all(|note| !note.contains("spec.patches")),
        "{patched:#?}"
    );
    assert_eq!(engine.conversion_notes("root"), Vec::<String>::new());
}

#[tokio::test]
async fn an_app_project_in_git_only_narrows_the_roots_project() {
    let env = TestEnv::new("foreign-projects").await;
    let ns = env.namespace.clone();
    let repo = TestRepo::new();
    let other = TestRepo::new();
    other.write("web/cm.yaml", &config_map("elsewhere"));
    other.commit("another team's repository");
    let project = |name: &str, source: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata: {{name: {name}, namespace: argocd}}\nspec:\n  sourceRepos: ['{source}']\n  destinations: [{{server: '*', namespace: '*'}}]\n  clusterResourceWhitelist: [{{group: '*', kind: '*'}}]\n---\n"
        )
    };
    let in_project = |name: &str, project: &str, repo: &TestRepo, path: &str| {
        argo_application(name, repo, path, &ns, "")
            .replace("project: default", &format!("project: {project}"))
    };
    repo.write(
        "apps/all.yaml",
        &[
            // Git says "anything goes": the root's project still bounds the child.
            project("wide", "*"),
            // Git narrows to this repository: a child from another one is held back.
            project("narrow", &repo.file_url()),
            in_project("wide-elsewhere", "wide", &other, "web"),
            in_project("narrow-elsewhere", "narrow", &other, "web"),
            in_project("narrow-here", "narrow", &repo, "here"),
        ]
        .concat(),
    )
    .write("here/cm.yaml", &config_map("here"));
    repo.commit("AppProjects in Git");
    let mut root = common::application("root", &repo, "apps", &ns);
    root.project = Some("team".into());
    let data = tempfile::tempdir().expect("data");
    let engine = common::engine_with_projects(
        env.kubeconfig_path(),
        data.path(),
        vec![root],
        vec![Project {
            name: "team".into(),
            source_repos: Some(vec![repo.file_url()]),
            destinations: Some(vec![ProjectDestination {
                cluster: "local".into(),
                namespace: ns.clone(),
            }]),
            cluster_resource_whitelist: Vec::new(),
            namespace_resource_blacklist: Vec::new(),
        }],
    );
    engine.compare("root").await.expect("root renders");
    for name in ["wide-elsewhere", "narrow-elsewhere", "narrow-here"] {
        let child = engine.application(name).expect("registered");
        assert_eq!(
            child.project.as_deref(),
            Some("team"),
            "{name} stays in its root's project"
        );
    }
    let err = engine
        .sync("wide-elsewhere", SyncOptions::default())
        .await
        .expect_err("the root's project");
    assert!(
        err.to_string()
            .contains("project team does not allow the source repository"),
        "{err}"
    );
    let err = engine
        .sync("narrow-elsewhere", SyncOptions::default())
        .await
        .expect_err("Git's narrowing");
    assert!(
        err.to_string()
            .contains("project narrow does not allow the source repository"),
        "{err}"
    );
    assert_eq!(sync(&engine, "narrow-here").await, SyncResult::Succeeded);
    let config_maps = env.api::<ConfigMap>();
    assert!(config_maps.get_opt("elsewhere").await.expect("get").is_none());
    assert!(config_maps.get_opt("here").await.expect("get").is_some());
}

/// A plan does not plan a held-back child as if it would deploy: when the change touches it,
/// its plan says why it does not sync and lists no change; an untouched one is not listed.
#[tokio::test]
async fn a_plan_says_why_a_held_back_child_does_not_sync_instead_of_planning_it() {
    let env = TestEnv::new("foreign-plan").await;
    let ns = env.namespace.clone();
    let repo = TestRepo::new();
    repo.write(
        "apps/applications.yaml",
        &[
            argo_application("guestbook", &repo, "guestbook", &ns, ""),
            kustomized_with_images(&repo, &ns),
        ]
        .concat(),
    )
    .write("guestbook/cm.yaml", &config_map("guestbook"))
    .write("kustomized/kustomization.yaml", "resources: [cm.yaml]\n")
    .write("kustomized/cm.yaml", &config_map("kustomized"));
    let base = repo.commit("an Argo CD app-of-apps");
    repo.write(
        "kustomized/cm.yaml",
        &config_map("kustomized").replace("value", "changed"),
    );
    let head = repo.commit("the held-back child's object changes");
    let (_data, engine) = common::engine(&env, vec![common::application("root", &repo, "apps", &ns)]);

    let plans = engine
        .plan(&base, &head, driftless_engine::PlanOptions::default())
        .await;
    let names: Vec<&str> = plans.iter().map(|plan| plan.application.as_str()).collect();
    assert_eq!(names, vec!["kustomized"], "{plans:?}");
    let held_back = &plans[0];
    assert!(held_back.changes.is_empty(), "{held_back:?}");
    let error = held_back.error.as_deref().expect("why it does not sync");
    assert!(error.contains("not synced"), "{error}");
    assert!(
        error.contains("spec.source.kustomize.images: not supported yet"),
        "{error}"
    );
}
