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
