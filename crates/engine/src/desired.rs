//! From an application to its desired objects at a commit.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use driftless_core::application::{Application, Renderer};
use driftless_core::diff::redact;
use driftless_core::plan::mark_owned;
use driftless_core::{DesiredObject, SourceLocation};
use driftless_git::CommitId;
use driftless_kube::{Resolved, resolve_desired};
use serde_json::json;

use crate::locks::lock;
use crate::sync::{millis, now_millis};
use crate::{Engine, EngineError};

/// How long a render kept in the store is reused for the same commit and application (Argo CD's
/// repository cache keeps generated manifests as long): discovery answers that changed without
/// a new commit (a CRD's scope) are picked up within a day at worst.
const KEPT_RENDER_LIFETIME: Duration = Duration::from_hours(24);

/// A render as kept in the store: renderer, paths read, and each object with how it resolved.
type KeptRender = (
    String,
    Option<BTreeSet<String>>,
    Vec<(DesiredObject, kube::core::ApiResource, bool)>,
    RenderContext,
);

/// An application's desired state at one commit.
#[derive(Clone)]
pub(crate) struct DesiredState {
    pub commit: CommitId,
    pub objects: Arc<Vec<(DesiredObject, Resolved)>>,
    pub renderer: &'static str,
    pub context: Arc<RenderContext>,
}

/// What a render depended on besides the commit and the application: for a chart, the
/// cluster's capabilities and the digests of the charts pulled from chart repositories. A kept
/// render is reused only while they are the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RenderContext {
    /// A digest of the `.Capabilities` the chart was rendered with.
    pub capabilities: Option<String>,
    pub charts: Vec<(driftless_render::ChartRef, String)>,
}

fn capabilities_digest(capabilities: &driftless_kube::Capabilities) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(&capabilities.kube_version);
    for api in &capabilities.api_versions {
        hasher.update(b"\n");
        hasher.update(api);
    }
    format!("{:x}", hasher.finalize())
}

/// The last render of each application, kept so that a commit which does not touch what the
/// render read costs no render (incremental monorepos).
#[derive(Default)]
pub(crate) struct RenderCache {
    entries: std::sync::Mutex<HashMap<String, CachedRender>>,
    /// Paths changed between two commits of a repository, shared by its applications.
    changes: std::sync::Mutex<HashMap<CommitPair, Arc<Vec<String>>>>,
    pub(crate) renders: std::sync::atomic::AtomicU64,
}

/// A repository URL and two of its commits.
type CommitPair = (String, CommitId, CommitId);

struct CachedRender {
    /// The application as it was rendered: a changed source or destination means a new render.
    app: Application,
    desired: DesiredState,
    /// Repository paths the render read; `None`: possibly anything.
    inputs: Option<Arc<BTreeSet<String>>>,
}

/// Past this many commit pairs the change cache starts over (pairs are only needed briefly).
const CHANGE_CACHE_LIMIT: usize = 256;

impl RenderCache {
    fn get(&self, app: &Application) -> Option<(DesiredState, Option<Arc<BTreeSet<String>>>)> {
        let entries = lock(&self.entries);
        let cached = entries.get(&app.name).filter(|cached| cached.app == *app)?;
        Some((cached.desired.clone(), cached.inputs.clone()))
    }

    fn put(&self, app: &Application, desired: &DesiredState, inputs: Option<Arc<BTreeSet<String>>>) {
        lock(&self.entries).insert(
            app.name.clone(),
            CachedRender {
                app: app.clone(),
                desired: desired.clone(),
                inputs,
            },
        );
    }

    /// Forgets applications that are no longer declared.
    fn forget(&self, names: &[String]) {
        let mut entries = lock(&self.entries);
        for name in names {
            entries.remove(name);
        }
    }
}

/// Whether a change to `changed` may alter what `app` renders: any path its render read, or any
/// path under its own directory (a new file there is read next time) — except for a chart from a
/// chart repository, which reads nothing from Git but its values files.
pub(crate) fn touches(app: &Application, inputs: Option<&BTreeSet<String>>, changed: &[String]) -> bool {
    let Some(inputs) = inputs else {
        return true;
    };
    if matches!(&app.source.renderer, Renderer::Helm(options) if options.chart.is_some()) {
        return changed.iter().any(|path| inputs.contains(path));
    }
    let own = app.source.path.trim_matches('/');
    changed.iter().any(|path| {
        inputs.contains(path)
            || own.is_empty()
            || path
                .strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// What of the repository a render reads: all of it for renderers that may reach outside the
/// application's path (Kustomize bases, chart dependencies), else only that path.
pub(crate) fn render_scope(app: &Application) -> &str {
    if driftless_render::needs_whole_repository(&app.source) {
        ""
    } else {
        app.source.path.as_str()
    }
}

/// The Namespace `CreateNamespace=true` asks for, unless the source declares it.
pub(crate) fn add_created_namespace(
    app: &Application,
    manifests: &mut Vec<(serde_json::Value, SourceLocation)>,
) {
    if app.sync_policy.create_namespace
        && let Some(namespace) = &app.destination.namespace
    {
        let declared = manifests.iter().any(|(manifest, _)| {
            manifest["kind"] == "Namespace"
                && manifest["apiVersion"] == "v1"
                && manifest["metadata"]["name"] == namespace.as_str()
        });
        if !declared {
            let source = SourceLocation {
                file: "syncOptions: CreateNamespace=true".into(),
                document: 0,
                line: None,
            };
            manifests.push((
                json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace } }),
                source,
            ));
        }
    }
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

/// An `Application` for driftless itself (app-of-apps), not an object for the cluster.
pub(crate) fn is_application(manifest: &serde_json::Value) -> bool {
    manifest["apiVersion"] == driftless_config::API_VERSION
        && manifest["kind"] == driftless_config::APPLICATION_KIND
}

impl Engine {
    /// Validates the Applications a root declares (exactly as `driftless.yaml` is validated) and
    /// makes them the root's children. A validation problem fails the root's render, and the
    /// previous children stay as they were; a child whose name is not free (see
    /// `Registry::set_children`) is left out alone, reported as the root's error, while its
    /// siblings are registered.
    fn register_children(
        &self,
        root: &Application,
        children: Vec<(serde_json::Value, SourceLocation)>,
    ) -> Result<(), EngineError> {
        let valid = self.child_applications(root, children)?;
        let patterns = self.application_patterns()?;
        let claims = self.store.declared_names()?;
        let (dropped, refused, declared) = self.registry.set_children(&root.name, valid, &patterns, &claims);
        self.store.set_declared_names(&root.name, &declared)?;
        self.render_cache.forget(&dropped);
        if refused.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Children {
                application: root.name.clone(),
                problems: refused.iter().map(ToString::to_string).collect(),
            })
        }
    }

    /// The application-name globs that mark out a team's applications: those of scoped API
    /// tokens and of notification subscriptions. A Git-declared child may not enter them.
    fn application_patterns(&self) -> Result<Vec<String>, EngineError> {
        let mut patterns: Vec<String> = self
            .config
            .notifications
            .subscriptions
            .iter()
            .flat_map(|subscription| subscription.applications.iter().cloned())
            .collect();
        patterns.extend(
            self.store
                .tokens()?
                .into_iter()
                .flat_map(|token| token.grant.applications),
        );
        patterns.sort();
        patterns.dedup();
        Ok(patterns)
    }

    /// The Application manifests a root renders, validated and given the root's project (a
    /// plan reads them without registering them). Any problem fails them all.
    pub(crate) fn child_applications(
        &self,
        root: &Application,
        children: Vec<(serde_json::Value, SourceLocation)>,
    ) -> Result<Vec<Application>, EngineError> {
        let clusters: Vec<String> = self
            .config
            .clusters
            .iter()
            .map(|cluster| cluster.name.clone())
            .collect();
        let mut valid = Vec::new();
        let mut problems = Vec::new();
        for (manifest, source) in children {
            match driftless_config::application_from_manifest(&manifest, &source.to_string(), &clusters) {
                Ok(mut child) => match self.child_project(root, &child) {
                    Ok(project) => {
                        child.project = project;
                        valid.push(child);
                    }
                    Err(message) => problems.push(format!("{source}: spec.project: {message}")),
                },
                Err(err) => problems.extend(err.problems.iter().map(ToString::to_string)),
            }
        }
        if problems.is_empty() {
            Ok(valid)
        } else {
            Err(EngineError::Children {
                application: root.name.clone(),
                problems,
            })
        }
    }

    /// Renders the application (at `revision`, or its pinned or configured revision) without
    /// changing anything. Needs the cluster for discovery (namespaces, CRD scopes).
    pub async fn render(&self, name: &str, revision: Option<&str>) -> Result<RenderedApp, EngineError> {
        let app = self.find_application(name).await?;
        let desired = self
            .desired_state(&app, revision, self.fetched_since(Duration::ZERO))
            .await?;
        Ok(RenderedApp {
            application: app.name.clone(),
            revision: desired.commit.to_string(),
            renderer: desired.renderer,
            manifests: desired
                .objects
                .iter()
                .map(|(object, _)| redact(&object.reference, &object.manifest, &self.redaction()))
                .collect(),
        })
    }

    /// Fetches the application's repository (or uses a fetch that started at `fetched_since` or
    /// later),
    /// resolves `revision` (default: the pinned revision, else the configured one), renders, and
    /// gives every object its identity and ownership label. The render is skipped when the last
    /// one is at this commit, or at a commit that differs only in paths the render did not read.
    #[tracing::instrument(level = "debug", skip_all, fields(application = %app.name))]
    pub(crate) async fn desired_state(
        &self,
        app: &Application,
        revision: Option<&str>,
        fetched_since: Instant,
    ) -> Result<DesiredState, EngineError> {
        self.check_project(app)?;
        let git_error = |source| EngineError::Git {
            application: app.name.clone(),
            source: Box::new(source),
        };
        let pinned = self.store.pinned(&app.name)?;
        let revision = revision.or(pinned.as_deref()).unwrap_or(&app.source.revision);
        let url = &app.source.repo_url;
        let started = Instant::now();
        let fetched = self
            .mirrors
            .fetch_since_and_resolve(url, revision, fetched_since)
            .await;
        self.metrics
            .fetch_seconds
            .observe(started.elapsed().as_secs_f64());
        if fetched.is_err() {
            self.metrics.fetch_errors.inc();
        }
        let commit = fetched.map_err(git_error)?;
        self.check_signatures(app, &commit).await?;
        let known = self.render_cache.get(app).or_else(|| self.kept_render(app));
        let known = match known {
            Some((cached, inputs)) if self.context_holds(app, &cached.context).await => {
                Some((cached, inputs))
            }
            _ => None,
        };
        if let Some((cached, inputs)) = known {
            if cached.commit == commit {
                return Ok(cached);
            }
            let changed = self
                .changed_paths(url, &cached.commit, &commit)
                .await
                .map_err(git_error)?;
            if !touches(app, inputs.as_deref(), &changed) {
                let desired = DesiredState { commit, ..cached };
                self.move_kept_render(app, &desired.commit);
                self.render_cache.put(app, &desired, inputs);
                return Ok(desired);
            }
        }
        self.render_cache.renders.fetch_add(1, Ordering::Relaxed);
        let tree = self
            .mirrors
            .read_tree(url, &commit, render_scope(app))
            .await
            .map_err(git_error)?;
        let cluster = self.cluster(&app.destination.cluster).await?;
        let (rendered, capabilities) = self.render_tree(app, &tree, Some(&cluster)).await?;
        let context = Arc::new(RenderContext {
            capabilities,
            charts: rendered.charts.clone(),
        });
        let inputs = rendered.inputs.map(Arc::new);
        let (children, mut manifests): (Vec<_>, Vec<_>) = rendered
            .manifests
            .into_iter()
            .map(|m| (m.manifest, m.source))
            .partition(|(manifest, _)| is_application(manifest));
        // A root's render also registers its children, which a kept render would skip; and
        // plaintext from SOPS files is kept nowhere beyond the apply, not even in memory.
        let cacheable = !rendered.decrypted;
        let keepable = children.is_empty() && cacheable;
        drop(rendered.charts);
        self.register_children(app, children)?;
        add_created_namespace(app, &mut manifests);
        let mut objects = resolve_desired(
            manifests,
            app.destination.namespace.as_deref(),
            &cluster.discovery,
        )
        .await
        .map_err(|source| EngineError::Resolve {
            application: app.name.clone(),
            source: Box::new(source),
        })?;
        for (object, _) in &mut objects {
            mark_owned(object, &app.name);
        }
        let desired = DesiredState {
            commit,
            objects: Arc::new(objects),
            renderer: rendered.renderer,
            context,
        };
        self.keep_render(app, &desired, inputs.as_deref(), keepable);
        if cacheable {
            self.render_cache.put(app, &desired, inputs);
        } else {
            self.render_cache.forget(std::slice::from_ref(&app.name));
        }
        Ok(desired)
    }

    /// Renders `tree` for `app` with its decryption keys and, for charts, the cluster's
    /// capabilities (returned as a digest) and the chart repositories its project allows.
    /// Without a cluster (an offline plan): no keys kept in Secrets, Helm's default capabilities.
    pub(crate) async fn render_tree(
        &self,
        app: &Application,
        tree: &driftless_files::FileTree,
        cluster: Option<&crate::engine::ClusterHandle>,
    ) -> Result<(driftless_render::Rendered, Option<String>), EngineError> {
        // An entry left out of the tree (unsafe name, link loop) refuses the application whose
        // path holds it; elsewhere in the repository it only goes missing.
        tree.check_under(&app.source.path)
            .map_err(|source| EngineError::Render {
                application: app.name.clone(),
                source: Box::new(source.into()),
            })?;
        let keys = crate::decryption::load_keys(app, cluster).await?;
        let capabilities = match cluster {
            Some(cluster) => self.capabilities_of(app, cluster).await?,
            None => None,
        };
        let allowed = |url: &str| self.check_chart_repository(app, url);
        // The project also vets every archive URL an index names.
        let charts = self.charts.for_project(self.project_of(app)?);
        let target = driftless_render::RenderTarget {
            application: &app.name,
            namespace: app.destination.namespace.as_deref(),
            kube_version: capabilities.as_ref().map(|c| c.kube_version.as_str()),
            api_versions: capabilities.as_ref().map_or(&[], |c| c.api_versions.as_slice()),
            charts: Some(driftless_render::ChartAccess {
                charts: &charts,
                allowed: &allowed,
            }),
        };
        let rendered = driftless_render::render(tree, &app.source, target, &self.render_limits, &keys)
            .await
            .map_err(|source| EngineError::Render {
                application: app.name.clone(),
                source: Box::new(source),
            })?;
        Ok((rendered, capabilities.as_ref().map(capabilities_digest)))
    }

    /// A chart's .Capabilities describe the cluster it is rendered for; other renderers need none.
    async fn capabilities_of(
        &self,
        app: &Application,
        cluster: &crate::engine::ClusterHandle,
    ) -> Result<Option<driftless_kube::Capabilities>, EngineError> {
        if !matches!(app.source.renderer, Renderer::Helm(_)) {
            return Ok(None);
        }
        cluster
            .discovery
            .capabilities()
            .await
            .map(Some)
            .map_err(|source| EngineError::Discovery {
                application: app.name.clone(),
                source: Box::new(source),
            })
    }

    /// Whether what a cached render depended on besides the commit is unchanged: the cluster's
    /// capabilities, and each chart pulled from a chart repository still resolving to the same
    /// archive (cheap: indexes are kept a minute, exact versions for the process).
    async fn context_holds(&self, app: &Application, context: &RenderContext) -> bool {
        if let Some(rendered_with) = &context.capabilities {
            let Ok(cluster) = self.cluster(&app.destination.cluster).await else {
                return false;
            };
            match self.capabilities_of(app, &cluster).await {
                Ok(Some(now)) if capabilities_digest(&now) == *rendered_with => {}
                _ => return false,
            }
        }
        let Ok(project) = self.project_of(app) else {
            return false;
        };
        let charts = self.charts.for_project(project);
        for (chart, digest) in &context.charts {
            match charts.pull(chart).await {
                Ok(pulled) if pulled.digest == *digest => {}
                _ => return false,
            }
        }
        true
    }

    /// The instant a fetch must have started at or after to be at most `max_age` old; any fetch
    /// this engine made when that is before the engine (or the machine) started.
    pub(crate) fn fetched_since(&self, max_age: Duration) -> Instant {
        Instant::now()
            .checked_sub(max_age)
            .map_or(self.created, |since| since.max(self.created))
    }

    /// What a render depends on besides the commit: the application, its cluster's settings,
    /// this driftless, the render limits and the external tools.
    fn render_key(&self, app: &Application) -> String {
        use sha2::{Digest as _, Sha256};
        let cluster = self
            .config
            .clusters
            .iter()
            .find(|cluster| cluster.name == app.destination.cluster);
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(app).unwrap_or_default());
        hasher.update(format!("{cluster:?}"));
        hasher.update(format!("{:?}", self.render_limits));
        hasher.update(env!("CARGO_PKG_VERSION"));
        hasher.update(driftless_render::tools_stamp());
        format!("{:x}", hasher.finalize())
    }

    /// Keeps the render in the store for later processes (a CLI sync of an unchanged commit then
    /// renders nothing) — never one with a Secret, whose values must not rest in the store, nor
    /// a root's. A store failure only costs a render later.
    fn keep_render(
        &self,
        app: &Application,
        desired: &DesiredState,
        inputs: Option<&BTreeSet<String>>,
        keepable: bool,
    ) {
        let has_secret = desired
            .objects
            .iter()
            .any(|(object, _)| object.reference.group.is_empty() && object.reference.kind == "Secret");
        let result = if keepable && !has_secret {
            let objects: Vec<_> = desired
                .objects
                .iter()
                .map(|(object, resolved)| (object, &resolved.resource, resolved.namespaced))
                .collect();
            let body = serde_json::to_vec(&(desired.renderer, inputs, objects, &*desired.context))
                .unwrap_or_default();
            let record = driftless_store::RenderRecord {
                key: self.render_key(app),
                revision: desired.commit.to_string(),
                rendered_at: now_millis(),
                body,
            };
            self.store.save_render(&app.name, &record)
        } else {
            self.store.forget_render(&app.name)
        };
        if let Err(err) = result {
            tracing::warn!(application = %app.name, error = %err, "could not keep the render");
        }
    }

    /// Marks the kept render as that of `commit` too (nothing it read changed), without writing
    /// it again.
    fn move_kept_render(&self, app: &Application, commit: &CommitId) {
        if let Err(err) = self.store.move_render(&app.name, commit.as_str(), now_millis()) {
            tracing::warn!(application = %app.name, error = %err, "could not keep the render");
        }
    }

    /// The render an earlier process kept, when it is for this application as configured now
    /// and recent enough.
    fn kept_render(&self, app: &Application) -> Option<(DesiredState, Option<Arc<BTreeSet<String>>>)> {
        let record = self.store.render(&app.name).ok()??;
        if record.key != self.render_key(app)
            || now_millis().saturating_sub(record.rendered_at) > millis(KEPT_RENDER_LIFETIME)
        {
            return None;
        }
        let (renderer, inputs, objects, context): KeptRender = serde_json::from_slice(&record.body).ok()?;
        let renderer = *driftless_render::RENDERERS
            .iter()
            .find(|known| **known == renderer)?;
        let commit = CommitId::parse(&record.revision)?;
        let objects = objects
            .into_iter()
            .map(|(object, resource, namespaced)| (object, Resolved { resource, namespaced }))
            .collect();
        let desired = DesiredState {
            commit,
            objects: Arc::new(objects),
            renderer,
            context: Arc::new(context),
        };
        let inputs = inputs.map(Arc::new);
        self.render_cache.put(app, &desired, inputs.clone());
        Some((desired, inputs))
    }

    /// Paths that differ between two commits of `url`, computed once for all its applications.
    pub(crate) async fn changed_paths(
        &self,
        url: &str,
        from: &CommitId,
        to: &CommitId,
    ) -> Result<Arc<Vec<String>>, driftless_git::GitError> {
        let key = (url.to_owned(), from.clone(), to.clone());
        if let Some(changed) = lock(&self.render_cache.changes).get(&key) {
            return Ok(Arc::clone(changed));
        }
        let changed = Arc::new(self.mirrors.changed_paths(url, from, to).await?);
        let mut known_pairs = lock(&self.render_cache.changes);
        if known_pairs.len() >= CHANGE_CACHE_LIMIT {
            known_pairs.clear();
        }
        known_pairs.insert(key, Arc::clone(&changed));
        Ok(changed)
    }
}
