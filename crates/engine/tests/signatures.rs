//! Applications that trust only signed commits, with real `ssh-keygen` and `gpg` signatures,
//! synced into the real control plane.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

use common::{application, engine, engine_with};
use driftless_core::application::{
    Application, RepositoryVerification, SecretSource, Verification, VerifyMode,
};
use driftless_engine::{Engine, Failure, SyncOptions};
use driftless_store::{EventKind, SyncResult};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::core::v1::ConfigMap;

const INSTALL: &str = "apt-get install git openssh-client gnupg";

fn prune() -> SyncOptions {
    SyncOptions {
        prune: true,
        ..SyncOptions::default()
    }
}

/// Runs a prerequisite program; a missing one fails the test with the command that installs it.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {program} ({err}); install it with `{INSTALL}`"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A key made by `ssh-keygen`, and the `git -c` settings that sign with it.
fn ssh_key(dir: &Path, name: &str) -> (String, Vec<String>) {
    let private = dir.join(name);
    let path = private.to_str().expect("UTF-8 temporary path");
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path],
        &[],
    );
    let public = std::fs::read_to_string(private.with_extension("pub")).expect("public key");
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    let signing = vec![
        "commit.gpgSign=true".to_owned(),
        "gpg.format=ssh".to_owned(),
        format!("user.signingkey={path}"),
    ];
    (public.join(" "), signing)
}

/// A private GnuPG home with one signing key; its agent is stopped when it is dropped.
struct GpgKey {
    home: tempfile::TempDir,
    fingerprint: String,
}

impl GpgKey {
    fn generate(user_id: &str) -> Self {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir()
            .expect("GNUPGHOME");
        std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod GNUPGHOME");
        let mut key = Self {
            home,
            fingerprint: String::new(),
        };
        key.gpg(&["--quick-gen-key", user_id, "ed25519", "sign", "never"]);
        let listing = key.gpg(&["--with-colons", "--list-keys", user_id]);
        let fpr = listing
            .lines()
            .find(|line| line.starts_with("fpr:"))
            .expect("fpr line");
        fpr.split(':')
            .nth(9)
            .expect("fingerprint")
            .clone_into(&mut key.fingerprint);
        key
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("GNUPGHOME", self.home.path().to_str().expect("UTF-8 path"))]
    }

    fn gpg(&self, args: &[&str]) -> String {
        run(
            "gpg",
            &[&["--batch", "--passphrase", ""], args].concat(),
            &self.env(),
        )
    }

    fn export(&self) -> String {
        self.gpg(&["--export", "--armor", &self.fingerprint])
    }

    fn signing(&self) -> Vec<String> {
        vec![
            "commit.gpgSign=true".to_owned(),
            "gpg.program=gpg".to_owned(),
            format!("user.signingkey={}", self.fingerprint),
        ]
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let home = self.home.path().to_str().unwrap_or_default();
        let _ = Command::new("gpgconf")
            .args(["--homedir", home, "--kill", "all"])
            .output();
    }
}

/// Alice's key, and an `allowed_signers` file that lists only it.
fn allowed_alice(dir: &Path) -> (PathBuf, Vec<String>) {
    let (alice, signing) = ssh_key(dir, "alice");
    let signers = dir.join("allowed_signers");
    std::fs::write(&signers, format!("alice@example.com {alice}\n")).expect("allowed_signers");
    (signers, signing)
}

fn signed(repo: &TestRepo, message: &str, signing: &[String], env: &[(&str, &str)]) -> String {
    let signing: Vec<&str> = signing.iter().map(String::as_str).collect();
    repo.commit_with(message, &signing, env)
}

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n")
}

fn verification(mode: VerifyMode, ssh: Option<PathBuf>, pgp: Option<PathBuf>) -> Verification {
    Verification {
        mode,
        ssh: ssh.map(SecretSource::File),
        pgp: pgp.map(SecretSource::File),
    }
}

fn verified(app: Application, verify: Verification) -> Application {
    Application {
        verify: Some(verify),
        ..app
    }
}

async fn value(env: &TestEnv, name: &str) -> Option<String> {
    let found = env
        .api::<ConfigMap>()
        .get_opt(name)
        .await
        .expect("get the ConfigMap")?;
    found.data.and_then(|data| data.get("key").cloned())
}

/// The sync's error, which must be a refusal of `commit`.
async fn refused(engine: &Engine, name: &str, commit: &str) -> String {
    let err = engine
        .sync(name, prune())
        .await
        .expect_err("the commit must be refused");
    assert!(matches!(err.failure, Failure::Untrusted { .. }), "{err}");
    let message = err.to_string();
    let short = &commit[..7];
    assert!(
        message.starts_with(&format!("{name}: commit {short} is not trusted: ")),
        "{message}"
    );
    message
}

fn refusals(engine: &Engine, name: &str) -> usize {
    let events = engine.store().events(name, 100).expect("events");
    events
        .iter()
        .filter(|event| event.kind == EventKind::SignatureRefused)
        .count()
}

#[tokio::test]
async fn signed_heads_sync_and_an_unsigned_commit_on_top_changes_nothing() {
    let env = TestEnv::new("engine_signatures_ssh").await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (signers, alice_signs) = allowed_alice(keys.path());

    let repo = TestRepo::new();
    repo.write("app/a.yaml", &config_map("signed-a", "one"))
        .write("app/b.yaml", &config_map("signed-b", "one"));
    signed(&repo, "signed", &alice_signs, &[]);
    let plain_repo = TestRepo::new();
    plain_repo.write("app/c.yaml", &config_map("plain", "one"));
    plain_repo.commit("unsigned, and nobody asks");

    let web = verified(
        application("web", &repo, "app", &env.namespace),
        verification(VerifyMode::Head, Some(signers), None),
    );
    let plain = application("plain", &plain_repo, "app", &env.namespace);
    let (_data, engine) = engine(&env, vec![web, plain]);
    let report = engine.sync("web", prune()).await.expect("a signed head syncs");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert_eq!(value(&env, "signed-a").await.as_deref(), Some("one"));

    repo.write("app/a.yaml", &config_map("signed-a", "two"))
        .remove("app/b.yaml");
    let unsigned = repo.commit("unsigned");
    let message = refused(&engine, "web", &unsigned).await;
    assert!(message.ends_with("not signed"), "{message}");
    assert_eq!(
        value(&env, "signed-a").await.as_deref(),
        Some("one"),
        "nothing applied"
    );
    assert_eq!(
        value(&env, "signed-b").await.as_deref(),
        Some("one"),
        "nothing pruned"
    );
    let compare = engine.compare("web").await.expect_err("compare refuses too");
    assert!(matches!(compare.failure, Failure::Untrusted { .. }), "{compare}");
    assert_eq!(
        refusals(&engine, "web"),
        1,
        "one event per verdict, not per attempt"
    );

    plain_repo.write("app/c.yaml", &config_map("plain", "two"));
    plain_repo.commit("still unsigned");
    let report = engine
        .sync("plain", prune())
        .await
        .expect("an application without verify syncs");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
    assert_eq!(value(&env, "plain").await.as_deref(), Some("two"));

    // A key the signers file does not list is refused with its fingerprint.
    let (_, mallory_signs) = ssh_key(keys.path(), "mallory");
    let forged = signed(&repo, "mallory", &mallory_signs, &[]);
    let message = refused(&engine, "web", &forged).await;
    assert!(message.contains("signed by SSH key SHA256:"), "{message}");
    assert!(message.ends_with("which is not an allowed signer"), "{message}");
    assert_eq!(value(&env, "signed-b").await.as_deref(), Some("one"));
}

#[tokio::test]
async fn a_commit_signed_by_an_untrusted_pgp_key_is_refused() {
    let env = TestEnv::new("engine_signatures_pgp").await;
    let trusted = GpgKey::generate("Release <release@example.com>");
    let stranger = GpgKey::generate("Stranger <stranger@example.com>");
    let keys = tempfile::tempdir().expect("tempdir");
    let armored = keys.path().join("keys.asc");
    std::fs::write(&armored, trusted.export()).expect("write the public key");

    let repo = TestRepo::new();
    repo.write("app/a.yaml", &config_map("pgp", "one"));
    signed(&repo, "release", &trusted.signing(), &trusted.env());
    let app = verified(
        application("pgp", &repo, "app", &env.namespace),
        verification(VerifyMode::Head, None, Some(armored)),
    );
    let (_data, engine) = engine(&env, vec![app]);
    let report = engine
        .sync("pgp", prune())
        .await
        .expect("a trusted OpenPGP signature syncs");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");

    repo.write("app/a.yaml", &config_map("pgp", "two"));
    let untrusted = signed(&repo, "stranger", &stranger.signing(), &stranger.env());
    let message = refused(&engine, "pgp", &untrusted).await;
    assert!(
        message.contains("which is not a trusted signing key"),
        "{message}"
    );
    assert_eq!(value(&env, "pgp").await.as_deref(), Some("one"));
}

#[tokio::test]
async fn all_since_last_synced_refuses_an_unsigned_commit_under_a_signed_head() {
    let env = TestEnv::new("engine_signatures_all").await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (signers, alice_signs) = allowed_alice(keys.path());

    let repo = TestRepo::new();
    repo.write("app/a.yaml", &config_map("history", "a"));
    signed(&repo, "A", &alice_signs, &[]);
    // The repository's entry requires it; the application says nothing.
    let required = RepositoryVerification {
        url_prefix: repo.file_url(),
        verify: verification(VerifyMode::AllSinceLastSynced, Some(signers), None),
    };
    let data = tempfile::tempdir().expect("tempdir");
    let app = application("history", &repo, "app", &env.namespace);
    let engine = engine_with(env.kubeconfig_path(), data.path(), vec![app], vec![required]);
    let report = engine.sync("history", prune()).await.expect("A is signed");
    assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");

    repo.write("app/a.yaml", &config_map("history", "b"));
    let unsigned = repo.commit("B, unsigned");
    repo.write("app/a.yaml", &config_map("history", "c"));
    signed(&repo, "C", &alice_signs, &[]);
    let message = refused(&engine, "history", &unsigned).await;
    assert!(message.ends_with("not signed"), "{message}");
    assert_eq!(value(&env, "history").await.as_deref(), Some("a"));
}

/// An Application manifest: `name` from the directory `name` of `url` at `main`.
fn child_manifest(name: &str, url: &str, namespace: &str) -> String {
    format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Application\nmetadata: {{name: {name}}}\nspec:\n  source: {{repoURL: '{url}', revision: main, path: {name}}}\n  destination: {{cluster: local, namespace: {namespace}}}\n---\n"
    )
}

#[tokio::test]
async fn every_spelling_of_a_verified_repository_is_verified() {
    let env = TestEnv::new("engine_signatures_spellings").await;
    let keys = tempfile::tempdir().expect("tempdir");
    let (signers, alice_signs) = allowed_alice(keys.path());
    let repo = TestRepo::new();
    for index in 0..5 {
        let name = format!("spelled-{index}");
        repo.write(&format!("{name}/cm.yaml"), &config_map(&name, "one"));
    }
    let unsigned = repo.commit("unsigned");
    let http = driftless_testenv::git::GitHttpServer::start(repo.root(), None).await;
    let daemon = driftless_testenv::git::GitDaemon::start(repo.root());
    // The repository's entry, as an operator writes it.
    let canonical = http.url("origin.git").replace("127.0.0.1", "localhost");
    let daemon_url = daemon.url("origin.git").replace("127.0.0.1", "localhost");
    let spellings = [
        canonical.replace("localhost", "LocalHost"),
        canonical.replace("http://", "http://robot@"),
        format!("{canonical}/"),
        daemon_url.trim_end_matches(".git").to_owned(),
        daemon_url.replace("localhost", "LOCALHOST"),
    ];
    // A root in another, unverified repository declares one child per spelling (app-of-apps).
    let roots = TestRepo::new();
    let manifests: String = spellings
        .iter()
        .enumerate()
        .map(|(index, url)| child_manifest(&format!("spelled-{index}"), url, &env.namespace))
        .collect();
    roots.write("apps/children.yaml", &manifests);
    roots.commit("five spellings of one repository");
    let required = RepositoryVerification {
        url_prefix: canonical.clone(),
        verify: verification(VerifyMode::Head, Some(signers), None),
    };
    let data = tempfile::tempdir().expect("tempdir");
    let root = application("spelled", &roots, "apps", &env.namespace);
    let engine = engine_with(env.kubeconfig_path(), data.path(), vec![root], vec![required]);
    engine.discover().await;
    for (index, url) in spellings.iter().enumerate() {
        let name = format!("spelled-{index}");
        assert!(engine.application(&name).is_ok(), "{name} ({url}) is declared");
        let err = engine
            .sync(&name, prune())
            .await
            .expect_err(&format!("{name}: {url} escaped the repository's verify"));
        assert!(
            matches!(err.failure, Failure::Untrusted { .. }),
            "{name} ({url}): {err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("commit {} is not trusted", &unsigned[..7])),
            "{err}"
        );
    }
    assert_eq!(value(&env, "spelled-0").await, None, "nothing applied");

    // Signed by Alice, every spelling syncs: the policy was the repository's, not an error.
    repo.write("spelled-0/cm.yaml", &config_map("spelled-0", "two"));
    signed(&repo, "signed", &alice_signs, &[]);
    for index in 0..spellings.len() {
        let name = format!("spelled-{index}");
        let report = engine.sync(&name, prune()).await.expect("a signed head syncs");
        assert_eq!(report.result, SyncResult::Succeeded, "{report:#?}");
        assert!(value(&env, &name).await.is_some(), "{name}");
    }
    assert_eq!(value(&env, "spelled-0").await.as_deref(), Some("two"));
}
