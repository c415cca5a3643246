//! Drift under `driftless serve`'s controller, against the real control plane: the watch cache
//! notices changes without any periodic reconcile (intervals here are an hour), tells who changed
//! what, leaves fields driftless does not own alone, self-heals with a backoff against a writer
//! that keeps changing things back, survives an API server restart, and makes no-op reconciles
//! free. Also: a new commit re-renders only the applications whose inputs it touched.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{Running, patch, replicas, until};
use driftless_core::SyncState;
use driftless_core::application::{Application, IgnoreDifference};
use driftless_core::diff::ObjectDiff;
use driftless_engine::{AppStatus, Controller, Engine, SyncOptions};
use driftless_store::{EventKind, ObjectAction, Trigger};
use driftless_testenv::git::TestRepo;
use driftless_testenv::{ControlPlane, TestEnv};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_mins(1);

fn deployment(replicas: Option<u32>) -> String {
    let replicas = replicas.map_or_else(String::new, |n| format!("  replicas: {n}\n"));
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, labels: {{tier: web}}}}\nspec:\n{replicas}  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: nginx}}]}}\n"
    )
}

const SETTINGS: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: fast, ignored: from-git}\n";

/// A repository with `web` (a Deployment) and `settings` (a ConfigMap) under `app/`, and the
/// fence's Deployment and ConfigMap under `fence/`.
fn repository(replicas: Option<u32>) -> TestRepo {
    let repo = TestRepo::new();
    repo.write("app/web.yaml", &deployment(replicas))
        .write("app/settings.yaml", SETTINGS)
        .write(
            "fence/deployment.yaml",
            &deployment(Some(0)).replace("web", FENCE),
        )
        .write("fence/config.yaml", &config_map(FENCE, "as in Git"));
    repo.commit("web and settings");
    repo
}

/// The application beside the one under test that is only there to be edited (see [`fence`]).
const FENCE: &str = "fence";

fn fence_application(repo: &TestRepo, namespace: &str) -> Application {
    watched_only(common::application(FENCE, repo, FENCE, namespace))
}

/// Returns once the watches of `kinds` have seen every change made before the call: a watch
/// delivers its kind's events in order, so when an edit of the fence's object of that kind is
/// reported as drift, what came before it has reached the cache too. Without this, a "not drift"
/// check could run before the watch saw the change and pass for nothing. Who is named as the
/// editor is not checked: managedFields times have a one-second grain, so the deployment
/// controller's write of the same second may be named instead. The fence's objects are edited
/// one at a time, each waited for and synced back, so no reconcile of the fence that costs a
/// request is left to run after.
async fn fence(controller: &Arc<Controller>, env: &TestEnv, kinds: &[&str]) {
    for kind in kinds {
        let edited = match *kind {
            "Deployment" => {
                // A label, not the spec: no new generation, so no controller writes after it.
                let labels = json!({"metadata": {"labels": {"tier": "edited"}}});
                patch(&env.api::<Deployment>(), FENCE, "fence-edit", labels).await;
                format!("apps/Deployment/{}/{FENCE} changed", env.namespace)
            }
            "ConfigMap" => {
                let data = json!({"data": {"v": "edited"}});
                patch(&env.api::<ConfigMap>(), FENCE, "fence-edit", data).await;
                format!("ConfigMap/{}/{FENCE} changed", env.namespace)
            }
            other => panic!("no fence object of kind {other}"),
        };
        status_where(controller, FENCE, &format!("the fence's {kind} edit seen"), |s| {
            s.drift.as_deref().is_some_and(|drift| drift.contains(&edited))
        })
        .await;
        // Back in sync (taking the edited field back) and settled: a drifted fence would read
        // from the API server whenever something else (the deployment controller) touched it,
        // and be counted.
        let force = SyncOptions {
            force: true,
            ..SyncOptions::default()
        };
        let report = controller.sync_now(FENCE, force).await.expect("sync the fence");
        assert_eq!(
            report.result,
            driftless_store::SyncResult::Succeeded,
            "{report:?}"
        );
        sync_and_settle(controller, FENCE).await;
    }
}

/// Never reconciled on a timer: only the watch (or an explicit refresh) can notice anything.
fn watched_only(mut app: Application) -> Application {
    app.sync_policy.interval = Duration::from_hours(1);
    app
}

async fn status(controller: &Controller, name: &str) -> AppStatus {
    controller.statuses().await.get(name).cloned().unwrap_or_default()
}

/// Waits for the application's status to satisfy `check`.
async fn status_where(
    controller: &Controller,
    name: &str,
    what: &str,
    check: impl Fn(&AppStatus) -> bool,
) -> AppStatus {
    until(what, WAIT, || async {
        let status = status(controller, name).await;
        if check(&status) {
            Ok(status)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await
}

/// Scales `web` as `kubectl scale` would and waits until the application is OutOfSync (no
/// reconcile is asked for: the watch has to notice).
async fn scale_until_drift(
    controller: &Controller,
    name: &str,
    deployments: &Api<Deployment>,
    replicas: u32,
) -> AppStatus {
    patch(
        deployments,
        "web",
        "kubectl-scale",
        json!({"spec": {"replicas": replicas}}),
    )
    .await;
    status_where(controller, name, "drift detection", |s| {
        s.sync == Some(SyncState::OutOfSync)
    })
    .await
}

/// Asks for a reconcile and waits for it; returns the API requests it made.
async fn refresh_and_count(controller: &Controller, name: &str) -> u64 {
    let before_requests = controller.engine().stats().await.api_requests;
    let before = status(controller, name).await.reconciled_at;
    controller.refresh(name);
    status_where(controller, name, "a reconcile after refresh", |s| {
        s.reconciled_at > before
    })
    .await;
    controller.engine().stats().await.api_requests - before_requests
}

/// Waits until a refresh of an application in sync costs no request at all (the watches of its
/// kinds have listed).
async fn wait_for_free_reconciles(controller: &Controller, name: &str) {
    until("a no-op reconcile without API requests", WAIT, || async {
        match refresh_and_count(controller, name).await {
            0 => Ok(()),
            requests => Err(format!("{requests} request(s)")),
        }
    })
    .await;
}

/// How many automated syncs (self-heals, here) the application's history holds.
fn automated_syncs(controller: &Controller, name: &str) -> usize {
    controller
        .engine()
        .store()
        .history(name, 100)
        .expect("history")
        .into_iter()
        .filter(|record| record.trigger == Trigger::Automated)
        .count()
}

/// A ConfigMap `name` whose data `v` is `value`.
fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{v: '{value}'}}\n")
}

async fn start_synced(engine: Engine, name: &str) -> (Arc<Controller>, Running) {
    let (controller, running) = Running::start(engine);
    sync_and_settle(&controller, name).await;
    (controller, running)
}

/// [`start_synced`], then the fence synced as well.
async fn start_synced_with_fence(engine: Engine, name: &str) -> (Arc<Controller>, Running) {
    let (controller, running) = start_synced(engine, name).await;
    sync_and_settle(&controller, FENCE).await;
    (controller, running)
}

/// Waits for the first reconcile, syncs if it left the application out of sync, and waits until
/// reconciles of it are free.
async fn sync_and_settle(controller: &Arc<Controller>, name: &str) {
    status_where(controller, name, "the first sync", |s| {
        s.sync.is_some() && s.reconciled_at.is_some()
    })
    .await;
    if status(controller, name).await.sync != Some(SyncState::Synced) {
        controller
            .sync_now(name, SyncOptions::default())
            .await
            .expect("sync");
    }
    status_where(controller, name, "Synced", |s| s.sync == Some(SyncState::Synced)).await;
    wait_for_free_reconciles(controller, name).await;
}

#[tokio::test]
async fn drift_is_seen_by_the_watch_with_who_changed_what_and_other_managers_labels_are_not_drift() {
    let env = TestEnv::new("drift_detect").await;
    let repo = repository(Some(2));
    let app = watched_only(common::application("detect", &repo, "app", &env.namespace));
    let fence_app = fence_application(&repo, &env.namespace);
    let (_data, engine) = common::engine(&env, vec![app, fence_app]);
    let (controller, running) = start_synced_with_fence(engine, "detect").await;
    let (deployments, config_maps) = (env.api::<Deployment>(), env.api::<ConfigMap>());

    // Someone else's label on a managed object: not drift, and the reconcile costs nothing.
    patch(
        &deployments,
        "web",
        "kubectl-label",
        json!({"metadata": {"labels": {"team": "blue"}}}),
    )
    .await;
    fence(&controller, &env, &["Deployment"]).await;
    assert_eq!(refresh_and_count(&controller, "detect").await, 0);
    assert_eq!(status(&controller, "detect").await.sync, Some(SyncState::Synced));

    // `kubectl scale`-like edit: seen without any reconcile being asked for.
    let drifted = scale_until_drift(&controller, "detect", &deployments, 5).await;
    let drift = drifted.drift.expect("what drifted is reported");
    assert!(
        drift.contains(&format!(
            "apps/Deployment/{}/web changed by kubectl-scale",
            env.namespace
        )),
        "{drift}"
    );
    assert!(drifted.drift_detected_at.is_some());
    let events = controller.engine().store().events("detect", 10).expect("events");
    assert_eq!(events[0].kind, EventKind::DriftDetected);
    assert!(
        events[0].message.starts_with("drift detected: "),
        "{}",
        events[0].message
    );
    let comparison = controller.engine().compare("detect").await.expect("diff");
    let web = comparison
        .objects
        .iter()
        .find(|o| o.object.kind == "Deployment")
        .expect("web");
    match &web.diff {
        ObjectDiff::Changed { unified, .. } => assert!(unified.contains("replicas"), "{unified}"),
        other => panic!("expected a change to replicas, got {other:?}"),
    }
    assert!(
        comparison
            .objects
            .iter()
            .filter(|o| o.object.kind == "ConfigMap")
            .all(|o| o.diff.is_in_sync()),
        "only the scaled object drifted so far"
    );
    // Not automated: reported, never reverted.
    assert_eq!(replicas(&deployments).await, Some(5));

    // `kubectl edit` of a ConfigMap's data and `kubectl label --overwrite` of a label Git declares.
    patch(
        &config_maps,
        "settings",
        "kubectl-edit",
        json!({"data": {"mode": "slow"}}),
    )
    .await;
    patch(
        &deployments,
        "web",
        "kubectl-label",
        json!({"metadata": {"labels": {"tier": "changed"}}}),
    )
    .await;
    status_where(&controller, "detect", "the edit seen", |s| {
        s.drift.as_deref().is_some_and(|d| {
            d.contains(&format!(
                "ConfigMap/{}/settings changed by kubectl-edit",
                env.namespace
            ))
        })
    })
    .await;
    let comparison = controller.engine().compare("detect").await.expect("diff");
    for (kind, field) in [("Deployment", "tier"), ("ConfigMap", "mode")] {
        let object = comparison
            .objects
            .iter()
            .find(|o| o.object.kind == kind)
            .expect("declared");
        match &object.diff {
            ObjectDiff::Changed { unified, .. } => assert!(unified.contains(field), "{unified}"),
            other => panic!("expected {kind} to differ in {field}, got {other:?}"),
        }
    }

    // Deleting a managed object is drift too.
    config_maps
        .delete("settings", &kube::api::DeleteParams::default())
        .await
        .expect("delete");
    let deleted = status_where(&controller, "detect", "deletion seen", |s| {
        s.drift.as_deref().is_some_and(|d| d.contains("settings deleted"))
    })
    .await;
    assert_eq!(deleted.sync, Some(SyncState::OutOfSync));
    running.stop().await;
}

#[tokio::test]
async fn fields_owned_by_others_and_ignored_differences_are_not_drift_and_never_reverted() {
    let env = TestEnv::new("drift_ownership").await;
    // No replicas in Git: an autoscaler owns them.
    let repo = repository(None);
    let mut app = watched_only(common::automated("owned", &repo, "app", &env.namespace));
    app.ignore_differences = vec![IgnoreDifference {
        group: Some(String::new()),
        kind: "ConfigMap".into(),
        name: Some("settings".into()),
        namespace: None,
        json_pointers: vec!["/data/ignored".into()],
        managed_fields_managers: Vec::new(),
    }];
    let fence_app = fence_application(&repo, &env.namespace);
    let (_data, engine) = common::engine(&env, vec![app, fence_app]);
    let (controller, running) = start_synced_with_fence(engine, "owned").await;
    let (deployments, config_maps) = (env.api::<Deployment>(), env.api::<ConfigMap>());

    let autoscaler = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 4}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("hpa-controller").force(),
            &Patch::Apply(&autoscaler),
        )
        .await
        .expect("autoscale");
    patch(
        &config_maps,
        "settings",
        "operator",
        json!({"data": {"ignored": "from-operator"}}),
    )
    .await;

    fence(&controller, &env, &["Deployment", "ConfigMap"]).await;
    refresh_and_count(&controller, "owned").await;
    let after = status(&controller, "owned").await;
    assert_eq!(after.sync, Some(SyncState::Synced), "{after:?}");
    assert_eq!(
        replicas(&deployments).await,
        Some(4),
        "the autoscaler's replicas stay"
    );
    let settings = config_maps.get("settings").await.expect("settings");
    assert_eq!(
        settings.data.expect("data")["ignored"],
        "from-operator",
        "an ignored field is never reverted"
    );
    assert!(
        controller
            .engine()
            .store()
            .events("owned", 10)
            .expect("events")
            .is_empty(),
        "no drift was recorded"
    );
    running.stop().await;
}

#[tokio::test]
async fn self_heal_reverts_drift_and_backs_off_against_a_competing_writer() {
    let env = TestEnv::new("drift_self_heal").await;
    let repo = repository(Some(2));
    let app = watched_only(common::automated("heal", &repo, "app", &env.namespace));
    let (_data, engine) = common::engine(&env, vec![app]);
    let (controller, running) = start_synced(engine, "heal").await;
    let deployments = env.api::<Deployment>();
    let heals_before = automated_syncs(&controller, "heal");

    patch(
        &deployments,
        "web",
        "kubectl-scale",
        json!({"spec": {"replicas": 5}}),
    )
    .await;
    until("self-heal", WAIT, || async {
        match replicas(&deployments).await {
            Some(2) => Ok(()),
            other => Err(format!("replicas {other:?}")),
        }
    })
    .await;
    assert_eq!(automated_syncs(&controller, "heal"), heals_before + 1);

    // Another writer keeps scaling it back for 10 s. Reverting at once every time would mean a
    // sync per change (about 100 here); with the backoff, at most a handful.
    let fight_started = automated_syncs(&controller, "heal");
    let mut backoff_seen = None;
    let fight = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < fight {
        if replicas(&deployments).await != Some(7) {
            patch(
                &deployments,
                "web",
                "autoscaler",
                json!({"spec": {"replicas": 7}}),
            )
            .await;
        }
        if let Some(message) = status(&controller, "heal").await.self_heal_backoff {
            backoff_seen = Some(message);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let during_fight = automated_syncs(&controller, "heal") - fight_started;
    assert!(
        (2..=6).contains(&during_fight),
        "{during_fight} self-heals in 10 s of fighting"
    );
    let message = backoff_seen.expect("the status reports the backoff");
    assert!(message.contains("self-heal backing off"), "{message}");
    assert!(
        message.contains("autoscaler"),
        "names the other writer: {message}"
    );
    let events = controller.engine().store().events("heal", 100).expect("events");
    assert!(
        events.iter().any(|e| e.kind == EventKind::SelfHealBackoff),
        "{events:?}"
    );

    // Once the other writer stops, Git wins again.
    until("healed after the fight", Duration::from_mins(2), || async {
        match replicas(&deployments).await {
            Some(2) => Ok(()),
            other => Err(format!("replicas {other:?}")),
        }
    })
    .await;
    status_where(&controller, "heal", "Synced after the fight", |s| {
        s.sync == Some(SyncState::Synced)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn watches_resynchronise_after_an_api_server_restart_and_miss_no_drift() {
    let mut control_plane = ControlPlane::start().await.expect("control plane");
    let client = control_plane.client().await.expect("client");
    let namespace = "restart";
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("namespace"),
        )
        .await
        .expect("create namespace");
    let repo = repository(Some(2));
    let app = watched_only(common::application("restart", &repo, "app", namespace));
    let (_data, engine) = common::engine_at(control_plane.kubeconfig_path(), vec![app]);
    let (controller, running) = start_synced(engine, "restart").await;

    control_plane.stop_api_server();
    control_plane.start_api_server().await.expect("restart");
    // Changed right after the restart, possibly before the watch is back: the relist finds it.
    let client = control_plane.client().await.expect("client");
    let deployments = Api::<Deployment>::namespaced(client, namespace);
    let drifted = scale_until_drift(&controller, "restart", &deployments, 3).await;
    assert!(
        drifted
            .drift
            .as_deref()
            .is_some_and(|d| d.contains("kubectl-scale")),
        "{drifted:?}"
    );
    // And the watches keep working after that.
    patch(
        &deployments,
        "web",
        "kubectl-scale",
        json!({"spec": {"replicas": 2}}),
    )
    .await;
    controller
        .sync_now("restart", SyncOptions::default())
        .await
        .expect("sync");
    status_where(&controller, "restart", "Synced again", |s| {
        s.sync == Some(SyncState::Synced)
    })
    .await;
    wait_for_free_reconciles(&controller, "restart").await;
    running.stop().await;
}

/// Compares every application of the incremental test; the renders that took and the revisions.
async fn renders(engine: &Engine) -> (u64, Vec<String>) {
    let before = engine.stats().await.renders;
    let mut revisions = Vec::new();
    for name in ["a", "b", "c", "k"] {
        revisions.push(engine.compare(name).await.expect("compare").revision);
    }
    (engine.stats().await.renders - before, revisions)
}

#[tokio::test]
async fn a_commit_re_renders_only_the_applications_whose_inputs_it_touched() {
    let env = TestEnv::new("incremental").await;
    let repo = TestRepo::new();
    for name in ["a", "b", "c"] {
        repo.write(&format!("apps/{name}/cm.yaml"), &config_map(name, "1"));
    }
    // A Kustomize overlay whose base lives outside its path.
    repo.write("bases/shared/cm.yaml", &config_map("shared", "1"))
        .write("bases/shared/kustomization.yaml", "resources: [cm.yaml]\n")
        .write("bases/unused/kustomization.yaml", "resources: []\n")
        .write(
            "overlays/k/kustomization.yaml",
            "resources: [../../bases/shared]\nnamePrefix: k-\n",
        )
        .write("README.md", "one\n");
    repo.commit("four applications");
    let apps: Vec<Application> = ["a", "b", "c"]
        .iter()
        .map(|name| common::application(name, &repo, &format!("apps/{name}"), &env.namespace))
        .chain([common::application("k", &repo, "overlays/k", &env.namespace)])
        .collect();
    let (_data, engine) = common::engine(&env, apps);
    assert_eq!(renders(&engine).await.0, 4);
    assert_eq!(renders(&engine).await.0, 0, "same commit: nothing re-rendered");

    repo.write("apps/b/cm.yaml", &config_map("b", "2"));
    let second = repo.commit("change b");
    let (count, revisions) = renders(&engine).await;
    assert_eq!(count, 1, "only b is re-rendered");
    assert!(
        revisions.iter().all(|r| *r == second),
        "every application is at the new commit"
    );
    let rendered_b = engine.render("b", None).await.expect("render b");
    assert_eq!(rendered_b.manifests[0]["data"]["v"], "2");

    repo.write("README.md", "two\n")
        .write("bases/unused/kustomization.yaml", "resources: []\n# touched\n");
    repo.commit("files nobody renders");
    assert_eq!(renders(&engine).await.0, 0, "nothing read those files");

    repo.write("bases/shared/cm.yaml", &config_map("shared", "2"));
    repo.commit("change the shared base");
    assert_eq!(
        renders(&engine).await.0,
        1,
        "only the overlay that reads the base"
    );
    let rendered_k = engine.render("k", None).await.expect("render k");
    assert_eq!(rendered_k.manifests[0]["metadata"]["name"], "k-shared");
    assert_eq!(rendered_k.manifests[0]["data"]["v"], "2");
}

/// A new process (a CLI sync) reuses the render an earlier one kept for the same commit and
/// application; never one with a Secret, and never for an application configured differently.
#[tokio::test]
async fn a_new_process_reuses_the_kept_render_but_never_keeps_secrets() {
    let env = TestEnv::new("kept-render").await;
    let repo = TestRepo::new();
    repo.write(
        "plain/cm.yaml",
        &config_map("plain", "1"),
    )
    .write(
        "secretive/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: kept-render-hunter2}\n",
    );
    let initial = repo.commit("two applications");
    let apps = vec![
        common::application("plain", &repo, "plain", &env.namespace),
        common::application("secretive", &repo, "secretive", &env.namespace),
    ];
    let data = tempfile::tempdir().expect("tempdir");
    let open = |apps| common::engine_in(env.kubeconfig_path(), data.path(), apps);
    let first = open(apps.clone());
    for name in ["plain", "secretive"] {
        let report = first.sync(name, SyncOptions::default()).await.expect("sync");
        assert!(report.message.is_empty(), "{name}: {}", report.message);
    }
    assert_eq!(first.stats().await.renders, 2);
    drop(first);
    let database = std::fs::read(data.path().join("driftless.db")).expect("database");
    let wal = std::fs::read(data.path().join("driftless.db-wal")).unwrap_or_default();
    for bytes in [&database, &wal] {
        assert!(
            !bytes.windows(19).any(|w| w == b"kept-render-hunter2"),
            "a Secret's value reached the store"
        );
    }

    let second = open(apps.clone());
    let report = second.sync("plain", SyncOptions::default()).await.expect("sync");
    assert_eq!(report.revision, initial);
    assert!(
        report
            .outcomes
            .iter()
            .all(|outcome| outcome.action == ObjectAction::Unchanged),
        "nothing to do: {:?}",
        report.outcomes
    );
    assert_eq!(second.stats().await.renders, 0, "the kept render was used");
    second.compare("secretive").await.expect("compare");
    assert_eq!(second.stats().await.renders, 1, "a Secret's render is never kept");
    drop(second);

    repo.write("README.md", "unrelated\n");
    let unrelated = repo.commit("a file nobody renders");
    let third = open(apps.clone());
    let comparison = third.compare("plain").await.expect("compare");
    assert_eq!(comparison.revision, unrelated);
    assert_eq!(comparison.sync, SyncState::Synced);
    assert_eq!(
        third.stats().await.renders,
        0,
        "the commit did not touch what it read"
    );
    drop(third);

    let mut changed = apps;
    changed[0].ignore_differences.push(IgnoreDifference {
        group: None,
        kind: "ConfigMap".into(),
        name: None,
        namespace: None,
        json_pointers: vec!["/data/v".into()],
        managed_fields_managers: Vec::new(),
    });
    let fourth = open(changed);
    fourth.compare("plain").await.expect("compare");
    assert_eq!(
        fourth.stats().await.renders,
        1,
        "configured differently: rendered again"
    );
}

/// Issue 20: the controller took the last synced revision from the last 20 history rows, so
/// after more than 20 failed syncs in a row it saw drift as a new revision and reverted it
/// without `selfHeal`. The last successful sync counts however many failed after it.
#[tokio::test]
async fn drift_after_many_failed_syncs_is_reported_and_not_reverted_without_self_heal() {
    use driftless_core::application::Automated;
    use driftless_store::SyncResult;
    let env = TestEnv::new("drift_after_failures").await;
    let repo = repository(Some(2));
    let mut app = watched_only(common::application("reported", &repo, "app", &env.namespace));
    app.sync_policy.automated = Some(Automated {
        prune: false,
        self_heal: false,
    });
    let (_data, engine) = common::engine(&env, vec![app]);
    let (controller, running) = start_synced(engine, "reported").await;
    let store = controller.engine().store();
    let revision = store
        .last_synced_revision("reported")
        .expect("store")
        .expect("synced once");
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits")
    };
    for _ in 0..25 {
        let id = store
            .begin_sync("reported", &revision, &revision, Trigger::Manual, now())
            .expect("begin");
        store
            .finish_sync(
                id,
                SyncResult::Failed,
                "the API server refused it",
                &[],
                now(),
                None,
            )
            .expect("finish");
    }
    let syncs_before = automated_syncs(&controller, "reported");
    let deployments: Api<Deployment> = env.api();
    let drifted = scale_until_drift(&controller, "reported", &deployments, 5).await;
    assert!(drifted.drift.is_some(), "reported as drift: {drifted:?}");
    // Another reconcile, to give a wrong auto-sync every chance to happen.
    let before = drifted.reconciled_at;
    controller.refresh("reported");
    status_where(&controller, "reported", "a reconcile after refresh", |s| {
        s.reconciled_at > before
    })
    .await;
    assert_eq!(replicas(&deployments).await, Some(5), "the drift was reverted");
    assert_eq!(
        automated_syncs(&controller, "reported"),
        syncs_before,
        "no automated sync ran"
    );
    running.stop().await;
}
