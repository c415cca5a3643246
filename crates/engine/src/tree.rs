//! The resource tree: what the cluster made from an application's workloads (ReplicaSets and
//! Pods), from the inventory of what it applied, so nothing is rendered; one LIST per kind and
//! namespace involved, and none for an application without workloads.

use std::collections::BTreeSet;

use driftless_core::ObjectRef;
use driftless_core::application::Application;
use driftless_core::tree::{CHILDREN, ChildObject, OWNERS, children};

use crate::clusters::ClusterHandle;
use crate::error::Failure;
use crate::parts::Parts;

/// Every object of a built-in kind (`group/v1`) in `namespace`, tagged with its group and kind.
async fn list_builtin(
    cluster: &ClusterHandle,
    (group, kind): (&str, &str),
    namespace: Option<&str>,
) -> Result<Vec<(String, String, serde_json::Value)>, Failure> {
    let gvk = driftless_core::GroupVersionKind {
        group: group.to_owned(),
        version: "v1".to_owned(),
        kind: kind.to_owned(),
    };
    let resource = driftless_kube::builtin(&gvk)
        .expect("the tree lists only built-in kinds")
        .resource;
    let found = cluster.objects.list(&resource, namespace, "").await?;
    Ok(found
        .into_iter()
        .map(|object| (group.to_owned(), kind.to_owned(), object))
        .collect())
}

/// What the cluster made from the application's workloads (ReplicaSets and Pods), for the
/// resource tree. From the inventory of what it applied, so nothing is rendered; one LIST per
/// kind and namespace involved, and none for an application without workloads.
pub(crate) async fn resource_tree(parts: &Parts, app: &Application) -> Result<Vec<ChildObject>, Failure> {
    let inventory = parts.store.inventory(&app.name)?;
    let owners: Vec<&ObjectRef> = inventory
        .keys()
        .filter(|object| OWNERS.contains(&(object.group.as_str(), object.kind.as_str())))
        .collect();
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    let cluster = parts.clusters.get(&app.destination.cluster).await?;
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
                let listed = list_builtin(&cluster, (group, kind), namespace).await?;
                roots.extend(listed.into_iter().filter(|(_, _, object)| {
                    object
                        .pointer("/metadata/name")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(declared)
                }));
            }
        }
        for child in CHILDREN {
            candidates.extend(list_builtin(&cluster, child, namespace).await?);
        }
    }
    Ok(children(&roots, &candidates))
}
