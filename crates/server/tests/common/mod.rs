//! Helpers shared by the server's test binaries.

use std::path::Path;
use std::sync::Arc;

use driftless_engine::{Controller, Engine, EngineOptions};

/// An engine for the configuration `text` (relative paths from `dir`), its state under
/// `dir/state`.
pub fn engine(text: &str, dir: &Path) -> Arc<Engine> {
    let config = driftless_config::parse(text, "driftless.yaml", dir).expect("config");
    Arc::new(
        Engine::new(
            config,
            EngineOptions {
                data_dir: dir.join("state"),
                ..EngineOptions::default()
            },
        )
        .expect("engine"),
    )
}

/// Serves the controller's TCP API (tokens required) on a free loopback port; its base URL.
#[allow(dead_code, reason = "not every test binary serves over TCP")]
pub async fn serve_tcp(controller: &Arc<Controller>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(driftless_server::serve_tcp(
        Arc::clone(controller),
        listener,
        std::future::pending(),
    ));
    base
}

/// `apps/history.yaml` of an app-of-apps root: an Argo CD Application `with-history` of `repo`'s
/// `web` into `namespace`, whose `revisionHistoryLimit` only changes how Argo CD behaves.
#[allow(dead_code, reason = "not every test binary has a converted child")]
pub fn argo_application_keeping_history(repo: &driftless_testenv::git::TestRepo, namespace: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: with-history, namespace: argocd}}\nspec:\n  project: default\n  revisionHistoryLimit: 3\n  source: {{repoURL: '{}', path: web}}\n  destination: {{server: 'https://kubernetes.default.svc', namespace: '{namespace}'}}\n",
        repo.file_url()
    )
}

/// What the child of [`argo_application_keeping_history`] syncs without.
#[allow(dead_code, reason = "not every test binary has a converted child")]
pub const HISTORY_NOTE: &str = "Application argocd/with-history (apps/history.yaml (document 1, line 1)): spec.revisionHistoryLimit: has no equivalent in driftless; ignored";
