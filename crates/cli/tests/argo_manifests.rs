//! Manifests as Argo CD users write them, on the real local control plane (v1.20), through the
//! `driftless` binary (issue 21): ports without `protocol` sync and then show no diff (the
//! defaults server-side apply needs, `core::apply_defaults`), and a new application with
//! `CreateNamespace=true` is planned and diffed as objects to create, not as refusals.

mod common;

use std::path::{Path, PathBuf};

use common::{driftless, text};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use serde_json::Value;

/// argoproj/argocd-example-apps, guestbook/guestbook-ui-svc.yaml, as published.
const GUESTBOOK_SERVICE: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: guestbook-ui
spec:
  ports:
  - port: 80
    targetPort: 80
  selector:
    app: guestbook-ui
";

/// argoproj/argocd-example-apps, guestbook/guestbook-ui-deployment.yaml, as published.
const GUESTBOOK_DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: guestbook-ui
spec:
  replicas: 1
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      app: guestbook-ui
  template:
    metadata:
      labels:
        app: guestbook-ui
    spec:
      containers:
      - image: gcr.io/heptio-images/ks-guestbook-demo:0.2
        name: guestbook-ui
        ports:
        - containerPort: 80
";

/// A Secret written with `stringData`, which the API server stores as `data`.
const STRING_DATA_SECRET: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: guestbook-credentials
stringData:
  username: guest
";

fn write_config(dir: &Path, env: &TestEnv, repo: &TestRepo, namespace: &str, sync_options: &str) -> PathBuf {
    common::write_config(
        dir,
        env.kubeconfig_path(),
        ("guestbook", &repo.file_url(), "guestbook"),
        namespace,
        &format!("      syncPolicy: {{ syncOptions: [{sync_options}] }}\n"),
    )
}

#[tokio::test]
async fn the_argo_cd_guestbook_with_ports_without_protocol_syncs_and_then_shows_no_diff() {
    let env = TestEnv::new("argo_guestbook").await;
    let repo = TestRepo::new();
    repo.write("guestbook/guestbook-ui-svc.yaml", GUESTBOOK_SERVICE)
        .write("guestbook/guestbook-ui-deployment.yaml", GUESTBOOK_DEPLOYMENT)
        .write("guestbook/credentials.yaml", STRING_DATA_SECRET);
    repo.commit("the guestbook as Argo CD's examples write it");
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &env, &repo, &env.namespace, "");

    let sync = driftless(&config, &["sync", "guestbook"]);
    assert!(sync.status.success(), "{}", text(&sync));
    let service = env.api::<Service>().get("guestbook-ui").await.expect("service");
    let ports = service.spec.and_then(|spec| spec.ports).unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    let deployment = env
        .api::<Deployment>()
        .get("guestbook-ui")
        .await
        .expect("deployment");
    let container_ports = deployment
        .spec
        .and_then(|spec| spec.template.spec)
        .map(|pod| pod.containers[0].ports.clone().unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(container_ports[0].protocol.as_deref(), Some("TCP"));
    let secret = env
        .api::<Secret>()
        .get("guestbook-credentials")
        .await
        .expect("secret");
    let username = secret
        .data
        .unwrap_or_default()
        .remove("username")
        .expect("username");
    assert_eq!(username.0, b"guest");

    // The defaulted fields are as the cluster has them: nothing to show, nothing to sync.
    let diff = driftless(&config, &["diff", "guestbook"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
    let again = driftless(&config, &["sync", "guestbook", "-o", "json"]);
    assert!(again.status.success(), "{}", text(&again));
    let report: Value =
        serde_json::from_slice(&again.stdout).unwrap_or_else(|err| panic!("{err}: {}", text(&again)));
    let actions: Vec<&str> = report["outcomes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|object| object["action"].as_str())
        .collect();
    assert!(
        !actions.is_empty() && actions.iter().all(|action| *action == "unchanged"),
        "a second sync changes nothing: {report}"
    );
}

/// `(kind, namespace, change)` of each object a diff's JSON shows as differing.
fn differing(comparison: &Value) -> Vec<(String, Option<String>, String)> {
    comparison["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|object| object["diff"] != "Unchanged")
        .map(|object| {
            let change = object["diff"]
                .as_object()
                .and_then(|diff| diff.keys().next().cloned())
                .unwrap_or_default();
            (
                object["object"]["kind"].as_str().unwrap_or_default().to_owned(),
                object["object"]["namespace"].as_str().map(str::to_owned),
                change,
            )
        })
        .collect()
}

#[tokio::test]
async fn a_new_application_with_create_namespace_is_planned_and_diffed_as_objects_to_create() {
    let env = TestEnv::new("create_namespace_plan").await;
    // Cluster-scoped and created by the sync: named after this test's namespace.
    let namespace = format!("{}-new", env.namespace);
    let repo = TestRepo::new();
    repo.write("guestbook/guestbook-ui-svc.yaml", GUESTBOOK_SERVICE);
    let base = repo.commit("base");
    repo.write("guestbook/guestbook-ui-deployment.yaml", GUESTBOOK_DEPLOYMENT);
    repo.commit("head");
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &env, &repo, &namespace, "CreateNamespace=true");

    let plan = driftless(
        &config,
        &["plan", "--base", &base, "--head", "main", "-o", "json"],
    );
    let plans: Value = serde_json::from_slice(&plan.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(&plan)));
    assert_eq!(plan.status.code(), Some(1), "changes, no error: {}", text(&plan));
    let guestbook = &plans[0];
    assert!(
        guestbook["problems"].is_null(),
        "no problem at all: {guestbook:#}"
    );
    assert!(guestbook["error"].is_null(), "{guestbook:#}");
    let live = &guestbook["live"];
    assert_eq!(live["state"], "compared", "{live:#}");
    let mut created: Vec<(String, String)> = live["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|change| {
            (
                change["change"].as_str().unwrap_or_default().to_owned(),
                change["object"]["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    created.sort();
    assert_eq!(
        created,
        [
            ("added", "Deployment"),
            ("added", "Namespace"),
            ("added", "Service")
        ]
        .map(|(change, kind)| (change.to_owned(), kind.to_owned())),
        "{live:#}"
    );

    let diff = driftless(&config, &["diff", "guestbook", "-o", "json"]);
    assert_eq!(diff.status.code(), Some(1), "{}", text(&diff));
    let comparison: Value = serde_json::from_slice(&diff.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(&diff)));
    let mut missing = differing(&comparison);
    missing.sort();
    let inside = Some(namespace.clone());
    assert_eq!(
        missing,
        [
            ("Deployment".to_owned(), inside.clone(), "Missing".to_owned()),
            ("Namespace".to_owned(), None, "Missing".to_owned()),
            ("Service".to_owned(), inside, "Missing".to_owned()),
        ],
        "{comparison:#}"
    );

    // Not dry-run, still validated: the cluster's own schemas see a misspelt field.
    repo.checkout("misspelt");
    repo.write(
        "guestbook/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndataa: {colour: blue}\n",
    );
    repo.commit("a misspelt field");
    repo.checkout("main");
    let plan = driftless(
        &config,
        &["plan", "--base", "main", "--head", "misspelt", "-o", "json"],
    );
    assert_eq!(plan.status.code(), Some(2), "a schema error: {}", text(&plan));
    let plans: Value = serde_json::from_slice(&plan.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(&plan)));
    let problems = plans[0]["problems"].as_array().cloned().unwrap_or_default();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(problems[0]["check"], "schema", "{problems:#?}");
    assert_eq!(problems[0]["object"]["name"], "settings", "{problems:#?}");
    assert_eq!(problems[0]["path"], "dataa", "{problems:#?}");

    // And the sync the plan promised creates them.
    let sync = driftless(&config, &["sync", "guestbook"]);
    assert!(sync.status.success(), "{}", text(&sync));
    let diff = driftless(&config, &["diff", "guestbook"]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff));
}
