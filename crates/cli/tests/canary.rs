//! Canary secrets: values planted in Secrets (plain, in `last-applied-configuration`, and SOPS-
//! encrypted) and a credential planted in a repository URL must appear in no output of any
//! command, in any output format, in no log (at the most verbose level), and not in the store.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use driftless_testenv::sops::Lab;
use k8s_openapi::api::core::v1::Secret;

const PLAIN: &str = "canary-plain-6d1c4b";
const ENCODED: &str = "canary-encoded-93fa07";
const ANNOTATED: &str = "canary-annotation-5b2e88";
const SOPS: &str = "canary-sops-e47d19";
const SOPS_NEXT: &str = "canary-sops-next-0c3a52";
const TOKEN: &str = "canary-token-a8f310";
/// In a ConfigMap's field and annotation that `redaction:` names sensitive.
const FIELD: &str = "canary-field-71b9d4";
const ANNOTATION: &str = "canary-sensitive-annotation-2c6e";

fn canaries() -> Vec<String> {
    use base64::Engine as _;
    let mut all: Vec<String> = [
        PLAIN, ENCODED, ANNOTATED, SOPS, SOPS_NEXT, TOKEN, FIELD, ANNOTATION,
    ]
    .iter()
    .map(|c| (*c).to_owned())
    .collect();
    // Their base64 too: a Secret's data is base64 on the wire.
    let encoded: Vec<String> = all
        .iter()
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
        .collect();
    all.extend(encoded);
    all
}

fn assert_clean(what: &str, text: &str) {
    for canary in canaries() {
        assert!(
            !text.contains(&canary),
            "{what} shows the canary {canary}:\n{text}"
        );
    }
}

fn driftless(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .env("DRIFTLESS_LOG", "trace")
        .env("DRIFTLESS_LOG_SPANS", "1")
        .output()
        .expect("run driftless")
}

/// Runs a command in every output format; returns everything it printed, checked clean.
fn run_everywhere(config: &Path, args: &[&str]) -> String {
    let mut all = String::new();
    for format in [None, Some("json"), Some("yaml")] {
        let mut full: Vec<&str> = args.to_vec();
        if let Some(format) = format {
            full.extend(["-o", format]);
        }
        let output = driftless(config, &full);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_clean(&format!("driftless {}", full.join(" ")), &text);
        all.push_str(&text);
    }
    all
}

fn store_text(state: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(state).expect("state dir").flatten() {
        if entry.path().is_file() {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(entry.path()).unwrap_or_default(),
            ));
        }
    }
    text
}

/// Two applications: `secrets` (this repository, SOPS keys from `key`) and `private`, whose URL
/// carries a token and whose fetch fails; `redaction:` names a ConfigMap field and an annotation.
fn write_config(dir: &Path, env: &TestEnv, url: &str, key: &Path) -> std::path::PathBuf {
    let config = dir.join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nredaction:\n  annotations: [example.com/token]\n  fields: [{{ group: '', kind: ConfigMap, jsonPointers: [/data/password] }}]\nclusters:\n  - name: local\n    kubeconfig: {kubeconfig}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: secrets }}\n    spec:\n      source: {{ repoURL: '{url}', revision: main, path: app }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n      syncPolicy: {{ automated: {{ prune: true, selfHeal: true }}, interval: 1s }}\n      decryption: {{ keys: [ {{ file: {key} }} ] }}\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: private }}\n    spec:\n      source: {{ repoURL: 'http://driftless:{TOKEN}@127.0.0.1:9/private.git', revision: main, path: app }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n",
            kubeconfig = env.kubeconfig_path().display(),
            url = url,
            namespace = env.namespace,
            key = key.display(),
        ),
    )
    .expect("write config");
    config
}

#[tokio::test]
async fn no_command_log_or_store_shows_a_secret_or_a_credential() {
    use base64::Engine as _;
    let env = TestEnv::new("canary").await;
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let key_file = lab.write("team.agekey", identity.as_bytes());
    let sealed = |password: &str| {
        String::from_utf8(lab.encrypt(
            "sealed.yaml",
            format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: sealed\nstringData:\n  password: {password}\n").as_bytes(),
            &["--age", &recipient, "--encrypted-regex", "^(data|stringData)$"],
            &[],
        ))
        .expect("utf-8")
    };
    let repo = TestRepo::new();
    repo.write(
        "app/plain.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plain\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: '{{\"stringData\":{{\"password\":\"{ANNOTATED}\"}}}}'\nstringData:\n  password: {PLAIN}\ndata:\n  token: {}\n",
            base64::engine::general_purpose::STANDARD.encode(ENCODED)
        ),
    )
    .write("app/sealed.yaml", &sealed(SOPS))
    .write(
        "app/settings.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  annotations:\n    example.com/token: {ANNOTATION}\ndata:\n  password: {FIELD}\n  user: admin\n"
        ),
    );
    repo.commit("secrets");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &env, &repo.file_url(), &key_file);
    let mut seen = String::new();
    for args in [
        &["render", "secrets"][..],
        &["diff", "secrets"],
        &["sync", "secrets", "--prune"],
        &["diff", "secrets"],
        &["status"],
        &["history", "secrets"],
        &["events", "secrets"],
        &["status", "private"],
        &["diff", "private"],
        &["sync", "private"],
        &["render", "private"],
    ] {
        seen.push_str(&run_everywhere(&config, args));
    }
    let secret = env.api::<Secret>().get("sealed").await.expect("synced");
    assert_eq!(
        secret.data.unwrap_or_default()["password"].0,
        SOPS.as_bytes(),
        "the plaintext did reach the cluster"
    );
    assert!(
        seen.contains("<redacted sha256:"),
        "the diff and render show hashes instead"
    );
    assert!(seen.contains("127.0.0.1:9"), "the failing repository is named");

    // A rotated value and an edit by hand, seen by a running serve with the most verbose logs.
    repo.write("app/sealed.yaml", &sealed(SOPS_NEXT));
    repo.commit("rotate");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("DRIFTLESS_LOG", "trace")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start serve");
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let live = env.api::<Secret>().get("sealed").await.expect("get");
        if live.data.unwrap_or_default()["password"].0 == SOPS_NEXT.as_bytes() {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not apply the rotated value");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen.push_str(&run_everywhere(&config, &["diff", "secrets"]));
    seen.push_str(&run_everywhere(&config, &["status"]));
    let _ = Command::new("kill").arg(serve.id().to_string()).status();
    let _ = serve.wait();
    assert_clean(
        "serve's log",
        &std::fs::read_to_string(&log_path).expect("serve log"),
    );
    assert_clean("the store", &store_text(&dir.path().join("state")));
    assert!(!seen.is_empty());
}
