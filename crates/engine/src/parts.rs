//! The engine's components, held together: every operation (compare, sync, preview, admin,
//! tree — the modules above this one) takes them by reference. Each component keeps its state
//! private; this is only where they live.

use std::sync::Arc;

use driftless_store::StateStore;

use crate::catalog::Catalog;
use crate::clusters::Clusters;
use crate::context::Context;
use crate::desired::Desired;
use crate::live::Live;
use crate::metrics::Metrics;

pub(crate) struct Parts {
    pub catalog: Catalog,
    pub clusters: Clusters,
    pub desired: Desired,
    pub live: Live,
    pub store: Arc<dyn StateStore>,
    pub metrics: Metrics,
    /// Salts the hashes that stand in for Secret values in diffs; new per process.
    pub redaction_salt: [u8; 16],
}

impl Parts {
    pub(crate) fn context(&self) -> Context<'_> {
        Context {
            catalog: &self.catalog,
            clusters: &self.clusters,
            store: &*self.store,
            metrics: &self.metrics,
        }
    }

    /// How values that must not be shown are shown.
    pub(crate) fn redaction(&self) -> driftless_core::diff::Redaction<'_> {
        driftless_core::diff::Redaction {
            salt: &self.redaction_salt,
            sensitive: &self.catalog.config().redaction,
        }
    }
}
