//! Fingerprints: what lets a reconcile decide "nothing changed" without asking the API server.
//!
//! - [`live_fingerprint`] hashes the part of a live object that a field manager owns — the fields
//!   listed in its server-side-apply `managedFields` entry, with their values — minus what
//!   ignoreDifferences leaves alone. Another writer changing one of those fields (`kubectl edit`,
//!   `scale`, `label --overwrite`) changes the values or moves the field to its own manager, and
//!   with it the fingerprint; changes to fields the manager does not own (status, an HPA's
//!   replicas when Git sets none, labels added by others) leave it alone. That is exactly drift.
//! - [`desired_hash`] hashes what Git asks for, so "the same manifest as last time" is one
//!   comparison.
//!
//! Hashes are SHA-256 over a canonical encoding (object keys sorted), truncated to 128 bits and
//! written in hex; they are stored, so they must not depend on the process or the Rust version.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::application::IgnoreDifference;
use crate::diff::strip_ignored;

/// The fingerprint of the fields `manager` owns through server-side apply in `object`; `None`
/// when it owns none (the object was not applied by it, or everything moved to other managers).
#[must_use]
pub fn live_fingerprint(object: &Value, manager: &str, ignore: &[&IgnoreDifference]) -> Option<String> {
    let fields = owned_fields(object, manager)?;
    // A copy only when ignore rules must strip something: this runs for every live object.
    let visible = if ignore.is_empty() {
        std::borrow::Cow::Borrowed(object)
    } else {
        let mut stripped = object.clone();
        strip_ignored(&mut stripped, ignore, Some(object));
        std::borrow::Cow::Owned(stripped)
    };
    let projection = project(&visible, fields);
    let mut hasher = Sha256::new();
    canonical_map(fields, &mut hasher);
    hasher.update([0xff]);
    canonical(&projection, &mut hasher);
    Some(hex(&hasher.finalize()[..16]))
}

/// The hash of a desired manifest together with whatever else changes how it is applied
/// (`context`: e.g. the ignore rules and sync options in effect).
#[must_use]
pub fn desired_hash(manifest: &Value, context: &str) -> String {
    let mut hasher = Sha256::new();
    canonical(manifest, &mut hasher);
    hasher.update([0xff]);
    hasher.update(context.as_bytes());
    hex(&hasher.finalize()[..16])
}

/// Who changed `object` last, other than `ours`: the field manager whose managedFields entry is
/// newest (`kubectl (scale)` when through a subresource), leaving out status writers (controllers
/// report status all the time; it is never drift). `None` when only `ours` manages it.
#[must_use]
pub fn last_other_manager(object: &Value, ours: &str) -> Option<String> {
    let entries = object.pointer("/metadata/managedFields")?.as_array()?;
    // RFC 3339 times in UTC compare as text; on equal times the later entry wins.
    let newest = entries
        .iter()
        .filter(|entry| entry["manager"].as_str().is_some_and(|manager| manager != ours))
        .filter(|entry| entry["subresource"] != "status")
        .max_by(|a, b| {
            a["time"]
                .as_str()
                .unwrap_or("")
                .cmp(b["time"].as_str().unwrap_or(""))
        })?;
    let manager = newest["manager"].as_str()?;
    Some(match newest["subresource"].as_str() {
        Some(subresource) if !subresource.is_empty() => format!("{manager} ({subresource})"),
        _ => manager.to_owned(),
    })
}

/// `fieldsV1` of `manager`'s `Apply` entry in `metadata.managedFields`.
fn owned_fields<'a>(object: &'a Value, manager: &str) -> Option<&'a Map<String, Value>> {
    object
        .pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find(|entry| {
            entry.get("manager").and_then(Value::as_str) == Some(manager)
                && entry.get("operation").and_then(Value::as_str) == Some("Apply")
        })?
        .get("fieldsV1")?
        .as_object()
        .filter(|fields| !fields.is_empty())
}

/// The values of `value` at the fields of a `fieldsV1` set. Keys keep the set's own names
/// (`f:name`, `k:{...}`, `v:...`, `i:N`), so the projection is only ever hashed, never applied.
fn project(value: &Value, fields: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (key, children) in fields {
        let children = children.as_object();
        let found = if let Some(name) = key.strip_prefix("f:") {
            value.get(name)
        } else if let Some(item_key) = key.strip_prefix("k:") {
            find_keyed_item(value, item_key)
        } else if let Some(item) = key.strip_prefix("v:") {
            let item: Option<Value> = serde_json::from_str(item).ok();
            value
                .as_array()
                .and_then(|items| items.iter().find(|v| Some(*v) == item.as_ref()))
        } else if let Some(index) = key.strip_prefix("i:") {
            index.parse::<usize>().ok().and_then(|i| value.get(i))
        } else {
            // "." marks the field itself; its value is already part of the parent.
            continue;
        };
        let projected = match (found, children) {
            (None, _) => Value::Null,
            (Some(found), Some(children)) if children.keys().any(|k| k != ".") => project(found, children),
            (Some(found), _) => found.clone(),
        };
        out.insert(key.clone(), projected);
    }
    Value::Object(out)
}

/// The item of a list whose fields equal every field of `key` (a JSON object, as in `k:{...}`).
fn find_keyed_item<'a>(list: &'a Value, key: &str) -> Option<&'a Value> {
    let key: Map<String, Value> = serde_json::from_str(key).ok()?;
    list.as_array()?.iter().find(|item| {
        key.iter().all(|(field, expected)| {
            item.get(field)
                .is_some_and(|actual| loosely_equal(actual, expected))
        })
    })
}

/// Keys in `fieldsV1` are JSON, but ports may appear as numbers where the object has numbers and
/// strings elsewhere; compare by value, then by text.
fn loosely_equal(actual: &Value, expected: &Value) -> bool {
    actual == expected || actual.to_string().trim_matches('"') == expected.to_string().trim_matches('"')
}

/// Feeds a canonical encoding of `value` (object keys sorted, type-tagged) to the hasher.
fn canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Null => hasher.update(b"n"),
        Value::Bool(b) => hasher.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            hasher.update(b"#");
            hasher.update(n.to_string().as_bytes());
            hasher.update(b";");
        }
        Value::String(s) => {
            hasher.update(b"s");
            hasher.update((s.len() as u64).to_le_bytes());
            hasher.update(s.as_bytes());
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                canonical(item, hasher);
            }
            hasher.update(b"]");
        }
        Value::Object(map) => canonical_map(map, hasher),
    }
}

fn canonical_map(map: &Map<String, Value>, hasher: &mut Sha256) {
    hasher.update(b"{");
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        canonical(&map[key], hasher);
    }
    hasher.update(b"}");
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_newest_other_manager_is_who_changed_an_object() {
        let object = serde_json::json!({"metadata": {"managedFields": [
            {"manager": "kubectl-edit", "time": "2026-01-01T10:00:00Z"},
            {"manager": "driftless", "time": "2026-01-01T12:00:00Z"},
            {"manager": "kubectl", "subresource": "scale", "time": "2026-01-01T11:00:00Z"},
            {"manager": "kube-controller-manager", "subresource": "status", "time": "2026-01-01T13:00:00Z"},
        ]}});
        assert_eq!(
            last_other_manager(&object, "driftless").as_deref(),
            Some("kubectl (scale)")
        );
        let ours_only = serde_json::json!({"metadata": {"managedFields": [{"manager": "driftless"}]}});
        assert_eq!(last_other_manager(&ours_only, "driftless"), None);
    }

    use serde_json::json;

    use super::*;

    /// A Deployment as the API server returns it after `driftless` applied replicas, a label and
    /// one container's image.
    fn applied() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "labels": {"app": "web", "driftless.dev/application": "shop"},
                "resourceVersion": "100",
                "managedFields": [
                    {
                        "manager": "driftless",
                        "operation": "Apply",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {
                            "f:metadata": {"f:labels": {"f:app": {}, "f:driftless.dev/application": {}}},
                            "f:spec": {
                                "f:replicas": {},
                                "f:template": {"f:spec": {"f:containers": {
                                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}
                                }}}
                            }
                        }
                    },
                    {
                        "manager": "kube-controller-manager",
                        "operation": "Update",
                        "subresource": "status",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:status": {"f:replicas": {}}}
                    }
                ]
            },
            "spec": {
                "replicas": 2,
                "template": {"spec": {"containers": [
                    {"name": "web", "image": "web:1", "imagePullPolicy": "IfNotPresent"}
                ]}}
            },
            "status": {"replicas": 2}
        })
    }

    fn fingerprint(object: &Value) -> Option<String> {
        live_fingerprint(object, "driftless", &[])
    }

    #[test]
    fn changes_outside_the_managed_fields_are_not_drift() {
        let before = fingerprint(&applied()).expect("driftless owns fields");
        let mut after = applied();
        after["status"]["replicas"] = json!(1);
        after["metadata"]["resourceVersion"] = json!("101");
        after["metadata"]["labels"]["added-by-someone"] = json!("x");
        after["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        assert_eq!(fingerprint(&after).as_deref(), Some(before.as_str()));
    }

    #[test]
    fn a_changed_managed_value_is_drift() {
        let before = fingerprint(&applied());
        let mut scaled = applied();
        scaled["spec"]["replicas"] = json!(5);
        assert_ne!(fingerprint(&scaled), before);
        let mut edited = applied();
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:evil");
        assert_ne!(fingerprint(&edited), before);
        let mut relabelled = applied();
        relabelled["metadata"]["labels"]["app"] = json!("other");
        assert_ne!(fingerprint(&relabelled), before);
    }

    #[test]
    fn a_field_taken_over_by_another_manager_is_drift() {
        let before = fingerprint(&applied());
        let mut taken = applied();
        // `kubectl scale` with the same value moves nothing; with a new one the field leaves
        // driftless's set even if the value were later put back by hand.
        taken["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
            .as_object_mut()
            .expect("spec")
            .remove("f:replicas");
        assert_ne!(fingerprint(&taken), before);
    }

    #[test]
    fn ignored_fields_are_left_out() {
        let rule = IgnoreDifference {
            group: Some("apps".into()),
            kind: "Deployment".into(),
            name: None,
            namespace: None,
            json_pointers: vec!["/spec/replicas".into()],
            managed_fields_managers: Vec::new(),
        };
        let before = live_fingerprint(&applied(), "driftless", &[&rule]);
        let mut scaled = applied();
        scaled["spec"]["replicas"] = json!(7);
        assert_eq!(live_fingerprint(&scaled, "driftless", &[&rule]), before);
    }

    #[test]
    fn objects_driftless_never_applied_have_no_fingerprint() {
        let mut foreign = applied();
        foreign["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        assert_eq!(fingerprint(&foreign), None);
    }

    #[test]
    fn desired_hashes_ignore_key_order_but_not_values_or_context() {
        let a = json!({"kind": "ConfigMap", "data": {"a": "1", "b": "2"}});
        let b = json!({"data": {"b": "2", "a": "1"}, "kind": "ConfigMap"});
        assert_eq!(desired_hash(&a, ""), desired_hash(&b, ""));
        assert_ne!(desired_hash(&a, ""), desired_hash(&a, "Replace=true"));
        assert_ne!(
            desired_hash(&a, ""),
            desired_hash(&json!({"kind": "ConfigMap", "data": {"a": "1", "b": "3"}}), "")
        );
        assert_eq!(desired_hash(&a, "").len(), 32);
    }
}
