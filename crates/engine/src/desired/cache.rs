//! Renders kept for reuse: the last render of each application in memory, with the paths it
//! read (a commit that touches none of them costs no render: incremental monorepos), the paths
//! changed between two commits (shared by a repository's applications), and renders kept in the
//! state store for later processes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use driftless_core::DesiredObject;
use driftless_core::application::Application;
use driftless_git::CommitId;
use driftless_kube::{ApiResource, Resolved};
use driftless_store::StateStore;

use super::{DesiredState, RenderContext};
use crate::clock::{millis, now_millis};
use crate::locks::lock;

/// How long a render kept in the store is reused for the same commit and application (Argo CD's
/// repository cache keeps generated manifests as long): discovery answers that changed without
/// a new commit (a CRD's scope) are picked up within a day at worst.
const KEPT_RENDER_LIFETIME: Duration = Duration::from_hours(24);

/// Past this many commit pairs the change cache starts over (pairs are only needed briefly).
const CHANGE_CACHE_LIMIT: usize = 256;

/// A render as kept in the store: renderer, paths read, and each object with how it resolved.
type KeptRender = (
    String,
    Option<BTreeSet<String>>,
    Vec<(DesiredObject, ApiResource, bool)>,
    RenderContext,
);

/// A repository URL and two of its commits.
type CommitPair = (String, CommitId, CommitId);

/// Repository paths a render read; `None`: possibly anything.
pub(crate) type Inputs = Option<Arc<BTreeSet<String>>>;

struct CachedRender {
    /// The application as it was rendered: a changed source or destination means a new render.
    app: Application,
    desired: DesiredState,
    inputs: Inputs,
}

#[derive(Default)]
pub(crate) struct RenderCache {
    entries: std::sync::Mutex<HashMap<String, CachedRender>>,
    changes: std::sync::Mutex<HashMap<CommitPair, Arc<Vec<String>>>>,
    /// Renders done (not those skipped because nothing they read changed).
    pub(crate) renders: AtomicU64,
}

impl RenderCache {
    pub(crate) fn get(&self, app: &Application) -> Option<(DesiredState, Inputs)> {
        let entries = lock(&self.entries);
        let cached = entries.get(&app.name).filter(|cached| cached.app == *app)?;
        Some((cached.desired.clone(), cached.inputs.clone()))
    }

    pub(crate) fn put(&self, app: &Application, desired: &DesiredState, inputs: Inputs) {
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
    pub(crate) fn forget(&self, names: &[String]) {
        let mut entries = lock(&self.entries);
        for name in names {
            entries.remove(name);
        }
    }

    pub(crate) fn changed_paths(&self, pair: &CommitPair) -> Option<Arc<Vec<String>>> {
        lock(&self.changes).get(pair).cloned()
    }

    pub(crate) fn remember_changed_paths(&self, pair: CommitPair, changed: &Arc<Vec<String>>) {
        let mut known_pairs = lock(&self.changes);
        if known_pairs.len() >= CHANGE_CACHE_LIMIT {
            known_pairs.clear();
        }
        known_pairs.insert(pair, Arc::clone(changed));
    }
}

/// Renders kept in the state store, by application, under a key of everything a render
/// depends on besides the commit.
pub(crate) struct KeptRenders<'a> {
    pub store: &'a dyn StateStore,
}

impl KeptRenders<'_> {
    /// Keeps the render for later processes (a CLI sync of an unchanged commit then renders
    /// nothing) — never one with a Secret, whose values must not rest in the store, nor a
    /// root's. A store failure only costs a render later.
    pub(crate) fn keep(
        &self,
        app: &Application,
        key: String,
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
                key,
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

    /// Marks the kept render as that of `commit` too (nothing it read changed), without
    /// writing it again.
    pub(crate) fn moved_to(&self, app: &Application, commit: &CommitId) {
        if let Err(err) = self.store.move_render(&app.name, commit.as_str(), now_millis()) {
            tracing::warn!(application = %app.name, error = %err, "could not keep the render");
        }
    }

    /// The render an earlier process kept, when it is for this application as configured now
    /// and recent enough.
    pub(crate) fn find(&self, app: &Application, key: &str) -> Option<(DesiredState, Inputs)> {
        let record = self.store.render(&app.name).ok()??;
        if record.key != key || now_millis().saturating_sub(record.rendered_at) > millis(KEPT_RENDER_LIFETIME)
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
        Some((desired, inputs.map(Arc::new)))
    }
}
