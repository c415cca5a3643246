//! Jsonnet sources and renders of nothing on the real control plane (issue 21). Before detection
//! knew Jsonnet, a directory of `.jsonnet` files rendered to nothing and its sync succeeded
//! deploying nothing; now Argo CD's jsonnet-guestbook deploys its Service and Deployment, and a
//! path whose files yield no object fails the sync naming what it found, unless the application
//! says an empty render is intended (`allowEmpty`).

mod common;

use std::path::Path;

use driftless_engine::SyncOptions;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../render/tests/fixtures/argocd-example-apps")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn repository() -> TestRepo {
    let repo = TestRepo::new();
    for file in ["guestbook-ui.jsonnet", "params.libsonnet"] {
        repo.write(
            &format!("jsonnet-guestbook/{file}"),
            &fixture(&format!("jsonnet-guestbook/{file}")),
        );
    }
    // Libraries and no program: what pointing an application at a vendor directory looks like.
    repo.write(
        "libraries/k8s.libsonnet",
        "{ configMap(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } } }",
    )
    .write("libraries/params.libsonnet", "{ replicas: 1 }")
    .write("libraries/README.md", "Shared Jsonnet libraries.\n");
    repo.commit("Argo CD's jsonnet-guestbook and a directory of libraries");
    repo
}

#[tokio::test]
async fn a_jsonnet_application_deploys_and_a_render_of_nothing_fails_naming_what_it_found() {
    let env = TestEnv::new("jsonnet").await;
    let repo = repository();
    let guestbook = common::application("jsonnet-guestbook", &repo, "jsonnet-guestbook", &env.namespace);
    let libraries = common::application("libraries", &repo, "libraries", &env.namespace);
    let mut intended = common::application("intended-empty", &repo, "libraries", &env.namespace);
    intended.sync_policy.allow_empty = true;
    let (_data, engine) = common::engine(&env, vec![guestbook, libraries, intended]);

    let report = engine
        .sync("jsonnet-guestbook", SyncOptions::default())
        .await
        .expect("the jsonnet application syncs");
    assert_eq!(report.outcomes.len(), 2, "{report:?}");
    let service = env
        .api::<Service>()
        .get("jsonnet-guestbook-ui")
        .await
        .expect("the Service the program declares");
    let port = &service.spec.expect("spec").ports.expect("ports")[0];
    assert_eq!((port.port, port.protocol.as_deref()), (80, Some("TCP")));
    let deployment = env
        .api::<Deployment>()
        .get("jsonnet-guestbook-ui")
        .await
        .expect("the Deployment the program declares");
    assert_eq!(deployment.spec.expect("spec").replicas, Some(1));

    let err = engine
        .sync("libraries", SyncOptions::default())
        .await
        .expect_err("a render of nothing is not a successful sync");
    let message = err.to_string();
    assert!(
        message.contains(
            "libraries: rendered no object: 2 .libsonnet files and no manifests (found: README.md) \
             (set spec.syncPolicy.allowEmpty: true if an application of nothing is intended)"
        ),
        "{message}"
    );

    let report = engine
        .sync("intended-empty", SyncOptions::default())
        .await
        .expect("an empty render that is intended syncs");
    assert!(report.outcomes.is_empty(), "{report:?}");
    let config_maps = env
        .api::<ConfigMap>()
        .list(&kube::api::ListParams::default().labels("driftless.dev/application"))
        .await
        .expect("list");
    assert!(
        config_maps.items.is_empty(),
        "nothing was applied for the empty applications"
    );
}
