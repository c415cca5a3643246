//! Setup shared by the engine's integration tests.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::time::Duration;

use driftless_config::Config;
use driftless_core::application::{
    Application, Automated, Cluster, ClusterConnection, Destination, Renderer, Retry, Source, SyncPolicy,
};
use driftless_engine::{Engine, EngineOptions};
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
        },
        ignore_differences: Vec::new(),
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
    let data = tempfile::tempdir().expect("tempdir");
    let config = Config {
        data_dir: None,
        clusters: vec![Cluster {
            name: "local".into(),
            connection: ClusterConnection::Kubeconfig {
                path: env.kubeconfig_path().to_owned(),
                context: None,
            },
        }],
        repositories: Vec::new(),
        applications,
    };
    let options = EngineOptions {
        data_dir: data.path().to_owned(),
        ..EngineOptions::default()
    };
    (data, Engine::new(config, options).expect("engine"))
}
