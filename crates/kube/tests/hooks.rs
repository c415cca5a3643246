//! What the adapter sends for hooks and per-object sync options, against the real local control
//! plane, with a tap below `Objects` that records each request's URL.

use std::sync::{Arc, Mutex};

use driftless_core::SourceLocation;
use driftless_kube::{ApplyOptions, Discovery, Objects, ResolveError, resolve_desired};
use driftless_testenv::TestEnv;
use serde_json::{Value, json};

fn at(file: &str) -> SourceLocation {
    SourceLocation {
        file: file.to_owned(),
        document: 0,
        line: Some(1),
    }
}

/// `Objects` whose every request's path and query is recorded.
fn tapped(env: &TestEnv) -> (Objects, Arc<Mutex<Vec<String>>>) {
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let tap = {
        let (client, sent) = (env.client.clone(), Arc::clone(&sent));
        tower::service_fn(move |request: http::Request<kube::client::Body>| {
            sent.lock().expect("lock").push(request.uri().to_string());
            let client = client.clone();
            async move { client.send(request).await }
        })
    };
    (Objects::new(kube::Client::new(tap, env.namespace.clone())), sent)
}

#[tokio::test]
async fn a_generate_name_hook_is_created_afresh_and_validation_skipped_only_when_asked() {
    let env = TestEnv::new("kube_hooks").await;
    let (objects, sent) = tapped(&env);
    let discovery = Discovery::new(env.client.clone());
    let hook = json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "generateName": "seed-", "annotations": { "argocd.argoproj.io/hook": "Sync" } },
        "data": { "key": "value" } });
    let plain = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "plain",
        "annotations": { "argocd.argoproj.io/sync-options": "Validate=false" } } });
    let mut resolved = resolve_desired(
        vec![(hook, at("hook.yaml")), (plain, at("plain.yaml"))],
        Some(&env.namespace),
        &discovery,
    )
    .await
    .expect("a generateName hook resolves");
    let (plain, _) = resolved.remove(1);
    let (hook, found) = resolved.remove(0);
    assert_eq!(
        hook.reference.name, "seed-",
        "the generateName stands for its name"
    );

    let name = |created: &Value| {
        created["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let first = objects
        .create(&found.resource, &hook, ApplyOptions::default())
        .await
        .expect("create");
    let second = objects
        .create(&found.resource, &hook, ApplyOptions::default())
        .await
        .expect("create again");
    assert!(name(&first).starts_with("seed-") && name(&first).len() > "seed-".len());
    assert_ne!(name(&first), name(&second), "a fresh object each time");

    let skipping = ApplyOptions {
        skip_validation: true,
        ..ApplyOptions::default()
    };
    objects
        .apply(&found.resource, &plain, skipping)
        .await
        .expect("apply without validation");
    objects
        .apply(&found.resource, &plain, ApplyOptions::default())
        .await
        .expect("apply");
    let sent = sent.lock().expect("lock").clone();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert!(
        sent[0].ends_with("/configmaps?&fieldManager=driftless"),
        "a POST to the collection, no name: {sent:?}"
    );
    assert!(sent[2].contains("fieldValidation=Ignore"), "{sent:?}");
    assert!(!sent[3].contains("fieldValidation"), "{sent:?}");
}

#[tokio::test]
async fn a_kind_not_served_yet_resolves_only_when_its_object_skips_the_dry_run() {
    let env = TestEnv::new("kube_skip_dry_run").await;
    let discovery = Discovery::new(env.client.clone());
    let gadget = |annotations: Value| {
        json!({ "apiVersion": "nowhere.example.com/v1", "kind": "Gadget",
            "metadata": { "name": "g", "annotations": annotations } })
    };
    let skipping = gadget(json!({ "argocd.argoproj.io/sync-options": "SkipDryRunOnMissingResource=true" }));
    let resolved = resolve_desired(
        vec![(skipping, at("gadget.yaml"))],
        Some(&env.namespace),
        &discovery,
    )
    .await
    .expect("resolved as namespaced until it is served");
    assert_eq!(
        resolved[0].0.reference.namespace.as_deref(),
        Some(env.namespace.as_str())
    );
    assert_eq!(resolved[0].1.resource.plural, "gadgets");

    let err = resolve_desired(
        vec![(gadget(json!({})), at("gadget.yaml"))],
        Some(&env.namespace),
        &discovery,
    )
    .await
    .expect_err("not served");
    assert!(
        matches!(&err, ResolveError::Objects { problems } if problems[0].message.contains("does not serve kind Gadget")),
        "{err}"
    );
}
