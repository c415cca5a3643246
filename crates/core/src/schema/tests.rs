use serde_json::{Value, json};

use super::*;

fn violations(schemas: &Schemas, object: &Value) -> Vec<String> {
    match schemas.validate(object) {
        Validation::Valid => Vec::new(),
        Validation::NoSchema { kind } => vec![format!("no schema: {kind}")],
        Validation::Invalid(found) => found
            .into_iter()
            .map(|violation| format!("{}: {}", violation.path, violation.message))
            .collect(),
    }
}

fn deployment(container: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": null},
                "spec": {"containers": [container]}
            }
        }
    })
}

#[test]
fn a_well_formed_deployment_with_the_servers_leniencies_is_valid() {
    let schemas = Schemas::bundled();
    assert_eq!(schemas.version, "v1.20.2");
    let container = json!({
        "name": "web", "image": "nginx:1.27",
        "ports": [{"containerPort": 80}],
        // A quantity written as a number, an int-or-string as either.
        "resources": {"limits": {"cpu": 1, "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"port": "http"}},
        "livenessProbe": {"httpGet": {"port": 8080}}
    });
    assert_eq!(
        violations(&schemas, &deployment(&container)),
        Vec::<String>::new()
    );
}

#[test]
fn unknown_fields_wrong_types_and_missing_fields_are_named_by_path() {
    let schemas = Schemas::bundled();
    let container = json!({
        "image": "nginx:1.27",
        "imagePullPolicyy": "Always",
        "ports": [{"containerPort": "80"}],
        "resources": {"limits": {"cpu": true}}
    });
    let mut object = deployment(&container);
    object["spec"]["replicas"] = json!("two");
    object["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1.5}});
    assert_eq!(
        violations(&schemas, &object),
        [
            "spec.replicas: expected integer, got string",
            "spec.strategy.rollingUpdate.maxSurge: expected integer or string, got number",
            "spec.template.spec.containers[0]: missing required field \"name\"",
            "spec.template.spec.containers[0].imagePullPolicyy: unknown field",
            "spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string",
            "spec.template.spec.containers[0].resources.limits.cpu: expected a quantity, got boolean",
        ]
    );
}

#[test]
fn messages_never_carry_values() {
    let schemas = Schemas::bundled();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "stringData": {"password": ["hunter2"]}, "dataa": "hunter3"});
    let found = violations(&schemas, &secret).join("\n");
    assert!(
        found.contains("stringData.password: expected string, got array"),
        "{found}"
    );
    assert!(!found.contains("hunter"), "{found}");
}

#[test]
fn custom_kinds_are_checked_against_their_crd_and_unknown_kinds_have_no_schema() {
    let mut schemas = Schemas::bundled();
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {"size": 3, "colour": "blue", "extra": {"free": [1, 2]}}});
    assert_eq!(
        violations(&schemas, &widget),
        ["no schema: example.com/v1 Widget"]
    );
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer"},
                    "colour": {"type": "string", "enum": ["red", "green"]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}}
            }}}]}
    });
    schemas.add_crd(&crd).expect("a CRD");
    assert_eq!(
        violations(&schemas, &widget),
        ["spec.colour: not one of \"red\", \"green\""]
    );
    let mut broken = widget.clone();
    broken["spec"] = json!({"sise": 3});
    broken["metadata"]["labels"] = json!({"a": 1});
    assert_eq!(
        violations(&schemas, &broken),
        [
            "metadata.labels.a: expected string, got integer",
            "spec: missing required field \"size\"",
            "spec.sise: unknown field",
        ]
    );
}

#[test]
fn a_clusters_document_replaces_the_bundled_one() {
    let document = json!({"definitions": {
        "io.example.v1.Thing": {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "spec": {"type": "string"}},
            "x-kubernetes-group-version-kind": [{"group": "example.io", "version": "v1", "kind": "Thing"},
                {"group": "example.io", "version": "v1", "kind": "DeleteOptions"}]}
    }});
    let schemas = Schemas::from_openapi_v2(document, "v1.31.0").expect("a document");
    let thing = json!({"apiVersion": "example.io/v1", "kind": "Thing", "spec": 1});
    assert_eq!(
        violations(&schemas, &thing),
        ["spec: expected string, got integer"]
    );
    let other = json!({"apiVersion": "example.io/v1", "kind": "DeleteOptions"});
    assert_eq!(
        violations(&schemas, &other),
        ["no schema: example.io/v1 DeleteOptions"]
    );
    assert!(Schemas::from_openapi_v2(json!({"swagger": "2.0"}), "x").is_err());
}

#[test]
fn hostile_nesting_and_floods_of_errors_are_bounded() {
    let schemas = Schemas::bundled();
    let mut deep = json!("x");
    for _ in 0..500 {
        deep = json!({ "a": deep });
    }
    let config_map =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": deep});
    let found = violations(&schemas, &config_map);
    assert_eq!(found, ["binaryData.a: expected string, got object"]);
    let fields: Map<String, Value> = (0..500).map(|i| (format!("f{i}"), json!(1))).collect();
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": Value::Object(fields)});
    let found = violations(&schemas, &pod);
    assert_eq!(found.len(), VIOLATION_LIMIT + 1);
    assert!(
        found.last().is_some_and(|last| last.ends_with("and 481 more")),
        "{found:?}"
    );
}
