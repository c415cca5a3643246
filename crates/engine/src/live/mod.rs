//! Live state: what the cluster holds of an application's objects. The [`Live`] component owns
//! the watch cache (`serve` only: [`Live::watch`]) and reads snapshots
//! ([`Live::snapshot`]) with as few requests as the cache and the recorded resourceVersions
//! allow.

mod snapshot;
mod watch;

use std::sync::Arc;

pub(crate) use snapshot::LiveSnapshot;
use watch::LiveCache;
pub use watch::LiveChange;

use crate::catalog::Registry;

#[derive(Default)]
pub(crate) struct Live {
    /// Watches of live objects; only `driftless serve` starts them.
    cache: std::sync::OnceLock<LiveCache>,
}

impl Live {
    /// Starts keeping a watch-based cache of live objects (one watch per kind in use, started as
    /// applications are compared) and returns the stream of changes the watches see. `None` when
    /// already started.
    pub(crate) fn watch(
        &self,
        registry: Arc<Registry>,
    ) -> Option<tokio::sync::mpsc::UnboundedReceiver<LiveChange>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.cache.set(LiveCache::new(registry, sender)).ok()?;
        Some(receiver)
    }
}
