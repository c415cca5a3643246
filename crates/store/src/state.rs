//! The engine's state behind one trait, so that a second backend (state kept in Kubernetes, or
//! PostgreSQL for several replicas) can stand where SQLite stands: [`Store`] is the first.

use std::collections::BTreeMap;

use driftless_core::ObjectRef;
use driftless_core::access::Grant;

use crate::{
    AppliedState, EventRecord, ObjectOutcome, RenderRecord, Store, StoreError, SyncEffects, SyncRecord,
    SyncResult, TokenRecord, Trigger,
};

/// Declares the trait and implements it for [`Store`] by calling its methods of the same names,
/// so the two cannot drift apart.
macro_rules! state_store {
    ($($(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        /// Everything the engine and the API server keep between reconciles and processes:
        /// sync history, inventories, applied fingerprints, pins, suspensions, events, names
        /// declared in Git, kept renders and API tokens. Implementations are safe to share
        /// between threads; each method is one transaction.
        pub trait StateStore: Send + Sync {
            $($(#[$doc])* fn $name(&self $(, $arg: $ty)*) -> $ret;)*
        }

        impl StateStore for Store {
            $(fn $name(&self $(, $arg: $ty)*) -> $ret {
                Store::$name(self $(, $arg)*)
            })*
        }
    };
}

state_store! {
    /// Starts a sync's history record; returns its id.
    fn begin_sync(&self, application: &str, revision: &str, requested_revision: &str, trigger: Trigger, now: i64) -> Result<i64, StoreError>;
    /// Ends a sync: its result, per-object outcomes and, for a real sync, its effects
    /// (inventory, applied states) in the same transaction.
    fn finish_sync(&self, id: i64, result: SyncResult, message: &str, outcomes: &[ObjectOutcome], now: i64, effects: Option<SyncEffects<'_>>) -> Result<(), StoreError>;
    /// The application's syncs, newest first.
    fn history(&self, application: &str, limit: usize) -> Result<Vec<SyncRecord>, StoreError>;
    fn sync_objects(&self, id: i64) -> Result<Vec<ObjectOutcome>, StoreError>;
    /// Whether `revision` was ever synced successfully.
    fn was_synced(&self, application: &str, revision: &str) -> Result<bool, StoreError>;
    /// The revision of the last successful sync, however many failed since.
    fn last_synced_revision(&self, application: &str) -> Result<Option<String>, StoreError>;
    fn inventory(&self, application: &str) -> Result<BTreeMap<ObjectRef, String>, StoreError>;
    fn applied(&self, application: &str) -> Result<BTreeMap<ObjectRef, AppliedState>, StoreError>;
    fn update_applied(&self, application: &str, changes: &BTreeMap<ObjectRef, Option<AppliedState>>) -> Result<(), StoreError>;
    fn pin(&self, application: &str, revision: &str) -> Result<(), StoreError>;
    fn unpin(&self, application: &str) -> Result<bool, StoreError>;
    fn pinned(&self, application: &str) -> Result<Option<String>, StoreError>;
    fn suspend(&self, application: &str, at: i64) -> Result<bool, StoreError>;
    fn resume(&self, application: &str) -> Result<bool, StoreError>;
    fn is_suspended(&self, application: &str) -> Result<bool, StoreError>;
    fn declared_names(&self) -> Result<BTreeMap<String, String>, StoreError>;
    fn set_declared_names(&self, root: &str, names: &[String]) -> Result<(), StoreError>;
    fn record_event(&self, application: &str, event: &EventRecord) -> Result<(), StoreError>;
    fn events(&self, application: &str, limit: usize) -> Result<Vec<EventRecord>, StoreError>;
    fn save_render(&self, application: &str, record: &RenderRecord) -> Result<(), StoreError>;
    fn move_render(&self, application: &str, revision: &str, at: i64) -> Result<(), StoreError>;
    fn render(&self, application: &str) -> Result<Option<RenderRecord>, StoreError>;
    fn forget_render(&self, application: &str) -> Result<(), StoreError>;
    /// Creates an API token; returns its secret (shown once).
    fn create_token(&self, name: &str, grant: &Grant, at: i64) -> Result<String, StoreError>;
    fn token_grant(&self, secret: &str, at: i64) -> Result<Option<Grant>, StoreError>;
    fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;
    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
}
