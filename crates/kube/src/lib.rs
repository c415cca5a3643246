//! driftless's Kubernetes adapter: everything that talks to an API server.
//!
//! - `connect`: a client for a configured cluster (kubeconfig file and context, or in-cluster),
//!   refusing kubeconfig `exec` credential plugins unless explicitly allowed.
//! - `discovery`: which API resource and scope each kind has, cached, including kinds whose CRD
//!   is part of the same application and not installed yet.
//! - `resolve`: rendered manifests to [`driftless_core::DesiredObject`]s (namespace defaulted
//!   for namespaced kinds, stripped for cluster-scoped ones), with one error per object.
//! - `objects`: server-side apply (field manager `driftless`), its dry-run, get and delete.
//! - `watch`: a watch of the labelled objects of one kind, as plain JSON events.

mod connect;
mod counted;
mod discovery;
mod objects;
mod resolve;
mod watch;

pub use connect::{ConnectError, ConnectOptions, api_server_url, connect};
pub use discovery::{Capabilities, Discovery, DiscoveryError, Resolved, builtin};
pub use kube::core::ApiResource;
pub use objects::{ApplyOptions, FIELD_MANAGER, ListedMetadata, ObjectError, Objects};
pub use resolve::{ResolveError, resolve_desired};
pub use watch::{WatchEvent, watch_labelled};
