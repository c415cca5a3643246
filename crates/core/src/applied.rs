//! "Is this object already as Git wants it?" without asking the API server: the hash of the
//! manifest last brought in sync and the fingerprint of the live object right after, compared with
//! today's manifest and the live object at hand (see [`crate::fingerprint`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::{Application, IgnoreDifference};
use crate::diff::rule_matches;
use crate::fingerprint::{desired_hash, live_fingerprint};
use crate::health::{self, Health};
use crate::plan::{FIELD_MANAGER, object_sync_option};
use crate::{DesiredObject, ObjectRef};

/// What an object looked like when driftless last brought it in sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedState {
    pub desired_hash: String,
    pub fingerprint: String,
    /// The object's resourceVersion when this was recorded: while the live object still has it,
    /// it is the object seen then (fingerprint and health included) without reading it again.
    pub resource_version: Option<String>,
    /// The object's health at that resourceVersion.
    pub health: Option<Health>,
}

/// The application's ignore rules that apply to the object.
#[must_use]
pub fn rules_for<'a>(app: &'a Application, reference: &ObjectRef) -> Vec<&'a IgnoreDifference> {
    app.ignore_differences
        .iter()
        .filter(|rule| rule_matches(rule, reference))
        .collect()
}

/// The object's desired hash, including what changes how it is applied (ignore rules, Replace).
#[must_use]
pub fn applied_hash(app: &Application, object: &DesiredObject) -> String {
    let replace = object_sync_option(object, "Replace").unwrap_or(app.sync_policy.replace);
    let context = format!("{:?} replace={replace}", rules_for(app, &object.reference));
    desired_hash(&object.manifest, &context)
}

/// The fingerprint of the fields driftless owns in the live object, ignored fields left out.
#[must_use]
pub fn applied_fingerprint(app: &Application, reference: &ObjectRef, live: &Value) -> Option<String> {
    live_fingerprint(live, FIELD_MANAGER, &rules_for(app, reference))
}

/// The live object's `metadata.resourceVersion`.
#[must_use]
pub fn resource_version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// The state to remember for an object that is in sync now, if driftless owns any of its fields.
#[must_use]
pub fn applied_state(app: &Application, object: &DesiredObject, live: &Value) -> Option<AppliedState> {
    let reference = &object.reference;
    Some(AppliedState {
        desired_hash: applied_hash(app, object),
        fingerprint: applied_fingerprint(app, reference, live)?,
        resource_version: resource_version(live).map(str::to_owned),
        health: Some(health::assess(&reference.group, &reference.kind, live)),
    })
}

/// `true` when the object was brought in sync from this very manifest and nobody has touched the
/// fields driftless owns since: `live_fingerprint` (from a read, or the watch cache) is the one
/// recorded then.
#[must_use]
pub fn unchanged_since(
    recorded: &BTreeMap<ObjectRef, AppliedState>,
    app: &Application,
    object: &DesiredObject,
    live_fingerprint: Option<&str>,
) -> bool {
    let Some(recorded) = recorded.get(&object.reference) else {
        return false;
    };
    live_fingerprint == Some(recorded.fingerprint.as_str())
        && recorded.desired_hash == applied_hash(app, object)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{GroupVersionKind, SourceLocation};

    fn app(replace: bool) -> Application {
        let mut app = tests_support::application();
        app.sync_policy.replace = replace;
        app
    }

    fn config_map(data: &str) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version("v1", "ConfigMap").expect("valid");
        DesiredObject {
            reference: ObjectRef::new(&gvk, Some("default"), "settings"),
            gvk,
            manifest: json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "settings" }, "data": { "a": data } }),
            source: SourceLocation {
                file: "cm.yaml".into(),
                document: 0,
                line: None,
            },
        }
    }

    fn live(data: &str, resource_version: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "settings", "resourceVersion": resource_version,
                "managedFields": [{
                    "manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1",
                    "fieldsV1": { "f:data": { "f:a": {} } }
                }]
            },
            "data": { "a": data }
        })
    }

    #[test]
    fn an_object_is_unchanged_while_both_its_manifest_and_its_owned_fields_are() {
        let app = app(false);
        let object = config_map("1");
        let state = applied_state(&app, &object, &live("1", "7")).expect("driftless owns fields");
        assert_eq!(state.resource_version.as_deref(), Some("7"));
        let recorded = [(object.reference.clone(), state)].into_iter().collect();
        let now = applied_fingerprint(&app, &object.reference, &live("1", "8"));
        assert!(unchanged_since(&recorded, &app, &object, now.as_deref()));
        // Someone changed a field driftless owns.
        let edited = applied_fingerprint(&app, &object.reference, &live("2", "9"));
        assert!(!unchanged_since(&recorded, &app, &object, edited.as_deref()));
        // Git changed.
        assert!(!unchanged_since(
            &recorded,
            &app,
            &config_map("3"),
            now.as_deref()
        ));
        // Never recorded.
        assert!(!unchanged_since(&BTreeMap::new(), &app, &object, now.as_deref()));
    }

    #[test]
    fn how_an_object_is_applied_is_part_of_its_hash() {
        let object = config_map("1");
        assert_ne!(
            applied_hash(&app(false), &object),
            applied_hash(&app(true), &object)
        );
        assert_eq!(
            applied_hash(&app(false), &object),
            applied_hash(&app(false), &object)
        );
    }

    #[test]
    fn nothing_is_recorded_of_an_object_driftless_owns_no_field_of() {
        let mut foreign = live("1", "3");
        foreign["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        assert_eq!(applied_state(&app(false), &config_map("1"), &foreign), None);
    }
}

/// An application for the core's own tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use std::collections::BTreeMap;

    use crate::application::Application;

    pub(crate) fn application() -> Application {
        use crate::application::{Destination, Renderer, Retry, Source, SyncPolicy};
        Application {
            name: "web".into(),
            labels: BTreeMap::new(),
            source: Source {
                repo_url: "file:///r".into(),
                revision: "main".into(),
                path: String::new(),
                renderer: Renderer::Detect,
            },
            destination: Destination {
                cluster: "in-cluster".into(),
                namespace: Some("default".into()),
            },
            sync_policy: SyncPolicy {
                automated: None,
                interval: std::time::Duration::from_mins(3),
                retry: Retry::default(),
                create_namespace: false,
                prune_last: false,
                replace: false,
                allow_empty: false,
            },
            ignore_differences: Vec::new(),
            decryption: None,
            verify: None,
            project: None,
            post_build: None,
        }
    }
}
