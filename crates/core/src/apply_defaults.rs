//! Defaults set on desired manifests before they are diffed and applied with server-side apply,
//! so that what `kubectl apply` takes, driftless takes.
//!
//! Server-side apply merges lists by their keys, and the API servers before 1.21 do not default a
//! key that is missing before merging: a Service port or a container port without `protocol`
//! (part of their list-map keys) is refused outright ("associative list with keys has an element
//! that omits key field \"protocol\"", kubernetes#98576, structured-merge-diff#130), although
//! client-side `kubectl apply` takes it and most published manifests — Argo CD's guestbook among
//! them — leave it out. Flux's apply library sets the same defaults for the same reason
//! (`ssa/normalize` in fluxcd/pkg); this is its list, written for untyped JSON:
//!
//! - `protocol: TCP` on every Service port, and on every port of every container, init container
//!   and ephemeral container of a Pod or of the pod template of ReplicationController,
//!   PodTemplate, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and CronJob. TCP is what
//!   the API server defaults, so the live object then shows no difference for it.
//! - A Secret's `stringData` moved into `data` (base64), where the API server puts it anyway:
//!   applied as `stringData`, a key later removed from Git stays in the Secret's `data`
//!   (kubernetes#108008).
//!
//! Only fields the manifest leaves out are written; a value Git sets is never changed. Flux's
//! typed round trip also rewrites quantities into canonical form; driftless does not need that:
//! its diff compares the API server's own dry-run answer (already canonical) with the live object,
//! and its "unchanged" hash compares Git with Git.

use serde_json::{Map, Value};

/// The protocol the API server defaults a port to.
const DEFAULT_PROTOCOL: &str = "TCP";

/// Sets, in place, the defaults server-side apply needs on `manifest` (see the module docs).
/// Manifests of other kinds, and fields of unexpected shape, are left as they are: the API
/// server's validation names those better than a guess here would.
pub fn set_apply_defaults(manifest: &mut Value) {
    let Some(api_version) = manifest.get("apiVersion").and_then(Value::as_str) else {
        return;
    };
    let group = api_version
        .rsplit_once('/')
        .map_or("", |(group, _)| group)
        .to_owned();
    let kind = manifest
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match (group.as_str(), kind.as_str()) {
        ("", "Service") => {
            if let Some(ports) = manifest.pointer_mut("/spec/ports") {
                default_protocols(ports);
            }
        }
        ("", "Secret") => move_string_data(manifest),
        _ => {
            if let Some(pointer) = pod_spec_pointer(&group, &kind)
                && let Some(pod_spec) = manifest.pointer_mut(pointer)
            {
                for containers in ["containers", "initContainers", "ephemeralContainers"] {
                    let Some(Value::Array(containers)) = pod_spec.get_mut(containers) else {
                        continue;
                    };
                    for ports in containers
                        .iter_mut()
                        .filter_map(|container| container.get_mut("ports"))
                    {
                        default_protocols(ports);
                    }
                }
            }
        }
    }
}

/// Where a kind keeps its pod spec, for the kinds that have one.
fn pod_spec_pointer(group: &str, kind: &str) -> Option<&'static str> {
    match (group, kind) {
        ("", "Pod") => Some("/spec"),
        ("", "PodTemplate") => Some("/template/spec"),
        ("", "ReplicationController")
        | ("apps" | "extensions", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job") => Some("/spec/template/spec"),
        ("batch", "CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// `protocol: TCP` on each port (an object in the list) without one, or with an empty one.
fn default_protocols(ports: &mut Value) {
    let Value::Array(ports) = ports else {
        return;
    };
    for port in ports {
        let Value::Object(port) = port else {
            continue;
        };
        let unset = match port.get("protocol") {
            None | Some(Value::Null) => true,
            Some(Value::String(protocol)) => protocol.is_empty(),
            Some(_) => false,
        };
        if unset {
            port.insert("protocol".to_owned(), Value::from(DEFAULT_PROTOCOL));
        }
    }
}

/// `stringData` into `data`, base64-encoded, over a `data` key of the same name (the API
/// server's rule); left alone unless every value is a string and `data` is a map or absent.
fn move_string_data(manifest: &mut Value) {
    use base64::Engine as _;
    let Some(object) = manifest.as_object_mut() else {
        return;
    };
    let movable = matches!(object.get("stringData"), Some(Value::Object(string_data))
        if !string_data.is_empty() && string_data.values().all(Value::is_string))
        && matches!(object.get("data"), None | Some(Value::Null | Value::Object(_)));
    if !movable {
        return;
    }
    let Some(Value::Object(string_data)) = object.remove("stringData") else {
        return;
    };
    let data = object
        .entry("data")
        .and_modify(|data| {
            if data.is_null() {
                *data = Value::Object(Map::new());
            }
        })
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(data) = data else {
        return;
    };
    for (key, value) in string_data {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_str().unwrap_or_default());
        data.insert(key, Value::from(encoded));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::set_apply_defaults;

    fn defaulted(mut manifest: Value) -> Value {
        set_apply_defaults(&mut manifest);
        manifest
    }

    fn yaml(manifest: &Value) -> String {
        crate::diff::to_yaml(manifest)
    }

    /// Argo CD's guestbook (argoproj/argocd-example-apps, guestbook/guestbook-ui-svc.yaml).
    #[test]
    fn a_service_port_without_protocol_gets_tcp() {
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "guestbook-ui"},
            "spec": {
                "ports": [{"port": 80, "targetPort": 80}, {"port": 53, "protocol": "UDP"}, {"port": 81, "protocol": ""}],
                "selector": {"app": "guestbook-ui"}
            }
        });
        insta::assert_snapshot!(yaml(&defaulted(service)));
    }

    #[test]
    fn every_container_list_of_every_pod_template_kind_gets_tcp() {
        let pod_spec = json!({
            "containers": [{"name": "web", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"name": "init", "ports": [{"containerPort": 9000, "protocol": null}]}],
            "ephemeralContainers": [{"name": "debug", "ports": [{"containerPort": 9001}]}]
        });
        let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec});
        let kinds = [
            ("v1", "Pod", json!({"spec": pod_spec})),
            ("v1", "PodTemplate", json!({"template": template})),
            (
                "v1",
                "ReplicationController",
                json!({"spec": {"template": template}}),
            ),
            ("apps/v1", "Deployment", json!({"spec": {"template": template}})),
            ("apps/v1", "ReplicaSet", json!({"spec": {"template": template}})),
            ("apps/v1", "StatefulSet", json!({"spec": {"template": template}})),
            ("apps/v1", "DaemonSet", json!({"spec": {"template": template}})),
            (
                "extensions/v1beta1",
                "Deployment",
                json!({"spec": {"template": template}}),
            ),
            ("batch/v1", "Job", json!({"spec": {"template": template}})),
            (
                "batch/v1beta1",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
            ),
            (
                "batch/v1",
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
            ),
        ];
        let expected = json!({
            "containers": [{"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}]}],
            "initContainers": [{"name": "init", "ports": [{"containerPort": 9000, "protocol": "TCP"}]}],
            "ephemeralContainers": [{"name": "debug", "ports": [{"containerPort": 9001, "protocol": "TCP"}]}]
        });
        for (api_version, kind, body) in kinds {
            let mut manifest = body;
            manifest["apiVersion"] = json!(api_version);
            manifest["kind"] = json!(kind);
            let manifest = defaulted(manifest);
            let pointer =
                super::pod_spec_pointer(api_version.rsplit_once('/').map_or("", |(group, _)| group), kind)
                    .expect("a kind with a pod spec");
            assert_eq!(manifest.pointer(pointer), Some(&expected), "{api_version} {kind}");
        }
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"template": template}});
        insta::assert_snapshot!(yaml(&defaulted(deployment)));
    }

    #[test]
    fn a_secrets_string_data_moves_into_data_over_a_key_of_the_same_name() {
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds"},
            "data": {"user": "b2xk", "token": "dG9rZW4="},
            "stringData": {"user": "admin", "password": "hunter2"}
        });
        insta::assert_snapshot!(yaml(&defaulted(secret)));
        let only_string_data = json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"a": "b"}});
        assert_eq!(
            defaulted(only_string_data),
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "Yg=="}})
        );
    }

    /// What the API server should judge stays as Git wrote it.
    #[test]
    fn other_kinds_groups_and_shapes_are_left_alone() {
        let untouched = [
            json!({"apiVersion": "example.com/v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"ports": "80"}}),
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": "80"}}),
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [80, {"port": 81, "protocol": 6}]}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": {"name": "web"}}}}}),
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"a": 1}}),
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {"a": "b"}, "data": "c"}),
            json!({"apiVersion": "v1", "kind": "Secret", "stringData": {}}),
            json!({"kind": "Service", "spec": {"ports": [{"port": 80}]}}),
            json!("not an object"),
        ];
        for manifest in untouched {
            assert_eq!(defaulted(manifest.clone()), manifest);
        }
    }

    #[test]
    fn defaults_are_idempotent() {
        let service =
            defaulted(json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}));
        assert_eq!(defaulted(service.clone()), service);
    }
}
