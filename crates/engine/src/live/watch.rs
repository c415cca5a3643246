//! The live cache behind `driftless serve`: one watch per kind and cluster on the objects that
//! carry driftless's application label. Per object it keeps only what comparison needs — the
//! fingerprint of the fields driftless owns, health, ownership — never the object itself, and it
//! tells the controller which application changed the moment the API server reports it.
//!
//! Any watch error drops the watch: it is restarted with a fresh LIST after a short backoff, and
//! the new list is compared with what the cache held, so a change made while the watch was down
//! (or the API server restarted) is reported like any other. Until a watch has listed, lookups
//! answer [`Cached::Unknown`] and callers read the API server instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use driftless_core::ObjectRef;
use driftless_core::applied;
use driftless_core::health::{self, Health};
use driftless_core::plan::{APPLICATION_LABEL, LiveMarks, LiveOwnership};
use driftless_kube::{ApiResource, Objects, WatchEvent, watch_labelled};
use futures::StreamExt as _;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::catalog::Registry;
use crate::locks::{lock, read, write};

/// What the cache keeps of one live object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CachedObject {
    /// The application label's value.
    pub application: Arc<str>,
    /// See `driftless_core::fingerprint`; computed with the application's ignore rules.
    pub fingerprint: Option<String>,
    pub health: Health,
    pub marks: LiveMarks,
}

impl CachedObject {
    pub(crate) fn ownership(&self) -> LiveOwnership {
        LiveOwnership {
            owner: Some(self.application.to_string()),
            marks: self.marks,
        }
    }
}

/// What the cache can say about one object.
pub(crate) enum Cached {
    /// No complete watch of its kind (not started, listing, or restarting).
    Unknown,
    /// No object of that name carries the application label.
    Absent,
    Present(CachedObject),
}

/// Something changed in the cluster among an application's objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChange {
    pub application: String,
    pub object: ObjectRef,
    pub deleted: bool,
}

#[derive(Default)]
struct Watched {
    objects: RwLock<HashMap<ObjectRef, CachedObject>>,
    synced: AtomicBool,
}

/// Every watch of one process, by cluster and API resource.
pub(crate) struct LiveCache {
    watches: std::sync::Mutex<HashMap<(String, String), Arc<Watched>>>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    changes: mpsc::UnboundedSender<LiveChange>,
    registry: Arc<Registry>,
}

/// The first wait before a failed watch is restarted; it doubles up to [`MAX_RESTART_DELAY`].
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(250);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(5);

pub(crate) fn resource_key(resource: &ApiResource) -> String {
    format!("{}/{}/{}", resource.group, resource.version, resource.plural)
}

impl LiveCache {
    pub(crate) fn new(registry: Arc<Registry>, changes: mpsc::UnboundedSender<LiveChange>) -> Self {
        Self {
            watches: std::sync::Mutex::default(),
            tasks: std::sync::Mutex::default(),
            changes,
            registry,
        }
    }

    /// What the cache holds for `reference` (served by `resource` on `cluster`); starts watching
    /// that resource if nothing does yet.
    pub(crate) fn lookup(
        &self,
        cluster: &str,
        objects: &Objects,
        resource: &ApiResource,
        reference: &ObjectRef,
    ) -> Cached {
        let watched = self.watch(cluster, objects, resource);
        if !watched.synced.load(Ordering::Acquire) {
            return Cached::Unknown;
        }
        read(&watched.objects)
            .get(reference)
            .cloned()
            .map_or(Cached::Absent, Cached::Present)
    }

    fn watch(&self, cluster: &str, objects: &Objects, resource: &ApiResource) -> Arc<Watched> {
        let key = (cluster.to_owned(), resource_key(resource));
        let mut all = lock(&self.watches);
        if let Some(watched) = all.get(&key) {
            return Arc::clone(watched);
        }
        let watched = Arc::new(Watched::default());
        all.insert(key, Arc::clone(&watched));
        let task = tokio::spawn(run_watch(
            objects.clone(),
            resource.clone(),
            Arc::clone(&watched),
            Arc::clone(&self.registry),
            self.changes.clone(),
        ));
        lock(&self.tasks).push(task);
        watched
    }
}

impl Drop for LiveCache {
    fn drop(&mut self) {
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            task.abort();
        }
    }
}

fn reference_of(resource: &ApiResource, object: &Value) -> Option<ObjectRef> {
    let metadata = object.get("metadata")?;
    Some(ObjectRef {
        group: resource.group.clone(),
        kind: resource.kind.clone(),
        namespace: metadata
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned),
        name: metadata.get("name")?.as_str()?.to_owned(),
    })
}

/// The reference and cache entry of a watched object; `None` without a name or label.
fn summarise(
    resource: &ApiResource,
    registry: &Registry,
    value: &Value,
) -> Option<(ObjectRef, CachedObject)> {
    let reference = reference_of(resource, value)?;
    let ownership = LiveOwnership::of(value);
    let application = ownership.owner?;
    let fingerprint = registry
        .get(&application)
        .and_then(|app| applied::applied_fingerprint(&app, &reference, value));
    let health = health::assess(&reference.group, &reference.kind, value);
    Some((
        reference,
        CachedObject {
            application: application.into(),
            fingerprint,
            health,
            marks: ownership.marks,
        },
    ))
}

/// Watches one resource until the task is aborted, restarting (with a fresh LIST) after errors.
async fn run_watch(
    objects: Objects,
    resource: ApiResource,
    watched: Arc<Watched>,
    registry: Arc<Registry>,
    changes: mpsc::UnboundedSender<LiveChange>,
) {
    let mut delay = FIRST_RESTART_DELAY;
    let mut listed_before = false;
    loop {
        let mut stream = watch_labelled(objects.client(), &resource, APPLICATION_LABEL);
        let mut buffer: Option<HashMap<ObjectRef, CachedObject>> = None;
        while let Some(event) = stream.next().await {
            let notify = |reference: &ObjectRef, entry: &CachedObject, deleted: bool| {
                let _ = changes.send(LiveChange {
                    application: entry.application.to_string(),
                    object: reference.clone(),
                    deleted,
                });
            };
            match event {
                WatchEvent::Listing => buffer = Some(HashMap::new()),
                WatchEvent::Listed(object) => {
                    if let (Some(buffer), Some((reference, entry))) =
                        (buffer.as_mut(), summarise(&resource, &registry, &object))
                    {
                        buffer.insert(reference, entry);
                    }
                }
                WatchEvent::ListDone => {
                    let listed = buffer.take().unwrap_or_default();
                    let previous = std::mem::replace(&mut *write(&watched.objects), listed);
                    // The first list is where the cache starts, not a change; a relist after a
                    // restart is compared with what was known, so nothing done meanwhile is missed.
                    if listed_before {
                        let objects = read(&watched.objects);
                        for (reference, entry) in objects.iter() {
                            if previous.get(reference) != Some(entry) {
                                notify(reference, entry, false);
                            }
                        }
                        for (reference, entry) in &previous {
                            if !objects.contains_key(reference) {
                                notify(reference, entry, true);
                            }
                        }
                    }
                    listed_before = true;
                    watched.synced.store(true, Ordering::Release);
                    delay = FIRST_RESTART_DELAY;
                    tracing::debug!(resource = %resource_key(&resource), "watch listed");
                }
                WatchEvent::Applied(object) => {
                    if let Some((reference, entry)) = summarise(&resource, &registry, &object) {
                        let previous = write(&watched.objects).insert(reference.clone(), entry.clone());
                        if previous.as_ref() != Some(&entry) {
                            notify(&reference, &entry, false);
                        }
                    }
                }
                // Also sent when the object no longer matches the label selector (label removed).
                WatchEvent::Deleted(object) => {
                    if let Some(reference) = reference_of(&resource, &object)
                        && let Some(entry) = write(&watched.objects).remove(&reference)
                    {
                        notify(&reference, &entry, true);
                    }
                }
                WatchEvent::Failed(err) => {
                    tracing::warn!(resource = %resource_key(&resource), error = %err, retry_in = ?delay, "watch failed; restarting");
                    break;
                }
            }
        }
        watched.synced.store(false, Ordering::Release);
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RESTART_DELAY);
    }
}
