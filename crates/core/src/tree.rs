//! The resource tree below an application's objects: what Kubernetes made from them (a
//! Deployment's ReplicaSets and their Pods, a StatefulSet's, DaemonSet's or Job's Pods), found
//! through `metadata.ownerReferences`. Pure: the engine lists the candidates.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ObjectRef;
use crate::health::{self, Health};

/// One object made by the cluster from an application's object, directly or further down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChildObject {
    pub object: ObjectRef,
    /// Its owner: one of the application's objects or another child.
    pub parent: ObjectRef,
    pub health: Health,
}

/// The kinds of an application's objects whose children the tree shows: `(group, kind)`.
pub const OWNERS: [(&str, &str); 4] = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
];
/// The kinds listed to find children.
pub const CHILDREN: [(&str, &str); 2] = [("apps", "ReplicaSet"), ("", "Pod")];

fn reference(group: &str, kind: &str, object: &Value) -> Option<(String, ObjectRef)> {
    let metadata = object.get("metadata")?;
    let uid = metadata.get("uid")?.as_str()?.to_owned();
    Some((
        uid,
        ObjectRef {
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: metadata
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: metadata.get("name")?.as_str()?.to_owned(),
        },
    ))
}

fn owner_uids(object: &Value) -> impl Iterator<Item = &str> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|owner| owner.get("uid").and_then(Value::as_str))
}

/// The children of `roots` (the application's live objects, by kind) among `candidates` (live
/// objects of [`CHILDREN`]' kinds), at any depth, parents before their children and each level
/// sorted by name. An owner outside the application (a Pod of someone else's ReplicaSet) is
/// never followed.
#[must_use]
pub fn children(
    roots: &[(String, String, Value)],
    candidates: &[(String, String, Value)],
) -> Vec<ChildObject> {
    let mut known: BTreeMap<String, ObjectRef> = roots
        .iter()
        .filter_map(|(group, kind, object)| reference(group, kind, object))
        .collect();
    let mut found = Vec::new();
    // Each pass adds one level; the depth is bounded by the number of candidates.
    loop {
        let mut level: Vec<(String, ChildObject)> = candidates
            .iter()
            .filter_map(|(group, kind, object)| {
                let (uid, child) = reference(group, kind, object)?;
                // Placed already, or one of the roots listed again.
                if known.contains_key(&uid) {
                    return None;
                }
                let parent = owner_uids(object).find_map(|owner| known.get(owner))?.clone();
                let health = health::assess(group, kind, object);
                Some((
                    uid,
                    ChildObject {
                        object: child,
                        parent,
                        health,
                    },
                ))
            })
            .collect();
        if level.is_empty() {
            return found;
        }
        level.sort_by(|a, b| a.1.object.name.cmp(&b.1.object.name));
        for (uid, child) in level {
            known.insert(uid, child.object.clone());
            found.push(child);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(kind: &str, name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut value = json!({ "kind": kind, "metadata": { "name": name, "namespace": "web", "uid": uid } });
        if let Some(owner) = owner {
            value["metadata"]["ownerReferences"] =
                json!([{ "uid": owner, "kind": "x", "name": "x", "apiVersion": "v1" }]);
        }
        value
    }

    fn named(group: &str, kind: &str, value: Value) -> (String, String, Value) {
        (group.to_owned(), kind.to_owned(), value)
    }

    #[test]
    fn a_deployments_replica_sets_and_their_pods_hang_below_it_and_strangers_do_not() {
        let roots = [named(
            "apps",
            "Deployment",
            object("Deployment", "front", "d1", None),
        )];
        let candidates = [
            named("", "Pod", object("Pod", "front-abc-2", "p2", Some("r1"))),
            named(
                "apps",
                "ReplicaSet",
                object("ReplicaSet", "front-abc", "r1", Some("d1")),
            ),
            named("", "Pod", object("Pod", "front-abc-1", "p1", Some("r1"))),
            named(
                "apps",
                "ReplicaSet",
                object("ReplicaSet", "other", "r9", Some("d9")),
            ),
            named("", "Pod", object("Pod", "other-1", "p9", Some("r9"))),
            named("", "Pod", object("Pod", "loose", "p0", None)),
        ];
        let tree: Vec<(String, String)> = children(&roots, &candidates)
            .into_iter()
            .map(|child| (child.object.name, child.parent.name))
            .collect();
        assert_eq!(
            tree,
            [
                ("front-abc".to_owned(), "front".to_owned()),
                ("front-abc-1".to_owned(), "front-abc".to_owned()),
                ("front-abc-2".to_owned(), "front-abc".to_owned()),
            ]
        );
    }

    #[test]
    fn an_ownership_cycle_ends() {
        let roots = [named(
            "apps",
            "Deployment",
            object("Deployment", "front", "d1", None),
        )];
        let candidates = [
            named("apps", "ReplicaSet", object("ReplicaSet", "a", "r1", Some("d1"))),
            named("", "Pod", object("Pod", "b", "p1", Some("r1"))),
            named("apps", "ReplicaSet", object("ReplicaSet", "c", "r2", Some("p1"))),
        ];
        assert_eq!(children(&roots, &candidates).len(), 3);
    }
}
