//! Charts from chart repositories synced to the real control plane: one from an HTTP chart
//! repository on loopback (archives and index written by real Helm), one pushed with `helm push`
//! to a real OCI registry on loopback, and a chart in Git whose dependency is declared (not
//! vendored) from a chart repository. Values files come from Git; an unchanged chart is not
//! rendered again; a project that does not allow the chart repository refuses it.

mod common;

use std::path::Path;

use driftless_core::SyncState;
use driftless_core::application::{Application, HelmOptions, Renderer, RepositoryChart};
use driftless_core::project::{Project, ProjectDestination};
use driftless_engine::SyncOptions;
use driftless_store::SyncResult;
use driftless_testenv::TestEnv;
use driftless_testenv::charts::{ChartRepositoryServer, Registry, package, push, repo_index};
use driftless_testenv::git::TestRepo;
use driftless_testenv::helm::assert_helm_on_path;
use k8s_openapi::api::core::v1::ConfigMap;

/// Packages `name` at `version` (a ConfigMap named after the release and chart, holding the
/// `greeting` value and the version) into `out`.
fn packaged(dir: &Path, name: &str, version: &str, out: &Path) -> std::path::PathBuf {
    let chart = dir.join(format!("src/{name}-{version}/{name}"));
    std::fs::create_dir_all(chart.join("templates")).expect("chart directory");
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
    )
    .expect("Chart.yaml");
    std::fs::write(chart.join("values.yaml"), "greeting: hello\n").expect("values");
    std::fs::write(
        chart.join("templates/cm.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\ndata:\n  greeting: {{{{ .Values.greeting | quote }}}}\n  version: \"{version}\"\n"
        ),
    )
    .expect("template");
    package(&chart, out)
}

fn from_repository(app: &mut Application, repository: String, version: &str, value_files: Vec<String>) {
    app.source.renderer = Renderer::Helm(HelmOptions {
        chart: Some(RepositoryChart {
            plain_http: repository.starts_with("oci://"),
            repository,
            name: "web".into(),
            version: version.into(),
        }),
        value_files,
        ..HelmOptions::default()
    });
}

/// A project allowing `repos`, to any namespace of any cluster.
fn project(name: &str, repos: Vec<String>) -> Project {
    Project {
        name: name.into(),
        source_repos: Some(repos),
        destinations: Some(vec![ProjectDestination {
            cluster: "*".into(),
            namespace: "*".into(),
        }]),
        cluster_resource_whitelist: Vec::new(),
        namespace_resource_blacklist: Vec::new(),
    }
}

async fn data_of(env: &TestEnv, name: &str) -> std::collections::BTreeMap<String, String> {
    env.api::<ConfigMap>()
        .get(name)
        .await
        .unwrap_or_else(|err| panic!("{name}: {err}"))
        .data
        .unwrap_or_default()
}

#[tokio::test]
async fn charts_from_an_http_repository_and_an_oci_registry_sync_with_values_from_git() {
    assert_helm_on_path();
    let env = TestEnv::new("helm-repos").await;
    let charts = tempfile::tempdir().expect("charts");
    let http_dir = charts.path().join("http");
    for version in ["1.0.0", "1.4.0", "2.0.0"] {
        packaged(charts.path(), "web", version, &http_dir);
    }
    repo_index(&http_dir);
    let server = ChartRepositoryServer::start(charts.path(), None).await;
    let registry = Registry::start();
    for version in ["3.0.0", "3.1.0"] {
        let archive = packaged(charts.path(), "web", version, &charts.path().join("oci"));
        push(&archive, &registry.url("charts"));
    }

    let repo = TestRepo::new();
    repo.write("deploy/values.yaml", "greeting: from git\n")
        .write("deploy/README.md", "values for web\n");
    repo.commit("values");
    let mut http_app = common::application("shop", &repo, "deploy", &env.namespace);
    from_repository(
        &mut http_app,
        server.url("http"),
        "^1",
        vec!["values.yaml".into()],
    );
    let mut oci_app = common::application("store", &repo, "deploy", &env.namespace);
    from_repository(&mut oci_app, registry.url("charts"), "3.x", Vec::new());
    let (_data, engine) = common::engine(&env, vec![http_app, oci_app]);

    for name in ["shop", "store"] {
        let report = engine.sync(name, SyncOptions::default()).await.expect("sync");
        assert_eq!(report.result, SyncResult::Succeeded, "{name}: {report:?}");
    }
    let shop = data_of(&env, "shop-web").await;
    assert_eq!(
        (shop["version"].as_str(), shop["greeting"].as_str()),
        ("1.4.0", "from git")
    );
    let store = data_of(&env, "store-web").await;
    assert_eq!(
        (store["version"].as_str(), store["greeting"].as_str()),
        ("3.1.0", "hello")
    );

    // Nothing changed: compares render nothing and pull nothing.
    let renders = engine.stats().await.renders;
    let requests = server.seen().len();
    for name in ["shop", "store"] {
        assert_eq!(
            engine.compare(name).await.expect("compare").sync,
            SyncState::Synced
        );
    }
    assert_eq!(
        engine.stats().await.renders,
        renders,
        "an unchanged chart is not rendered again"
    );
    assert_eq!(
        server.seen().len(),
        requests,
        "nor its index fetched again within a minute"
    );

    // A commit that does not touch the values files renders nothing either; one that does, does.
    repo.write("deploy/README.md", "still values for web\n");
    repo.commit("docs");
    assert_eq!(
        engine.compare("shop").await.expect("compare").sync,
        SyncState::Synced
    );
    assert_eq!(engine.stats().await.renders, renders);
    repo.write("deploy/values.yaml", "greeting: changed in git\n");
    repo.commit("values");
    assert_eq!(
        engine.compare("shop").await.expect("compare").sync,
        SyncState::OutOfSync
    );
    engine.sync("shop", SyncOptions::default()).await.expect("sync");
    assert_eq!(data_of(&env, "shop-web").await["greeting"], "changed in git");
}

#[tokio::test]
async fn a_dependency_declared_from_a_chart_repository_is_pulled_at_the_locked_version() {
    assert_helm_on_path();
    let env = TestEnv::new("helm-deps").await;
    let charts = tempfile::tempdir().expect("charts");
    let http_dir = charts.path().join("http");
    for version in ["1.0.0", "1.1.0"] {
        packaged(charts.path(), "web", version, &http_dir);
    }
    repo_index(&http_dir);
    let server = ChartRepositoryServer::start(charts.path(), None).await;
    let url = server.url("http");

    let repo = TestRepo::new();
    repo.write(
        "charts/site/Chart.yaml",
        &format!("apiVersion: v2\nname: site\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: ^1\n    repository: {url}\n"),
    )
    .write(
        "charts/site/Chart.lock",
        &format!("dependencies:\n  - name: web\n    repository: {url}\n    version: 1.0.0\ndigest: sha256:0\ngenerated: \"2026-12-01T00:00:00Z\"\n"),
    )
    .write("charts/site/values.yaml", "web:\n  greeting: from the parent\n")
    .write(
        "charts/site/templates/site.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\ndata: {}\n",
    );
    repo.commit("a chart with a dependency from a chart repository");
    let mut app = common::application("shop", &repo, "charts/site", &env.namespace);
    app.source.renderer = Renderer::Helm(HelmOptions::default());

    // A project whose sourceRepos cover the Git repository only refuses the dependency's.
    let project = |repos: Vec<String>| project("team", repos);
    app.project = Some("team".into());
    let data = tempfile::tempdir().expect("data");
    let engine = common::engine_with_projects(
        env.kubeconfig_path(),
        data.path(),
        vec![app.clone()],
        vec![project(vec![repo.file_url()])],
    );
    let err = engine
        .sync("shop", SyncOptions::default())
        .await
        .expect_err("refused");
    assert!(
        err.to_string()
            .contains(&format!("does not allow the source repository {url}")),
        "{err}"
    );
    assert!(server.seen().is_empty(), "a refused repository is not contacted");
    drop(engine);

    let engine = common::engine_with_projects(
        env.kubeconfig_path(),
        data.path(),
        vec![app],
        vec![project(vec![repo.file_url(), format!("{url}*")])],
    );
    let report = engine.sync("shop", SyncOptions::default()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let web = data_of(&env, "shop-web").await;
    assert_eq!(
        (web["version"].as_str(), web["greeting"].as_str()),
        ("1.0.0", "from the parent"),
        "Chart.lock's version, the parent's values"
    );
    assert!(
        env.api::<ConfigMap>()
            .get_opt("site")
            .await
            .expect("get")
            .is_some()
    );
}

/// Tenant B's private chart repository (web 1.0.0 behind B's basic auth, and the
/// `repositories[]` entry with B's password) and tenant A's, whose index names web 1.0.0 with
/// the digest of B's chart at `a_names(&b)` (relative: on A's server, which does not have it).
struct Tenants {
    a: ChartRepositoryServer,
    b: ChartRepositoryServer,
    b_credentials: driftless_core::application::RepositoryCredentials,
    _dirs: [tempfile::TempDir; 3],
}

async fn tenants(a_names: impl FnOnce(&ChartRepositoryServer) -> String) -> Tenants {
    let b_dir = tempfile::tempdir().expect("b");
    let private = packaged(b_dir.path(), "web", "1.0.0", &b_dir.path().join("charts"));
    repo_index(&b_dir.path().join("charts"));
    let b = ChartRepositoryServer::start(b_dir.path(), Some(("robot", "b-secret"))).await;
    let a_dir = tempfile::tempdir().expect("a");
    std::fs::create_dir_all(a_dir.path().join("charts")).expect("a charts");
    std::fs::copy(&private, a_dir.path().join("charts/web-1.0.0.tgz")).expect("copy");
    repo_index(&a_dir.path().join("charts"));
    let index_path = a_dir.path().join("charts/index.yaml");
    let index = std::fs::read_to_string(&index_path).expect("index");
    assert!(index.contains("digest:"), "{index}");
    std::fs::write(
        &index_path,
        index.replace("- web-1.0.0.tgz", &format!("- {}", a_names(&b))),
    )
    .expect("index");
    std::fs::remove_file(a_dir.path().join("charts/web-1.0.0.tgz")).expect("only B has it");
    let a = ChartRepositoryServer::start(a_dir.path(), None).await;
    let secrets = tempfile::tempdir().expect("secrets");
    std::fs::write(secrets.path().join("b"), "b-secret").expect("password");
    let b_credentials = driftless_core::application::RepositoryCredentials {
        url_prefix: b.url("charts"),
        username: Some("robot".into()),
        password: Some(driftless_core::application::SecretSource::File(
            secrets.path().join("b"),
        )),
        ssh_private_key: None,
        known_hosts: None,
    };
    Tenants {
        a,
        b,
        b_credentials,
        _dirs: [b_dir, a_dir, secrets],
    }
}

#[tokio::test]
async fn an_index_pointing_at_another_tenants_private_archive_gets_nothing() {
    assert_helm_on_path();
    let env = TestEnv::new("helm-foreign-archive").await;
    // Tenant A's public index names B's archive, with its digest (as if A had seen it once).
    let Tenants {
        a,
        b,
        b_credentials,
        _dirs,
    } = tenants(|b| b.url("charts/web-1.0.0.tgz")).await;
    let b_archive = b.url("charts/web-1.0.0.tgz");
    let repo = TestRepo::new();
    repo.write("deploy/README.md", "tenant A\n");
    repo.commit("tenant A");
    let app = |name: &str, project: Option<&str>| {
        let mut app = common::application(name, &repo, "deploy", &env.namespace);
        from_repository(&mut app, a.url("charts"), "1.0.0", Vec::new());
        app.project = project.map(str::to_owned);
        app
    };
    let data = tempfile::tempdir().expect("data");
    let engine = common::engine_configured(
        env.kubeconfig_path(),
        data.path(),
        vec![
            app("narrow", Some("team-a")),
            app("wide", Some("team-a-wide")),
            app("open", None),
        ],
        |config| {
            config.repositories = vec![b_credentials];
            config.projects = vec![
                project("team-a", vec![repo.file_url(), a.url("charts")]),
                project(
                    "team-a-wide",
                    vec![repo.file_url(), a.url("charts"), b.url("charts/*")],
                ),
            ];
        },
    );

    // A project without B's repository refuses the archive before anything reaches B.
    let err = engine
        .sync("narrow", SyncOptions::default())
        .await
        .expect_err("refused");
    let message = err.to_string();
    assert!(message.contains(&b_archive), "{message}");
    assert!(
        message.contains("project team-a does not allow the source repository"),
        "{message}"
    );
    assert!(b.seen().is_empty(), "B was not contacted: {:?}", b.seen());

    // Allowed to ask (or unrestricted), A still gets nothing: B's credentials are B's.
    for name in ["wide", "open"] {
        let err = engine
            .sync(name, SyncOptions::default())
            .await
            .expect_err("B's archive is private");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{b_archive}: the server answered 401")),
            "{name}: {message}"
        );
    }
    assert!(!b.seen().is_empty(), "B was asked");
    assert!(
        b.seen().iter().all(|seen| !seen.authorized),
        "B's credentials were never sent: {:?}",
        b.seen()
    );
    assert!(
        env.api::<ConfigMap>()
            .get_opt("open-web")
            .await
            .expect("get")
            .is_none()
    );
}

#[tokio::test]
async fn a_kept_archive_goes_only_to_pulls_with_the_credentials_that_fetched_it() {
    assert_helm_on_path();
    let env = TestEnv::new("helm-kept-archive").await;
    // B's private chart, and A's index naming an archive on A's own server with the digest
    // of B's chart (a digest is no secret); A's server has no such archive.
    let Tenants {
        a,
        b,
        b_credentials,
        _dirs,
    } = tenants(|_| "web-1.0.0.tgz".to_owned()).await;
    let a_archive = a.url("charts/web-1.0.0.tgz");
    let repo = TestRepo::new();
    repo.write("deploy/README.md", "tenants\n");
    repo.commit("tenants");
    let app = |name: &str, repository: String| {
        let mut app = common::application(name, &repo, "deploy", &env.namespace);
        from_repository(&mut app, repository, "1.0.0", Vec::new());
        app
    };
    let data = tempfile::tempdir().expect("data");
    let engine = || {
        common::engine_configured(
            env.kubeconfig_path(),
            data.path(),
            vec![app("tenant-b", b.url("charts")), app("tenant-a", a.url("charts"))],
            |config| {
                config.repositories = vec![b_credentials.clone()];
            },
        )
    };
    let first = engine();
    let result = first
        .sync("tenant-b", SyncOptions::default())
        .await
        .expect("B pulls its chart");
    assert_eq!(result.result, SyncResult::Succeeded, "{result:?}");
    assert_eq!(data_of(&env, "tenant-b-web").await["greeting"], "hello");

    // Kept in memory (this engine) and on disk (the next one): A's pull asks A's server,
    // which has nothing, and never gets B's chart.
    let mut first = Some(first);
    for round in ["in memory", "on disk"] {
        let engine = first.take().unwrap_or_else(engine);
        let err = engine
            .sync("tenant-a", SyncOptions::default())
            .await
            .expect_err("B's chart is B's");
        let message = err.to_string();
        assert!(
            message.contains(&format!("{a_archive}: the server answered 404")),
            "{round}: {message}"
        );
        assert!(
            env.api::<ConfigMap>()
                .get_opt("tenant-a-web")
                .await
                .expect("get")
                .is_none(),
            "{round}"
        );
        drop(engine);
    }
    assert_eq!(
        a.seen()
            .iter()
            .filter(|seen| seen.path.ends_with("web-1.0.0.tgz"))
            .count(),
        2,
        "{:?}",
        a.seen()
    );
}
