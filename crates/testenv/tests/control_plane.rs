//! The local control plane is a real Kubernetes API: namespaces, core objects, CRDs with custom
//! objects, server-side apply with field managers, and a working controller-manager.

use std::collections::BTreeMap;
use std::time::Duration;

use driftless_testenv::TestEnv;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

#[tokio::test]
async fn each_test_gets_a_fresh_labelled_namespace() {
    let env = TestEnv::new("fresh_namespace").await;
    let namespace = Api::<Namespace>::all(env.client.clone())
        .get(&env.namespace)
        .await
        .expect("namespace exists");
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("driftless.dev/test").map(String::as_str),
        Some("fresh_namespace")
    );

    let other = TestEnv::new("fresh_namespace").await;
    assert_ne!(
        env.namespace, other.namespace,
        "two tests never share a namespace"
    );
}

#[tokio::test]
async fn config_map_round_trips() {
    let env = TestEnv::new("config_map_round_trips").await;
    let config_maps: Api<ConfigMap> = env.api();
    let mut data = BTreeMap::new();
    data.insert("greeting".to_owned(), "hello".to_owned());
    let object = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("settings".into()),
            ..Default::default()
        },
        data: Some(data.clone()),
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &object)
        .await
        .expect("create ConfigMap");
    let read = config_maps.get("settings").await.expect("read ConfigMap back");
    assert_eq!(read.data, Some(data));
    assert!(read.metadata.uid.is_some(), "the server assigned a uid");
}

#[tokio::test]
async fn custom_resources_work_end_to_end() {
    let env = TestEnv::new("custom_resources").await;
    // CRDs are cluster-scoped: derive the group from the namespace so tests never collide.
    let group = format!("{}.example.com", env.namespace);
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("widgets.{group}") },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget" },
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                    "spec": { "type": "object", "properties": { "size": { "type": "integer" } } }
                } } }
            }]
        }
    }))
    .expect("valid CRD");
    let crds = Api::<CustomResourceDefinition>::all(env.client.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");
    let crd_name = format!("widgets.{group}");
    let established = kube::runtime::wait::await_condition(
        crds,
        &crd_name,
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .expect("CRD established within 30 s")
        .expect("watch the CRD");

    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(&group, "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(env.client.clone(), &env.namespace, &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": { "name": "sprocket" }, "spec": { "size": 3 }
    }))
    .expect("valid Widget");
    widgets
        .create(&PostParams::default(), &widget)
        .await
        .expect("create Widget");
    let read = widgets.get("sprocket").await.expect("read Widget back");
    assert_eq!(read.data["spec"]["size"], 3);
}

#[tokio::test]
async fn server_side_apply_records_the_field_manager() {
    let env = TestEnv::new("server_side_apply").await;
    let config_maps: Api<ConfigMap> = env.api();
    let apply = |value: &str| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "applied" },
            "data": { "colour": value }
        })
    };
    let params = PatchParams::apply("driftless");
    config_maps
        .patch("applied", &params, &Patch::Apply(apply("blue")))
        .await
        .expect("first apply");
    let changed = config_maps
        .patch("applied", &params, &Patch::Apply(apply("green")))
        .await
        .expect("second apply");
    assert_eq!(
        changed.data.unwrap_or_default().get("colour").map(String::as_str),
        Some("green")
    );

    let managed = changed
        .metadata
        .managed_fields
        .expect("managedFields are recorded");
    let ours = managed
        .iter()
        .find(|entry| entry.manager.as_deref() == Some("driftless"))
        .expect("an entry for the driftless field manager");
    assert_eq!(ours.operation.as_deref(), Some("Apply"));
    let fields = ours.fields_v1.as_ref().expect("fieldsV1").0.clone();
    assert!(
        fields["f:data"].get("f:colour").is_some(),
        "driftless owns data.colour: {fields}"
    );

    // Another manager taking the same field is a conflict unless forced.
    let other = PatchParams::apply("someone-else");
    let conflict = config_maps
        .patch("applied", &other, &Patch::Apply(apply("red")))
        .await;
    match conflict {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
        other => panic!("expected a 409 conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn controller_manager_reconciles_deployments() {
    let env = TestEnv::new("controller_manager").await;
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "web", "image": "example.invalid/web:1" }] }
            }
        }
    }))
    .expect("valid Deployment");
    env.api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");

    let replica_sets: Api<ReplicaSet> = env.api();
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    loop {
        let found = replica_sets
            .list(&ListParams::default().labels("app=web"))
            .await
            .expect("list ReplicaSets");
        if let Some(replica_set) = found.items.first() {
            let owner = &replica_set.metadata.owner_references.as_ref().expect("owned")[0];
            assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Deployment", "web"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ReplicaSet for the Deployment within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
