//! Setup shared by the engine's integration tests.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::sync::Arc;
use std::time::Duration;

use driftless_config::Config;
use driftless_core::application::{
    Application, Automated, Cluster, ClusterConnection, Destination, Renderer, Retry, Source, SyncPolicy,
};

use driftless_engine::{Controller, Engine, EngineOptions};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;

/// A manual application of `repo` at `main`, `path`, into `namespace` on the cluster `local`.
pub fn application(name: &str, repo: &TestRepo, path: &str, namespace: &str) -> Application {
    Application {
        name: name.to_owned(),
        labels: std::collections::BTreeMap::new(),
        source: Source {
            repo_url: repo.file_url(),
            revision: "main".into(),
            path: path.into(),
            renderer: Renderer::Detect,
        },
        destination: Destination {
            cluster: "local".into(),
            namespace: Some(namespace.to_owned()),
        },
        sync_policy: SyncPolicy {
            automated: None,
            interval: Duration::from_mins(3),
            retry: Retry::default(),
            create_namespace: false,
            prune_last: false,
            replace: false,
            allow_empty: false,
        },
        ignore_differences: Vec::new(),
        decryption: None,
        verify: None,
        project: None,
        post_build: None,
    }
}

/// The same, automated (prune, selfHeal) and reconciled every second.
pub fn automated(name: &str, repo: &TestRepo, path: &str, namespace: &str) -> Application {
    let mut app = application(name, repo, path, namespace);
    app.sync_policy.automated = Some(Automated {
        prune: true,
        self_heal: true,
    });
    app.sync_policy.interval = Duration::from_secs(1);
    app
}

/// An engine for `applications` against the test's control plane (cluster `local`), with its
/// state in a temporary directory that lives as long as the returned guard.
pub fn engine(env: &TestEnv, applications: Vec<Application>) -> (tempfile::TempDir, Engine) {
    engine_at(env.kubeconfig_path(), applications)
}

/// [`engine`] against the cluster of `kubeconfig` (a test's own control plane).
pub fn engine_at(
    kubeconfig: &std::path::Path,
    applications: Vec<Application>,
) -> (tempfile::TempDir, Engine) {
    let data = tempfile::tempdir().expect("tempdir");
    let engine = engine_in(kubeconfig, data.path(), applications);
    (data, engine)
}

/// An engine with its state in `data_dir`: a second one there is what a new process would be.
pub fn engine_in(
    kubeconfig: &std::path::Path,
    data_dir: &std::path::Path,
    applications: Vec<Application>,
) -> Engine {
    engine_with(kubeconfig, data_dir, applications, Vec::new())
}

/// [`engine_in`] with `repositories[].verify` entries.
pub fn engine_with(
    kubeconfig: &std::path::Path,
    data_dir: &std::path::Path,
    applications: Vec<Application>,
    repository_verifications: Vec<driftless_core::application::RepositoryVerification>,
) -> Engine {
    engine_configured(kubeconfig, data_dir, applications, |config| {
        config.repository_verifications = repository_verifications;
    })
}

/// [`engine_in`] with `projects`.
pub fn engine_with_projects(
    kubeconfig: &std::path::Path,
    data_dir: &std::path::Path,
    applications: Vec<Application>,
    projects: Vec<driftless_core::project::Project>,
) -> Engine {
    engine_configured(kubeconfig, data_dir, applications, |config| {
        config.projects = projects;
    })
}

/// [`engine_in`] with the configuration changed by `adjust` (limits, projects, verification).
pub fn engine_configured(
    kubeconfig: &std::path::Path,
    data_dir: &std::path::Path,
    applications: Vec<Application>,
    adjust: impl FnOnce(&mut Config),
) -> Engine {
    let mut config = Config {
        data_dir: None,
        clusters: vec![Cluster {
            name: "local".into(),
            connection: ClusterConnection::Kubeconfig {
                path: kubeconfig.to_owned(),
                context: None,
            },
        }],
        repositories: Vec::new(),
        repository_verifications: Vec::new(),
        limits: driftless_core::application::SourceLimits::default(),
        redaction: driftless_core::application::SensitiveData::default(),
        projects: Vec::new(),
        webhooks: driftless_core::application::WebhookSecrets::default(),
        notifications: driftless_core::notifications::Notifications::default(),
        policy: Vec::new(),
        applications,
    };
    adjust(&mut config);
    let options = EngineOptions {
        data_dir: data_dir.to_owned(),
        ..EngineOptions::default()
    };
    Engine::new(config, options).expect("engine")
}

/// A controller running in the background until [`Running::stop`].
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(engine: Engine) -> (Arc<Controller>, Self) {
        let controller = Controller::new(Arc::new(engine), 2);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let controller = Arc::clone(&controller);
            async move {
                controller
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            }
        });
        (controller, Self { stop, task })
    }

    /// Stops the controller and waits (up to 30 s) for it to finish.
    pub async fn stop(self) {
        self.stop.send(()).expect("the controller is running");
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the controller stops")
            .expect("join");
    }
}

/// Patches `name` as field manager `manager` would (a merge patch, as `kubectl label` or
/// `kubectl scale` send).
pub async fn patch<K>(api: &kube::Api<K>, name: &str, manager: &str, patch: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &kube::api::PatchParams::apply(manager),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .expect("patch");
}

/// The replicas of the Deployment `web`.
pub async fn replicas(deployments: &kube::Api<k8s_openapi::api::apps::v1::Deployment>) -> Option<i32> {
    deployments
        .get("web")
        .await
        .expect("get web")
        .spec
        .and_then(|spec| spec.replicas)
}

/// Polls `probe` every 100 ms until it returns `Ok`, for up to `timeout`; panics with `what` and
/// the last probe's description otherwise.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(found) => return found,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what} did not happen within {timeout:?}; last seen: {last}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
