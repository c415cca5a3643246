//! driftless's pure core.
//!
//! Everything that decides *what* driftless does lives here as plain functions over plain data:
//! which object is which, in what order objects are applied, what state an application is in. No
//! function in this crate performs I/O, spawns tasks or knows about `kube`, Git or the file system;
//! adapters turn the world into these types and act on what these functions return. That keeps
//! every decision unit-testable without a cluster.

pub mod access;
pub mod application;
pub mod applied;
pub mod apply_defaults;
pub mod arguments;
pub mod changes;
pub mod comparison;
mod desired;
pub mod diff;
pub mod fingerprint;
pub mod health;
pub mod hooks;
pub mod inventory;
pub mod notifications;
mod object_ref;
pub mod plan;
pub mod preview;
pub mod project;
pub mod reconcile;
pub mod schema;
pub mod source_type;
mod status;
pub mod sync_order;
pub mod tree;
pub mod webhooks;

pub use desired::{DesiredObject, SourceLocation, duplicates};
pub use object_ref::{GroupVersionKind, ObjectRef, ParseGroupVersionError};
pub use status::{HealthState, SyncState};
