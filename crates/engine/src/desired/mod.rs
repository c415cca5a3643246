//! Desired state: from an application to its objects at a commit. The [`Desired`] component owns
//! what that takes — the Git mirrors, the chart repositories' caches, the render caches and the
//! signature verdicts — and borrows the catalog, the clusters (discovery, capabilities, keys kept
//! in Secrets) and the state store (pins, kept renders) through a [`Context`].

mod cache;
mod children;
mod decryption;
mod signatures;
mod variables;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use driftless_core::application::{Application, Renderer};
use driftless_core::plan::mark_owned;
use driftless_core::source_type::SourceType;
use driftless_core::{DesiredObject, SourceLocation};
use driftless_files::{FileTree, ReadLimits};
use driftless_git::{CommitId, Mirrors};
use driftless_kube::{Resolved, resolve_desired};
use driftless_render::RenderLimits;
use serde_json::json;

use crate::catalog::is_application;
use crate::clock::FetchClock;
use crate::clusters::ClusterHandle;
use crate::context::Context;
use crate::error::Failure;
use cache::{Inputs, KeptRenders, RenderCache};
use signatures::VerdictCache;

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

/// A render's manifests split into the Applications it declares (app-of-apps) and the objects
/// for the cluster, with the Namespace `CreateNamespace=true` asks for and the defaults
/// server-side apply needs (`core::apply_defaults`).
pub(crate) type SplitManifests = (
    Vec<(serde_json::Value, SourceLocation)>,
    Vec<(serde_json::Value, SourceLocation)>,
);

pub(crate) fn split_children(
    app: &Application,
    rendered: Vec<driftless_render::RenderedManifest>,
) -> SplitManifests {
    let (children, mut manifests): (Vec<_>, Vec<_>) = rendered
        .into_iter()
        .map(|m| (m.manifest, m.source))
        .partition(|(manifest, _)| is_application(manifest));
    add_created_namespace(app, &mut manifests);
    // Before diff and apply alike, so the defaulted fields never show as a difference.
    for (manifest, _) in &mut manifests {
        driftless_core::apply_defaults::set_apply_defaults(manifest);
    }
    (children, manifests)
}

pub(crate) struct Desired {
    mirrors: Mirrors,
    /// Chart repositories and registries, their indexes and archives (kept under the data
    /// directory), shared by every application.
    charts: driftless_charts::Charts,
    cache: RenderCache,
    verdicts: VerdictCache,
    render_limits: RenderLimits,
    clock: FetchClock,
}

impl Desired {
    pub(crate) fn new(config: &driftless_config::Config, data_dir: &std::path::Path) -> Self {
        let limits = config.limits;
        let read_limits = ReadLimits {
            max_files: limits.max_files,
            max_bytes: limits.max_repository_bytes,
        };
        let mirrors =
            Mirrors::new(data_dir.join("git"), config.repositories.clone()).with_limits(read_limits);
        let render_limits = RenderLimits {
            max_documents: limits.max_documents,
            max_file_bytes: limits.max_file_bytes,
            timeout: limits.render_timeout,
            materialize: read_limits,
            ..RenderLimits::default()
        };
        let charts = driftless_charts::Charts::new(
            Some(data_dir.join("charts")),
            config.repositories.clone(),
            driftless_charts::ChartLimits {
                timeout: limits.render_timeout,
                ..driftless_charts::ChartLimits::default()
            },
        );
        Self {
            mirrors,
            charts,
            cache: RenderCache::default(),
            verdicts: VerdictCache::default(),
            render_limits,
            clock: FetchClock::new(),
        }
    }

    pub(crate) fn clock(&self) -> FetchClock {
        self.clock
    }

    /// Renders done since the process started.
    pub(crate) fn renders(&self) -> u64 {
        self.cache.renders.load(Ordering::Relaxed)
    }

    /// Git fetches (and clones) since the process started.
    pub(crate) fn fetches(&self) -> u64 {
        self.mirrors.fetch_count()
    }

    /// Fetches `url` and resolves `revision` to a commit.
    pub(crate) async fn fetch_and_resolve(&self, url: &str, revision: &str) -> Result<CommitId, Failure> {
        Ok(self.mirrors.fetch_and_resolve(url, revision).await?)
    }

    /// The files of `url` at `commit` a render of `app` reads.
    pub(crate) async fn read_tree(
        &self,
        app: &Application,
        url: &str,
        commit: &CommitId,
    ) -> Result<FileTree, Failure> {
        Ok(self.mirrors.read_tree(url, commit, render_scope(app)).await?)
    }

    /// Fetches the application's repository (or uses a fetch that started at `fetched_since` or
    /// later), resolves `revision` (default: the pinned revision, else the configured one),
    /// renders, and gives every object its identity and ownership label. The render is skipped
    /// when the last one is at this commit, or at a commit that differs only in paths the render
    /// did not read.
    #[tracing::instrument(level = "debug", skip_all, fields(application = %app.name))]
    pub(crate) async fn state(
        &self,
        cx: Context<'_>,
        app: &Application,
        revision: Option<&str>,
        fetched_since: Instant,
    ) -> Result<DesiredState, Failure> {
        cx.catalog.check_project(app)?;
        let pinned = cx.store.pinned(&app.name)?;
        let revision = revision.or(pinned.as_deref()).unwrap_or(&app.source.revision);
        let url = &app.source.repo_url;
        let started = Instant::now();
        let fetched = self
            .mirrors
            .fetch_since_and_resolve(url, revision, fetched_since)
            .await;
        cx.metrics.fetch_seconds.observe(started.elapsed().as_secs_f64());
        if fetched.is_err() {
            cx.metrics.fetch_errors.inc();
        }
        let commit = fetched?;
        self.check_signatures(cx, app, &commit).await?;
        let kept = KeptRenders { store: cx.store };
        // The key of a kept render is hashed only when the memory cache has nothing.
        let known = self.cache.get(app).or_else(|| {
            let found = kept.find(app, &self.render_key(cx, app))?;
            self.cache.put(app, &found.0, found.1.clone());
            Some(found)
        });
        let known = match known {
            Some((cached, inputs)) if self.context_holds(cx, app, &cached.context).await => {
                Some((cached, inputs))
            }
            _ => None,
        };
        if let Some((cached, inputs)) = known {
            if cached.commit == commit {
                return Ok(cached);
            }
            let changed = self.changed_paths(url, &cached.commit, &commit).await?;
            if !driftless_core::changes::touches(app, inputs.as_deref(), &changed) {
                let desired = DesiredState { commit, ..cached };
                kept.moved_to(app, &desired.commit);
                self.cache.put(app, &desired, inputs);
                return Ok(desired);
            }
        }
        self.cache.renders.fetch_add(1, Ordering::Relaxed);
        let tree = self.mirrors.read_tree(url, &commit, render_scope(app)).await?;
        let cluster = cx.clusters.get(&app.destination.cluster).await?;
        let (rendered, capabilities) = self.render_tree(cx, app, &tree, Some(&cluster)).await?;
        let context = Arc::new(RenderContext {
            capabilities,
            charts: rendered.charts.clone(),
        });
        let inputs: Inputs = rendered.inputs.map(Arc::new);
        // A root's render also registers its children, which a kept render would skip; and
        // plaintext from SOPS files is kept nowhere beyond the apply, not even in memory. A
        // post-build substitution depends on objects in the cluster (and may hold a Secret's
        // values), so it is rendered every time, as Flux does.
        let cacheable = !rendered.decrypted && app.post_build.is_none();
        let (children, manifests) = split_children(app, rendered.manifests);
        let keepable = children.is_empty() && cacheable;
        self.register_children(cx, app, children)?;
        let mut objects = resolve_desired(
            manifests,
            app.destination.namespace.as_deref(),
            &cluster.discovery,
        )
        .await?;
        for (object, _) in &mut objects {
            mark_owned(object, &app.name);
        }
        let desired = DesiredState {
            commit,
            objects: Arc::new(objects),
            renderer: rendered.renderer,
            context,
        };
        kept.keep(
            app,
            self.render_key(cx, app),
            &desired,
            inputs.as_deref(),
            keepable,
        );
        if cacheable {
            self.cache.put(app, &desired, inputs);
        } else {
            self.cache.forget(std::slice::from_ref(&app.name));
        }
        Ok(desired)
    }

    /// Renders `tree` for `app` with its decryption keys and, for charts, the cluster's
    /// capabilities (returned as a digest) and the chart repositories its project allows.
    /// Without a cluster (an offline plan): no keys kept in Secrets, Helm's default capabilities.
    pub(crate) async fn render_tree(
        &self,
        cx: Context<'_>,
        app: &Application,
        tree: &FileTree,
        cluster: Option<&ClusterHandle>,
    ) -> Result<(driftless_render::Rendered, Option<String>), Failure> {
        // An entry left out of the tree (unsafe name, link loop) refuses the application whose
        // path holds it; elsewhere in the repository it only goes missing.
        tree.check_under(&app.source.path)
            .map_err(|source| Failure::from(driftless_render::RenderError::from(source)))?;
        let keys = decryption::load_keys(app, cluster).await?;
        let substitution = variables::load(app, cluster).await?;
        let capabilities = match cluster {
            Some(cluster) => capabilities_of(app, tree, cluster).await?,
            None => None,
        };
        let allowed = |url: &str| cx.catalog.check_chart_repository(app, url);
        // The project also vets every archive URL an index names.
        let charts = self.charts.for_project(cx.catalog.project_of(app)?);
        let target = driftless_render::RenderTarget {
            application: &app.name,
            namespace: app.destination.namespace.as_deref(),
            kube_version: capabilities.as_ref().map(|c| c.kube_version.as_str()),
            api_versions: capabilities.as_ref().map_or(&[], |c| c.api_versions.as_slice()),
            charts: Some(driftless_render::ChartAccess {
                charts: &charts,
                allowed: &allowed,
            }),
            allow_empty: app.sync_policy.allow_empty,
        };
        let rendered = driftless_render::render_substituting(
            tree,
            &app.source,
            target,
            &self.render_limits,
            &keys,
            substitution.as_ref(),
        )
        .await?;
        Ok((rendered, capabilities.as_ref().map(capabilities_digest)))
    }

    /// Whether what a cached render depended on besides the commit is unchanged: the cluster's
    /// capabilities, and each chart pulled from a chart repository still resolving to the same
    /// archive (cheap: indexes are kept a minute, exact versions for the process).
    async fn context_holds(&self, cx: Context<'_>, app: &Application, context: &RenderContext) -> bool {
        if let Some(rendered_with) = &context.capabilities {
            let Ok(cluster) = cx.clusters.get(&app.destination.cluster).await else {
                return false;
            };
            // Rendered with capabilities: it is a chart.
            match cluster.discovery.capabilities().await {
                Ok(now) if capabilities_digest(&now) == *rendered_with => {}
                _ => return false,
            }
        }
        let Ok(project) = cx.catalog.project_of(app) else {
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

    /// What a render depends on besides the commit: the application, its cluster's settings,
    /// this driftless, the render limits and the external tools.
    fn render_key(&self, cx: Context<'_>, app: &Application) -> String {
        use sha2::{Digest as _, Sha256};
        let cluster = cx.clusters.settings(&app.destination.cluster);
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(app).unwrap_or_default());
        hasher.update(format!("{cluster:?}"));
        hasher.update(format!("{:?}", self.render_limits));
        hasher.update(env!("CARGO_PKG_VERSION"));
        hasher.update(driftless_render::tools_stamp());
        format!("{:x}", hasher.finalize())
    }

    /// Paths that differ between two commits of `url`, computed once for all its applications.
    pub(crate) async fn changed_paths(
        &self,
        url: &str,
        from: &CommitId,
        to: &CommitId,
    ) -> Result<Arc<Vec<String>>, Failure> {
        let pair = (url.to_owned(), from.clone(), to.clone());
        if let Some(changed) = self.cache.changed_paths(&pair) {
            return Ok(changed);
        }
        let changed = Arc::new(self.mirrors.changed_paths(url, from, to).await?);
        self.cache.remember_changed_paths(pair, &changed);
        Ok(changed)
    }
}

/// A chart's .Capabilities describe the cluster it is rendered for; other renderers need none,
/// so a detected source that is not a chart does not tie its kept render to the cluster's APIs.
async fn capabilities_of(
    app: &Application,
    tree: &FileTree,
    cluster: &ClusterHandle,
) -> Result<Option<driftless_kube::Capabilities>, Failure> {
    let chart = match app.source.renderer {
        Renderer::Helm(_) => true,
        Renderer::Detect => driftless_render::detect(tree, &app.source.path) == SourceType::Helm,
        _ => false,
    };
    if !chart {
        return Ok(None);
    }
    Ok(Some(cluster.discovery.capabilities().await?))
}
