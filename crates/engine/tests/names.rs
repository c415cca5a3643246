//! Application names declared in Git (app-of-apps) cannot be squatted: against the real control
//! plane, a root that declares another tree's name, a name under another tree's application, or
//! a name in another team's token or notification patterns loses only that child; every other
//! application, the other root first, keeps working.

mod common;

use driftless_core::access::{Grant, Role};
use driftless_core::notifications::{Subscription, Target, TargetKind};
use driftless_engine::SyncOptions;
use driftless_store::SyncResult;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;

fn child(name: &str, repo: &TestRepo, namespace: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  source: {{repoURL: '{}', path: {name}}}\n  destination: {{cluster: local, namespace: {namespace}}}\n---\n",
        repo.file_url()
    )
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{key: value}}\n")
}

#[tokio::test]
async fn a_root_cannot_take_another_trees_names_or_patterns() {
    let env = TestEnv::new("names_squatting").await;
    let ns = env.namespace.clone();
    let shop = TestRepo::new();
    shop.write("apps/web.yaml", &child("shop-web", &shop, &ns))
        .write("shop-web/cm.yaml", &config_map("shop-web"));
    shop.commit("shop's applications");
    let billing = TestRepo::new();
    billing
        .write(
            "apps/children.yaml",
            &[
                child("billing-web", &billing, &ns),
                // shop's own name, a name under shop (one shop's Git declares), and names in
                // the patterns of another team's token and notification subscription.
                child("shop", &billing, &ns),
                child("shop-web", &billing, &ns),
                child("ops-console", &billing, &ns),
                child("pay-refunds", &billing, &ns),
            ]
            .concat(),
        )
        .write("billing-web/cm.yaml", &config_map("billing-web"));
    billing.commit("billing's applications, and squatted names");
    let data = tempfile::tempdir().expect("data");
    let engine = common::engine_configured(
        env.kubeconfig_path(),
        data.path(),
        vec![
            common::application("shop", &shop, "apps", &ns),
            common::application("billing", &billing, "apps", &ns),
        ],
        |config| {
            config.notifications.targets = vec![Target {
                name: "payments".into(),
                kind: TargetKind::Webhook {
                    url: "http://127.0.0.1:9/hook".into(),
                    secret: None,
                },
            }];
            config.notifications.subscriptions = vec![Subscription {
                applications: vec!["pay-*".into()],
                on: Vec::new(),
                targets: vec!["payments".into()],
                template: None,
            }];
        },
    );
    let ops = Grant {
        role: Role::Operator,
        applications: vec!["ops-*".into()],
        labels: std::collections::BTreeMap::new(),
    };
    engine
        .store()
        .create_token("ops", &ops, 0)
        .expect("a token for the ops team");

    // billing renders first: today's first come, first served would hand it shop-web.
    let err = engine.compare("billing").await.expect_err("billing is told");
    let message = err.to_string();
    for expected in [
        "application \"shop\" is already defined elsewhere",
        "application \"shop-web\" is named under application \"shop\", which is not in the tree of \"billing\"",
        "application \"ops-console\" matches the application pattern \"ops-*\" of a token or notification subscription that does not cover \"billing\"",
        "application \"pay-refunds\" matches the application pattern \"pay-*\"",
    ] {
        assert!(message.contains(expected), "{expected}\nin: {message}");
    }
    assert_eq!(
        engine.application_names(),
        vec!["billing", "billing-web", "shop"],
        "only billing's own child is registered"
    );
    let report = engine
        .sync("billing-web", SyncOptions::default())
        .await
        .expect("billing's own child works");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");

    // shop, the other root, keeps working and gets its own name.
    engine.compare("shop").await.expect("shop is unaffected");
    let shop_web = engine.application("shop-web").expect("shop's child");
    assert_eq!(shop_web.source.repo_url, shop.file_url(), "shop's, not billing's");
    let report = engine
        .sync("shop-web", SyncOptions::default())
        .await
        .expect("shop's child works");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    let err = engine.compare("billing").await.expect_err("still told");
    assert!(
        err.to_string()
            .contains("\"shop-web\" is already defined elsewhere"),
        "{err}"
    );
    assert!(
        engine.application("billing-web").is_ok(),
        "and still has its child"
    );
}

/// A name no configured application or pattern owns (`guestbook`, as Argo CD repositories name
/// theirs) stays with the root that declared it first, across a restart in which the other root
/// happens to render first.
#[tokio::test]
async fn a_declared_name_stays_with_its_root_across_a_restart() {
    let env = TestEnv::new("names_restart").await;
    let ns = env.namespace.clone();
    let first = TestRepo::new();
    first
        .write("apps/guestbook.yaml", &child("guestbook", &first, &ns))
        .write("guestbook/cm.yaml", &config_map("guestbook"));
    first.commit("the first root's guestbook");
    let second = TestRepo::new();
    second
        .write("apps/guestbook.yaml", &child("guestbook", &second, &ns))
        .write("guestbook/cm.yaml", &config_map("guestbook"));
    second.commit("another guestbook");
    let data = tempfile::tempdir().expect("data");
    let roots = || {
        vec![
            common::application("first", &first, "apps", &ns),
            common::application("second", &second, "apps", &ns),
        ]
    };
    {
        let engine = common::engine_configured(env.kubeconfig_path(), data.path(), roots(), |_| {});
        engine.compare("first").await.expect("first declares guestbook");
        let err = engine.compare("second").await.expect_err("taken");
        assert!(err.to_string().contains("\"guestbook\""), "{err}");
    }
    // A new process in which the second root renders first.
    let engine = common::engine_configured(env.kubeconfig_path(), data.path(), roots(), |_| {});
    let err = engine
        .compare("second")
        .await
        .expect_err("still the first root's name");
    assert!(
        err.to_string().contains("\"guestbook\"") && err.to_string().contains("\"first\""),
        "{err}"
    );
    engine.compare("first").await.expect("the first root keeps it");
    assert_eq!(
        engine
            .application("guestbook")
            .expect("registered")
            .source
            .repo_url,
        first.file_url()
    );
}
