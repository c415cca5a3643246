//! A Helm chart from Git synced to the real control plane by real Helm (the shim over Helm 4's Go
//! SDK on PATH): its objects are applied, diffed and pruned like any others; a chart whose template
//! fails changes nothing.

mod common;

use driftless_core::SyncState;
use driftless_core::application::{HelmOptions, HelmParameter, Renderer};
use driftless_engine::SyncOptions;
use driftless_store::SyncResult;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use driftless_testenv::helm::assert_helm_on_path;
use k8s_openapi::api::core::v1::ConfigMap;

fn chart(repo: &TestRepo, extra_template: Option<&str>) {
    repo.write("charts/settings/Chart.yaml", "apiVersion: v2\nname: settings\nversion: 1.0.0\n")
        .write("charts/settings/values.yaml", "mode: safe\nextra: false\n")
        .write(
            "charts/settings/templates/settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n  mode: {{ .Values.mode }}\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n  batch: {{ .Capabilities.APIVersions.Has \"batch/v1\" | quote }}\n",
        )
        .write(
            "charts/settings/templates/extra.yaml",
            "{{- if .Values.extra }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-extra\ndata: {}\n{{- end }}\n",
        );
    if let Some(template) = extra_template {
        repo.write("charts/settings/templates/broken.yaml", template);
    }
}

#[tokio::test]
async fn a_chart_syncs_changes_and_prunes_like_any_source_and_a_broken_one_changes_nothing() {
    assert_helm_on_path();
    let env = TestEnv::new("helm-sync").await;
    let repo = TestRepo::new();
    chart(&repo, None);
    repo.write("env/prod.yaml", "mode: fast\nextra: true\n");
    repo.commit("chart");
    let mut app = common::application("shop", &repo, "charts/settings", &env.namespace);
    app.source.renderer = Renderer::Helm(HelmOptions {
        value_files: vec!["../../env/prod.yaml".into()],
        ..HelmOptions::default()
    });
    let (data, engine) = common::engine(&env, vec![app]);
    let report = engine
        .sync(
            "shop",
            SyncOptions {
                prune: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let config_maps = env.api::<ConfigMap>();
    let settings = config_maps.get("shop-settings").await.expect("applied");
    let values = settings.data.unwrap_or_default();
    assert_eq!(values["mode"], "fast");
    assert_eq!(
        (values["kube"].as_str(), values["batch"].as_str()),
        (driftless_testenv::K8S_VERSION, "true"),
        "Capabilities describe the destination cluster"
    );
    assert!(config_maps.get_opt("shop-extra").await.expect("get").is_some());
    assert_eq!(
        engine.compare("shop").await.expect("compare").sync,
        SyncState::Synced
    );

    // A parameter turns the extra object off: it is pruned like any object that left Git.
    let mut app = engine.config().applications[0].clone();
    app.source.renderer = Renderer::Helm(HelmOptions {
        value_files: vec!["../../env/prod.yaml".into()],
        parameters: vec![HelmParameter {
            name: "extra".into(),
            value: "false".into(),
            force_string: false,
        }],
        ..HelmOptions::default()
    });
    drop(engine);
    // The same state directory: a new process with the changed configuration.
    let engine = common::engine_in(env.kubeconfig_path(), data.path(), vec![app]);
    let report = engine
        .sync(
            "shop",
            SyncOptions {
                prune: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    assert!(
        config_maps.get_opt("shop-extra").await.expect("get").is_none(),
        "pruned"
    );

    // A template that fails: the sync fails before anything is applied or pruned.
    chart(&repo, Some("{{ fail \"the chart refuses\" }}\n"));
    repo.write("env/prod.yaml", "mode: broken\nextra: true\n");
    repo.commit("broken chart");
    let err = engine
        .sync(
            "shop",
            SyncOptions {
                prune: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect_err("the template fails");
    assert!(
        err.to_string()
            .starts_with("shop: render failed: helm template charts/settings failed:")
            && err.to_string().contains("the chart refuses"),
        "{err}"
    );
    let settings = config_maps.get("shop-settings").await.expect("still there");
    assert_eq!(
        settings.data.unwrap_or_default()["mode"],
        "fast",
        "nothing changed"
    );
}

/// Plays kubelet for the Pod of the Job labelled `job=<name>`: waits for it to appear, then
/// reports it succeeded, so the real job controller completes the Job.
async fn run_job_pod(env: &TestEnv, name: &str) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    let pods = env.api::<Pod>();
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let pod = loop {
        let listed = pods
            .list(&ListParams::default().labels(&format!("job={name}")))
            .await
            .expect("list pods");
        if let Some(pod) = listed
            .items
            .into_iter()
            .find(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded"))
        {
            break pod;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the Pod of Job {name} never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let pod_name = pod.metadata.name.as_deref().expect("pods have names");
    let succeeded = serde_json::json!({ "status": {
        "phase": "Succeeded",
        "containerStatuses": [{ "name": name, "ready": false, "restartCount": 0, "image": "x", "imageID": "x",
                                "state": { "terminated": { "exitCode": 0, "reason": "Completed",
                                           "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z" } } }]
    } });
    pods.patch_status(pod_name, &PatchParams::default(), &Patch::Merge(succeeded))
        .await
        .expect("patch pod status");
}

fn hook_job(name: &str, hook: &str, policy: Option<&str>, image: &str) -> String {
    let policy = policy.map_or(String::new(), |p| {
        format!("\n    helm.sh/hook-delete-policy: {p}")
    });
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  annotations:\n    helm.sh/hook: {hook}{policy}\nspec:\n  backoffLimit: 0\n  template:\n    metadata: {{labels: {{job: {name}}}}}\n    spec:\n      restartPolicy: Never\n      containers:\n        - {{name: {name}, image: '{image}'}}\n"
    )
}

/// A pre-install hook Job runs (and must finish) before the chart's other objects are applied:
/// the test plays kubelet for the Job's Pod, and the real job controller completes the Job.
#[tokio::test]
async fn a_pre_install_hook_job_completes_before_the_chart_is_applied() {
    use k8s_openapi::api::batch::v1::Job;
    assert_helm_on_path();
    let env = TestEnv::new("helm-hooks").await;
    let repo = TestRepo::new();
    chart(&repo, None);
    repo.write(
        "charts/settings/templates/migrate.yaml",
        &hook_job(
            "migrate",
            "pre-install,pre-upgrade",
            None,
            "example.invalid/migrate:1",
        ),
    );
    repo.commit("a chart with a migration hook");
    let mut app = common::application("shop", &repo, "charts/settings", &env.namespace);
    app.source.renderer = Renderer::Helm(HelmOptions::default());
    let (_data, engine) = common::engine(&env, vec![app]);
    let sync = tokio::spawn(async move { engine.sync("shop", SyncOptions::default()).await });

    let jobs = env.api::<Job>();
    let config_maps = env.api::<ConfigMap>();
    common::until(
        "the hook Job appears",
        std::time::Duration::from_mins(1),
        || async {
            match jobs.get_opt("migrate").await {
                Ok(Some(job)) => Ok(job),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(
        config_maps.get_opt("shop-settings").await.expect("get").is_none(),
        "the chart waits for its pre-install hook"
    );
    run_job_pod(&env, "migrate").await;
    let report = sync.await.expect("the sync task").expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    assert!(
        config_maps.get_opt("shop-settings").await.expect("get").is_some(),
        "applied after the hook"
    );
}

/// Hook deletion policies: a `hook-succeeded` Job is deleted once complete and its absence is
/// not drift; a changed `before-hook-creation` Job (Helm's default) is deleted and created anew,
/// though a Job's template cannot change in place.
#[tokio::test]
async fn hook_deletion_policies_are_honoured() {
    use k8s_openapi::api::batch::v1::Job;
    assert_helm_on_path();
    let env = TestEnv::new("helm-hook-policies").await;
    let repo = TestRepo::new();
    chart(&repo, None);
    repo.write(
        "charts/settings/templates/migrate.yaml",
        &hook_job(
            "migrate",
            "pre-upgrade,pre-install",
            Some("hook-succeeded"),
            "example.invalid/migrate:1",
        ),
    )
    .write(
        "charts/settings/templates/notify.yaml",
        &hook_job("notify", "post-install", None, "example.invalid/notify:1"),
    );
    repo.commit("hooks with deletion policies");
    let mut app = common::application("shop", &repo, "charts/settings", &env.namespace);
    app.source.renderer = Renderer::Helm(HelmOptions::default());
    let (_data, engine) = common::engine(&env, vec![app]);
    let engine = std::sync::Arc::new(engine);
    let jobs = env.api::<Job>();

    let syncing = std::sync::Arc::clone(&engine);
    let sync = tokio::spawn(async move { syncing.sync("shop", SyncOptions::default()).await });
    run_job_pod(&env, "migrate").await;
    // A post-install hook is waited for too: its failure would fail the sync.
    run_job_pod(&env, "notify").await;
    let report = sync.await.expect("the sync task").expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    assert!(
        report
            .outcomes
            .iter()
            .any(|o| o.object.name == "migrate" && o.message.contains("hook deleted after it succeeded")),
        "{report:?}"
    );
    assert!(
        jobs.get_opt("migrate").await.expect("get").is_none(),
        "deleted once it succeeded"
    );
    let first_notify = jobs.get("notify").await.expect("the post-install hook ran");
    let comparison = engine.compare("shop").await.expect("compare");
    assert_eq!(
        comparison.sync,
        SyncState::Synced,
        "a deleted hook is not missing: {comparison:?}"
    );

    // notify changes: the old Job is deleted and the new one created (a Job's template is
    // immutable, so an apply alone would fail).
    repo.write(
        "charts/settings/templates/notify.yaml",
        &hook_job("notify", "post-install", None, "example.invalid/notify:2"),
    );
    repo.commit("notify v2");
    assert_eq!(
        engine.compare("shop").await.expect("compare").sync,
        SyncState::Synced,
        "a hook is not compared: it runs anew on every sync"
    );
    let syncing = std::sync::Arc::clone(&engine);
    let sync = tokio::spawn(async move { syncing.sync("shop", SyncOptions::default()).await });
    run_job_pod(&env, "migrate").await;
    run_job_pod(&env, "notify").await;
    let report = sync.await.expect("the sync task").expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    let second_notify = jobs.get("notify").await.expect("notify again");
    assert_ne!(first_notify.metadata.uid, second_notify.metadata.uid, "a new Job");
    let image = second_notify
        .spec
        .and_then(|spec| spec.template.spec)
        .map(|pod| pod.containers[0].image.clone().unwrap_or_default());
    assert_eq!(image.as_deref(), Some("example.invalid/notify:2"));
}
