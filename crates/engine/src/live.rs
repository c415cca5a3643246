//! What the cluster holds of one application's objects, read with as few requests as possible:
//! none for objects the watch cache vouches for (see `watch`), else one label-selected LIST per
//! kind and namespace instead of one GET per object.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use driftless_core::application::Application;
use driftless_core::plan::{APPLICATION_LABEL, LiveOwnership};
use driftless_core::{DesiredObject, ObjectRef};
use futures::{StreamExt as _, TryStreamExt as _};
use kube::core::ApiResource;
use serde_json::Value;

use driftless_store::AppliedState;

use crate::desired::DesiredState;
use crate::engine::ClusterHandle;
use crate::watch::{Cached, CachedObject, resource_key};
use crate::{Engine, EngineError, applied};

/// Below this many objects of one kind in one namespace, GETs are cheaper than a LIST.
const LIST_THRESHOLD: usize = 3;
/// Requests in flight while reading one application.
const READ_CONCURRENCY: usize = 8;

/// Live objects by reference; absent ones simply are not there.
#[derive(Default)]
pub(crate) struct LiveSnapshot {
    objects: HashMap<ObjectRef, ReadObject>,
    /// Objects known from the watch cache only: this application's, and (when declared)
    /// unchanged since they were last brought in sync, so they need neither a read nor an apply.
    cached: HashMap<ObjectRef, CachedObject>,
}

struct Group {
    resource: ApiResource,
    namespace: Option<String>,
    references: Vec<ObjectRef>,
    /// The watch cache shows none of them labelled: only whether they exist unlabelled is asked.
    unlabelled: bool,
}

/// A live object as read, with its fingerprint (computed as it was read, on every core).
struct ReadObject {
    object: Value,
    fingerprint: Option<String>,
}

/// An object to read and what is already known about it.
struct Wanted {
    reference: ObjectRef,
    resource: ApiResource,
    /// The watch cache has no labelled object of this name, so a label-selected LIST would
    /// find nothing: only someone else's unlabelled object can be there.
    unlabelled: bool,
}

impl LiveSnapshot {
    /// The whole live object, when it was read (not for objects known from the cache only).
    pub(crate) fn get(&self, reference: &ObjectRef) -> Option<&Value> {
        self.objects.get(reference).map(|read| &read.object)
    }

    /// Whether a read object is unchanged since it was last brought in sync from this manifest.
    pub(crate) fn read_unchanged(
        &self,
        recorded: &BTreeMap<ObjectRef, AppliedState>,
        app: &Application,
        object: &DesiredObject,
    ) -> bool {
        self.objects
            .get(&object.reference)
            .is_some_and(|read| applied::unchanged_since(recorded, app, object, read.fingerprint.as_deref()))
    }

    /// The cache's entry for a declared object that is unchanged since last in sync.
    pub(crate) fn unchanged(&self, reference: &ObjectRef) -> Option<&CachedObject> {
        self.cached.get(reference)
    }

    pub(crate) fn ownership_of(&self, reference: &ObjectRef) -> Option<LiveOwnership> {
        self.objects
            .get(reference)
            .map(|read| LiveOwnership::of(&read.object))
            .or_else(|| self.cached.get(reference).map(CachedObject::ownership))
    }

    pub(crate) fn ownership(&self) -> BTreeMap<ObjectRef, LiveOwnership> {
        let read = self
            .objects
            .iter()
            .map(|(reference, read)| (reference.clone(), LiveOwnership::of(&read.object)));
        let cached = self
            .cached
            .iter()
            .map(|(reference, entry)| (reference.clone(), entry.ownership()));
        read.chain(cached).collect()
    }

    /// Reads `wanted`. Objects labelled for `app` come from one LIST per kind and namespace; the
    /// rest (not created yet, or someone else's) are looked up individually only if a
    /// metadata-only LIST shows they exist.
    async fn read(
        app: &Application,
        cluster: &ClusterHandle,
        wanted: Vec<Wanted>,
    ) -> Result<Self, EngineError> {
        let mut groups: BTreeMap<(String, Option<String>, bool), Group> = BTreeMap::new();
        for Wanted {
            reference,
            resource,
            unlabelled,
        } in wanted
        {
            let key = (resource_key(&resource), reference.namespace.clone(), unlabelled);
            groups
                .entry(key)
                .or_insert_with(|| Group {
                    resource,
                    namespace: reference.namespace.clone(),
                    references: Vec::new(),
                    unlabelled,
                })
                .references
                .push(reference);
        }
        let selector: Arc<str> = format!("{APPLICATION_LABEL}={}", app.name).into();
        let shared_app = Arc::new(app.clone());
        // Each kind in a task of its own: decoding a large LIST and fingerprinting its objects
        // is most of the work, and tasks spread over every core.
        let found: Vec<Vec<(ObjectRef, ReadObject)>> = futures::stream::iter(groups.into_values())
            .map(|group| {
                let (app, cluster, selector) =
                    (Arc::clone(&shared_app), cluster.clone(), Arc::clone(&selector));
                tokio::spawn(async move { read_group(&app, &cluster, group, &selector).await })
            })
            .buffer_unordered(READ_CONCURRENCY)
            .map(|joined| joined.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic())))
            .try_collect()
            .await?;
        Ok(Self {
            objects: found.into_iter().flatten().collect(),
            cached: HashMap::new(),
        })
    }
}

fn cluster_error(app: &Application, source: driftless_kube::ObjectError) -> EngineError {
    EngineError::Cluster {
        application: app.name.clone(),
        source: Box::new(source),
    }
}

async fn read_group(
    app: &Application,
    cluster: &ClusterHandle,
    group: Group,
    selector: &str,
) -> Result<Vec<(ObjectRef, ReadObject)>, EngineError> {
    let namespace = group.namespace.as_deref();
    let mut found = Vec::new();
    let mut unseen = group.references;
    if unseen.len() >= LIST_THRESHOLD && !group.unlabelled {
        let mut listed: HashMap<String, Value> = cluster
            .objects
            .list(&group.resource, namespace, selector)
            .await
            .map_err(|e| cluster_error(app, e))?
            .into_iter()
            .filter_map(|object| Some((object.pointer("/metadata/name")?.as_str()?.to_owned(), object)))
            .collect();
        unseen.retain(|reference| match listed.remove(&reference.name) {
            Some(object) => {
                found.push((reference.clone(), object));
                false
            }
            None => true,
        });
    }
    if unseen.len() >= LIST_THRESHOLD {
        let existing: HashSet<String> = cluster
            .objects
            .list_names(&group.resource, namespace)
            .await
            .map_err(|e| cluster_error(app, e))?
            .into_iter()
            .collect();
        unseen.retain(|reference| existing.contains(&reference.name));
    }
    for reference in unseen {
        if let Some(object) = cluster
            .objects
            .get(&group.resource, &reference)
            .await
            .map_err(|e| cluster_error(app, e))?
        {
            found.push((reference, object));
        }
    }
    Ok(found
        .into_iter()
        .map(|(reference, object)| {
            let fingerprint = applied::fingerprint_of(app, &reference, &object);
            (reference, ReadObject { object, fingerprint })
        })
        .collect())
}

impl Engine {
    /// The live state of everything `app` declares plus what its inventory holds beyond that
    /// (objects that left Git), in one snapshot. With the watch cache running, objects it shows
    /// unchanged since last in sync (`recorded`) are not read at all.
    #[tracing::instrument(level = "debug", skip_all, fields(application = %app.name))]
    pub(crate) async fn live_snapshot(
        &self,
        app: &Application,
        cluster: &ClusterHandle,
        desired: &DesiredState,
        inventory: &BTreeMap<ObjectRef, String>,
        recorded: &BTreeMap<ObjectRef, AppliedState>,
    ) -> Result<LiveSnapshot, EngineError> {
        let mut cached = HashMap::new();
        let mut wanted = Vec::new();
        // Whether to read the object, and if so whether it can only be there unlabelled.
        let mut consult = |reference: &ObjectRef, resource: &ApiResource, object: Option<&DesiredObject>| {
            let Some(cache) = self.live_cache.get() else {
                return Some(false);
            };
            match cache.lookup(&cluster.name, cluster.objects.client(), resource, reference) {
                Cached::Present(entry)
                    if *entry.application == *app.name
                        && object.is_none_or(|object| {
                            applied::unchanged_since(recorded, app, object, entry.fingerprint.as_deref())
                        }) =>
                {
                    cached.insert(reference.clone(), entry);
                    None
                }
                // Gone, or without our label: nothing of ours to prune.
                Cached::Absent if object.is_none() => None,
                Cached::Absent => Some(true),
                _ => Some(false),
            }
        };
        for (object, resolved) in desired.objects.iter() {
            if let Some(unlabelled) = consult(&object.reference, &resolved.resource, Some(object)) {
                wanted.push(Wanted {
                    reference: object.reference.clone(),
                    resource: resolved.resource.clone(),
                    unlabelled,
                });
            }
        }
        let declared: HashSet<&ObjectRef> = desired
            .objects
            .iter()
            .map(|(object, _)| &object.reference)
            .collect();
        for (reference, version) in inventory {
            if declared.contains(reference) {
                continue;
            }
            if let Some(resource) = self.resource_for(app, cluster, reference, version).await?
                && let Some(unlabelled) = consult(reference, &resource, None)
            {
                wanted.push(Wanted {
                    reference: reference.clone(),
                    resource,
                    unlabelled,
                });
            }
        }
        let mut snapshot = if wanted.is_empty() {
            LiveSnapshot::default()
        } else {
            LiveSnapshot::read(app, cluster, wanted).await?
        };
        snapshot.cached = cached;
        Ok(snapshot)
    }
}
