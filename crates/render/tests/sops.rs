//! SOPS files in real repositories, encrypted by the real sops CLI: decrypted in memory for plain
//! directories and for what Kustomize reads (resources, secretGenerator envs and files); tampered
//! files and missing keys refused, naming the file.

mod common;

use base64::Engine as _;
use driftless_core::application::Renderer;
use driftless_render::{Keys, RenderError, RenderLimits, RenderTarget, Rendered};

const TARGET: RenderTarget<'static> = RenderTarget {
    application: "test",
    namespace: Some("default"),
    kube_version: None,
    api_versions: &[],
    charts: None,
    allow_empty: false,
};
use driftless_testenv::git::TestRepo;
use driftless_testenv::sops::Lab;

const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: database\nstringData:\n  password: canary-1f2e3d\n";
const ENV: &str = "USER=admin\nPASSWORD=canary-env-9a8b\n";

async fn render_with(repo: &TestRepo, path: &str, keys: &Keys) -> Result<Rendered, RenderError> {
    common::render_committed(
        repo,
        path,
        Renderer::Detect,
        TARGET,
        &RenderLimits::default(),
        keys,
    )
    .await
}

struct Fixture {
    lab: Lab,
    identity: String,
    recipient: String,
}

impl Fixture {
    fn new() -> Self {
        let lab = Lab::new();
        let (identity, recipient) = lab.age_key("team");
        Self {
            lab,
            identity,
            recipient,
        }
    }

    fn encrypt(&self, name: &str, plain: &str, extra: &[&str]) -> String {
        let mut args = vec!["--age", self.recipient.as_str()];
        args.extend_from_slice(extra);
        String::from_utf8(self.lab.encrypt(name, plain.as_bytes(), &args, &[])).expect("utf-8")
    }

    fn keys(&self) -> Keys {
        let mut keys = Keys::new();
        keys.add(self.identity.as_bytes(), "test identity")
            .expect("loads");
        keys
    }
}

fn secret_data(rendered: &Rendered, name: &str) -> serde_json::Value {
    rendered
        .manifests
        .iter()
        .find(|m| {
            m.manifest["kind"] == "Secret"
                && m.manifest["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(name))
        })
        .unwrap_or_else(|| panic!("Secret {name} in {:?}", rendered.manifests))
        .manifest
        .clone()
}

fn decoded(value: &serde_json::Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 text"))
            .expect("base64"),
    )
    .expect("utf-8")
}

#[tokio::test]
async fn a_directory_with_an_encrypted_secret_renders_its_plaintext() {
    let fixture = Fixture::new();
    let repo = TestRepo::new();
    repo.write(
        "app/secret.yaml",
        &fixture.encrypt(
            "secret.yaml",
            SECRET,
            &["--encrypted-regex", "^(data|stringData)$"],
        ),
    )
    .write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
    );
    let rendered = render_with(&repo, "app", &fixture.keys()).await.expect("renders");
    assert!(rendered.decrypted);
    let secret = secret_data(&rendered, "database");
    assert_eq!(secret["stringData"]["password"], "canary-1f2e3d");
    assert!(secret.get("sops").is_none(), "metadata removed");

    let err = render_with(&repo, "app", &Keys::new())
        .await
        .expect_err("no keys");
    assert_eq!(
        err.to_string(),
        "app/secret.yaml: SOPS-encrypted, but the application has no decryption keys (spec.decryption.keys)"
    );
    let plain = TestRepo::new();
    plain.write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
    );
    assert!(
        !render_with(&plain, "app", &Keys::new())
            .await
            .expect("plain")
            .decrypted
    );
}

#[tokio::test]
async fn a_tampered_file_or_a_stranger_key_fails_naming_the_file() {
    let fixture = Fixture::new();
    let repo = TestRepo::new();
    let encrypted = fixture.encrypt(
        "secret.yaml",
        SECRET,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    repo.write(
        "app/secret.yaml",
        &encrypted.replace("name: database", "name: hijacked"),
    );
    let err = render_with(&repo, "app", &fixture.keys())
        .await
        .expect_err("tampered");
    assert_eq!(
        err.to_string(),
        "app/secret.yaml: cannot decrypt (SOPS): MAC mismatch: the file was changed after it was encrypted (tampered with, or edited without sops)"
    );

    repo.write("app/secret.yaml", &encrypted);
    let stranger = Lab::new().age_key("stranger").0;
    let mut keys = Keys::new();
    keys.add(stranger.as_bytes(), "file stranger.agekey")
        .expect("loads");
    let message = render_with(&repo, "app", &keys)
        .await
        .expect_err("wrong key")
        .to_string();
    assert!(
        message.starts_with("app/secret.yaml: cannot decrypt (SOPS): no configured key opens the data key")
            && message.contains(&fixture.recipient)
            && message.contains("file stranger.agekey"),
        "{message}"
    );
    assert!(!message.contains("canary"));
}

#[tokio::test]
async fn kustomize_resources_and_secret_generators_over_encrypted_files() {
    let fixture = Fixture::new();
    let repo = TestRepo::new();
    repo.write("base/secret.yaml", &fixture.encrypt("secret.yaml", SECRET, &["--encrypted-regex", "^(data|stringData)$"]))
        .write("base/app.env", &fixture.encrypt("app.env", ENV, &[]))
        .write("base/settings.json", &fixture.encrypt("settings.json", r#"{"token": "canary-json-77"}"#, &[]))
        .write("base/tls.crt", &fixture.encrypt("tls.crt", "-----BEGIN CERTIFICATE-----\ncanary-binary-3e\n", &[]))
        .write(
            "base/kustomization.yaml",
            "resources:\n  - secret.yaml\nsecretGenerator:\n  - name: app-env\n    envs: [app.env]\n  - name: app-files\n    files: [settings.json, tls.crt]\n",
        )
        .write("overlays/prod/kustomization.yaml", "namespace: prod\nnamePrefix: prod-\ncommonLabels: {tier: backend}\nresources:\n  - ../../base\n");
    let rendered = render_with(&repo, "overlays/prod", &fixture.keys())
        .await
        .expect("renders");
    assert_eq!(rendered.renderer, "kustomize");
    assert!(rendered.decrypted);

    let secret = secret_data(&rendered, "prod-database");
    assert_eq!(secret["stringData"]["password"], "canary-1f2e3d");
    assert_eq!(
        secret["metadata"]["labels"]["tier"], "backend",
        "kustomize's changes kept"
    );
    assert!(secret.get("sops").is_none());

    let env = secret_data(&rendered, "prod-app-env");
    let data = env["data"].as_object().expect("data");
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["PASSWORD", "USER"],
        "sops_* lines are not Secret keys"
    );
    assert_eq!(decoded(&data["PASSWORD"]), "canary-env-9a8b");

    let files = secret_data(&rendered, "prod-app-files");
    let settings: serde_json::Value =
        serde_json::from_str(&decoded(&files["data"]["settings.json"])).expect("decrypted JSON");
    assert_eq!(settings["token"], "canary-json-77");
    assert_eq!(
        decoded(&files["data"]["tls.crt"]),
        "-----BEGIN CERTIFICATE-----\ncanary-binary-3e\n",
        "a binary file, byte for byte"
    );
}
