//! driftless's runtime for one process: it turns the pure decisions of `driftless-core` into
//! actions through the adapters (Git, renderers, Kubernetes, the state store).
//!
//! Components own their state (private fields) and are held together in [`parts`]:
//! - `catalog`: the configuration's applications (and those roots declare), projects, policies;
//! - `clusters`: one connection per cluster, discovery;
//! - `desired`: mirrors, charts, render caches, signature verdicts, decryption keys — from an
//!   application to its objects at a commit;
//! - `live`: the watch cache and snapshots of what the cluster holds;
//! - the state store (`driftless_store::StateStore`; SQLite today).
//!
//! Operations, each in its own module, take the components and return an outcome or a
//! [`Failure`]; [`Engine`] names the application once in the operation's error:
//! - `compare`: server-side dry-run of every desired object against the live object,
//!   normalised and redacted, plus what would be pruned and health;
//! - `sync`: plan, apply wave by wave, prune after success, record history and inventory;
//! - `admin`: rollback, pin, unpin, suspend, resume;
//! - `preview`: what Git at `head` changes against `base` per application (`driftless plan`);
//! - `tree`: the resource tree below an application's workloads.
//!
//! [`Controller`] reconciles every application under `driftless serve`.
//!
//! Imports run one way: `clock`, `locks`, `throttle`, `metrics`, `error` ← `clusters`, `catalog`
//! ← `context` ← `desired` ← `live` ← `parts` ← `compare` ← `sync` ← `admin`, `preview`, `tree`
//! ← `engine` ← `controller`.

mod admin;
mod admission;
mod catalog;
mod clock;
mod clusters;
mod compare;
mod context;
mod controller;
mod desired;
mod engine;
mod error;
mod live;
mod locks;
pub mod metrics;
mod parts;
mod preview;
mod sync;
mod throttle;
mod tree;

pub use catalog::known_clusters;
pub use compare::Prepared;
pub use controller::{AppStatus, Controller, StatusUpdate};
pub use driftless_core::comparison::{AppComparison, ObjectStatus};
pub use engine::{Engine, EngineOptions, EngineStats, RenderedApp};
pub use error::{
    AdminError, Classified, CompareError, ErrorClass, Failure, LookupError, RenderError, StartError,
    SyncError, TreeError,
};
pub use live::LiveChange;
pub use preview::PlanOptions;
pub use sync::{ProgressSink, SyncOptions, SyncProgress, SyncReport};
