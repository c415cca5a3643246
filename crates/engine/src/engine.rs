use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use driftless_config::Config;
use driftless_core::application::Application;
use driftless_core::diff::{ObjectDiff, compare as compare_object};
use driftless_core::fingerprint::last_other_manager;
use driftless_core::health::{self, Health};
use driftless_core::{DesiredObject, ObjectRef, SyncState};
use driftless_files::ReadLimits;
use driftless_git::Mirrors;
use driftless_kube::{ApplyOptions, ConnectOptions, Discovery, FIELD_MANAGER, ObjectError, Objects, connect};
use driftless_render::RenderLimits;
use driftless_store::Store;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::desired::{DesiredState, RenderCache};
use crate::live::LiveSnapshot;
use crate::registry::Registry;
use crate::signatures::VerdictCache;
use crate::watch::{LiveCache, LiveChange};
use crate::{EngineError, applied};

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
    /// Requests for single objects and lists (reads and writes; not watches or discovery) made
    /// to every cluster.
    pub api_requests: u64,
}

/// A connected cluster: one client, its discovery cache and object operations.
#[derive(Clone)]
pub(crate) struct ClusterHandle {
    /// The cluster's name in the configuration.
    pub name: String,
    pub discovery: Arc<Discovery>,
    pub objects: Objects,
}

pub struct Engine {
    pub(crate) config: Config,
    pub(crate) mirrors: Mirrors,
    pub(crate) store: Arc<Store>,
    pub(crate) options: EngineOptions,
    clusters: Mutex<HashMap<String, ClusterHandle>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) render_cache: RenderCache,
    /// From the configuration's `limits:`.
    pub(crate) render_limits: RenderLimits,
    /// The configuration's policy rules, compiled once.
    pub(crate) policies: driftless_policy::Policies,
    /// Chart repositories and registries, their indexes and archives (kept under the data
    /// directory), shared by every application.
    pub(crate) charts: driftless_charts::Charts,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) verdicts: VerdictCache,
    /// Watches of live objects; only `driftless serve` starts them ([`Engine::watch_live`]).
    pub(crate) live_cache: std::sync::OnceLock<LiveCache>,
    /// Salts the hashes that stand in for Secret values in diffs; new per process.
    pub(crate) redaction_salt: [u8; 16],
    /// Every fetch this engine made started after this: "any fetch will do" means "since then".
    pub(crate) created: std::time::Instant,
}

/// One object's state in a comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectStatus {
    pub object: ObjectRef,
    pub diff: ObjectDiff,
    pub health: Health,
    /// For an object that differs from Git: the field manager that changed it last, other than
    /// driftless (from managedFields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
}

/// How [`Engine::compare_desired`] compares.
pub(crate) struct CompareOptions {
    /// Dry-run objects missing from the cluster too (for their defaults), not only changed ones.
    pub dry_run_missing: bool,
    /// Record objects found in sync, so that the next comparison need not dry-run them; a plan
    /// of a proposed change records nothing.
    pub record: bool,
    /// Objects besides the inventory that may be pruned when they are live and this
    /// application's own (a plan's objects removed between base and head), with the version
    /// to read them as.
    pub also_prunable: BTreeMap<ObjectRef, String>,
}

/// What a comparison rendered and read, handed to the sync that follows it so that it neither
/// renders nor reads again.
pub struct Prepared {
    pub(crate) desired: DesiredState,
    pub(crate) live: LiveSnapshot,
}

/// An application compared with its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppComparison {
    pub application: String,
    pub revision: String,
    pub sync: SyncState,
    pub health: Health,
    pub objects: Vec<ObjectStatus>,
    /// Objects this application applied before that left Git and are still its own.
    pub to_prune: Vec<ObjectRef>,
}

impl ObjectStatus {
    fn of(object: &DesiredObject, live: Option<&serde_json::Value>, diff: ObjectDiff) -> Self {
        let health = live.map_or_else(Health::missing, |live| {
            health::assess(&object.reference.group, &object.reference.kind, live)
        });
        let changed_by = live
            .filter(|_| !diff.is_in_sync())
            .and_then(|live| last_other_manager(live, FIELD_MANAGER));
        Self {
            object: object.reference.clone(),
            diff,
            health,
            changed_by,
        }
    }
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
    pub fn new(config: Config, options: EngineOptions) -> Result<Self, EngineError> {
        if !options.data_dir.as_os_str().is_empty() {
            driftless_store::private_directory(&options.data_dir)?;
        }
        let store = Store::open(&options.data_dir.join("driftless.db"))?;
        let registry = Arc::new(Registry::new(&config.applications));
        let limits = config.limits;
        let read_limits = ReadLimits {
            max_files: limits.max_files,
            max_bytes: limits.max_repository_bytes,
        };
        let mirrors =
            Mirrors::new(options.data_dir.join("git"), config.repositories.clone()).with_limits(read_limits);
        let render_limits = RenderLimits {
            max_documents: limits.max_documents,
            max_file_bytes: limits.max_file_bytes,
            timeout: limits.render_timeout,
            materialize: read_limits,
            ..RenderLimits::default()
        };
        let charts = driftless_charts::Charts::new(
            Some(options.data_dir.join("charts")),
            config.repositories.clone(),
            driftless_charts::ChartLimits {
                timeout: limits.render_timeout,
                ..driftless_charts::ChartLimits::default()
            },
        );
        let policies = driftless_policy::Policies::new(config.policy.clone())
            .map_err(|err| EngineError::InvalidPolicy(err.to_string()))?;
        Ok(Self {
            policies,
            metrics: crate::metrics::Metrics::default(),
            charts,
            render_limits,
            created: std::time::Instant::now(),
            config,
            mirrors,
            store: Arc::new(store),
            options,
            clusters: Mutex::new(HashMap::new()),
            registry,
            render_cache: RenderCache::default(),
            verdicts: VerdictCache::default(),
            live_cache: std::sync::OnceLock::new(),
            redaction_salt: random_salt(),
        })
    }

    #[must_use]
    /// How this engine shows values that must not be shown.
    pub(crate) fn redaction(&self) -> driftless_core::diff::Redaction<'_> {
        driftless_core::diff::Redaction {
            salt: &self.redaction_salt,
            sensitive: &self.config.redaction,
        }
    }

    /// The process's Prometheus metrics.
    #[must_use]
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts keeping a watch-based cache of live objects (one watch per kind in use, started as
    /// applications are compared) and returns the stream of changes the watches see. `None` when
    /// already started.
    pub fn watch_live(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<LiveChange>> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        self.live_cache
            .set(LiveCache::new(Arc::clone(&self.registry), sender))
            .ok()?;
        Some(receiver)
    }

    pub async fn stats(&self) -> EngineStats {
        let api_requests = self
            .clusters
            .lock()
            .await
            .values()
            .map(|cluster| cluster.objects.request_count())
            .sum();
        EngineStats {
            renders: self.render_cache.renders.load(Ordering::Relaxed),
            fetches: self.mirrors.fetch_count(),
            api_requests,
        }
    }

    /// A known application: from the configuration, or declared by a root application that has
    /// been rendered (see [`Engine::discover`]).
    pub fn application(&self, name: &str) -> Result<Arc<Application>, EngineError> {
        self.registry
            .get(name)
            .ok_or_else(|| EngineError::UnknownApplication(name.to_owned()))
    }

    /// Every known application's name.
    #[must_use]
    pub fn application_names(&self) -> Vec<String> {
        self.registry.names()
    }

    /// Like [`Engine::application`], rendering root applications first when the name is not
    /// known yet (it may be declared by one).
    pub async fn find_application(&self, name: &str) -> Result<Arc<Application>, EngineError> {
        if let Some(app) = self.registry.get(name) {
            return Ok(app);
        }
        self.discover().await;
        self.application(name)
    }

    /// Renders every application not rendered yet, so applications declared by roots (at any
    /// depth) become known. Render errors are left for the application's own reconcile to report.
    pub async fn discover(&self) {
        let mut rendered = BTreeSet::new();
        loop {
            let pending: Vec<String> = self
                .registry
                .names()
                .into_iter()
                .filter(|name| !rendered.contains(name))
                .collect();
            if pending.is_empty() {
                return;
            }
            for name in pending {
                if let Some(app) = self.registry.get(&name) {
                    let _ = self
                        .desired_state(&app, None, self.fetched_since(self.options.fetch_reuse))
                        .await;
                }
                rendered.insert(name);
            }
        }
    }

    pub(crate) async fn cluster(&self, name: &str) -> Result<ClusterHandle, EngineError> {
        let mut clusters = self.clusters.lock().await;
        if let Some(handle) = clusters.get(name) {
            return Ok(handle.clone());
        }
        let cluster = self
            .config
            .clusters
            .iter()
            .find(|cluster| cluster.name == name)
            .ok_or_else(|| EngineError::UnknownCluster(name.to_owned()))?;
        let client = connect(cluster, self.options.connect).await?;
        let handle = ClusterHandle {
            name: name.to_owned(),
            discovery: Arc::new(Discovery::new(client.clone())),
            objects: Objects::new(client),
        };
        clusters.insert(name.to_owned(), handle.clone());
        Ok(handle)
    }

    /// Compares the application at its current revision with the cluster: a server-side dry-run
    /// of every object, normalised, plus what would be pruned. Changes nothing.
    pub async fn compare(&self, name: &str) -> Result<AppComparison, EngineError> {
        let (comparison, _) = self
            .compare_inner(name, self.fetched_since(Duration::ZERO), true)
            .await?;
        Ok(comparison)
    }

    /// What a controller needs to decide: like [`Engine::compare`] with a fetch that started
    /// at `fetched_since` or later, but objects missing from the cluster are shown as declared
    /// (no server-side dry-run for their defaults), and what was read is kept for
    /// [`Engine::sync_prepared`] right after.
    pub(crate) async fn compare_for_sync(
        &self,
        name: &str,
        fetched_since: std::time::Instant,
    ) -> Result<(AppComparison, Prepared), EngineError> {
        self.compare_inner(name, fetched_since, false).await
    }

    async fn compare_inner(
        &self,
        name: &str,
        fetched_since: std::time::Instant,
        dry_run_missing: bool,
    ) -> Result<(AppComparison, Prepared), EngineError> {
        let app = self.find_application(name).await?;
        let desired = self.desired_state(&app, None, fetched_since).await?;
        let options = CompareOptions {
            dry_run_missing,
            record: true,
            also_prunable: BTreeMap::new(),
        };
        self.compare_desired(&app, desired, options).await
    }

    /// Compares `desired` (rendered by the caller) with the cluster.
    pub(crate) async fn compare_desired(
        &self,
        app: &Application,
        desired: DesiredState,
        options: CompareOptions,
    ) -> Result<(AppComparison, Prepared), EngineError> {
        let CompareOptions {
            dry_run_missing,
            record,
            also_prunable,
        } = options;
        // Not even a dry-run of an object the project refuses.
        self.refuse_objects(app, &desired)?;
        let cluster = self.cluster(&app.destination.cluster).await?;
        let mut inventory = self.store.inventory(&app.name)?;
        for (reference, version) in also_prunable {
            inventory.entry(reference).or_insert(version);
        }
        let recorded = self.store.applied(&app.name)?;
        let live = self
            .live_snapshot(app, &cluster, &desired, &inventory, &recorded)
            .await?;
        let mut newly_in_sync = BTreeMap::new();
        let mut objects = Vec::with_capacity(desired.objects.len());
        for (object, resolved) in desired.objects.iter() {
            if let Some(cached) = live.unchanged(&object.reference) {
                objects.push(ObjectStatus {
                    object: object.reference.clone(),
                    diff: ObjectDiff::Unchanged,
                    health: cached.health.clone(),
                    changed_by: None,
                });
                continue;
            }
            let live_object = live.get(&object.reference);
            // A hook deleted once it ran (its policy) is not missing.
            if live_object.is_none()
                && driftless_core::plan::hook_delete_policy(object)
                    .is_some_and(driftless_core::plan::HookDeletePolicy::deleted_after_run)
            {
                objects.push(ObjectStatus {
                    object: object.reference.clone(),
                    diff: ObjectDiff::Unchanged,
                    health: Health::new(
                        driftless_core::HealthState::Healthy,
                        "hook: deleted after it ran, as its hook-delete-policy says",
                    ),
                    changed_by: None,
                });
                continue;
            }
            // Brought in sync from this manifest and untouched since: no dry-run needed.
            let diff = if live.read_unchanged(&recorded, app, object) {
                if let Some(state) = live.refreshed(&recorded, app, object) {
                    newly_in_sync.insert(object.reference.clone(), Some(state));
                }
                ObjectDiff::Unchanged
            } else if live_object.is_none() && !dry_run_missing {
                compare_object(
                    &object.reference,
                    None,
                    &object.manifest,
                    &app.ignore_differences,
                    &self.redaction(),
                )
            } else {
                let would_be = self.would_be(app, &cluster, object, resolved).await?;
                let diff = compare_object(
                    &object.reference,
                    live_object,
                    &would_be,
                    &app.ignore_differences,
                    &self.redaction(),
                );
                if diff.is_in_sync()
                    && let Some(state) = live_object.and_then(|live| applied::state_of(app, object, live))
                {
                    newly_in_sync.insert(object.reference.clone(), Some(state));
                }
                diff
            };
            objects.push(ObjectStatus::of(object, live_object, diff));
        }
        if record && !newly_in_sync.is_empty() {
            self.store.update_applied(&app.name, &newly_in_sync)?;
        }
        let to_prune = self.prune_candidates(app, &desired, inventory, &live)?;
        let in_sync = objects.iter().all(|status| status.diff.is_in_sync()) && to_prune.is_empty();
        let health = health::worst(objects.iter().map(|status| &status.health));
        let comparison = AppComparison {
            application: app.name.clone(),
            revision: desired.commit.to_string(),
            sync: if in_sync {
                SyncState::Synced
            } else {
                SyncState::OutOfSync
            },
            health,
            objects,
            to_prune,
        };
        Ok((comparison, Prepared { desired, live }))
    }

    /// What the server says the object would become once applied (a server-side dry-run).
    async fn would_be(
        &self,
        app: &Application,
        cluster: &ClusterHandle,
        object: &DesiredObject,
        resolved: &driftless_kube::Resolved,
    ) -> Result<serde_json::Value, EngineError> {
        let dry_run = ApplyOptions {
            dry_run: true,
            force: true,
        };
        match cluster.objects.apply(&resolved.resource, object, dry_run).await {
            Ok(would_be) => Ok(would_be),
            // A changed hook is deleted and created anew, so an apply the server refuses (a
            // Job's immutable template) is no error: it differs from what Git has.
            Err(ObjectError::Rejected { code: 422, .. })
                if driftless_core::plan::hook_delete_policy(object).is_some_and(|p| p.before_creation) =>
            {
                Ok(object.manifest.clone())
            }
            Err(source) => Err(EngineError::Cluster {
                application: app.name.clone(),
                source: Box::new(source),
            }),
        }
    }

    /// Objects this application applied before that left Git, are still its own, and that its
    /// project lets it delete.
    fn prune_candidates(
        &self,
        app: &Application,
        desired: &DesiredState,
        inventory: BTreeMap<ObjectRef, String>,
        live: &LiveSnapshot,
    ) -> Result<Vec<ObjectRef>, EngineError> {
        let project = self.project_of(app)?;
        let declared: BTreeSet<&ObjectRef> = desired.objects.iter().map(|(o, _)| &o.reference).collect();
        Ok(inventory
            .into_keys()
            .filter(|reference| !declared.contains(reference))
            .filter(|reference| {
                live.ownership_of(reference)
                    .is_some_and(|ownership| ownership.owner.as_deref() == Some(app.name.as_str()))
            })
            .filter(|reference| crate::projects::prune_refused(project, app, reference).is_none())
            .collect())
    }

    /// The API resource for an object known by reference and the version it was applied as;
    /// `None` when the server no longer serves that kind (its CRD is gone).
    pub(crate) async fn resource_for(
        &self,
        app: &Application,
        cluster: &ClusterHandle,
        reference: &ObjectRef,
        version: &str,
    ) -> Result<Option<kube::core::ApiResource>, EngineError> {
        let gvk = driftless_core::GroupVersionKind {
            group: reference.group.clone(),
            version: version.to_owned(),
            kind: reference.kind.clone(),
        };
        let found = cluster
            .discovery
            .lookup(&gvk)
            .await
            .map_err(|source| EngineError::Discovery {
                application: app.name.clone(),
                source: Box::new(source),
            })?;
        Ok(found.map(|resolved| resolved.resource))
    }
}

/// Every object of a built-in kind (`group/v1`) in `namespace`, tagged with its group and kind.
async fn list_builtin(
    cluster: &ClusterHandle,
    application: &str,
    (group, kind): (&str, &str),
    namespace: Option<&str>,
) -> Result<Vec<(String, String, serde_json::Value)>, EngineError> {
    let gvk = driftless_core::GroupVersionKind {
        group: group.to_owned(),
        version: "v1".to_owned(),
        kind: kind.to_owned(),
    };
    let resource = driftless_kube::builtin(&gvk)
        .expect("the tree lists only built-in kinds")
        .resource;
    let found = cluster
        .objects
        .list(&resource, namespace, "")
        .await
        .map_err(|source| EngineError::Cluster {
            application: application.to_owned(),
            source: Box::new(source),
        })?;
    Ok(found
        .into_iter()
        .map(|object| (group.to_owned(), kind.to_owned(), object))
        .collect())
}

impl Engine {
    /// What the cluster made from the application's workloads (ReplicaSets and Pods), for the
    /// resource tree. From the inventory of what it applied, so nothing is rendered; one LIST per
    /// kind and namespace involved, and none for an application without workloads.
    pub async fn resource_tree(
        &self,
        name: &str,
    ) -> Result<Vec<driftless_core::tree::ChildObject>, EngineError> {
        use driftless_core::tree::{CHILDREN, OWNERS};
        let app = self.find_application(name).await?;
        let inventory = self.store.inventory(&app.name)?;
        let owners: Vec<&ObjectRef> = inventory
            .keys()
            .filter(|object| OWNERS.contains(&(object.group.as_str(), object.kind.as_str())))
            .collect();
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let cluster = self.cluster(&app.destination.cluster).await?;
        let namespaces: BTreeSet<Option<&str>> =
            owners.iter().map(|object| object.namespace.as_deref()).collect();
        let (mut roots, mut candidates) = (Vec::new(), Vec::new());
        for namespace in namespaces {
            for (group, kind) in OWNERS {
                let declared = |name: &str| {
                    owners
                        .iter()
                        .any(|o| o.kind == kind && o.namespace.as_deref() == namespace && o.name == name)
                };
                if owners
                    .iter()
                    .any(|o| o.kind == kind && o.namespace.as_deref() == namespace)
                {
                    let listed = list_builtin(&cluster, &app.name, (group, kind), namespace).await?;
                    roots.extend(listed.into_iter().filter(|(_, _, object)| {
                        object
                            .pointer("/metadata/name")
                            .and_then(serde_json::Value::as_str)
                            .is_some_and(declared)
                    }));
                }
            }
            for child in CHILDREN {
                candidates.extend(list_builtin(&cluster, &app.name, child, namespace).await?);
            }
        }
        Ok(driftless_core::tree::children(&roots, &candidates))
    }
}
