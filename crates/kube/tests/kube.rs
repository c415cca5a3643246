//! The Kubernetes adapter against the real local control plane.

use driftless_core::SourceLocation;
use driftless_core::application::{Cluster, ClusterConnection};
use driftless_kube::{
    ApplyOptions, ConnectError, ConnectOptions, Discovery, ObjectError, Objects, ResolveError, connect,
    resolve_desired,
};
use driftless_testenv::TestEnv;
use serde_json::{Value, json};

fn at(file: &str, document: usize) -> SourceLocation {
    SourceLocation {
        file: file.to_owned(),
        document,
        line: Some(1),
    }
}

fn config_map(name: &str, value: &str) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name }, "data": { "key": value } })
}

#[tokio::test]
async fn connects_through_a_kubeconfig_and_refuses_exec_plugins() {
    let env = TestEnv::new("connect").await;
    let cluster = Cluster {
        name: "local".into(),
        connection: ClusterConnection::Kubeconfig {
            path: env.kubeconfig_path().to_owned(),
            context: None,
        },
    };
    let client = connect(&cluster, ConnectOptions::default())
        .await
        .expect("connect");
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.git_version, "v1.20.2");

    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("plugin-ran");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: 'https://127.0.0.1:1'}}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: touch\n      args: ['{}']\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
            marker.display()
        ),
    )
    .expect("write kubeconfig");
    let hostile = Cluster {
        name: "hostile".into(),
        connection: ClusterConnection::Kubeconfig {
            path: kubeconfig,
            context: None,
        },
    };
    let Err(err) = connect(&hostile, ConnectOptions::default()).await else {
        panic!("exec plugins are refused");
    };
    assert!(matches!(err, ConnectError::ExecPluginRefused { .. }), "{err}");
    assert!(err.to_string().contains("\"touch\""), "{err}");
    assert!(!marker.exists(), "the plugin must not have run");
}

#[tokio::test]
async fn namespaces_are_defaulted_for_namespaced_kinds_and_dropped_for_cluster_scoped_ones() {
    let env = TestEnv::new("resolve_namespaces").await;
    let discovery = Discovery::new(env.client.clone());
    let manifests = vec![
        (config_map("defaulted", "a"), at("a.yaml", 0)),
        (
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "explicit", "namespace": "elsewhere" } }),
            at("a.yaml", 1),
        ),
        (
            json!({ "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": { "name": "r", "namespace": "ignored" } }),
            at("b.yaml", 0),
        ),
    ];
    let resolved = resolve_desired(manifests, Some(&env.namespace), &discovery)
        .await
        .expect("resolved");
    let namespaces: Vec<Option<&str>> = resolved
        .iter()
        .map(|(o, _)| o.reference.namespace.as_deref())
        .collect();
    assert_eq!(
        namespaces,
        vec![Some(env.namespace.as_str()), Some("elsewhere"), None]
    );
    assert_eq!(
        resolved[0].0.manifest["metadata"]["namespace"],
        env.namespace.as_str(),
        "the manifest carries its namespace"
    );
    assert!(resolved[2].0.manifest["metadata"].get("namespace").is_none());
    assert!(resolved[0].1.namespaced && !resolved[2].1.namespaced);
}

#[tokio::test]
async fn unresolvable_objects_are_all_reported_with_their_source() {
    let env = TestEnv::new("resolve_errors").await;
    let discovery = Discovery::new(env.client.clone());
    let manifests = vec![
        (config_map("no-namespace", "a"), at("a.yaml", 0)),
        (
            json!({ "apiVersion": "example.com/v1", "kind": "Gadget", "metadata": { "name": "g" } }),
            at("b.yaml", 2),
        ),
    ];
    let Err(ResolveError::Objects { problems }) = resolve_desired(manifests, None, &discovery).await else {
        panic!("both objects are unresolvable");
    };
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        vec![
            "a.yaml (document 1, line 1): ConfigMap/no-namespace: a namespaced object without metadata.namespace, and the application's destination names no namespace",
            "b.yaml (document 3, line 1): Gadget/g: the API server does not serve kind Gadget in example.com/v1 (is its CustomResourceDefinition installed?)",
        ]
    );

    let twice = vec![
        (config_map("same", "a"), at("a.yaml", 0)),
        (config_map("same", "b"), at("c.yaml", 4)),
    ];
    let err = resolve_desired(twice, Some(&env.namespace), &discovery)
        .await
        .expect_err("duplicate");
    assert!(
        err.to_string()
            .contains("declared more than once (also at c.yaml (document 5, line 1))"),
        "{err}"
    );
}

#[tokio::test]
async fn custom_objects_resolve_through_a_crd_in_the_same_set() {
    let env = TestEnv::new("resolve_crd").await;
    let discovery = Discovery::new(env.client.clone());
    let group = format!("{}.example.com", env.namespace);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("gizmos.{group}") },
        "spec": { "group": group, "scope": "Namespaced",
                  "names": { "plural": "gizmos", "singular": "gizmo", "kind": "Gizmo" },
                  "versions": [{ "name": "v1", "served": true, "storage": true,
                                 "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }] }
    });
    let gizmo = json!({ "apiVersion": format!("{group}/v1"), "kind": "Gizmo", "metadata": { "name": "g" } });
    let resolved = resolve_desired(
        vec![(gizmo, at("g.yaml", 0)), (crd, at("crd.yaml", 0))],
        Some(&env.namespace),
        &discovery,
    )
    .await
    .expect("the CRD in the set defines Gizmo");
    let gizmo = resolved
        .iter()
        .find(|(o, _)| o.reference.kind == "Gizmo")
        .expect("resolved");
    assert_eq!(gizmo.1.resource.plural, "gizmos");
    assert_eq!(
        gizmo.0.reference.namespace.as_deref(),
        Some(env.namespace.as_str())
    );
}

#[tokio::test]
async fn apply_dry_run_conflicts_and_delete() {
    let env = TestEnv::new("objects").await;
    let discovery = Discovery::new(env.client.clone());
    let objects = Objects::new(env.client.clone());
    let resolve = |value: &str| {
        let manifests = vec![(config_map("settings", value), at("cm.yaml", 0))];
        let discovery = &discovery;
        let namespace = env.namespace.clone();
        async move {
            resolve_desired(manifests, Some(&namespace), discovery)
                .await
                .expect("resolve")
                .remove(0)
        }
    };

    let (desired, found) = resolve("one").await;
    let dry = objects
        .apply(
            &found.resource,
            &desired,
            ApplyOptions {
                dry_run: true,
                ..ApplyOptions::default()
            },
        )
        .await
        .expect("dry-run");
    assert_eq!(dry["data"]["key"], "one");
    assert!(
        objects
            .get(&found.resource, &desired.reference)
            .await
            .expect("get")
            .is_none(),
        "a dry-run creates nothing"
    );

    objects
        .apply(&found.resource, &desired, ApplyOptions::default())
        .await
        .expect("create");
    let (changed, _) = resolve("two").await;
    let applied = objects
        .apply(&found.resource, &changed, ApplyOptions::default())
        .await
        .expect("update");
    assert_eq!(applied["data"]["key"], "two");
    let managers: Vec<&str> = applied["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, vec!["driftless"]);

    // Another manager takes data.key; our next apply conflicts, naming the field and manager.
    let other =
        kube::Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(env.client.clone(), &env.namespace);
    other
        .patch(
            "settings",
            &kube::api::PatchParams::apply("kubectl-edit").force(),
            &kube::api::Patch::Apply(config_map("settings", "manual")),
        )
        .await
        .expect("someone else applies");
    let err = objects
        .apply(&found.resource, &changed, ApplyOptions::default())
        .await
        .expect_err("conflict");
    match &err {
        ObjectError::Conflict { message, .. } => assert!(
            message.contains("kubectl-edit") && message.contains(".data.key"),
            "{message}"
        ),
        other => panic!("expected a conflict, got {other}"),
    }
    let forced = objects
        .apply(
            &found.resource,
            &changed,
            ApplyOptions {
                force: true,
                ..ApplyOptions::default()
            },
        )
        .await
        .expect("force");
    assert_eq!(forced["data"]["key"], "two");

    assert!(
        objects
            .delete(&found.resource, &changed.reference)
            .await
            .expect("delete")
    );
    assert!(
        !objects
            .delete(&found.resource, &changed.reference)
            .await
            .expect("delete again"),
        "already gone"
    );
}

#[tokio::test]
async fn request_count_is_what_reached_the_api_server() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let env = TestEnv::new("request_count").await;
    // A tap below `Objects`, on the way to the real client: what was actually sent.
    let sent = Arc::new(AtomicU64::new(0));
    let tap = {
        let (client, sent) = (env.client.clone(), Arc::clone(&sent));
        tower::service_fn(move |request: http::Request<kube::client::Body>| {
            sent.fetch_add(1, Ordering::Relaxed);
            let client = client.clone();
            async move { client.send(request).await }
        })
    };
    let objects = Objects::new(kube::Client::new(tap, env.namespace.clone()));
    let discovery = Discovery::new(env.client.clone());
    let manifests = vec![(config_map("counted", "one"), at("cm.yaml", 0))];
    let (desired, found) = resolve_desired(manifests, Some(&env.namespace), &discovery)
        .await
        .expect("resolve")
        .remove(0);
    let resource = &found.resource;
    // Labels that are no map: refused while decoding, before anything is sent.
    let mut undecodable = desired.clone();
    undecodable.manifest["metadata"]["labels"] = json!("not a map");

    let mut counted = 0;
    let mut expect = |what: &str, requests: u64| {
        counted += requests;
        assert_eq!(objects.request_count(), counted, "{what}: counted");
        assert_eq!(sent.load(Ordering::Relaxed), counted, "{what}: sent");
    };
    expect("nothing yet", 0);
    assert!(
        objects
            .get(resource, &desired.reference)
            .await
            .expect("get")
            .is_none()
    );
    expect("a GET answered 404", 1);
    objects
        .apply(resource, &desired, ApplyOptions::default())
        .await
        .expect("apply");
    expect("an apply", 1);
    objects
        .list(resource, Some(&env.namespace), "")
        .await
        .expect("list");
    objects
        .list_metadata(resource, Some(&env.namespace), None)
        .await
        .expect("list metadata");
    expect("two LISTs", 2);
    objects
        .replace(resource, &desired, ApplyOptions::default())
        .await
        .expect("replace");
    expect("a replace: GET and PUT", 2);
    objects
        .replace(resource, &undecodable, ApplyOptions::default())
        .await
        .expect_err("undecodable");
    expect("a replace refused before sending", 0);
    assert!(
        objects
            .delete(resource, &desired.reference)
            .await
            .expect("delete")
    );
    assert!(
        !objects
            .delete(resource, &desired.reference)
            .await
            .expect("delete again")
    );
    expect("two DELETEs", 2);
}
