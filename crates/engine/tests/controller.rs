//! The controller (`driftless serve`): app-of-apps, automated syncs, and failures kept to their own application.

use std::time::Duration;

mod common;

use common::Running;

use driftless_core::application::Application;
use driftless_engine::{Failure, SyncOptions};
use driftless_store::SyncResult;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::core::v1::ConfigMap;

/// The root application: `apps` of `repo`, automated or manual.
fn root(repo: &TestRepo, namespace: &str, automated: bool) -> Application {
    if automated {
        common::automated("root", repo, "apps", namespace)
    } else {
        common::application("root", repo, "apps", namespace)
    }
}

fn child(name: &str, repo: &TestRepo, namespace: &str, extra: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  source: {{repoURL: '{}', path: {name}}}\n  destination: {{cluster: {extra}local, namespace: {namespace}}}\n  syncPolicy: {{automated: {{prune: true}}, interval: 1s}}\n",
        repo.file_url()
    )
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\n")
}

#[tokio::test]
async fn a_root_declares_applications_that_come_and_go_with_its_commits() {
    let env = TestEnv::new("app_of_apps").await;
    let repo = TestRepo::new();
    repo.write("apps/own.yaml", &config_map("root-own"))
        .write("apps/child-a.yaml", &child("child-a", &repo, &env.namespace, ""))
        .write("apps/child-b.yaml", &child("child-b", &repo, &env.namespace, ""))
        .write("child-a/cm.yaml", &config_map("from-a"))
        .write("child-b/cm.yaml", &config_map("from-b"));
    repo.commit("root with two children");
    let (_data, engine) = common::engine(&env, vec![root(&repo, &env.namespace, false)]);

    let report = engine
        .sync(
            "root",
            SyncOptions {
                prune: true,
                ..SyncOptions::default()
            },
        )
        .await
        .expect("root");
    assert_eq!(report.result, SyncResult::Succeeded);
    let applied: Vec<&str> = report.outcomes.iter().map(|o| o.object.name.as_str()).collect();
    assert_eq!(
        applied,
        vec!["root-own"],
        "Application manifests are for driftless, not the cluster"
    );
    assert_eq!(engine.application_names(), vec!["child-a", "child-b", "root"]);
    assert_eq!(
        engine
            .sync("child-a", SyncOptions::default())
            .await
            .expect("child")
            .result,
        SyncResult::Succeeded
    );
    assert!(
        env.api::<ConfigMap>()
            .get_opt("from-a")
            .await
            .expect("get")
            .is_some()
    );

    repo.remove("apps/child-b.yaml");
    repo.commit("drop child-b");
    engine.compare("root").await.expect("re-render the root");
    assert_eq!(engine.application_names(), vec!["child-a", "root"]);
    assert!(matches!(
        engine.application("child-b"),
        Err(err) if matches!(err.failure, Failure::UnknownApplication(_))
    ));
}

#[tokio::test]
async fn invalid_or_clashing_children_fail_the_root_and_keep_the_previous_children() {
    let env = TestEnv::new("app_of_apps_invalid").await;
    let repo = TestRepo::new();
    repo.write("apps/child-a.yaml", &child("child-a", &repo, &env.namespace, ""))
        .write("child-a/cm.yaml", &config_map("a"));
    repo.commit("one child");
    let (_data, engine) = common::engine(&env, vec![root(&repo, &env.namespace, false)]);
    engine.discover().await;
    assert!(engine.application("child-a").is_ok());

    repo.write(
        "apps/child-a.yaml",
        &child("child-a", &repo, &env.namespace, "elsewhere-"),
    );
    repo.commit("a child on an unknown cluster");
    let err = engine.compare("root").await.expect_err("invalid child");
    let message = err.to_string();
    assert!(message.contains("apps/child-a.yaml (document 1"), "{message}");
    assert!(
        message.contains("spec.destination.cluster: unknown cluster \"elsewhere-local\""),
        "{message}"
    );
    assert!(
        engine.application("child-a").is_ok(),
        "the previous children stay"
    );

    repo.write("apps/child-a.yaml", &child("root", &repo, &env.namespace, ""));
    repo.commit("a child named like its root");
    let err = engine.compare("root").await.expect_err("clash");
    assert!(
        err.to_string().contains("\"root\" is already defined elsewhere"),
        "{err}"
    );
}

#[tokio::test]
async fn the_controller_picks_up_children_and_syncs_them() {
    let env = TestEnv::new("app_of_apps_controller").await;
    let repo = TestRepo::new();
    repo.write("apps/child-a.yaml", &child("child-a", &repo, &env.namespace, ""))
        .write("child-a/cm.yaml", &config_map("synced-by-controller"));
    repo.commit("root with a child");
    let (_data, engine) = common::engine(&env, vec![root(&repo, &env.namespace, true)]);
    let (controller, running) = Running::start(engine);
    let config_maps = env.api::<ConfigMap>();
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while config_maps
        .get_opt("synced-by-controller")
        .await
        .expect("get")
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child was not synced: {:#?}",
            controller.statuses().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.stop().await;
}

#[tokio::test]
async fn one_applications_failure_leaves_the_others_syncing_and_deletes_nothing() {
    let env = TestEnv::new("controller_isolation").await;
    let repo = TestRepo::new();
    repo.write("good/cm.yaml", &config_map("good")).write(
        "crd-missing/gadget.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g}\n",
    );
    repo.commit("one good, one broken");
    let mut unreachable = common::automated("unreachable", &repo, "good", &env.namespace);
    unreachable.source.repo_url = "file:///nonexistent/driftless/repo.git".into();
    let broken = common::automated("broken", &repo, "crd-missing", &env.namespace);
    let good = common::automated("good", &repo, "good", &env.namespace);
    let (_data, engine) = common::engine(&env, vec![unreachable, broken, good]);
    let (controller, running) = Running::start(engine);
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    loop {
        let statuses = controller.statuses().await;
        let failing = |name: &str| statuses.get(name).and_then(|s| s.error.clone());
        let good_synced = env
            .api::<ConfigMap>()
            .get_opt("good")
            .await
            .expect("get")
            .is_some();
        if let (Some(unreachable), Some(broken), true) =
            (failing("unreachable"), failing("broken"), good_synced)
        {
            assert!(
                unreachable.contains("/nonexistent/driftless/repo.git"),
                "{unreachable}"
            );
            assert!(
                broken.contains("Gadget") && broken.contains("CustomResourceDefinition"),
                "{broken}"
            );
            assert_eq!(
                statuses["unreachable"].sync,
                Some(driftless_core::SyncState::Unknown)
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "statuses: {statuses:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    running.stop().await;
    assert!(
        env.api::<ConfigMap>()
            .get_opt("good")
            .await
            .expect("get")
            .is_some(),
        "nothing was deleted"
    );
}

/// A suspended application is still compared (its new commit shows as out of sync) but not
/// synced automatically until it is resumed.
#[tokio::test]
async fn a_suspended_application_is_compared_but_not_synced_until_resumed() {
    let env = TestEnv::new("suspend").await;
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: suspended}\ndata: {v: '1'}\n",
    );
    repo.commit("one");
    let (_data, engine) = common::engine(&env, vec![common::automated("web", &repo, "app", &env.namespace)]);
    let (controller, running) = Running::start(engine);
    let config_maps = env.api::<ConfigMap>();
    let value = || async {
        config_maps
            .get_opt("suspended")
            .await
            .ok()
            .flatten()
            .and_then(|cm| cm.data)
            .and_then(|data| data.get("v").cloned())
    };
    common::until("the first automated sync", Duration::from_mins(1), || async {
        match value().await.as_deref() {
            Some("1") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    assert!(controller.engine().suspend("web").expect("suspend"));
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: suspended}\ndata: {v: '2'}\n",
    );
    repo.commit("two");
    controller.refresh("web");
    common::until(
        "the new commit seen out of sync",
        Duration::from_mins(1),
        || async {
            let statuses = controller.statuses().await;
            match statuses.get("web") {
                Some(status)
                    if status.suspended && status.sync == Some(driftless_core::SyncState::OutOfSync) =>
                {
                    Ok(())
                }
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert_eq!(value().await.as_deref(), Some("1"), "not synced while suspended");

    assert!(controller.engine().resume("web").expect("resume"));
    controller.refresh("web");
    common::until("the sync after resuming", Duration::from_mins(1), || async {
        match value().await.as_deref() {
            Some("2") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    running.stop().await;
}
