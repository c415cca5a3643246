//! The application commands end to end: a real repository, a real control plane, the real binary.

mod common;

use common::{driftless, text};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::core::v1::ConfigMap;

/// `data.key` of the live ConfigMap `settings`.
async fn settings_key(env: &TestEnv) -> String {
    let settings = env.api::<ConfigMap>().get("settings").await.expect("get");
    settings.data.unwrap_or_default()["key"].clone()
}

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n")
}

#[tokio::test]
async fn diff_sync_history_rollback_and_status() {
    let env = TestEnv::new("cli_applications").await;
    let repo = TestRepo::new();
    repo.write("app/settings.yaml", &config_map("settings", "v1"));
    let first = repo.commit("v1");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - name: local\n    kubeconfig: {}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: web }}\n    spec:\n      source: {{ repoURL: '{}', revision: main, path: app }}\n      destination: {{ cluster: local, namespace: {} }}\n",
            env.kubeconfig_path().display(),
            repo.file_url(),
            env.namespace
        ),
    )
    .expect("write config");

    let diff = driftless(&config, &["diff", "web"]);
    assert_eq!(diff.status.code(), Some(1), "differences exit 1: {}", text(&diff));
    assert!(text(&diff).contains("+++ desired/ConfigMap/"), "{}", text(&diff));

    let render = driftless(&config, &["render", "web"]);
    assert!(render.status.success(), "{}", text(&render));
    assert!(
        text(&render).contains("driftless.dev/application: web"),
        "{}",
        text(&render)
    );

    let sync = driftless(&config, &["sync", "web", "--prune"]);
    assert!(sync.status.success(), "{}", text(&sync));
    assert!(text(&sync).contains("succeeded: 1 created"), "{}", text(&sync));
    let in_sync = driftless(&config, &["diff", "web"]);
    assert_eq!(
        in_sync.status.code(),
        Some(0),
        "in sync exits 0: {}",
        text(&in_sync)
    );

    repo.write("app/settings.yaml", &config_map("settings", "v2"));
    repo.commit("v2");
    let second = driftless(&config, &["sync", "web"]);
    assert!(text(&second).contains("1 configured"), "{}", text(&second));
    assert_eq!(settings_key(&env).await, "v2");

    let history = driftless(&config, &["history", "web", "-o", "json"]);
    let records: serde_json::Value = serde_json::from_slice(&history.stdout).expect("history is JSON");
    assert_eq!(records.as_array().map(Vec::len), Some(2));
    assert_eq!(records[1]["revision"], first.as_str());

    let never = driftless(&config, &["rollback", "web", "--to", "0000000"]);
    assert_eq!(never.status.code(), Some(2), "{}", text(&never));

    let rollback = driftless(&config, &["rollback", "web", "--to", &first[..10]]);
    assert!(rollback.status.success(), "{}", text(&rollback));
    assert!(text(&rollback).contains("is pinned at"), "{}", text(&rollback));
    assert_eq!(settings_key(&env).await, "v1");
    // Pinned: a plain sync stays at the rolled-back revision.
    let pinned = driftless(&config, &["sync", "web"]);
    assert!(
        text(&pinned).contains(&format!("at {}", &first[..7])),
        "{}",
        text(&pinned)
    );

    let status = driftless(&config, &["status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("web") && text(&status).contains("Synced"),
        "{}",
        text(&status)
    );

    let unpin = driftless(&config, &["unpin", "web"]);
    assert!(text(&unpin).contains("unpinned"), "{}", text(&unpin));
    let after = driftless(&config, &["diff", "web"]);
    assert_eq!(
        after.status.code(),
        Some(1),
        "after unpinning, v2 is desired again: {}",
        text(&after)
    );
}

#[test]
fn a_broken_configuration_is_reported_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("driftless.yaml");
    std::fs::write(&config, "apiVersion: driftless.dev/v1alpha1\nkind: Config\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: { name: web }\n    spec:\n      source: { repoURL: 'https://h/r' }\n      destination: { cluster: prod }\n").expect("write");
    let output = driftless(&config, &["status"]);
    assert_eq!(output.status.code(), Some(2));
    let message = text(&output);
    assert!(
        message
            .contains("driftless.yaml:9: applications[0].spec.destination.cluster: unknown cluster \"prod\""),
        "{message}"
    );
}
