//! What would really change: the object as the server would have it after our apply (a
//! server-side apply dry-run) against the live object, both normalised so only meaningful
//! differences remain.
//!
//! Normalisation removes what the server owns (status, `managedFields`, `resourceVersion`, `uid`,
//! timestamps, `generation`, `last-applied-configuration`), the JSON pointers of matching
//! `ignoreDifferences` rules, and every field owned by a manager those rules name (as recorded in
//! the live object's `managedFields`, e.g. `spec.replicas` owned by an autoscaler). Because both
//! sides went through the server, defaults the manifest does not set appear on both and cancel out.
//!
//! Secret values never reach a diff: each is replaced by a short salted hash, so a change is
//! visible but the value is not.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::ObjectRef;
use crate::application::{IgnoreDifference, NO_SENSITIVE_DATA, SensitiveData};

/// How values that must not be shown are shown: as a short hash salted per process, for Secret
/// values and whatever else the configuration names sensitive.
#[derive(Debug, Clone, Copy)]
pub struct Redaction<'a> {
    pub salt: &'a [u8],
    pub sensitive: &'a SensitiveData,
}

impl<'a> Redaction<'a> {
    /// Secrets only.
    #[must_use]
    pub fn secrets(salt: &'a [u8]) -> Self {
        Self {
            salt,
            sensitive: &NO_SENSITIVE_DATA,
        }
    }
}

/// Metadata fields the server maintains; never a difference.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
];

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The outcome of comparing one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ObjectDiff {
    /// Declared in Git, absent from the cluster. `desired` is the redacted YAML that would be created.
    Missing {
        desired: String,
    },
    Unchanged,
    /// A redacted unified diff, `live` → `desired`, and the same change field by field.
    Changed {
        unified: String,
        #[serde(default)]
        changes: Vec<FieldChange>,
    },
}

/// One field that differs between the live object and Git, both redacted as in the unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    /// A JSON pointer (RFC 6901) into the object: `/spec/replicas`, `/data/a~1b`.
    pub path: String,
    /// `None`: the field is only in Git (it would be added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Value>,
    /// `None`: the field is only in the cluster (it would be removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Value>,
}

impl ObjectDiff {
    #[must_use]
    pub fn is_in_sync(&self) -> bool {
        matches!(self, Self::Unchanged)
    }
}

/// Whether `rule` applies to `object`.
#[must_use]
pub fn rule_matches(rule: &IgnoreDifference, object: &ObjectRef) -> bool {
    rule.group.as_ref().is_none_or(|group| *group == object.group)
        && rule.kind == object.kind
        && rule.name.as_ref().is_none_or(|name| *name == object.name)
        && rule
            .namespace
            .as_ref()
            .is_none_or(|namespace| Some(namespace) == object.namespace.as_ref())
}

/// Compares the live object (if any) with what the server says it would become after our apply.
#[must_use]
pub fn compare(
    reference: &ObjectRef,
    live: Option<&Value>,
    would_be: &Value,
    rules: &[IgnoreDifference],
    redaction: &Redaction<'_>,
) -> ObjectDiff {
    let rules: Vec<&IgnoreDifference> = rules
        .iter()
        .filter(|rule| rule_matches(rule, reference))
        .collect();
    let Some(live) = live else {
        let desired = normalise(would_be, &rules, None);
        return ObjectDiff::Missing {
            desired: to_yaml(&redact(reference, &desired, redaction)),
        };
    };
    let live_normalised = normalise(live, &rules, Some(live));
    let desired_normalised = normalise(would_be, &rules, Some(live));
    if live_normalised == desired_normalised {
        return ObjectDiff::Unchanged;
    }
    let live_redacted = redact(reference, &live_normalised, redaction);
    let desired_redacted = redact(reference, &desired_normalised, redaction);
    let changes = field_changes_between(&live_redacted, &desired_redacted);
    ObjectDiff::Changed {
        unified: unified_diff(
            &to_yaml(&live_redacted),
            &to_yaml(&desired_redacted),
            &reference.to_string(),
        ),
        changes,
    }
}

/// The fields where `before` and `after` differ, as JSON pointers (see [`FieldChange`]).
#[must_use]
pub fn field_changes_between(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    field_changes(&mut String::new(), Some(before), Some(after), &mut changes);
    changes
}

/// The leaves (or whole subtrees present on one side only) where `live` and `desired` differ,
/// in document order. Lists are compared element by element: a list of different length is
/// one change of the whole list, since an index says nothing once elements moved.
fn field_changes(
    path: &mut String,
    live: Option<&Value>,
    desired: Option<&Value>,
    changes: &mut Vec<FieldChange>,
) {
    if live == desired {
        return;
    }
    let descend = |path: &mut String, key: &str, live, desired, changes: &mut Vec<FieldChange>| {
        let length = path.len();
        path.push('/');
        path.push_str(&key.replace('~', "~0").replace('/', "~1"));
        field_changes(path, live, desired, changes);
        path.truncate(length);
    };
    match (live, desired) {
        (Some(Value::Object(live)), Some(Value::Object(desired))) => {
            for (key, live_value) in live {
                descend(path, key, Some(live_value), desired.get(key), changes);
            }
            for (key, desired_value) in desired.iter().filter(|(key, _)| !live.contains_key(*key)) {
                descend(path, key, None, Some(desired_value), changes);
            }
        }
        (Some(Value::Array(live)), Some(Value::Array(desired))) if live.len() == desired.len() => {
            for (index, (live_value, desired_value)) in live.iter().zip(desired).enumerate() {
                descend(
                    path,
                    &index.to_string(),
                    Some(live_value),
                    Some(desired_value),
                    changes,
                );
            }
        }
        _ => changes.push(FieldChange {
            path: path.clone(),
            live: live.cloned(),
            desired: desired.cloned(),
        }),
    }
}

/// A unified diff between two YAML texts, headed by the object's name.
#[must_use]
pub fn unified_diff(before: &str, after: &str, name: &str) -> String {
    labelled_unified_diff(before, after, &format!("live/{name}"), &format!("desired/{name}"))
}

/// A unified diff between two YAML texts under the given headers.
#[must_use]
pub fn labelled_unified_diff(before: &str, after: &str, from: &str, to: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string()
}

/// The object without server-maintained fields and ignored differences. `live` supplies the
/// `managedFields` that tell which fields ignored managers own.
#[must_use]
pub fn normalise(object: &Value, rules: &[&IgnoreDifference], live: Option<&Value>) -> Value {
    let mut object = object.clone();
    strip_ignored(&mut object, rules, live);
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            metadata.remove(*field);
        }
        if let Some(annotations) = metadata.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove(LAST_APPLIED);
        }
        for field in ["annotations", "labels"] {
            if metadata
                .get(field)
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                metadata.remove(field);
            }
        }
    }
    object
}

/// Removes what `rules` ignore from `object`: their JSON pointers, and every field a manager they
/// name owns according to `live`'s `managedFields`. Used on both sides of a diff, and on a manifest
/// before it is applied, so an ignored difference is never reverted either.
pub fn strip_ignored(object: &mut Value, rules: &[&IgnoreDifference], live: Option<&Value>) {
    for rule in rules {
        for pointer in &rule.json_pointers {
            remove_pointer(object, pointer);
        }
        if let Some(live) = live {
            remove_fields_of_ignored_managers(object, rule, live);
        }
    }
}

/// Removes from `object` every field that a manager `rule` names owns in `live`'s `managedFields`.
fn remove_fields_of_ignored_managers(object: &mut Value, rule: &IgnoreDifference, live: &Value) {
    let entries = live.pointer("/metadata/managedFields").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let manager = entry.get("manager").and_then(Value::as_str).unwrap_or_default();
        if rule
            .managed_fields_managers
            .iter()
            .any(|ignored| ignored == manager)
            && let Some(fields) = entry.get("fieldsV1")
        {
            remove_owned_fields(object, fields);
        }
    }
}

/// Prepares a manifest for applying to an existing object so ignored differences are not reverted:
/// each ignored JSON pointer takes the live value (dropping it instead would make server-side apply
/// delete the field wherever driftless is still its only owner), and fields owned by an ignored
/// manager are left out (that manager keeps them).
pub fn keep_ignored_live_values(manifest: &mut Value, rules: &[&IgnoreDifference], live: &Value) {
    for rule in rules {
        for pointer in &rule.json_pointers {
            match live.pointer(pointer) {
                Some(value) => set_pointer(manifest, pointer, value.clone()),
                None => remove_pointer(manifest, pointer),
            }
        }
        remove_fields_of_ignored_managers(manifest, rule, live);
    }
}

/// Sets the value at an RFC 6901 JSON pointer, creating missing objects on the way (not list items).
fn set_pointer(object: &mut Value, pointer: &str, value: Value) {
    let mut current = object;
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, path)) = segments.split_last() else {
        return;
    };
    for segment in path {
        current = match current {
            Value::Object(map) => map
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Value::Array(items) => match segment.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                *item = value;
            }
        }
        _ => {}
    }
}

/// Removes the value at an RFC 6901 JSON pointer, if present.
fn remove_pointer(object: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let target = if parent.is_empty() {
        Some(object)
    } else {
        object.pointer_mut(parent)
    };
    match target {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = last.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

/// Removes the fields a `fieldsV1` set describes: `f:<name>` fields, `k:{...}` list items by key,
/// `v:<value>` set members and `i:<n>` indices. An empty node means "this whole field". For a list
/// item, `.` means the manager owns the item itself (it added it, e.g. an injected sidecar), so
/// the whole item goes; for a map field it only means the manager created the map, so only the
/// fields it owns go.
fn remove_owned_fields(object: &mut Value, fields: &Value) {
    let Some(fields) = fields.as_object() else { return };
    for (key, child) in fields {
        let children = child.as_object();
        let whole_field = children.is_none_or(|c| c.keys().all(|k| k == "."));
        let whole_item = children.is_none_or(|c| c.is_empty() || c.contains_key("."));
        if let Some(name) = key.strip_prefix("f:") {
            if let Some(map) = object.as_object_mut() {
                if whole_field {
                    map.remove(name);
                } else if let Some(inner) = map.get_mut(name) {
                    remove_owned_fields(inner, child);
                }
            }
        } else if let Some(item_key) = key.strip_prefix("k:") {
            let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(item_key) else {
                continue;
            };
            remove_list_items(object, child, whole_item, |item| {
                wanted.iter().all(|(k, v)| item.get(k) == Some(v))
            });
        } else if let Some(value) = key.strip_prefix("v:") {
            let Ok(wanted) = serde_json::from_str::<Value>(value) else {
                continue;
            };
            remove_list_items(object, child, whole_item, |item| *item == wanted);
        } else if let Some(index) = key.strip_prefix("i:").and_then(|i| i.parse::<usize>().ok()) {
            remove_list_items_at(object, child, whole_item, index);
        }
    }
}

fn remove_list_items(object: &mut Value, child: &Value, whole: bool, matches: impl Fn(&Value) -> bool) {
    let Some(items) = object.as_array_mut() else {
        return;
    };
    if whole {
        items.retain(|item| !matches(item));
    } else {
        for item in items.iter_mut().filter(|item| matches(item)) {
            remove_owned_fields(item, child);
        }
    }
}

fn remove_list_items_at(object: &mut Value, child: &Value, whole: bool, index: usize) {
    let Some(items) = object.as_array_mut() else {
        return;
    };
    if index >= items.len() {
        return;
    }
    if whole {
        items.remove(index);
    } else {
        remove_owned_fields(&mut items[index], child);
    }
}

/// `<redacted sha256:…>`: a short hash of the salt, key and value: equal values show equal
/// hashes, nothing else leaks.
fn masked(salt: &[u8], key: &str, value: &Value) -> Value {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(key.as_bytes());
    hasher.update([0]);
    match value {
        Value::String(text) => hasher.update(text.as_bytes()),
        other => hasher.update(other.to_string().as_bytes()),
    }
    let digest = hasher.finalize();
    let short = digest[..4].iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    });
    Value::String(format!("<redacted sha256:{short}>"))
}

/// Replaces every value of a Secret's `data` and `stringData`, and every annotation and field the
/// configuration names sensitive, with a salted hash; drops a Secret's
/// `last-applied-configuration` (it holds the values too).
#[must_use]
pub fn redact(reference: &ObjectRef, object: &Value, redaction: &Redaction<'_>) -> Value {
    let salt = redaction.salt;
    let mut object = object.clone();
    if reference.group.is_empty() && reference.kind == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(values) = object.get_mut(field).and_then(Value::as_object_mut) {
                for (key, value) in values.iter_mut() {
                    *value = masked(salt, key, value);
                }
            }
        }
        if let Some(annotations) = object
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.remove(LAST_APPLIED);
        }
    }
    let sensitive = redaction.sensitive;
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        for (key, value) in annotations.iter_mut() {
            if sensitive.annotations.iter().any(|name| name == key) {
                *value = masked(salt, key, value);
            }
        }
    }
    for field in &sensitive.fields {
        let matches = field.kind == reference.kind
            && field.group.as_ref().is_none_or(|group| *group == reference.group);
        if !matches {
            continue;
        }
        for pointer in &field.json_pointers {
            if let Some(value) = object.pointer_mut(pointer) {
                *value = masked(salt, pointer, value);
            }
        }
    }
    object
}

/// Removes a Secret's values from `text` (an API server's error about it may quote them, as
/// CVE-2025-23216 showed for another tool): each `stringData` value and each `data` value, both
/// as written and decoded, becomes `<redacted>`. Other objects' text is returned unchanged.
#[must_use]
pub fn scrub_secret_values(text: &str, reference: &ObjectRef, manifest: &Value) -> String {
    use base64::Engine as _;
    if !(reference.group.is_empty() && reference.kind == "Secret") {
        return text.to_owned();
    }
    let mut values: Vec<String> = Vec::new();
    for field in ["data", "stringData"] {
        for value in manifest
            .get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
        {
            let Some(value) = value.as_str() else { continue };
            values.push(value.to_owned());
            let engine = base64::engine::general_purpose::STANDARD;
            if field == "data" {
                if let Some(decoded) = engine.decode(value).ok().and_then(|d| String::from_utf8(d).ok()) {
                    values.push(decoded);
                }
            } else {
                values.push(engine.encode(value));
            }
        }
    }
    // Longest first, so a value that contains another is removed whole; very short values would
    // erase ordinary words of the message and are rarely secrets.
    values.retain(|value| value.len() >= 4);
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    let mut scrubbed = text.to_owned();
    for value in values {
        scrubbed = scrubbed.replace(&value, "<redacted>");
    }
    scrubbed
}

/// YAML with keys in a stable order (serde_json maps are sorted).
#[must_use]
pub fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|err| format!("# cannot render as YAML: {err}\n{value}\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::GroupVersionKind;

    fn reference(api_version: &str, kind: &str) -> ObjectRef {
        ObjectRef::new(
            &GroupVersionKind::from_api_version(api_version, kind).expect("valid"),
            Some("web"),
            "frontend",
        )
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "frontend", "namespace": "web", "uid": "1234", "resourceVersion": "77", "generation": 3,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": { "kubectl.kubernetes.io/last-applied-configuration": "{}" },
                "managedFields": [
                    { "manager": "driftless", "operation": "Apply", "fieldsV1": { "f:spec": { "f:template": {} } } },
                    { "manager": "autoscaler", "operation": "Update", "fieldsV1": { "f:spec": { "f:replicas": {} } } }
                ]
            },
            "spec": { "replicas": replicas, "template": { "spec": { "containers": [
                { "name": "web", "image": image }, { "name": "sidecar", "image": "proxy:1" }
            ] } } },
            "status": { "replicas": replicas, "availableReplicas": 1 }
        })
    }

    fn rule(pointers: &[&str], managers: &[&str]) -> IgnoreDifference {
        IgnoreDifference {
            group: Some("apps".into()),
            kind: "Deployment".into(),
            name: None,
            namespace: None,
            json_pointers: pointers.iter().map(|p| (*p).to_owned()).collect(),
            managed_fields_managers: managers.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[test]
    fn server_maintained_fields_are_never_differences() {
        let live = deployment(2, "web:1");
        let mut would_be = live.clone();
        would_be["metadata"]["resourceVersion"] = json!("78");
        would_be["metadata"]["generation"] = json!(4);
        would_be["status"] = json!({});
        assert_eq!(
            compare(
                &reference("apps/v1", "Deployment"),
                Some(&live),
                &would_be,
                &[],
                &Redaction::secrets(b"salt")
            ),
            ObjectDiff::Unchanged
        );
    }

    #[test]
    fn secret_values_are_scrubbed_from_messages_as_written_and_decoded() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "stringData": {"password": "hunter2-plain"},
            "data": {"token": "c2VjcmV0LXRva2Vu"}
        });
        let message = "Secret \"s\" is invalid: data[x]: Invalid value: \"hunter2-plain\", \"aHVudGVyMi1wbGFpbg==\", \"secret-token\", \"c2VjcmV0LXRva2Vu\"";
        let scrubbed = scrub_secret_values(message, &reference("v1", "Secret"), &secret);
        assert_eq!(
            scrubbed,
            "Secret \"s\" is invalid: data[x]: Invalid value: \"<redacted>\", \"<redacted>\", \"<redacted>\", \"<redacted>\""
        );
        let config_map = scrub_secret_values(message, &reference("v1", "ConfigMap"), &secret);
        assert_eq!(config_map, message, "only Secrets are scrubbed");
    }

    #[test]
    fn configured_annotations_and_fields_are_masked_on_any_kind() {
        let sensitive = SensitiveData {
            annotations: vec!["example.com/token".into()],
            fields: vec![crate::application::SensitiveField {
                group: Some(String::new()),
                kind: "ConfigMap".into(),
                json_pointers: vec!["/data/password".into(), "/data/absent".into()],
            }],
        };
        let redaction = Redaction {
            salt: b"salt",
            sensitive: &sensitive,
        };
        let object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {"example.com/token": "tok-123", "other": "shown"}},
            "data": {"password": "pw-456", "user": "admin"}
        });
        let masked = redact(&reference("v1", "ConfigMap"), &object, &redaction);
        let text = masked.to_string();
        assert!(!text.contains("tok-123") && !text.contains("pw-456"), "{text}");
        assert_eq!(masked["data"]["user"], "admin");
        assert_eq!(masked["metadata"]["annotations"]["other"], "shown");
        assert!(
            masked["data"]["password"]
                .as_str()
                .is_some_and(|v| v.starts_with("<redacted sha256:"))
        );
        assert!(masked.pointer("/data/absent").is_none(), "nothing is added");
        let other_kind = redact(&reference("v1", "Service"), &object, &redaction);
        assert_eq!(other_kind["data"]["password"], "pw-456", "fields are per kind");
    }

    #[test]
    fn a_real_change_is_a_readable_unified_diff() {
        let diff = compare(
            &reference("apps/v1", "Deployment"),
            Some(&deployment(2, "web:1")),
            &deployment(2, "web:2"),
            &[],
            &Redaction::secrets(b"s"),
        );
        let ObjectDiff::Changed { unified, .. } = diff else {
            panic!("the image changed")
        };
        insta::assert_snapshot!(unified);
    }

    #[test]
    fn a_change_is_also_listed_field_by_field_as_json_pointers() {
        let mut live = deployment(2, "web:1");
        live["metadata"]["labels"] = json!({"a/b": "x", "gone": "y"});
        let mut desired = deployment(3, "web:2");
        desired["metadata"]["labels"] = json!({"a/b": "z", "new": "n"});
        let ObjectDiff::Changed { changes, .. } = compare(
            &reference("apps/v1", "Deployment"),
            Some(&live),
            &desired,
            &[],
            &Redaction::secrets(b"s"),
        ) else {
            panic!("replicas, image and labels changed")
        };
        let rendered: Vec<String> = changes
            .iter()
            .map(|change| {
                let side =
                    |value: &Option<Value>| value.as_ref().map_or_else(|| "-".to_owned(), Value::to_string);
                format!(
                    "{} {} -> {}",
                    change.path,
                    side(&change.live),
                    side(&change.desired)
                )
            })
            .collect();
        insta::assert_snapshot!(rendered.join("\n"));
    }

    #[test]
    fn lists_of_another_length_are_one_change() {
        let mut changes = Vec::new();
        field_changes(
            &mut String::new(),
            Some(&json!({"args": ["a", "b"], "same": [1]})),
            Some(&json!({"args": ["a"], "same": [1]})),
            &mut changes,
        );
        assert_eq!(
            changes,
            vec![FieldChange {
                path: "/args".into(),
                live: Some(json!(["a", "b"])),
                desired: Some(json!(["a"])),
            }]
        );
    }

    #[test]
    fn ignored_pointers_and_managers_are_not_differences() {
        let reference = reference("apps/v1", "Deployment");
        let (live, would_be) = (deployment(5, "web:1"), deployment(2, "web:1"));
        assert!(matches!(
            compare(&reference, Some(&live), &would_be, &[], &Redaction::secrets(b"s")),
            ObjectDiff::Changed { .. }
        ));
        let by_pointer = [rule(&["/spec/replicas"], &[])];
        assert_eq!(
            compare(
                &reference,
                Some(&live),
                &would_be,
                &by_pointer,
                &Redaction::secrets(b"s")
            ),
            ObjectDiff::Unchanged
        );
        let by_manager = [rule(&[], &["autoscaler"])];
        assert_eq!(
            compare(
                &reference,
                Some(&live),
                &would_be,
                &by_manager,
                &Redaction::secrets(b"s")
            ),
            ObjectDiff::Unchanged
        );
        let other_kind = [IgnoreDifference {
            kind: "StatefulSet".into(),
            ..rule(&["/spec/replicas"], &[])
        }];
        assert!(matches!(
            compare(
                &reference,
                Some(&live),
                &would_be,
                &other_kind,
                &Redaction::secrets(b"s")
            ),
            ObjectDiff::Changed { .. }
        ));
    }

    #[test]
    fn applies_keep_the_live_value_of_ignored_fields() {
        let live = deployment(5, "web:1");
        let mut manifest = json!({ "spec": { "replicas": 2, "template": { "spec": { "containers": [{ "name": "web", "image": "web:2" }] } } } });
        keep_ignored_live_values(
            &mut manifest,
            &[&rule(&["/spec/replicas", "/metadata/labels/team"], &[])],
            &live,
        );
        assert_eq!(
            manifest["spec"]["replicas"], 5,
            "the live value, not the manifest's"
        );
        assert!(
            manifest.pointer("/metadata/labels/team").is_none(),
            "absent live: left out"
        );
        assert_eq!(
            manifest["spec"]["template"]["spec"]["containers"][0]["image"], "web:2",
            "the rest is applied"
        );

        let mut by_manager = json!({ "spec": { "replicas": 2 } });
        keep_ignored_live_values(&mut by_manager, &[&rule(&[], &["autoscaler"])], &live);
        assert!(
            by_manager.pointer("/spec/replicas").is_none(),
            "the autoscaler keeps owning replicas"
        );
    }

    #[test]
    fn owned_map_fields_keep_the_map() {
        let mut object = json!({ "metadata": { "annotations": { "ours": "a", "theirs": "b" } } });
        let fields = json!({ "f:metadata": { "f:annotations": { ".": {}, "f:theirs": {} } } });
        remove_owned_fields(&mut object, &fields);
        assert_eq!(object, json!({ "metadata": { "annotations": { "ours": "a" } } }));
    }

    #[test]
    fn owned_list_items_are_removed_by_key() {
        let mut object = deployment(1, "web:1");
        let fields = json!({ "f:spec": { "f:template": { "f:spec": { "f:containers": {
            "k:{\"name\":\"sidecar\"}": { ".": {}, "f:image": {} }
        } } } } });
        remove_owned_fields(&mut object, &fields);
        let containers = object
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .expect("containers");
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "web");
    }

    #[test]
    fn secret_values_never_appear_in_diffs() {
        let reference = reference("v1", "Secret");
        let secret = |value: &str| {
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "frontend", "namespace": "web",
                "annotations": { LAST_APPLIED: format!("{{\"data\":{{\"password\":\"{value}\"}}}}") } },
                "data": { "password": value, "user": "YWRtaW4=" } })
        };
        let ObjectDiff::Changed { unified, changes } = compare(
            &reference,
            Some(&secret("b2xk")),
            &secret("bmV3"),
            &[],
            &Redaction::secrets(b"salt"),
        ) else {
            panic!("the password changed");
        };
        assert!(
            !unified.contains("b2xk") && !unified.contains("bmV3") && !unified.contains("YWRtaW4="),
            "{unified}"
        );
        assert!(
            unified.contains("-  password: <redacted sha256:")
                && unified.contains("+  password: <redacted sha256:"),
            "{unified}"
        );
        let structured = serde_json::to_string(&changes).expect("json");
        assert!(
            !structured.contains("b2xk")
                && !structured.contains("bmV3")
                && structured.contains("<redacted sha256:"),
            "{structured}"
        );
        let user_lines: Vec<&str> = unified.lines().filter(|line| line.contains("user:")).collect();
        assert_eq!(
            user_lines.len(),
            1,
            "an unchanged value is context, shown once, redacted: {unified}"
        );
        assert!(
            user_lines[0].starts_with(' ') && user_lines[0].contains("<redacted sha256:"),
            "{unified}"
        );

        let ObjectDiff::Missing { desired } = compare(
            &reference,
            None,
            &secret("c2VjcmV0"),
            &[],
            &Redaction::secrets(b"salt"),
        ) else {
            panic!("missing");
        };
        assert!(
            !desired.contains("c2VjcmV0") && desired.contains("<redacted sha256:"),
            "{desired}"
        );
        let other_salt = redact(&reference, &secret("c2VjcmV0"), &Redaction::secrets(b"pepper"));
        assert_ne!(
            redact(&reference, &secret("c2VjcmV0"), &Redaction::secrets(b"salt"))["data"],
            other_salt["data"],
            "the hash is salted"
        );
    }
}
