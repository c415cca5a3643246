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

/// A pre-install hook Job runs (and must finish) before the chart's other objects are applied:
/// the test plays kubelet for the Job's Pod, and the real job controller completes the Job.
#[tokio::test]
async fn a_pre_install_hook_job_completes_before_the_chart_is_applied() {
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    assert_helm_on_path();
    let env = TestEnv::new("helm-hooks").await;
    let repo = TestRepo::new();
    chart(&repo, None);
    repo.write(
        "charts/settings/templates/migrate.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\nspec:\n  backoffLimit: 0\n  template:\n    metadata: {labels: {job: migrate}}\n    spec:\n      restartPolicy: Never\n      containers:\n        - {name: migrate, image: example.invalid/migrate:1}\n",
    );
    repo.commit("a chart with a migration hook");
    let mut app = common::application("shop", &repo, "charts/settings", &env.namespace);
    app.source.renderer = Renderer::Helm(HelmOptions::default());
    let (_data, engine) = common::engine(&env, vec![app]);
    let sync = tokio::spawn(async move { engine.sync("shop", SyncOptions::default()).await });

    let jobs = env.api::<Job>();
    let pods = env.api::<Pod>();
    let config_maps = env.api::<ConfigMap>();
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    let pod = loop {
        let listed = pods
            .list(&ListParams::default().labels("job=migrate"))
            .await
            .expect("list pods");
        if let Some(pod) = listed.items.into_iter().next() {
            break pod;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the hook Job's Pod never appeared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(jobs.get_opt("migrate").await.expect("get").is_some());
    assert!(
        config_maps.get_opt("shop-settings").await.expect("get").is_none(),
        "the chart waits for its pre-install hook"
    );
    // The kubelet's part: the Pod ran and succeeded; the job controller completes the Job.
    let name = pod.metadata.name.as_deref().expect("pods have names");
    let succeeded = serde_json::json!({ "status": {
        "phase": "Succeeded",
        "containerStatuses": [{ "name": "migrate", "ready": false, "restartCount": 0, "image": "x", "imageID": "x",
                                "state": { "terminated": { "exitCode": 0, "reason": "Completed",
                                           "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z" } } }]
    } });
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(succeeded))
        .await
        .expect("patch pod status");
    let report = sync.await.expect("the sync task").expect("sync");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:?}");
    assert!(
        config_maps.get_opt("shop-settings").await.expect("get").is_some(),
        "applied after the hook"
    );
}
