//! What the cluster holds of one application's objects, read with as few requests as possible:
//! none for objects the watch cache vouches for (see `watch`), else one label-selected LIST per
//! kind and namespace instead of one GET per object — metadata only where the objects were
//! recorded at a resourceVersion when last in sync, so that only those written since are read
//! whole (a no-op re-sync of 1,000 objects reads a few hundred kilobytes of metadata).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use driftless_core::application::Application;
use driftless_core::applied::{self, AppliedState};
use driftless_core::health::Health;
use driftless_core::plan::{APPLICATION_LABEL, LiveOwnership};
use driftless_core::{DesiredObject, ObjectRef};
use driftless_kube::{ApiResource, ListedMetadata};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::Value;

use super::Live;
use super::watch::{Cached, CachedObject, resource_key};
use crate::clusters::ClusterHandle;
use crate::desired::DesiredState;
use crate::error::Failure;

/// Below this many objects of one kind in one namespace, GETs are cheaper than a LIST.
const LIST_THRESHOLD: usize = 3;
/// Above this many objects to read whole after a metadata-only LIST, one LIST of whole objects
/// is cheaper than a GET each.
const GETS_BEFORE_LIST: usize = 16;
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
    references: Vec<(ObjectRef, Option<Vouch>)>,
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
    /// What was recorded when the object was last in sync (from this very manifest, when
    /// declared): while its resourceVersion has not moved, that is still the object.
    recorded: Option<Vouch>,
}

/// What was recorded of an object at a resourceVersion, enough to stand for it unread.
struct Vouch {
    resource_version: String,
    fingerprint: String,
    health: Health,
}

impl Vouch {
    fn of(state: &AppliedState) -> Option<Self> {
        Some(Self {
            resource_version: state.resource_version.clone()?,
            fingerprint: state.fingerprint.clone(),
            health: state.health.clone()?,
        })
    }
}

/// What reading one group found.
#[derive(Default)]
struct GroupRead {
    read: Vec<(ObjectRef, Value)>,
    /// Objects whose resourceVersion is the one recorded: known without reading them.
    vouched: Vec<(ObjectRef, CachedObject)>,
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

    /// For a read object unchanged since last in sync whose resourceVersion moved since it was
    /// recorded (a status update, a write of fields driftless does not own): the state to record
    /// now, so that the next comparison can vouch for it from metadata alone.
    pub(crate) fn refreshed(
        &self,
        recorded: &BTreeMap<ObjectRef, AppliedState>,
        app: &Application,
        object: &DesiredObject,
    ) -> Option<AppliedState> {
        let live = self.get(&object.reference)?;
        let known = recorded.get(&object.reference)?;
        let moved =
            known.resource_version.as_deref() != applied::resource_version(live) || known.health.is_none();
        (moved && self.read_unchanged(recorded, app, object))
            .then(|| applied::applied_state(app, object, live))
            .flatten()
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

    /// Reads `wanted`. Objects labelled for `app` come from one LIST per kind and namespace — a
    /// metadata-only one when most were recorded at a resourceVersion, then only those whose
    /// resourceVersion moved are read whole; the rest (not created yet, or someone else's) are
    /// looked up individually only if a metadata-only LIST shows they exist.
    async fn read(app: &Application, cluster: &ClusterHandle, wanted: Vec<Wanted>) -> Result<Self, Failure> {
        let mut groups: BTreeMap<(String, Option<String>, bool), Group> = BTreeMap::new();
        for Wanted {
            reference,
            resource,
            unlabelled,
            recorded,
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
                .push((reference, recorded));
        }
        let selector: Arc<str> = format!("{APPLICATION_LABEL}={}", app.name).into();
        let shared_app = Arc::new(app.clone());
        // Each kind in a task of its own: decoding a large LIST and fingerprinting its objects
        // is most of the work, and tasks spread over every core.
        let found: Vec<Self> = futures::stream::iter(groups.into_values())
            .map(|group| {
                let (app, cluster, selector) =
                    (Arc::clone(&shared_app), cluster.clone(), Arc::clone(&selector));
                tokio::spawn(async move {
                    let found = read_group(&app, &cluster, group, &selector).await?;
                    let objects = found
                        .read
                        .into_iter()
                        .map(|(reference, object)| {
                            let fingerprint = applied::applied_fingerprint(&app, &reference, &object);
                            (reference, ReadObject { object, fingerprint })
                        })
                        .collect();
                    Ok::<_, Failure>(Self {
                        objects,
                        cached: found.vouched.into_iter().collect(),
                    })
                })
            })
            .buffer_unordered(READ_CONCURRENCY)
            .map(|joined| joined.unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic())))
            .try_collect()
            .await?;
        let mut snapshot = Self::default();
        for part in found {
            snapshot.objects.extend(part.objects);
            snapshot.cached.extend(part.cached);
        }
        Ok(snapshot)
    }
}

fn cluster_error(source: driftless_kube::ObjectError) -> Failure {
    source.into()
}

/// Reads one kind in one namespace (see [`LiveSnapshot::read`]).
async fn read_group(
    app: &Application,
    cluster: &ClusterHandle,
    group: Group,
    selector: &str,
) -> Result<GroupRead, Failure> {
    let (resource, namespace) = (&group.resource, group.namespace.as_deref());
    let mut found = GroupRead::default();
    let mut unseen = group.references;
    if unseen.len() >= LIST_THRESHOLD && !group.unlabelled {
        let recorded = unseen.iter().filter(|(_, recorded)| recorded.is_some()).count();
        if recorded * 4 >= unseen.len() * 3 {
            let moved = vouch_from_metadata(
                app,
                cluster,
                resource,
                namespace,
                selector,
                &mut unseen,
                &mut found,
            )
            .await?;
            if moved.len() > GETS_BEFORE_LIST {
                let mut moved: Vec<(ObjectRef, ())> =
                    moved.into_iter().map(|reference| (reference, ())).collect();
                found
                    .read
                    .extend(list_labelled(cluster, resource, namespace, selector, &mut moved).await?);
            } else {
                found.read.extend(get_each(cluster, resource, moved).await?);
            }
        } else {
            found
                .read
                .extend(list_labelled(cluster, resource, namespace, selector, &mut unseen).await?);
        }
    }
    if unseen.len() >= LIST_THRESHOLD {
        let existing: HashSet<String> = cluster
            .objects
            .list_metadata(resource, namespace, None)
            .await
            .map_err(cluster_error)?
            .into_iter()
            .map(|metadata| metadata.name)
            .collect();
        unseen.retain(|(reference, _)| existing.contains(&reference.name));
    }
    let unseen = unseen.into_iter().map(|(reference, _)| reference).collect();
    found.read.extend(get_each(cluster, resource, unseen).await?);
    Ok(found)
}

/// One label-selected LIST of whole objects; takes what it found out of `unseen`.
async fn list_labelled<T>(
    cluster: &ClusterHandle,
    resource: &ApiResource,
    namespace: Option<&str>,
    selector: &str,
    unseen: &mut Vec<(ObjectRef, T)>,
) -> Result<Vec<(ObjectRef, Value)>, Failure> {
    let mut listed: HashMap<String, Value> = cluster
        .objects
        .list(resource, namespace, selector)
        .await
        .map_err(cluster_error)?
        .into_iter()
        .filter_map(|object| Some((object.pointer("/metadata/name")?.as_str()?.to_owned(), object)))
        .collect();
    let mut found = Vec::new();
    unseen.retain(|(reference, _)| match listed.remove(&reference.name) {
        Some(object) => {
            found.push((reference.clone(), object));
            false
        }
        None => true,
    });
    Ok(found)
}

/// One label-selected, metadata-only LIST: objects still at their recorded resourceVersion are
/// vouched for, and taken out of `unseen` with those listed whose resourceVersion moved (returned,
/// to be read whole). Objects not listed stay in `unseen`.
async fn vouch_from_metadata(
    app: &Application,
    cluster: &ClusterHandle,
    resource: &ApiResource,
    namespace: Option<&str>,
    selector: &str,
    unseen: &mut Vec<(ObjectRef, Option<Vouch>)>,
    found: &mut GroupRead,
) -> Result<Vec<ObjectRef>, Failure> {
    let mut listed: HashMap<String, ListedMetadata> = cluster
        .objects
        .list_metadata(resource, namespace, Some(selector))
        .await
        .map_err(cluster_error)?
        .into_iter()
        .map(|metadata| (metadata.name.clone(), metadata))
        .collect();
    let application: Arc<str> = app.name.as_str().into();
    let mut moved = Vec::new();
    unseen.retain_mut(|(reference, recorded)| {
        let Some(metadata) = listed.remove(&reference.name) else {
            return true;
        };
        let vouched = recorded
            .take()
            .filter(|recorded| recorded.resource_version == metadata.resource_version);
        match vouched {
            Some(Vouch {
                fingerprint, health, ..
            }) => {
                let ownership = LiveOwnership::from_metadata(metadata.label(APPLICATION_LABEL), |key| {
                    metadata.annotation(key)
                });
                found.vouched.push((
                    reference.clone(),
                    CachedObject {
                        application: Arc::clone(&application),
                        fingerprint: Some(fingerprint),
                        health,
                        marks: ownership.marks,
                    },
                ));
            }
            None => moved.push(reference.clone()),
        }
        false
    });
    Ok(moved)
}

/// GETs each object (a few at a time); those that do not exist are left out.
async fn get_each(
    cluster: &ClusterHandle,
    resource: &ApiResource,
    references: Vec<ObjectRef>,
) -> Result<Vec<(ObjectRef, Value)>, Failure> {
    let found: Vec<Option<(ObjectRef, Value)>> = futures::stream::iter(references)
        .map(|reference| async move {
            let object = cluster
                .objects
                .get(resource, &reference)
                .await
                .map_err(cluster_error)?;
            Ok::<_, Failure>(object.map(|object| (reference, object)))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

impl Live {
    /// The live state of everything `app` declares plus what its inventory holds beyond that
    /// (objects that left Git), in one snapshot. With the watch cache running, objects it shows
    /// unchanged since last in sync (`recorded`) are not read at all.
    #[tracing::instrument(level = "debug", skip_all, fields(application = %app.name))]
    pub(crate) async fn snapshot(
        &self,
        app: &Application,
        cluster: &ClusterHandle,
        desired: &DesiredState,
        inventory: &BTreeMap<ObjectRef, String>,
        recorded: &BTreeMap<ObjectRef, AppliedState>,
    ) -> Result<LiveSnapshot, Failure> {
        let mut cached = HashMap::new();
        let mut wanted = Vec::new();
        // Whether to read the object, and if so whether it can only be there unlabelled.
        let mut consult = |reference: &ObjectRef, resource: &ApiResource, object: Option<&DesiredObject>| {
            let Some(cache) = self.cache.get() else {
                return Some(false);
            };
            match cache.lookup(&cluster.name, &cluster.objects, resource, reference) {
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
        // What was recorded of an object at a resourceVersion (for a declared one, from this
        // very manifest): while the object is still at that version, it need not be read.
        let vouching = |reference: &ObjectRef, object: Option<&DesiredObject>| {
            let state = recorded.get(reference)?;
            let same_manifest =
                object.is_none_or(|object| state.desired_hash == applied::applied_hash(app, object));
            same_manifest.then(|| Vouch::of(state)).flatten()
        };
        for (object, resolved) in desired.objects.iter() {
            if let Some(unlabelled) = consult(&object.reference, &resolved.resource, Some(object)) {
                wanted.push(Wanted {
                    reference: object.reference.clone(),
                    resource: resolved.resource.clone(),
                    unlabelled,
                    recorded: vouching(&object.reference, Some(object)),
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
            if let Some(resource) = cluster.resource_for(reference, version).await?
                && let Some(unlabelled) = consult(reference, &resource, None)
            {
                wanted.push(Wanted {
                    reference: reference.clone(),
                    resource,
                    unlabelled,
                    recorded: vouching(reference, None),
                });
            }
        }
        let mut snapshot = if wanted.is_empty() {
            LiveSnapshot::default()
        } else {
            LiveSnapshot::read(app, cluster, wanted).await?
        };
        snapshot.cached.extend(cached);
        Ok(snapshot)
    }
}
