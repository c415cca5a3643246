//! Helpers shared by the server's test binaries.

use std::path::Path;
use std::sync::Arc;

use driftless_engine::{Engine, EngineOptions};

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
