//! What the cluster holds of one application's objects, read with as few requests as possible:
//! one label-selected LIST per kind and namespace instead of one GET per object.

use std::collections::{BTreeMap, HashMap};

use driftless_core::ObjectRef;
use driftless_core::application::Application;
use driftless_core::plan::{APPLICATION_LABEL, LiveOwnership};
use futures::{StreamExt as _, TryStreamExt as _};
use kube::core::ApiResource;
use serde_json::Value;

use crate::desired::DesiredState;
use crate::engine::ClusterHandle;
use crate::{Engine, EngineError};

/// Below this many objects of one kind in one namespace, GETs are cheaper than a LIST.
const LIST_THRESHOLD: usize = 3;
/// Requests in flight while reading one application.
const READ_CONCURRENCY: usize = 8;

/// Live objects by reference; absent ones simply are not there.
#[derive(Default)]
pub(crate) struct LiveSnapshot {
    objects: HashMap<ObjectRef, Value>,
}

struct Group {
    resource: ApiResource,
    namespace: Option<String>,
    references: Vec<ObjectRef>,
}

impl LiveSnapshot {
    pub(crate) fn get(&self, reference: &ObjectRef) -> Option<&Value> {
        self.objects.get(reference)
    }

    pub(crate) fn ownership(&self) -> BTreeMap<ObjectRef, LiveOwnership> {
        self.objects
            .iter()
            .map(|(reference, object)| (reference.clone(), LiveOwnership::of(object)))
            .collect()
    }

    pub(crate) fn into_objects(self) -> HashMap<ObjectRef, Value> {
        self.objects
    }

    /// Reads `wanted` (references with their API resources). Objects labelled for `app` come from
    /// one LIST per kind and namespace; the rest (not created yet, or someone else's) are looked
    /// up individually only if a metadata-only LIST shows they exist.
    pub(crate) async fn read(
        app: &Application,
        cluster: &ClusterHandle,
        wanted: Vec<(ObjectRef, ApiResource)>,
    ) -> Result<Self, EngineError> {
        let mut groups: BTreeMap<(String, Option<String>), Group> = BTreeMap::new();
        for (reference, resource) in wanted {
            let key = (
                format!("{}/{}/{}", resource.group, resource.version, resource.plural),
                reference.namespace.clone(),
            );
            groups
                .entry(key)
                .or_insert_with(|| Group {
                    resource,
                    namespace: reference.namespace.clone(),
                    references: Vec::new(),
                })
                .references
                .push(reference);
        }
        let selector = format!("{APPLICATION_LABEL}={}", app.name);
        let found: Vec<Vec<(ObjectRef, Value)>> = futures::stream::iter(groups.into_values())
            .map(|group| read_group(app, cluster, group, &selector))
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Self {
            objects: found.into_iter().flatten().collect(),
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
) -> Result<Vec<(ObjectRef, Value)>, EngineError> {
    let namespace = group.namespace.as_deref();
    let mut found = Vec::new();
    let mut unseen = group.references;
    if unseen.len() >= LIST_THRESHOLD {
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
        if unseen.len() >= LIST_THRESHOLD {
            let existing: std::collections::HashSet<String> = cluster
                .objects
                .list_names(&group.resource, namespace)
                .await
                .map_err(|e| cluster_error(app, e))?
                .into_iter()
                .collect();
            unseen.retain(|reference| existing.contains(&reference.name));
        }
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
    Ok(found)
}

impl Engine {
    /// The live state of everything `app` declares plus what its inventory holds beyond that
    /// (objects that left Git), in one snapshot.
    pub(crate) async fn live_snapshot(
        &self,
        app: &Application,
        cluster: &ClusterHandle,
        desired: &DesiredState,
        inventory: &BTreeMap<ObjectRef, String>,
    ) -> Result<LiveSnapshot, EngineError> {
        let mut wanted: Vec<(ObjectRef, ApiResource)> = desired
            .objects
            .iter()
            .map(|(object, resolved)| (object.reference.clone(), resolved.resource.clone()))
            .collect();
        let declared: std::collections::HashSet<&ObjectRef> = desired
            .objects
            .iter()
            .map(|(object, _)| &object.reference)
            .collect();
        for (reference, version) in inventory {
            if declared.contains(reference) {
                continue;
            }
            if let Some(resource) = self.resource_for(app, cluster, reference, version).await? {
                wanted.push((reference.clone(), resource));
            }
        }
        LiveSnapshot::read(app, cluster, wanted).await
    }
}
