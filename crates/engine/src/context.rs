//! What the engine's components lend each other for one operation: the catalog, the clusters,
//! the state store and the metrics. Passed by reference; owned by [`crate::Engine`].

use driftless_store::StateStore;

use crate::catalog::Catalog;
use crate::clusters::Clusters;
use crate::metrics::Metrics;

#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    pub catalog: &'a Catalog,
    pub clusters: &'a Clusters,
    pub store: &'a dyn StateStore,
    pub metrics: &'a Metrics,
}
