//! Syncing real repositories into the real control plane.

use std::time::Duration;

mod common;

use common::{application, engine};
use driftless_core::SyncState;
use driftless_core::diff::ObjectDiff;
use driftless_engine::SyncOptions;
use driftless_store::{ObjectAction, SyncResult};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::core::v1::ConfigMap;

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n")
}

fn actions(report: &driftless_engine::SyncReport) -> Vec<(String, ObjectAction)> {
    report
        .outcomes
        .iter()
        .map(|o| (o.object.name.clone(), o.action))
        .collect()
}

const PRUNE: SyncOptions = SyncOptions {
    revision: None,
    prune: true,
    dry_run: false,
    force: false,
    adopt: false,
    trigger: driftless_store::Trigger::Manual,
    wave_health_timeout: Duration::from_mins(1),
    progress: None,
};

/// Marks every Pod of `app` Running and Ready, as a kubelet would; the real controller-manager
/// then makes the ReplicaSet and Deployment available.
async fn make_pods_ready(env: &TestEnv, app: &str) -> usize {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    let pods = env.api::<Pod>();
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods");
    for pod in &list.items {
        let name = pod.metadata.name.as_deref().expect("pods have names");
        let status = serde_json::json!({ "status": {
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z" }],
            "containerStatuses": [{ "name": "web", "ready": true, "restartCount": 0, "image": "x", "imageID": "x",
                                    "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } }]
        } });
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("patch pod status");
    }
    list.items.len()
}

#[tokio::test]
async fn waves_wait_for_health_and_health_follows_the_workload() {
    let env = TestEnv::new("engine_waves").await;
    let repo = TestRepo::new();
    repo.write(
        "app/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: example.invalid/web:1}]}\n",
    )
    .write("app/after.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: after\n  annotations: {driftless.dev/sync-wave: \"1\"}\n")
    .write("app/before.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: before\n  annotations: {argocd.argoproj.io/sync-wave: \"-1\"}\n");
    repo.commit("three waves");
    let (_data, engine) = engine(&env, vec![application("web", &repo, "app", &env.namespace)]);
    let engine = std::sync::Arc::new(engine);

    let events: std::sync::Arc<std::sync::Mutex<Vec<driftless_engine::SyncProgress>>> =
        std::sync::Arc::default();
    let syncing = tokio::spawn({
        let engine = std::sync::Arc::clone(&engine);
        let events = std::sync::Arc::clone(&events);
        let sink = driftless_engine::ProgressSink(std::sync::Arc::new(move |event| {
            events.lock().expect("events lock").push(event);
        }));
        async move {
            engine
                .sync(
                    "web",
                    SyncOptions {
                        progress: Some(sink),
                        ..PRUNE
                    },
                )
                .await
        }
    });
    // The sync waits in wave 0 until the Deployment is available; play kubelet.
    let config_maps = env.api::<ConfigMap>();
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    loop {
        assert!(
            config_maps.get_opt("after").await.expect("get").is_none(),
            "wave 1 must wait for wave 0"
        );
        if make_pods_ready(&env, "web").await > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Pods appeared for the Deployment"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let report = syncing.await.expect("join").expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    let order: Vec<&str> = report.outcomes.iter().map(|o| o.object.name.as_str()).collect();
    assert_eq!(order, vec!["before", "web", "after"]);
    let events = events.lock().expect("events lock").clone();
    let waves: Vec<i64> = events
        .iter()
        .filter_map(|event| match event {
            driftless_engine::SyncProgress::Wave { number, .. } => Some(*number),
            _ => None,
        })
        .collect();
    assert_eq!(waves, vec![-1, 0, 1], "progress names each wave");
    assert!(
        events.iter().any(|event| matches!(event, driftless_engine::SyncProgress::Waiting { message } if message.contains("apps/Deployment") && message.contains("Progressing"))),
        "progress says what the sync waits for: {events:#?}"
    );
    let comparison = engine.compare("web").await.expect("compare");
    assert_eq!(
        comparison.health.state,
        driftless_core::HealthState::Healthy,
        "{comparison:#?}"
    );
}

#[tokio::test]
async fn replace_sync_option_puts_the_whole_object() {
    let env = TestEnv::new("engine_replace").await;
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: replaced\n  annotations: {driftless.dev/sync-options: Replace=true}\ndata: {key: one}\n",
    );
    repo.commit("first");
    let (_data, engine) = engine(&env, vec![application("web", &repo, "app", &env.namespace)]);
    assert_eq!(
        engine.sync("web", PRUNE).await.expect("create").result,
        SyncResult::Succeeded
    );
    // Someone adds a field; a replace (unlike an apply) removes it.
    let config_maps = env.api::<ConfigMap>();
    let patch = serde_json::json!({ "data": { "extra": "manual" } });
    config_maps
        .patch(
            "replaced",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(patch),
        )
        .await
        .expect("manual edit");
    assert_eq!(
        engine.sync("web", PRUNE).await.expect("replace").result,
        SyncResult::Succeeded
    );
    let live = config_maps.get("replaced").await.expect("get");
    assert_eq!(live.data.unwrap_or_default().len(), 1, "the manual field is gone");
}

#[tokio::test]
async fn applications_share_a_repository_over_http_at_different_revisions() {
    let env = TestEnv::new("engine_revisions").await;
    let repo = TestRepo::new();
    repo.write("app/cm.yaml", &config_map("stable", "v1"));
    repo.commit("v1");
    repo.tag("v1");
    repo.write("app/cm.yaml", &config_map("stable", "v2"));
    repo.commit("v2");
    let server = driftless_testenv::git::GitHttpServer::start(repo.root(), None).await;
    let url = server.url("origin.git");
    let mut stable = application("stable", &repo, "app", &env.namespace);
    stable.source.repo_url.clone_from(&url);
    stable.source.revision = "v1".into();
    let mut edge = application("edge", &repo, "app", &format!("{}-edge", env.namespace));
    edge.source.repo_url = url;
    edge.sync_policy.create_namespace = true;
    let (data, engine) = engine(&env, vec![stable, edge]);

    assert_eq!(
        engine.sync("stable", PRUNE).await.expect("stable").result,
        SyncResult::Succeeded
    );
    assert_eq!(
        engine.sync("edge", PRUNE).await.expect("edge").result,
        SyncResult::Succeeded
    );
    let stable_value = env
        .api::<ConfigMap>()
        .get("stable")
        .await
        .expect("stable")
        .data
        .unwrap_or_default();
    let edge_api: kube::Api<ConfigMap> =
        kube::Api::namespaced(env.client.clone(), &format!("{}-edge", env.namespace));
    let edge_value = edge_api
        .get("stable")
        .await
        .expect("edge")
        .data
        .unwrap_or_default();
    assert_eq!(
        (stable_value["key"].as_str(), edge_value["key"].as_str()),
        ("v1", "v2")
    );
    let mirrors = std::fs::read_dir(data.path().join("git"))
        .expect("mirrors")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".git"))
        .count();
    assert_eq!(
        mirrors, 1,
        "one mirror per repository, shared by both applications"
    );
}

#[tokio::test]
async fn ignored_differences_are_neither_reported_nor_reverted() {
    let env = TestEnv::new("engine_ignore").await;
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tuned}\ndata: {key: one, other: x}\n",
    );
    repo.commit("first");
    let mut app = application("web", &repo, "app", &env.namespace);
    app.ignore_differences
        .push(driftless_core::application::IgnoreDifference {
            group: Some(String::new()),
            kind: "ConfigMap".into(),
            name: Some("tuned".into()),
            namespace: None,
            json_pointers: vec!["/data/key".into()],
            managed_fields_managers: Vec::new(),
        });
    let (_data, engine) = engine(&env, vec![app]);
    assert_eq!(
        engine.sync("web", PRUNE).await.expect("create").result,
        SyncResult::Succeeded
    );

    let config_maps = env.api::<ConfigMap>();
    let edit = |data: serde_json::Value| {
        let config_maps = config_maps.clone();
        async move {
            let patch = kube::api::Patch::Merge(serde_json::json!({ "data": data }));
            config_maps
                .patch("tuned", &kube::api::PatchParams::default(), &patch)
                .await
                .expect("manual edit");
        }
    };
    edit(serde_json::json!({ "key": "tuned-by-hand" })).await;
    assert_eq!(
        engine.compare("web").await.expect("compare").sync,
        SyncState::Synced,
        "an ignored field is no difference"
    );
    edit(serde_json::json!({ "other": "drifted" })).await;
    assert_eq!(
        engine.compare("web").await.expect("compare").sync,
        SyncState::OutOfSync
    );

    // The hand edit made its editor the owner of data.other: reverting it is a conflict unless
    // forced (as selfHeal does).
    let conflicted = engine.sync("web", PRUNE).await.expect("sync");
    assert_eq!(conflicted.result, SyncResult::Failed);
    assert!(
        conflicted.outcomes[0].message.contains(".data.other"),
        "{conflicted:#?}"
    );
    let forced = engine
        .sync("web", SyncOptions { force: true, ..PRUNE })
        .await
        .expect("forced sync");
    assert_eq!(forced.result, SyncResult::Succeeded, "{forced:#?}");
    let data = config_maps
        .get("tuned")
        .await
        .expect("get")
        .data
        .unwrap_or_default();
    assert_eq!(
        (data["key"].as_str(), data["other"].as_str()),
        ("tuned-by-hand", "x"),
        "ignored kept, drift reverted"
    );
}

#[tokio::test]
async fn create_update_diff_and_prune() {
    let env = TestEnv::new("engine_lifecycle").await;
    let repo = TestRepo::new();
    repo.write("app/a.yaml", &config_map("alpha", "one"))
        .write("app/b.yaml", &config_map("beta", "one"));
    repo.commit("first");
    let (_data, engine) = engine(&env, vec![application("web", &repo, "app", &env.namespace)]);

    let before = engine.compare("web").await.expect("compare before sync");
    assert_eq!(before.sync, SyncState::OutOfSync);
    assert!(
        before
            .objects
            .iter()
            .all(|o| matches!(o.diff, ObjectDiff::Missing { .. }))
    );

    let first = engine.sync("web", PRUNE).await.expect("first sync");
    assert_eq!(first.result, SyncResult::Succeeded, "{first:?}");
    assert_eq!(
        actions(&first),
        vec![
            ("alpha".into(), ObjectAction::Created),
            ("beta".into(), ObjectAction::Created)
        ]
    );
    let after = engine.compare("web").await.expect("compare after sync");
    assert_eq!(after.sync, SyncState::Synced, "{after:#?}");

    let again = engine.sync("web", PRUNE).await.expect("no-op sync");
    assert!(
        again.outcomes.iter().all(|o| o.action == ObjectAction::Unchanged),
        "{again:?}"
    );

    repo.write("app/a.yaml", &config_map("alpha", "two"))
        .remove("app/b.yaml");
    repo.commit("change alpha, drop beta");
    let changed = engine.compare("web").await.expect("compare");
    assert_eq!(changed.sync, SyncState::OutOfSync);
    let ObjectDiff::Changed { unified, .. } = &changed.objects[0].diff else {
        panic!("alpha changed: {changed:#?}")
    };
    assert!(
        unified.contains("-  key: one") && unified.contains("+  key: two"),
        "{unified}"
    );
    assert_eq!(changed.to_prune.len(), 1);

    let second = engine.sync("web", PRUNE).await.expect("second sync");
    assert_eq!(
        actions(&second),
        vec![
            ("alpha".into(), ObjectAction::Configured),
            ("beta".into(), ObjectAction::Pruned)
        ]
    );
    let config_maps = env.api::<ConfigMap>();
    assert!(
        config_maps.get_opt("beta").await.expect("get").is_none(),
        "beta was pruned"
    );
    let alpha = config_maps.get("alpha").await.expect("alpha");
    assert_eq!(alpha.data.unwrap_or_default()["key"], "two");
    assert_eq!(
        alpha.metadata.labels.unwrap_or_default()["driftless.dev/application"],
        "web"
    );

    let history = engine.store().history("web", 10).expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(history[0].summary.pruned, 1);
}

#[tokio::test]
async fn a_failed_object_fails_the_sync_and_nothing_is_pruned() {
    let env = TestEnv::new("engine_partial_failure").await;
    let repo = TestRepo::new();
    repo.write("app/keep.yaml", &config_map("keep", "one"))
        .write("app/old.yaml", &config_map("old", "one"));
    repo.commit("first");
    let (_data, engine) = engine(&env, vec![application("web", &repo, "app", &env.namespace)]);
    assert_eq!(
        engine.sync("web", PRUNE).await.expect("first").result,
        SyncResult::Succeeded
    );

    // `old` leaves Git, and a Service with an invalid port arrives: the API server rejects it.
    repo.remove("app/old.yaml").write(
        "app/broken.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n    - port: 99999\n      protocol: TCP\n",
    );
    repo.commit("break it");
    let report = engine.sync("web", PRUNE).await.expect("sync runs");
    assert_eq!(report.result, SyncResult::Failed);
    let broken = report
        .outcomes
        .iter()
        .find(|o| o.object.name == "broken")
        .expect("broken reported");
    assert_eq!(broken.action, ObjectAction::Failed);
    assert!(
        broken.message.contains("rejected by the API server"),
        "{}",
        broken.message
    );
    let old = report
        .outcomes
        .iter()
        .find(|o| o.object.name == "old")
        .expect("old reported");
    assert_eq!(old.action, ObjectAction::Skipped, "a failed sync prunes nothing");
    assert!(
        env.api::<ConfigMap>()
            .get_opt("old")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        report
            .outcomes
            .iter()
            .any(|o| o.object.name == "keep" && o.action == ObjectAction::Unchanged)
    );

    // Bad render: nothing is touched and the failure is recorded.
    repo.write("app/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n");
    repo.commit("unparsable");
    let err = engine.sync("web", PRUNE).await.expect_err("render fails");
    assert!(err.to_string().contains("app/bad.yaml"), "{err}");
    assert!(
        env.api::<ConfigMap>()
            .get_opt("old")
            .await
            .expect("get")
            .is_some()
    );
    assert_eq!(
        engine.store().history("web", 1).expect("history")[0].result,
        SyncResult::Failed
    );
}

#[tokio::test]
async fn crds_and_their_custom_objects_sync_together() {
    let env = TestEnv::new("engine_crd").await;
    let group = format!("{}.example.com", env.namespace);
    let repo = TestRepo::new();
    repo.write(
        "app/crd.yaml",
        &format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: widgets, singular: widget, kind: Widget}}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
        ),
    )
    .write("app/widget.yaml", &format!("apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: sprocket\nspec:\n  size: 3\n"));
    repo.commit("crd and widget");
    let (_data, engine) = engine(&env, vec![application("widgets", &repo, "app", &env.namespace)]);
    let report = engine.sync("widgets", PRUNE).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert_eq!(
        report.outcomes[0].object.kind, "CustomResourceDefinition",
        "the CRD is applied first"
    );
    assert_eq!(report.outcomes[1].object.kind, "Widget");
    assert_eq!(
        engine.compare("widgets").await.expect("compare").sync,
        SyncState::Synced
    );
}

#[tokio::test]
async fn an_object_is_never_taken_from_another_application() {
    let env = TestEnv::new("engine_ownership").await;
    let repo = TestRepo::new();
    repo.write("one/shared.yaml", &config_map("shared", "from-one"))
        .write("two/shared.yaml", &config_map("shared", "from-two"));
    repo.commit("two apps, one object");
    let (_data, engine) = engine(
        &env,
        vec![
            application("one", &repo, "one", &env.namespace),
            application("two", &repo, "two", &env.namespace),
        ],
    );
    assert_eq!(
        engine.sync("one", PRUNE).await.expect("one").result,
        SyncResult::Succeeded
    );
    let report = engine.sync("two", PRUNE).await.expect("two runs");
    assert_eq!(report.result, SyncResult::Failed);
    assert_eq!(report.outcomes[0].action, ObjectAction::Skipped);
    assert!(
        report.outcomes[0]
            .message
            .contains("belongs to application \"one\""),
        "{}",
        report.outcomes[0].message
    );
    let live = env.api::<ConfigMap>().get("shared").await.expect("get");
    assert_eq!(
        live.data.unwrap_or_default()["key"],
        "from-one",
        "the first owner's content stays"
    );
}

#[tokio::test]
async fn only_changes_to_fields_driftless_owns_are_drift_and_only_drifted_objects_are_applied() {
    use k8s_openapi::api::apps::v1::Deployment;

    let env = TestEnv::new("engine_owned_fields").await;
    let repo = TestRepo::new();
    repo.write(
        "app/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: 'web:1'}]}\n",
    )
    .write("app/settings.yaml", &config_map("settings", "one"));
    repo.commit("first");
    let (_data, engine) = engine(&env, vec![application("web", &repo, "app", &env.namespace)]);
    let first = engine.sync("web", PRUNE).await.expect("first sync");
    assert_eq!(first.result, SyncResult::Succeeded, "{first:?}");
    let deployments = env.api::<Deployment>();

    // Someone else's label, and the controller-manager's status writes: not drift.
    common::patch(
        &deployments,
        "web",
        "kubectl-label",
        serde_json::json!({"metadata": {"labels": {"team": "payments"}}}),
    )
    .await;
    let compared = engine.compare("web").await.expect("compare");
    assert_eq!(compared.sync, SyncState::Synced, "{compared:#?}");

    // `kubectl scale`: a field driftless owns changes hands. Drift, on that object only.
    common::patch(
        &deployments,
        "web",
        "kubectl-scale",
        serde_json::json!({"spec": {"replicas": 5}}),
    )
    .await;
    let drifted = engine.compare("web").await.expect("compare");
    assert_eq!(drifted.sync, SyncState::OutOfSync);
    let states: std::collections::BTreeMap<&str, bool> = drifted
        .objects
        .iter()
        .map(|o| (o.object.name.as_str(), o.diff.is_in_sync()))
        .collect();
    assert_eq!(
        states,
        [("settings", true), ("web", false)].into(),
        "{drifted:#?}"
    );
    let web_diff = drifted
        .objects
        .iter()
        .find(|o| o.object.name == "web")
        .expect("web");
    let ObjectDiff::Changed { unified, .. } = &web_diff.diff else {
        panic!("web changed: {drifted:#?}")
    };
    assert!(
        unified.contains("-  replicas: 5") && unified.contains("+  replicas: 2"),
        "{unified}"
    );

    // Healing applies the drifted object and leaves the other alone.
    let heal = SyncOptions { force: true, ..PRUNE };
    let healed = engine.sync("web", heal).await.expect("heal");
    let mut healed = actions(&healed);
    healed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        healed,
        vec![
            ("settings".into(), ObjectAction::Unchanged),
            ("web".into(), ObjectAction::Configured)
        ]
    );
    assert_eq!(common::replicas(&deployments).await, Some(2));
    assert_eq!(
        engine.compare("web").await.expect("compare").sync,
        SyncState::Synced
    );

    // A deleted object is drift too.
    env.api::<ConfigMap>()
        .delete("settings", &kube::api::DeleteParams::default())
        .await
        .expect("delete");
    let deleted = engine.compare("web").await.expect("compare");
    assert!(
        deleted
            .objects
            .iter()
            .any(|o| o.object.name == "settings" && matches!(o.diff, ObjectDiff::Missing { .. })),
        "{deleted:#?}"
    );
}

#[tokio::test]
async fn a_no_op_sync_reads_whole_only_the_objects_written_since_they_were_last_in_sync() {
    let env = TestEnv::new("engine_vouched_by_version").await;
    let repo = TestRepo::new();
    for name in ["one", "two", "three", "four"] {
        repo.write(&format!("app/{name}.yaml"), &config_map(name, "v1"));
    }
    repo.commit("four settings");
    let (_data, engine) = engine(&env, vec![application("web", &repo, "app", &env.namespace)]);
    let requests = || async { engine.stats().await.api_requests };
    let first = engine.sync("web", PRUNE).await.expect("first sync");
    assert_eq!(first.result, SyncResult::Succeeded, "{first:?}");

    // Nothing written since: one metadata-only LIST vouches for all four.
    let (before, report) = (requests().await, engine.sync("web", PRUNE).await.expect("no-op"));
    let unchanged = |report: &driftless_engine::SyncReport| {
        report
            .outcomes
            .iter()
            .all(|o| o.action == ObjectAction::Unchanged)
            && report.outcomes.len() == 4
    };
    assert!(unchanged(&report), "{report:?}");
    assert_eq!(report.health, first.health);
    assert_eq!(requests().await - before, 1, "the LIST only");

    // Another manager's label moves one object's resourceVersion: that one is read whole (and is
    // still in sync); the next sync vouches for it again from the version recorded then.
    let config_maps = env.api::<ConfigMap>();
    common::patch(
        &config_maps,
        "one",
        "kubectl-label",
        serde_json::json!({"metadata": {"labels": {"team": "payments"}}}),
    )
    .await;
    let (before, report) = (requests().await, engine.sync("web", PRUNE).await.expect("sync"));
    assert!(unchanged(&report), "{report:?}");
    assert_eq!(
        requests().await - before,
        2,
        "the LIST and a GET of the labelled object"
    );
    let (before, report) = (requests().await, engine.sync("web", PRUNE).await.expect("sync"));
    assert!(unchanged(&report), "{report:?}");
    assert_eq!(requests().await - before, 1, "the new version was recorded");

    // A change to a field driftless owns is seen (the object is read whole) and reverted; an
    // object deleted behind driftless's back is created again.
    common::patch(
        &config_maps,
        "two",
        "kubectl-edit",
        serde_json::json!({"data": {"key": "edited"}}),
    )
    .await;
    config_maps
        .delete("three", &kube::api::DeleteParams::default())
        .await
        .expect("delete");
    let force = SyncOptions { force: true, ..PRUNE };
    let mut healed = actions(&engine.sync("web", force).await.expect("heal"));
    healed.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        healed,
        vec![
            ("four".into(), ObjectAction::Unchanged),
            ("one".into(), ObjectAction::Unchanged),
            ("three".into(), ObjectAction::Created),
            ("two".into(), ObjectAction::Configured),
        ]
    );
    let data = config_maps
        .get("two")
        .await
        .expect("get")
        .data
        .unwrap_or_default();
    assert_eq!(data["key"], "v1");
}

#[tokio::test]
async fn configured_limits_refuse_oversized_sources_on_their_application_only() {
    let env = TestEnv::new("engine_limits").await;
    let repo = TestRepo::new();
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {}\n",
        "x".repeat(4096)
    );
    repo.write("big/cm.yaml", &big)
        .write("small/cm.yaml", &config_map("small", "one"));
    for index in 0..12 {
        repo.write(
            &format!("many/cm{index}.yaml"),
            &config_map(&format!("many{index}"), "one"),
        );
    }
    repo.commit("three applications");
    // Plain directories read only their own path (a Kustomize-capable render reads the whole
    // repository, which would count every file here against the limit).
    let apps = ["big", "many", "small"]
        .into_iter()
        .map(|name| {
            let mut app = application(name, &repo, name, &env.namespace);
            app.source.renderer = driftless_core::application::Renderer::Directory(
                driftless_core::application::DirectoryOptions::default(),
            );
            app
        })
        .collect();
    let data = tempfile::tempdir().expect("tempdir");
    let engine = common::engine_configured(env.kubeconfig_path(), data.path(), apps, |config| {
        config.limits.max_file_bytes = 1024;
        config.limits.max_files = 10;
    });
    let err = engine
        .sync("big", SyncOptions::default())
        .await
        .expect_err("file too large");
    assert_eq!(
        err.to_string(),
        "big: render failed: big/cm.yaml: larger than the limit of 1024 bytes"
    );
    let err = engine
        .sync("many", SyncOptions::default())
        .await
        .expect_err("too many files");
    assert!(err.to_string().contains("exceeds the limit of 10"), "{err}");
    let report = engine
        .sync("small", SyncOptions::default())
        .await
        .expect("small syncs");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let config_maps = env.api::<ConfigMap>();
    assert!(config_maps.get_opt("big").await.expect("get").is_none());
    assert!(config_maps.get_opt("many0").await.expect("get").is_none());
}

/// Issue 20: adopting an object deleted a live `BeforeHookCreation` hook that driftless never
/// created (no ownership label) before applying over it. Only a hook carrying this application's
/// label is deleted and created anew; an adopted one is applied in place.
#[tokio::test]
async fn a_hook_recreated_before_each_sync_never_deletes_an_object_it_does_not_own() {
    use kube::api::PostParams;
    let env = TestEnv::new("engine_hook_adopt").await;
    let hook = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: migrate\n  annotations:\n    argocd.argoproj.io/hook-delete-policy: BeforeHookCreation\ndata:\n  key: from-git\n";
    let repo = TestRepo::new();
    repo.write("app/migrate.yaml", hook);
    repo.commit("a hook");
    let someone_elses: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "migrate" },
        "data": { "key": "someone else's" }
    }))
    .expect("a ConfigMap");
    let created = env
        .api::<ConfigMap>()
        .create(&PostParams::default(), &someone_elses)
        .await
        .expect("create the unlabelled object");
    let (_data, engine) = engine(&env, vec![application("hooks", &repo, "app", &env.namespace)]);
    // Take it over, fields and all.
    let adopt = SyncOptions {
        adopt: true,
        force: true,
        ..SyncOptions::default()
    };
    let report = engine.sync("hooks", adopt).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let live = env.api::<ConfigMap>().get("migrate").await.expect("get");
    assert_eq!(
        live.metadata.uid, created.metadata.uid,
        "the object driftless did not own was deleted and created anew"
    );
    assert_eq!(
        live.data.unwrap_or_default()["key"],
        "from-git",
        "adopted and applied in place"
    );

    // Once it is this application's own, a change to the hook deletes and recreates it.
    repo.write("app/migrate.yaml", &hook.replace("from-git", "changed"));
    repo.commit("the hook changes");
    let report = engine.sync("hooks", SyncOptions::default()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let recreated = env.api::<ConfigMap>().get("migrate").await.expect("get");
    assert_ne!(
        recreated.metadata.uid, created.metadata.uid,
        "its own hook is created anew"
    );
    assert_eq!(recreated.data.unwrap_or_default()["key"], "changed");
}
