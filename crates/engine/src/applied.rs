//! "Is this object already as Git wants it?" without asking the API server: the hash of the
//! manifest last brought in sync and the fingerprint of the live object right after, compared with
//! today's manifest and the live object at hand (see `driftless_core::fingerprint`).

use std::collections::BTreeMap;

use driftless_core::application::{Application, IgnoreDifference};
use driftless_core::diff::rule_matches;
use driftless_core::fingerprint::{desired_hash, live_fingerprint};
use driftless_core::health;
use driftless_core::plan::object_sync_option;
use driftless_core::{DesiredObject, ObjectRef};
use driftless_kube::FIELD_MANAGER;
use driftless_store::AppliedState;
use serde_json::Value;

pub(crate) fn rules_for<'a>(app: &'a Application, reference: &ObjectRef) -> Vec<&'a IgnoreDifference> {
    app.ignore_differences
        .iter()
        .filter(|rule| rule_matches(rule, reference))
        .collect()
}

/// The object's desired hash, including what changes how it is applied (ignore rules, Replace).
pub(crate) fn desired_hash_of(app: &Application, object: &DesiredObject) -> String {
    let replace = object_sync_option(object, "Replace").unwrap_or(app.sync_policy.replace);
    let context = format!("{:?} replace={replace}", rules_for(app, &object.reference));
    desired_hash(&object.manifest, &context)
}

pub(crate) fn fingerprint_of(app: &Application, reference: &ObjectRef, live: &Value) -> Option<String> {
    live_fingerprint(live, FIELD_MANAGER, &rules_for(app, reference))
}

pub(crate) fn resource_version(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

/// The state to remember for an object that is in sync now, if driftless owns any of its fields.
pub(crate) fn state_of(app: &Application, object: &DesiredObject, live: &Value) -> Option<AppliedState> {
    let reference = &object.reference;
    Some(AppliedState {
        desired_hash: desired_hash_of(app, object),
        fingerprint: fingerprint_of(app, reference, live)?,
        resource_version: resource_version(live).map(str::to_owned),
        health: Some(health::assess(&reference.group, &reference.kind, live)),
    })
}

/// `true` when the object was brought in sync from this very manifest and nobody has touched the
/// fields driftless owns since: `live_fingerprint` (from a read, or the watch cache) is the one
/// recorded then.
pub(crate) fn unchanged_since(
    recorded: &BTreeMap<ObjectRef, AppliedState>,
    app: &Application,
    object: &DesiredObject,
    live_fingerprint: Option<&str>,
) -> bool {
    let Some(recorded) = recorded.get(&object.reference) else {
        return false;
    };
    live_fingerprint == Some(recorded.fingerprint.as_str())
        && recorded.desired_hash == desired_hash_of(app, object)
}
