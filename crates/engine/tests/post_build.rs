//! Flux's post-build variable substitution on the real control plane: a Flux-style Kustomize
//! overlay with `${cluster_env:=dev}`, variables from a ConfigMap and a Secret in the destination
//! namespace and inline ones, synced with the values visible on the live objects; a Secret's
//! value reaches the cluster and not the store; a missing non-optional ConfigMap fails the
//! application naming it, with nothing applied.

mod common;

use std::collections::BTreeMap;

use driftless_core::application::{PostBuild, SubstituteKind, SubstituteReference};
use driftless_engine::SyncOptions;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};

const PASSWORD: &str = "canary-9b1e-post-build-secret";

const BASE: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    environment: ${cluster_env:=dev}
data:
  region: \"${cluster_region}\"
  password: ${db_password}
  size: ${size}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: runner
automountServiceAccountToken: ${automount:=false}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  run.sh: echo ${HOME}
";

fn repository() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("base/objects.yaml", BASE)
        .write("base/kustomization.yaml", "resources:\n  - objects.yaml\n")
        .write(
            "overlays/prod/kustomization.yaml",
            "resources:\n  - ../../base\ncommonLabels:\n  tier: prod\n",
        )
        .write(
            "absent/objects.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: never\ndata:\n  v: ${anything:=x}\n",
        );
    repo.commit("Flux-style overlay with substitutions");
    repo
}

async fn create_sources(env: &TestEnv) {
    let config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cluster-vars".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("cluster_region".to_owned(), "eu-west-1".to_owned()),
            ("size".to_owned(), "small".to_owned()),
        ])),
        ..ConfigMap::default()
    };
    env.api::<ConfigMap>()
        .create(&PostParams::default(), &config_map)
        .await
        .expect("create the variables' ConfigMap");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("cluster-secrets".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "db_password".to_owned(),
            ByteString(PASSWORD.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the variables' Secret");
}

fn post_build(references: &[(SubstituteKind, &str, bool)], inline: &[(&str, &str)]) -> PostBuild {
    PostBuild {
        substitute: inline
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        substitute_from: references
            .iter()
            .map(|(kind, name, optional)| SubstituteReference {
                kind: *kind,
                name: (*name).to_owned(),
                optional: *optional,
            })
            .collect(),
        always: false,
    }
}

#[tokio::test]
async fn a_flux_overlay_syncs_with_variables_from_the_cluster_and_inline() {
    let env = TestEnv::new("post-build").await;
    create_sources(&env).await;
    let repo = repository();
    let mut app = common::application("flux-overlay", &repo, "overlays/prod", &env.namespace);
    app.post_build = Some(post_build(
        &[
            (SubstituteKind::ConfigMap, "cluster-vars", false),
            (SubstituteKind::ConfigMap, "not-there", true),
            (SubstituteKind::Secret, "cluster-secrets", false),
        ],
        // Inline variables override the cluster's.
        &[("size", "large")],
    ));
    let (data, engine) = common::engine(&env, vec![app]);

    let report = engine
        .sync("flux-overlay", SyncOptions::default())
        .await
        .expect("sync");
    assert!(report.message.is_empty(), "{} {report:?}", report.message);

    let settings = env
        .api::<ConfigMap>()
        .get("settings")
        .await
        .expect("settings exists");
    let labels = settings.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("environment").map(String::as_str), Some("dev"));
    assert_eq!(labels.get("tier").map(String::as_str), Some("prod"));
    let values = settings.data.unwrap_or_default();
    assert_eq!(values["region"], "eu-west-1");
    assert_eq!(values["size"], "large");
    assert_eq!(
        values["password"], PASSWORD,
        "a Secret's value lands where it is used, as in Flux"
    );
    let runner = env
        .api::<ServiceAccount>()
        .get("runner")
        .await
        .expect("runner exists");
    assert_eq!(
        runner.automount_service_account_token,
        Some(false),
        "a plain scalar takes its YAML type"
    );
    let script = env.api::<ConfigMap>().get("script").await.expect("script exists");
    assert_eq!(script.data.unwrap_or_default()["run.sh"], "echo ${HOME}");

    // Nothing of the render is kept: the Secret's value is in the cluster only.
    let searched = driftless_testenv::leaks::assert_no_file_holds(data.path(), PASSWORD);
    assert!(searched > 0, "no file of the data directory was searched");
    let comparison = engine.compare("flux-overlay").await.expect("compare");
    assert!(
        !serde_json::to_string(&comparison)
            .expect("json")
            .contains(PASSWORD),
        "a comparison shows the Secret's value"
    );

    // The variables are read again at every render: a changed ConfigMap changes the objects.
    let mut changed = env.api::<ConfigMap>().get("cluster-vars").await.expect("get");
    changed
        .data
        .get_or_insert_with(BTreeMap::new)
        .insert("cluster_region".into(), "eu-central-1".into());
    env.api::<ConfigMap>()
        .replace("cluster-vars", &PostParams::default(), &changed)
        .await
        .expect("change a variable");
    engine
        .sync("flux-overlay", SyncOptions::default())
        .await
        .expect("second sync");
    let settings = env
        .api::<ConfigMap>()
        .get("settings")
        .await
        .expect("settings exists");
    assert_eq!(settings.data.unwrap_or_default()["region"], "eu-central-1");
}

#[tokio::test]
async fn a_missing_config_map_fails_the_application_naming_it_and_applies_nothing() {
    let env = TestEnv::new("post-build-missing").await;
    let repo = repository();
    let mut app = common::application("needs-vars", &repo, "absent", &env.namespace);
    app.post_build = Some(post_build(
        &[(SubstituteKind::ConfigMap, "absent-vars", false)],
        &[],
    ));
    let (_data, engine) = common::engine(&env, vec![app]);

    let err = engine
        .sync("needs-vars", SyncOptions::default())
        .await
        .expect_err("the sync fails");
    let message = err.to_string();
    assert!(message.contains("needs-vars"), "{message}");
    assert!(
        message.contains(&format!(
            "ConfigMap {}/absent-vars: does not exist",
            env.namespace
        )),
        "{message}"
    );
    assert!(
        env.api::<ConfigMap>()
            .get_opt("never")
            .await
            .expect("get")
            .is_none(),
        "an object was applied"
    );
}
