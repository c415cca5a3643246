//! driftless's runtime for one process: it owns the Git mirrors, the store and a client per
//! cluster, and turns the pure decisions of `driftless-core` into actions.
//!
//! - [`Engine::desired_state`]: fetch, resolve the revision, read the tree, render, give every
//!   object its final identity and the ownership label.
//! - [`Engine::compare`]: server-side dry-run of every desired object against the live object,
//!   normalised and redacted ([`driftless_core::diff`]), plus what would be pruned and health.
//! - [`Engine::sync`]: plan ([`driftless_core::plan`]), apply wave by wave, prune after success,
//!   record history and inventory.
//! - [`Engine::plan`]: what Git at `head` changes against `base` per application, offline.

mod admission;
mod applied;
mod controller;
mod decryption;
mod desired;
mod engine;
mod error;
mod live;
mod locks;
pub mod metrics;
mod plan;
mod projects;
mod registry;
mod signatures;
mod sync;
mod throttle;
mod watch;

pub use controller::{AppStatus, Controller, StatusUpdate};
pub use desired::RenderedApp;
pub use engine::{AppComparison, Engine, EngineOptions, EngineStats, ObjectStatus, Prepared};
pub use error::EngineError;
pub use plan::PlanOptions;
pub use sync::{ProgressSink, SyncOptions, SyncProgress, SyncReport};
pub use watch::LiveChange;
