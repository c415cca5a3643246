//! An application compared with its cluster: per object, the difference from Git and its health,
//! and what would be pruned. The engine fills it; the controller, the API and the CLI read it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::ObjectDiff;
use crate::fingerprint::last_other_manager;
use crate::health::{self, Health};
use crate::{DesiredObject, ObjectRef, SyncState};

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

impl ObjectStatus {
    /// The status of `object` whose live state is `live` (`None`: not in the cluster); `manager`
    /// is driftless's own field manager, never named as the one who changed it.
    #[must_use]
    pub fn of(object: &DesiredObject, live: Option<&Value>, diff: ObjectDiff, manager: &str) -> Self {
        let health = live.map_or_else(Health::missing, |live| {
            health::assess(&object.reference.group, &object.reference.kind, live)
        });
        let changed_by = live
            .filter(|_| !diff.is_in_sync())
            .and_then(|live| last_other_manager(live, manager));
        Self {
            object: object.reference.clone(),
            diff,
            health,
            changed_by,
        }
    }

    /// An object known to be as Git wants it, with the health last seen.
    #[must_use]
    pub fn unchanged(object: &ObjectRef, health: Health) -> Self {
        Self {
            object: object.clone(),
            diff: ObjectDiff::Unchanged,
            health,
            changed_by: None,
        }
    }
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

impl AppComparison {
    /// Synced when every object is as Git wants it and nothing is left to prune; as healthy as
    /// the worst object.
    #[must_use]
    pub fn new(
        application: &str,
        revision: &str,
        objects: Vec<ObjectStatus>,
        to_prune: Vec<ObjectRef>,
    ) -> Self {
        let in_sync = objects.iter().all(|status| status.diff.is_in_sync()) && to_prune.is_empty();
        let health = health::worst(objects.iter().map(|status| &status.health));
        Self {
            application: application.to_owned(),
            revision: revision.to_owned(),
            sync: if in_sync {
                SyncState::Synced
            } else {
                SyncState::OutOfSync
            },
            health,
            objects,
            to_prune,
        }
    }

    /// What differs from Git, for people: "apps/Deployment/default/web changed by kubectl;
    /// ConfigMap/default/settings deleted".
    #[must_use]
    pub fn describe_drift(&self) -> String {
        let parts: Vec<String> = self
            .objects
            .iter()
            .filter(|status| !status.diff.is_in_sync())
            .map(|status| match (&status.diff, &status.changed_by) {
                (ObjectDiff::Missing { .. }, _) => format!("{} deleted", status.object),
                (_, Some(manager)) => format!("{} changed by {manager}", status.object),
                (_, None) => format!("{} changed", status.object),
            })
            .collect();
        if parts.is_empty() {
            "objects changed".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{GroupVersionKind, HealthState, SourceLocation};

    fn object(name: &str) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version("apps/v1", "Deployment").expect("valid");
        DesiredObject {
            reference: ObjectRef::new(&gvk, Some("default"), name),
            gvk,
            manifest: json!({ "metadata": { "name": name } }),
            source: SourceLocation {
                file: "app.yaml".into(),
                document: 0,
                line: None,
            },
        }
    }

    fn changed() -> ObjectDiff {
        ObjectDiff::Changed {
            unified: String::new(),
            changes: Vec::new(),
        }
    }

    #[test]
    fn an_application_is_synced_only_when_every_object_is_and_nothing_is_left_to_prune() {
        let web = object("web");
        let in_sync = ObjectStatus::unchanged(&web.reference, Health::new(HealthState::Healthy, ""));
        let synced = AppComparison::new("app", "abc", vec![in_sync.clone()], Vec::new());
        assert_eq!(synced.sync, SyncState::Synced);
        assert_eq!(synced.health.state, HealthState::Healthy);
        let pruning = AppComparison::new("app", "abc", vec![in_sync], vec![object("old").reference]);
        assert_eq!(pruning.sync, SyncState::OutOfSync);
        let missing = ObjectStatus::of(
            &web,
            None,
            ObjectDiff::Missing {
                desired: String::new(),
            },
            "driftless",
        );
        let comparison = AppComparison::new("app", "abc", vec![missing], Vec::new());
        assert_eq!(comparison.sync, SyncState::OutOfSync);
        assert_eq!(comparison.health.state, HealthState::Missing);
    }

    #[test]
    fn drift_names_each_object_and_who_changed_it_but_never_driftless_itself() {
        let live = |manager: &str| {
            json!({ "kind": "Deployment", "metadata": { "managedFields": [
                { "manager": manager, "operation": "Update", "time": "2026-01-01T00:00:00Z" }
            ] } })
        };
        let by_kubectl = ObjectStatus::of(&object("web"), Some(&live("kubectl")), changed(), "driftless");
        let by_us = ObjectStatus::of(&object("api"), Some(&live("driftless")), changed(), "driftless");
        let deleted = ObjectStatus::of(
            &object("db"),
            None,
            ObjectDiff::Missing {
                desired: String::new(),
            },
            "driftless",
        );
        let comparison = AppComparison::new("app", "abc", vec![by_kubectl, by_us, deleted], Vec::new());
        assert_eq!(
            comparison.describe_drift(),
            "apps/Deployment/default/web changed by kubectl; apps/Deployment/default/api changed; \
             apps/Deployment/default/db deleted"
        );
        assert_eq!(
            AppComparison::new("app", "abc", Vec::new(), Vec::new()).describe_drift(),
            "objects changed"
        );
    }
}
