//! SOPS-encrypted sources synced to the real control plane: keys from a file and from a Secret on
//! the cluster; the plaintext reaches the cluster and nothing else (not the store, not diffs);
//! a tampered file fails that application only, with nothing changed or deleted.

mod common;

use driftless_core::application::{Decryption, KeySource};
use driftless_core::diff::ObjectDiff;
use driftless_engine::SyncOptions;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use driftless_testenv::sops::Lab;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

const CANARY: &str = "canary-5e1f-0a9c-plaintext";
const CANARY_NEXT: &str = "canary-77d2-next-plaintext";

fn secret_yaml(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: database\nstringData:\n  password: {password}\n"
    )
}

fn config_map(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: {value}\n")
}

fn encrypted(lab: &Lab, recipient: &str, plain: &str) -> String {
    String::from_utf8(lab.encrypt(
        "secret.yaml",
        plain.as_bytes(),
        &["--age", recipient, "--encrypted-regex", "^(data|stringData)$"],
        &[],
    ))
    .expect("utf-8")
}

async fn password(env: &TestEnv) -> String {
    let secret = env.api::<Secret>().get("database").await.expect("Secret exists");
    let data = secret.data.unwrap_or_default();
    String::from_utf8(data["password"].0.clone()).expect("utf-8")
}

fn store_holds(data: &std::path::Path, needle: &str) -> bool {
    ["driftless.db", "driftless.db-wal"].iter().any(|file| {
        std::fs::read(data.join(file))
            .unwrap_or_default()
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    })
}

#[tokio::test]
async fn encrypted_secrets_sync_with_keys_from_a_file_and_never_rest_anywhere() {
    let env = TestEnv::new("sops-file").await;
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let key_file = lab.write("team.agekey", identity.as_bytes());
    let repo = TestRepo::new();
    repo.write(
        "app/secret.yaml",
        &encrypted(&lab, &recipient, &secret_yaml(CANARY)),
    )
    .write("app/settings.yaml", &config_map("one"));
    repo.commit("encrypted secret");
    let mut app = common::application("secrets", &repo, "app", &env.namespace);
    app.decryption = Some(Decryption {
        keys: vec![KeySource::File(key_file)],
    });
    let (data, engine) = common::engine(&env, vec![app]);

    let report = engine
        .sync("secrets", SyncOptions::default())
        .await
        .expect("sync");
    assert!(report.message.is_empty(), "{}", report.message);
    assert_eq!(password(&env).await, CANARY, "the cluster gets the plaintext");
    let rendered =
        serde_json::to_string(&engine.render("secrets", None).await.expect("render")).expect("json");
    assert!(
        rendered.contains("<redacted sha256:") && !rendered.contains(CANARY),
        "driftless render shows Secret values as hashes: {rendered}"
    );

    // A new value: the diff says the key changed, never what to.
    repo.write(
        "app/secret.yaml",
        &encrypted(&lab, &recipient, &secret_yaml(CANARY_NEXT)),
    );
    repo.commit("rotate the password");
    let comparison = engine.compare("secrets").await.expect("compare");
    let secret = comparison
        .objects
        .iter()
        .find(|o| o.object.kind == "Secret")
        .expect("the Secret");
    let ObjectDiff::Changed { unified, .. } = &secret.diff else {
        panic!("the Secret changed: {:?}", secret.diff)
    };
    assert!(unified.contains("password"), "{unified}");
    let shown = format!("{comparison:?}");
    assert!(!shown.contains(CANARY) && !shown.contains(CANARY_NEXT), "{shown}");
    let report = engine
        .sync("secrets", SyncOptions::default())
        .await
        .expect("sync");
    assert!(report.message.is_empty(), "{}", report.message);
    assert_eq!(password(&env).await, CANARY_NEXT);

    let history = format!("{:?}", engine.store().history("secrets", 10).expect("history"));
    assert!(!history.contains(CANARY) && !history.contains(CANARY_NEXT));
    let stats = engine.stats().await;
    engine.compare("secrets").await.expect("compare again");
    assert_eq!(
        engine.stats().await.renders,
        stats.renders + 1,
        "a render with plaintext is not cached, even in memory"
    );
    drop(engine);
    assert!(
        !store_holds(data.path(), CANARY) && !store_holds(data.path(), CANARY_NEXT),
        "plaintext reached the store"
    );
}

#[tokio::test]
async fn a_tampered_file_fails_its_application_only_and_changes_nothing() {
    let env = TestEnv::new("sops-tamper").await;
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    // The key lives in a Secret on the cluster, as it would in production.
    let keys = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("sops-age".into()),
            ..Default::default()
        },
        string_data: Some([("identity.agekey".to_owned(), identity.clone())].into()),
        ..Default::default()
    };
    env.api::<Secret>()
        .create(&kube::api::PostParams::default(), &keys)
        .await
        .expect("create the key Secret");
    let repo = TestRepo::new();
    let sealed = encrypted(&lab, &recipient, &secret_yaml(CANARY));
    repo.write("app/secret.yaml", &sealed)
        .write("app/settings.yaml", &config_map("one"))
        .write(
            "other/settings.yaml",
            &config_map("other").replace("settings", "other"),
        );
    repo.commit("encrypted secret");
    let mut app = common::application("secrets", &repo, "app", &env.namespace);
    app.decryption = Some(Decryption {
        keys: vec![KeySource::Secret {
            namespace: env.namespace.clone(),
            name: "sops-age".into(),
            key: None,
        }],
    });
    let other = common::application("other", &repo, "other", &env.namespace);
    let (_data, engine) = common::engine(&env, vec![app, other]);
    let report = engine
        .sync("secrets", SyncOptions::default())
        .await
        .expect("sync");
    assert!(report.message.is_empty(), "{}", report.message);
    assert_eq!(password(&env).await, CANARY);

    // Someone edits an unencrypted field of the encrypted file and changes the ConfigMap too.
    repo.write(
        "app/secret.yaml",
        &sealed.replace("name: database", "name: database2"),
    )
    .write("app/settings.yaml", &config_map("two"))
    .write(
        "other/settings.yaml",
        &config_map("changed").replace("settings", "other"),
    );
    repo.commit("tampered");
    let err = engine
        .sync("secrets", SyncOptions::default())
        .await
        .expect_err("a tampered file must not sync");
    assert_eq!(
        err.to_string(),
        "secrets: render failed: app/secret.yaml: cannot decrypt (SOPS): MAC mismatch: the file was changed after it was encrypted (tampered with, or edited without sops)"
    );
    let settings = env.api::<ConfigMap>().get("settings").await.expect("still there");
    assert_eq!(
        settings.data.unwrap_or_default()["mode"],
        "one",
        "nothing applied"
    );
    assert_eq!(password(&env).await, CANARY, "nothing deleted or changed");
    let report = engine
        .sync("other", SyncOptions::default())
        .await
        .expect("other syncs");
    assert!(report.message.is_empty(), "{}", report.message);

    // The key Secret gone: the error says which Secret, and nothing else happens.
    env.api::<Secret>()
        .delete("sops-age", &kube::api::DeleteParams::default())
        .await
        .expect("delete the key Secret");
    let message = engine.compare("secrets").await.expect_err("no key").to_string();
    assert_eq!(
        message,
        format!(
            "secrets: decryption keys: Secret {}/sops-age does not exist",
            env.namespace
        )
    );
}
