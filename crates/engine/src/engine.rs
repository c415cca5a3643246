//! The [`Engine`]: driftless's runtime for one process. It owns the components (catalog,
//! clusters, desired state, live state, state store, metrics — see [`crate::parts`]) and offers
//! each operation as one method that names the application once: looking it up, calling the
//! operation's module, and wrapping a [`Failure`] in the operation's error.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use driftless_config::Config;
use driftless_core::application::Application;
use driftless_core::comparison::AppComparison;
use driftless_core::diff::redact;
use driftless_kube::ConnectOptions;
use driftless_store::{StateStore, Store};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::clusters::Clusters;
use crate::compare::{self, Prepared};
use crate::desired::Desired;
use crate::error::{
    AdminError, CompareError, Failure, LookupError, RenderError, StartError, SyncError, TreeError,
};
use crate::live::{Live, LiveChange};
use crate::metrics::Metrics;
use crate::parts::Parts;
use crate::preview::PlanOptions;
use crate::sync::{SyncOptions, SyncReport};
use crate::{admin, preview, sync, tree};

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where mirrors and the database live.
    pub data_dir: PathBuf,
    pub connect: ConnectOptions,
    /// How old a fetch of a repository may be for a periodic reconcile (or a discovery) to use
    /// it instead of fetching again: many applications of one repository share one fetch.
    /// Explicit requests (a refresh, the CLI) always fetch.
    pub fetch_reuse: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::new(),
            connect: ConnectOptions::default(),
            fetch_reuse: Duration::from_secs(3),
        }
    }
}

/// Counters of work done since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EngineStats {
    /// Applications rendered (renders skipped because nothing they read changed do not count).
    pub renders: u64,
    /// Git fetches (and clones).
    pub fetches: u64,
    /// Requests for single objects and lists (reads and writes; not watches or discovery) sent
    /// to every cluster.
    pub api_requests: u64,
}

/// What `driftless render` shows: the objects an application declares at a commit, exactly as
/// they would be applied, except that Secret values are shown as salted hashes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderedApp {
    pub application: String,
    pub revision: String,
    pub renderer: &'static str,
    pub manifests: Vec<serde_json::Value>,
}

pub struct Engine {
    parts: Parts,
    fetch_reuse: Duration,
}

fn random_salt() -> [u8; 16] {
    use std::io::Read as _;
    let mut salt = [0u8; 16];
    // Without the kernel's randomness the salt stays zero: hashes are then comparable across
    // processes, values still never shown.
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut urandom| urandom.read_exact(&mut salt));
    salt
}

impl Engine {
    /// An engine for `config`, with its mirrors and database under `options.data_dir`.
    pub fn new(config: Config, options: EngineOptions) -> Result<Self, StartError> {
        if !options.data_dir.as_os_str().is_empty() {
            driftless_store::private_directory(&options.data_dir)?;
        }
        let store = Store::open(&options.data_dir.join("driftless.db"))?;
        Self::with_store(config, options, Arc::new(store))
    }

    /// An engine keeping its state in `store` (mirrors and charts still under
    /// `options.data_dir`).
    pub fn with_store(
        config: Config,
        options: EngineOptions,
        store: Arc<dyn StateStore>,
    ) -> Result<Self, StartError> {
        let EngineOptions {
            data_dir,
            connect,
            fetch_reuse,
        } = options;
        let desired = Desired::new(&config, &data_dir);
        let clusters = Clusters::new(config.clusters.clone(), connect);
        let catalog = Catalog::new(config)?;
        Ok(Self {
            parts: Parts {
                catalog,
                clusters,
                desired,
                live: Live::default(),
                store,
                metrics: Metrics::default(),
                redaction_salt: random_salt(),
            },
            fetch_reuse,
        })
    }

    /// The process's Prometheus metrics.
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.parts.metrics
    }

    #[must_use]
    pub fn config(&self) -> &Config {
        self.parts.catalog.config()
    }

    #[must_use]
    pub fn store(&self) -> &dyn StateStore {
        &*self.parts.store
    }

    /// Starts keeping a watch-based cache of live objects (one watch per kind in use, started as
    /// applications are compared) and returns the stream of changes the watches see. `None` when
    /// already started.
    pub fn watch_live(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<LiveChange>> {
        self.parts.live.watch(Arc::clone(self.parts.catalog.registry()))
    }

    pub async fn stats(&self) -> EngineStats {
        EngineStats {
            renders: self.parts.desired.renders(),
            fetches: self.parts.desired.fetches(),
            api_requests: self.parts.clusters.request_count().await,
        }
    }

    /// A known application: from the configuration, or declared by a root application that has
    /// been rendered (see [`Engine::discover`]).
    pub fn application(&self, name: &str) -> Result<Arc<Application>, LookupError> {
        self.parts
            .catalog
            .application(name)
            .map_err(LookupError::of(name))
    }

    /// Every known application's name.
    #[must_use]
    pub fn application_names(&self) -> Vec<String> {
        self.parts.catalog.names()
    }

    /// For an application a root declares as an Argo CD or Flux object: each field that only
    /// changes how Argo CD or Flux would behave (`dependsOn`, timeouts, Helm remediation …),
    /// as `object: field: what differs`. It syncs regardless; empty for any other application.
    #[must_use]
    pub fn conversion_notes(&self, name: &str) -> Vec<String> {
        self.parts.catalog.registry().conversion_notes(name)
    }

    /// Like [`Engine::application`], rendering root applications first when the name is not
    /// known yet (it may be declared by one).
    pub async fn find_application(&self, name: &str) -> Result<Arc<Application>, LookupError> {
        self.found(name).await.map_err(LookupError::of(name))
    }

    async fn found(&self, name: &str) -> Result<Arc<Application>, Failure> {
        if let Ok(app) = self.parts.catalog.application(name) {
            return Ok(app);
        }
        self.discover().await;
        self.parts.catalog.application(name)
    }

    /// Renders every application not rendered yet, so applications declared by roots (at any
    /// depth) become known. Render errors are left for the application's own reconcile to report.
    pub async fn discover(&self) {
        let mut rendered = BTreeSet::new();
        loop {
            let pending: Vec<String> = self
                .application_names()
                .into_iter()
                .filter(|name| !rendered.contains(name))
                .collect();
            if pending.is_empty() {
                return;
            }
            for name in pending {
                if let Ok(app) = self.parts.catalog.application(&name) {
                    let _ = self
                        .parts
                        .desired
                        .state(
                            self.parts.context(),
                            &app,
                            None,
                            self.fetched_since(self.fetch_reuse),
                        )
                        .await;
                }
                rendered.insert(name);
            }
        }
    }

    /// The instant a fetch must have started at or after for a reconcile to use it: at most
    /// `max_age` old.
    pub(crate) fn fetched_since(&self, max_age: Duration) -> Instant {
        self.parts.desired.clock().since(max_age)
    }

    /// Any fetch this process made, however old (the cluster changed, not Git).
    pub(crate) fn any_fetch(&self) -> Instant {
        self.parts.desired.clock().any()
    }

    /// How old a fetch a routine reconcile may reuse.
    pub(crate) fn fetch_reuse(&self) -> Duration {
        self.fetch_reuse
    }

    /// Compares the application at its current revision with the cluster: a server-side dry-run
    /// of every object, normalised, plus what would be pruned. Changes nothing.
    pub async fn compare(&self, name: &str) -> Result<AppComparison, CompareError> {
        let (comparison, _) = self
            .compared(name, self.fetched_since(Duration::ZERO), true)
            .await
            .map_err(CompareError::of(name))?;
        Ok(comparison)
    }

    /// What a controller needs to decide: like [`Engine::compare`] with a fetch that started
    /// at `fetched_since` or later, but objects missing from the cluster are shown as declared
    /// (no server-side dry-run for their defaults), and what was read is kept for
    /// [`Engine::sync_prepared`] right after.
    pub(crate) async fn compare_for_sync(
        &self,
        name: &str,
        fetched_since: Instant,
    ) -> Result<(AppComparison, Prepared), CompareError> {
        self.compared(name, fetched_since, false)
            .await
            .map_err(CompareError::of(name))
    }

    async fn compared(
        &self,
        name: &str,
        fetched_since: Instant,
        dry_run_missing: bool,
    ) -> Result<(AppComparison, Prepared), Failure> {
        let app = self.found(name).await?;
        let desired = self
            .parts
            .desired
            .state(self.parts.context(), &app, None, fetched_since)
            .await?;
        let options = compare::Options {
            dry_run_missing,
            record: true,
            also_prunable: std::collections::BTreeMap::new(),
        };
        compare::compare(&self.parts, &app, desired, options).await
    }

    /// Renders the application (at `revision`, or its pinned or configured revision) without
    /// changing anything. Needs the cluster for discovery (namespaces, CRD scopes).
    pub async fn render(&self, name: &str, revision: Option<&str>) -> Result<RenderedApp, RenderError> {
        let rendered = async {
            let app = self.found(name).await?;
            let desired = self
                .parts
                .desired
                .state(
                    self.parts.context(),
                    &app,
                    revision,
                    self.fetched_since(Duration::ZERO),
                )
                .await?;
            let redaction = self.parts.redaction();
            Ok::<_, Failure>(RenderedApp {
                application: app.name.clone(),
                revision: desired.commit.to_string(),
                renderer: desired.renderer,
                manifests: desired
                    .objects
                    .iter()
                    .map(|(object, _)| redact(&object.reference, &object.manifest, &redaction))
                    .collect(),
            })
        };
        rendered.await.map_err(RenderError::of(name))
    }

    /// Syncs the application. Fetch, render or resolve errors fail the sync before anything is
    /// applied or deleted; a failed object fails the sync (later waves are skipped, nothing is
    /// pruned) while the report still lists every object's outcome.
    pub async fn sync(&self, name: &str, options: SyncOptions) -> Result<SyncReport, SyncError> {
        async {
            let app = self.found(name).await?;
            sync::sync(&self.parts, &app, options, None).await
        }
        .await
        .map_err(SyncError::of(name))
    }

    /// [`Engine::sync`] from what [`Engine::compare_for_sync`] just rendered and read (at the
    /// pinned or configured revision; `options.revision` is ignored).
    pub async fn sync_prepared(
        &self,
        name: &str,
        options: SyncOptions,
        prepared: Prepared,
    ) -> Result<SyncReport, SyncError> {
        async {
            let app = self.found(name).await?;
            sync::sync(&self.parts, &app, options, Some(prepared)).await
        }
        .await
        .map_err(SyncError::of(name))
    }

    /// Syncs an earlier revision that was once synced successfully, then pins the application
    /// there: automated syncs stop until [`Engine::unpin`].
    pub async fn rollback(
        &self,
        name: &str,
        revision: &str,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        async {
            let app = self.parts.catalog.application(name)?;
            admin::rollback(&self.parts, &app, revision, options).await
        }
        .await
        .map_err(SyncError::of(name))
    }

    /// Stops automated syncs of the application (it is still compared and reported, and manual
    /// syncs still work) until [`Engine::resume`]; `false` if it already was suspended.
    pub fn suspend(&self, name: &str) -> Result<bool, AdminError> {
        self.admin(name, admin::suspend)
    }

    /// Lets automated syncs of the application run again; `false` if it was not suspended.
    pub fn resume(&self, name: &str) -> Result<bool, AdminError> {
        self.admin(name, admin::resume)
    }

    /// Pins the application at the revision its last successful sync applied (what the cluster
    /// runs): new commits are not deployed until [`Engine::unpin`]. Returns that revision.
    pub fn pin(&self, name: &str) -> Result<String, AdminError> {
        self.admin(name, admin::pin)
    }

    /// Lets the application follow its configured revision again; `false` if it was not pinned.
    pub fn unpin(&self, name: &str) -> Result<bool, AdminError> {
        self.admin(name, admin::unpin)
    }

    fn admin<T>(
        &self,
        name: &str,
        operation: fn(&Parts, &Application) -> Result<T, Failure>,
    ) -> Result<T, AdminError> {
        let app = self
            .parts
            .catalog
            .application(name)
            .map_err(AdminError::of(name))?;
        operation(&self.parts, &app).map_err(AdminError::of(name))
    }

    /// What the cluster made from the application's workloads (ReplicaSets and Pods), for the
    /// resource tree.
    pub async fn resource_tree(
        &self,
        name: &str,
    ) -> Result<Vec<driftless_core::tree::ChildObject>, TreeError> {
        async {
            let app = self.found(name).await?;
            tree::resource_tree(&self.parts, &app).await
        }
        .await
        .map_err(TreeError::of(name))
    }

    /// Whether any application's source is the checkout.
    #[must_use]
    pub fn serves_checkout(&self, checkout: Option<(&str, &[String])>) -> bool {
        preview::serves_checkout(&self.parts, checkout)
    }

    /// The plan of every application `base` → `head` can affect (`driftless plan`). An
    /// application that cannot be rendered on either side gets its error in its plan; the
    /// others are planned all the same.
    pub async fn plan(
        &self,
        base: &str,
        head: &str,
        options: PlanOptions<'_>,
    ) -> Vec<driftless_core::preview::ApplicationPlan> {
        preview::plan(&self.parts, base, head, options).await
    }

    /// Records an event of the application; a store failure only loses the event.
    pub(crate) fn record_event(&self, name: &str, event: &driftless_store::EventRecord) {
        if event.kind == driftless_store::EventKind::DriftDetected {
            self.parts.metrics.drift_events.inc();
        }
        if let Err(err) = self.parts.store.record_event(name, event) {
            tracing::warn!(application = name, error = %err, "cannot record an event");
        }
    }
}
