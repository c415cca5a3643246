//! Resource hooks and per-object sync annotations written for Argo CD and Flux, synced to the real
//! control plane: hooks run in their phases (`PreSync`, `Sync` in its wave, `PostSync` once all
//! is healthy, `SyncFail` after a failure, `Skip` never), `generateName` hooks are created afresh
//! on every sync and deleted by their policy, and the annotations that keep objects from being
//! pruned, updated or compared do what they say. The tests play kubelet for the hook Jobs' Pods;
//! the real job controller completes or fails the Jobs.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use driftless_core::SyncState;
use driftless_engine::{Engine, ProgressSink, SyncOptions, SyncProgress, SyncReport};
use driftless_store::{ObjectAction, SyncResult};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, Patch, PatchParams};

/// A Job hook: `name` is its `generateName` when it ends in `-`, else its name; its Pod carries
/// the label `job=<name without the dash>`.
fn hook_job(name: &str, phase: &str, policy: Option<&str>) -> String {
    let label = name.trim_end_matches('-');
    let identity = if name.ends_with('-') {
        format!("generateName: {name}")
    } else {
        format!("name: {name}")
    };
    let policy = policy.map_or(String::new(), |policy| {
        format!("\n    argocd.argoproj.io/hook-delete-policy: {policy}")
    });
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  {identity}\n  annotations:\n    argocd.argoproj.io/hook: {phase}{policy}\nspec:\n  backoffLimit: 0\n  template:\n    metadata: {{labels: {{job: {label}}}}}\n    spec:\n      restartPolicy: Never\n      containers:\n        - {{name: {label}, image: 'example.invalid/{label}:1'}}\n"
    )
}

fn config_map(name: &str, annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\ndata: {{key: v1}}\n"
    )
}

/// Writes `app/<name>.yaml`, a ConfigMap with these annotations, for each entry.
fn write_config_maps(repo: &TestRepo, entries: &[(&str, &str)]) {
    for (name, annotations) in entries {
        repo.write(&format!("app/{name}.yaml"), &config_map(name, annotations));
    }
}

/// An engine with the application `shop` of `repo`'s `app` directory.
fn shop(env: &TestEnv, repo: &TestRepo) -> (tempfile::TempDir, Arc<Engine>) {
    let app = common::application("shop", repo, "app", &env.namespace);
    let (data, engine) = common::engine(env, vec![app]);
    (data, Arc::new(engine))
}

/// Plays kubelet for the Pod of the Job labelled `job=<label>` that has not finished yet: waits
/// for it, then reports it `Succeeded` or `Failed`.
async fn finish_job_pod(env: &TestEnv, label: &str, succeeded: bool) {
    let pods = env.api::<Pod>();
    let pod = common::until(
        &format!("a Pod of Job {label}"),
        Duration::from_mins(1),
        || async {
            let listed = pods
                .list(&ListParams::default().labels(&format!("job={label}")))
                .await
                .map_err(|err| err.to_string())?;
            listed
                .items
                .into_iter()
                .find(|pod| {
                    !matches!(
                        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
                })
                .ok_or_else(|| "no unfinished Pod yet".to_owned())
        },
    )
    .await;
    let (phase, exit_code, reason) = if succeeded {
        ("Succeeded", 0, "Completed")
    } else {
        ("Failed", 1, "Error")
    };
    let status = serde_json::json!({ "status": {
        "phase": phase,
        "containerStatuses": [{ "name": label, "ready": false, "restartCount": 0, "image": "x", "imageID": "x",
            "state": { "terminated": { "exitCode": exit_code, "reason": reason,
                "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z" } } }]
    } });
    let name = pod.metadata.name.as_deref().expect("pods have names");
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("patch the Pod's status");
}

/// The Jobs this application created from the `generateName` hook `label`.
async fn generated_jobs(env: &TestEnv, label: &str) -> Vec<Job> {
    env.api::<Job>()
        .list(&ListParams::default().labels(&format!(
            "driftless.dev/application=shop,driftless.dev/hook={label}"
        )))
        .await
        .expect("list jobs")
        .items
}

/// Whether the report records `action` for the object called `name`.
fn has_outcome(report: &SyncReport, name: &str, action: ObjectAction) -> bool {
    report
        .outcomes
        .iter()
        .any(|outcome| outcome.object.name == name && outcome.action == action)
}

async fn exists(config_maps: &kube::Api<ConfigMap>, name: &str) -> bool {
    config_maps.get_opt(name).await.expect("get").is_some()
}

type Events = Arc<Mutex<Vec<SyncProgress>>>;

fn recording() -> (Events, SyncOptions) {
    let events: Events = Arc::default();
    let sink = {
        let events = Arc::clone(&events);
        ProgressSink(Arc::new(move |event| {
            events.lock().expect("events lock").push(event);
        }))
    };
    let options = SyncOptions {
        progress: Some(sink),
        wave_health_timeout: Duration::from_mins(1),
        ..SyncOptions::default()
    };
    (events, options)
}

/// The names of the objects created or configured, in the order the sync applied them.
fn applied_in_order(events: &Events) -> Vec<String> {
    events
        .lock()
        .expect("events lock")
        .iter()
        .filter_map(|event| match event {
            SyncProgress::Applied { object, .. } => Some(object.name.clone()),
            _ => None,
        })
        .collect()
}

/// An Argo CD application: a `PreSync` migration Job with `generateName` and `HookSucceeded`, a
/// `Sync` hook in wave 1 beside the objects, a `PostSync` Job with `generateName` (default policy:
/// deleted before the next sync creates another), a `SyncFail` hook and a skipped object.
#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario across two syncs, checked step by step"
)]
async fn argo_hooks_run_in_their_phases_and_generated_ones_are_fresh_each_sync() {
    let env = TestEnv::new("engine_hooks_phases").await;
    let repo = TestRepo::new();
    repo.write(
        "app/migrate.yaml",
        &hook_job("db-migrate-", "PreSync", Some("HookSucceeded")),
    )
    .write("app/notify.yaml", &hook_job("notify-", "PostSync", None));
    write_config_maps(
        &repo,
        &[
            ("settings", ""),
            (
                "seed",
                "argocd.argoproj.io/hook: Sync, argocd.argoproj.io/sync-wave: '1'",
            ),
            ("on-failure", "argocd.argoproj.io/hook: SyncFail"),
            ("never", "argocd.argoproj.io/hook: Skip"),
        ],
    );
    repo.commit("an Argo CD application with hooks");
    let (_data, engine) = shop(&env, &repo);
    let config_maps = env.api::<ConfigMap>();

    let (events, options) = recording();
    let syncing = Arc::clone(&engine);
    let sync = tokio::spawn(async move { syncing.sync("shop", options).await });
    common::until("the PreSync Job", Duration::from_mins(1), || async {
        let jobs = generated_jobs(&env, "db-migrate").await;
        if jobs.is_empty() {
            Err("none yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(
        !exists(&config_maps, "settings").await,
        "nothing else is applied while the PreSync hook runs"
    );
    finish_job_pod(&env, "db-migrate", true).await;
    finish_job_pod(&env, "notify", true).await;
    let first = sync.await.expect("the sync task").expect("sync");
    assert_eq!(first.result, SyncResult::Succeeded, "{first:?}");

    let order = applied_in_order(&events);
    let position = |prefix: &str| {
        order
            .iter()
            .position(|name| name.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} was not applied: {order:?}"))
    };
    assert!(position("db-migrate-") < position("settings"), "{order:?}");
    assert!(
        position("settings") < position("seed"),
        "wave 0 before wave 1: {order:?}"
    );
    assert!(position("seed") < position("notify-"), "PostSync last: {order:?}");
    assert!(
        order
            .iter()
            .any(|name| name.len() > "db-migrate-".len() && name.starts_with("db-migrate-")),
        "the server named the generated Job: {order:?}"
    );
    assert!(
        generated_jobs(&env, "db-migrate").await.is_empty(),
        "HookSucceeded: deleted once it succeeded"
    );
    let notify = generated_jobs(&env, "notify").await;
    assert_eq!(notify.len(), 1, "the PostSync Job stays until the next sync");
    assert_eq!(
        notify[0]
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get("driftless.dev/sync")),
        first.sync_id.map(|id| id.to_string()).as_ref(),
        "labelled with the sync that created it"
    );
    assert!(!exists(&config_maps, "never").await, "Skip: never applied");
    assert!(
        !exists(&config_maps, "on-failure").await,
        "SyncFail hooks run only when the sync fails"
    );
    assert!(has_outcome(&first, "never", ObjectAction::Skipped), "{first:?}");
    let comparison = engine.compare("shop").await.expect("compare");
    assert_eq!(
        comparison.sync,
        SyncState::Synced,
        "hooks are not compared, present or deleted: {comparison:?}"
    );
    assert!(
        comparison
            .objects
            .iter()
            .all(|status| status.object.name == "settings"),
        "{comparison:?}"
    );

    // A second sync runs every hook again: a fresh migration Job, and a new PostSync Job once the
    // first one is deleted (BeforeHookCreation, the default).
    let syncing = Arc::clone(&engine);
    let sync = tokio::spawn(async move { syncing.sync("shop", SyncOptions::default()).await });
    finish_job_pod(&env, "db-migrate", true).await;
    finish_job_pod(&env, "notify", true).await;
    let second = sync.await.expect("the sync task").expect("sync");
    assert_eq!(second.result, SyncResult::Succeeded, "{second:?}");
    assert!(
        has_outcome(&second, "seed", ObjectAction::Created),
        "the Sync hook was deleted and created anew: {second:?}"
    );
    let migrated: Vec<&str> = [&first, &second]
        .iter()
        .filter_map(|report| {
            report
                .outcomes
                .iter()
                .find(|o| o.object.name.starts_with("db-migrate-") && o.action == ObjectAction::Created)
                .map(|o| o.object.name.as_str())
        })
        .collect();
    assert_eq!(migrated.len(), 2, "{second:?}");
    assert_ne!(migrated[0], migrated[1], "a fresh Job each sync");
    let notify_again = generated_jobs(&env, "notify").await;
    assert_eq!(
        notify_again.len(),
        1,
        "the earlier PostSync Job was deleted first"
    );
    assert_ne!(notify_again[0].metadata.name, notify[0].metadata.name);
}

/// A PreSync hook that fails stops the sync before any other object is applied; the SyncFail
/// hooks run, and the failed hook is deleted as its `HookFailed` policy says.
#[tokio::test]
async fn a_failing_pre_sync_hook_stops_the_sync_and_sync_fail_hooks_run() {
    let env = TestEnv::new("engine_hooks_failure").await;
    let repo = TestRepo::new();
    repo.write(
        "app/check.yaml",
        &hook_job("check-", "PreSync", Some("HookFailed")),
    );
    write_config_maps(
        &repo,
        &[
            ("settings", ""),
            ("on-failure", "argocd.argoproj.io/hook: SyncFail"),
        ],
    );
    repo.commit("a PreSync check that will fail");
    let (_data, engine) = shop(&env, &repo);
    let syncing = Arc::clone(&engine);
    let sync = tokio::spawn(async move { syncing.sync("shop", SyncOptions::default()).await });
    finish_job_pod(&env, "check", false).await;
    let report = sync.await.expect("the sync task").expect("sync");
    assert_eq!(report.result, SyncResult::Failed, "{report:?}");
    assert!(report.message.contains("did not become healthy"), "{report:?}");
    let config_maps = env.api::<ConfigMap>();
    assert!(
        !exists(&config_maps, "settings").await,
        "nothing else was applied"
    );
    assert!(
        has_outcome(&report, "settings", ObjectAction::Skipped),
        "{report:?}"
    );
    assert!(exists(&config_maps, "on-failure").await, "the SyncFail hook ran");
    assert!(
        generated_jobs(&env, "check").await.is_empty(),
        "HookFailed: deleted once it failed"
    );
}

/// Argo CD's and Flux's per-object annotations, as the API server sees their effect: objects
/// kept from pruning stay (and, as in Argo CD, keep the application OutOfSync), an
/// `IgnoreExtraneous` object does not count as extraneous, an `ssa: IfNotPresent` object is
/// created once and never updated, nor is a live object someone marked `reconcile: disabled`;
/// `ssa: Ignore` and `reconcile: disabled` in Git are never applied.
#[tokio::test]
#[expect(
    clippy::too_many_lines,
    reason = "one scenario across two syncs, checked step by step"
)]
async fn sync_options_and_flux_annotations_do_what_they_say() {
    let env = TestEnv::new("engine_sync_annotations").await;
    let repo = TestRepo::new();
    let kept = [
        ("argo-prune-off", "argocd.argoproj.io/sync-options: Prune=false"),
        (
            "argo-delete-off",
            "argocd.argoproj.io/sync-options: 'Delete=false,ServerSideApply=true'",
        ),
        ("flux-prune-off", "kustomize.toolkit.fluxcd.io/prune: disabled"),
    ];
    write_config_maps(&repo, &kept);
    write_config_maps(
        &repo,
        &[
            (
                "generated",
                "argocd.argoproj.io/compare-options: IgnoreExtraneous",
            ),
            ("plain", "argocd.argoproj.io/sync-options: CreateNamespace=true"),
            ("once", "kustomize.toolkit.fluxcd.io/ssa: IfNotPresent"),
            ("frozen", ""),
            ("disabled", "kustomize.toolkit.fluxcd.io/reconcile: disabled"),
            ("ignored", "kustomize.toolkit.fluxcd.io/ssa: Ignore"),
        ],
    );
    repo.commit("annotated objects");
    let (_data, engine) = shop(&env, &repo);
    let prune = SyncOptions {
        prune: true,
        ..SyncOptions::default()
    };
    let report = engine.sync("shop", prune.clone()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let config_maps = env.api::<ConfigMap>();
    assert!(!exists(&config_maps, "ignored").await, "ssa: Ignore");
    assert!(
        report
            .outcomes
            .iter()
            .any(|o| o.object.name == "plain"
                && o.message.contains("CreateNamespace belongs to the application")),
        "accepted on an object, and said to do nothing: {report:?}"
    );
    assert!(
        !exists(&config_maps, "disabled").await,
        "reconcile: disabled in Git: skipped, as Flux's apply library skips it"
    );
    assert!(exists(&config_maps, "once").await, "created when absent");
    // Someone disables reconciliation of frozen in the cluster.
    let disable = serde_json::json!({ "metadata": { "annotations": {
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled" } } });
    config_maps
        .patch("frozen", &PatchParams::default(), &Patch::Merge(disable))
        .await
        .expect("annotate the live object");

    // Everything but once and frozen leaves Git; those two change.
    for name in [
        "argo-prune-off",
        "argo-delete-off",
        "flux-prune-off",
        "generated",
        "plain",
    ] {
        repo.remove(&format!("app/{name}.yaml"));
    }
    repo.write(
        "app/once.yaml",
        &config_map("once", "kustomize.toolkit.fluxcd.io/ssa: IfNotPresent").replace("key: v1", "key: v2"),
    )
    .write(
        "app/frozen.yaml",
        &config_map("frozen", "").replace("key: v1", "key: v2"),
    );
    repo.commit("objects leave Git, others change");
    let comparison = engine.compare("shop").await.expect("compare");
    let mut to_prune: Vec<&str> = comparison.to_prune.iter().map(|r| r.name.as_str()).collect();
    to_prune.sort_unstable();
    assert_eq!(
        to_prune,
        vec!["argo-delete-off", "argo-prune-off", "flux-prune-off", "plain"],
        "IgnoreExtraneous is not extraneous: {comparison:?}"
    );
    assert!(
        comparison.objects.iter().all(|status| status.diff.is_in_sync()),
        "objects left alone are not compared: {comparison:?}"
    );

    let report = engine.sync("shop", prune).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    for (name, _) in kept {
        assert!(exists(&config_maps, name).await, "{name} is never pruned");
        assert!(has_outcome(&report, name, ObjectAction::Kept), "{report:?}");
    }
    assert!(!exists(&config_maps, "plain").await, "pruned");
    assert!(
        !exists(&config_maps, "generated").await,
        "IgnoreExtraneous changes the comparison only, as in Argo CD: still pruned"
    );
    for name in ["once", "frozen"] {
        let live = config_maps.get(name).await.expect("get");
        assert_eq!(
            live.data.unwrap_or_default()["key"],
            "v1",
            "{name} is never updated"
        );
    }
    assert_eq!(
        engine.compare("shop").await.expect("compare").sync,
        SyncState::OutOfSync,
        "objects kept by Prune=false still differ from Git, as in Argo CD"
    );
}

/// `SkipDryRunOnMissingResource=true`: a custom object whose CRD another application installs is
/// no error before that happens (it is reported missing), and is applied once it is served.
#[tokio::test]
async fn a_custom_object_waiting_for_its_crd_elsewhere_is_not_an_error() {
    let env = TestEnv::new("engine_skip_dry_run").await;
    let group = format!("{}.example.com", env.namespace);
    let repo = TestRepo::new();
    repo.write(
        "crds/crd.yaml",
        &format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gizmos.{group}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: gizmos, singular: gizmo, kind: Gizmo}}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}\n"
        ),
    )
    .write(
        "gizmos/gizmo.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Gizmo\nmetadata:\n  name: sprocket\n  annotations:\n    argocd.argoproj.io/sync-options: SkipDryRunOnMissingResource=true\nspec:\n  size: 3\n"
        ),
    );
    repo.commit("a CRD and its object in two applications");
    let (_data, engine) = common::engine(
        &env,
        vec![
            common::application("crds", &repo, "crds", &env.namespace),
            common::application("gizmos", &repo, "gizmos", &env.namespace),
        ],
    );
    let comparison = engine
        .compare("gizmos")
        .await
        .expect("no error while the kind is not served");
    assert_eq!(comparison.sync, SyncState::OutOfSync, "{comparison:?}");
    let dry_run = SyncOptions {
        dry_run: true,
        ..SyncOptions::default()
    };
    let report = engine.sync("gizmos", dry_run).await.expect("dry-run");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    assert!(
        has_outcome(&report, "sprocket", ObjectAction::Created),
        "{report:?}"
    );
    let report = engine.sync("gizmos", SyncOptions::default()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Failed, "still not served: {report:?}");
    assert!(
        report.outcomes[0].message.contains("does not serve kind Gizmo"),
        "{report:?}"
    );
    let report = engine.sync("crds", SyncOptions::default()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let report = engine.sync("gizmos", SyncOptions::default()).await.expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    assert_eq!(
        engine.compare("gizmos").await.expect("compare").sync,
        SyncState::Synced
    );
}

/// A hook phase driftless does not know (Argo CD's `PostDelete`) fails comparison and sync, naming
/// the object, its file and the annotation, and nothing is applied.
#[tokio::test]
async fn an_unknown_hook_phase_fails_compare_and_sync_naming_the_object() {
    let env = TestEnv::new("engine_hooks_unknown").await;
    let repo = TestRepo::new();
    write_config_maps(
        &repo,
        &[
            ("settings", ""),
            ("cleanup", "argocd.argoproj.io/hook: PostDelete"),
        ],
    );
    repo.commit("a PostDelete hook");
    let (_data, engine) = shop(&env, &repo);
    let expected = format!(
        "ConfigMap/{}/cleanup (app/cleanup.yaml (document 1, line 1)): annotation \
         argocd.argoproj.io/hook must be a comma-separated list of PreSync, Sync, PostSync, \
         SyncFail or Skip, found \"PostDelete\"",
        env.namespace
    );
    let compared = engine.compare("shop").await.expect_err("refused").to_string();
    assert!(compared.contains(&expected), "{compared}");
    let synced = engine
        .sync("shop", SyncOptions::default())
        .await
        .expect_err("refused")
        .to_string();
    assert!(synced.contains(&expected), "{synced}");
    assert!(!exists(&env.api::<ConfigMap>(), "settings").await);
}

/// `Validate=false`: an object applied without validation is not checked against the schemas in
/// a plan either; the same object without it is.
#[tokio::test]
async fn a_plan_does_not_validate_what_validate_false_applies_unvalidated() {
    let env = TestEnv::new("engine_validate_false").await;
    let repo = TestRepo::new();
    write_config_maps(&repo, &[("settings", "")]);
    let base = repo.commit("base");
    let unknown_field =
        |name: &str, annotations: &str| format!("{}unknownField: x\n", config_map(name, annotations));
    repo.write("app/checked.yaml", &unknown_field("checked", ""))
        .write(
            "app/unchecked.yaml",
            &unknown_field("unchecked", "argocd.argoproj.io/sync-options: Validate=false"),
        );
    let head = repo.commit("objects with a field no schema declares");
    let (_data, engine) = shop(&env, &repo);
    let options = driftless_engine::PlanOptions {
        offline: true,
        ..driftless_engine::PlanOptions::default()
    };
    let plans = engine.plan(&base, &head, options).await;
    let flagged: Vec<&str> = plans
        .iter()
        .flat_map(|plan| &plan.problems)
        .filter(|problem| problem.check == "schema")
        .map(|problem| problem.object.name.as_str())
        .collect();
    assert_eq!(flagged, vec!["checked"], "{plans:?}");
}
