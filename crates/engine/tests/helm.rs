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
