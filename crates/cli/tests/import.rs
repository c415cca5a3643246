//! `driftless import` end to end (issue 21): the real binary over the public example
//! repositories' objects (files, directories, standard input) and over a live control plane
//! serving minimal Argo CD and Flux CRDs; what it writes loads as a driftless.yaml.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::text;
use driftless_testenv::TestEnv;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tests/fixtures/foreign")
}

/// `driftless import ARGS` in `dir` (no driftless.yaml there unless the test writes one).
fn import(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .arg("import")
        .args(args)
        .current_dir(dir)
        .env_remove("DRIFTLESS_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run driftless import");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("driftless import")
}

/// What import wrote loads as a driftless.yaml, with the same validation as any.
fn loads(dir: &Path, output: &Output) -> driftless_config::Config {
    let written = dir.join("imported.yaml");
    std::fs::write(&written, &output.stdout).expect("write");
    driftless_config::load(&written).unwrap_or_else(|err| panic!("{err}\n{}", text(output)))
}

#[test]
fn import_writes_a_configuration_that_loads_and_reports_what_it_left_out() {
    let dir = tempfile::tempdir().expect("dir");
    let apps = fixtures().join("argocd-example-apps");
    let output = import(
        dir.path(),
        &["-f", apps.to_str().expect("utf-8"), "--report", "report.txt"],
        None,
    );
    assert!(output.status.success(), "{}", text(&output));
    let config = loads(dir.path(), &output);
    assert_eq!(config.applications.len(), 14);
    let guestbook = config
        .applications
        .iter()
        .find(|app| app.name == "example-guestbook")
        .expect("guestbook");
    assert_eq!(guestbook.destination.cluster, "in-cluster");
    assert_eq!(
        guestbook.source.repo_url,
        "https://github.com/argoproj/argocd-example-apps"
    );
    assert!(guestbook.sync_policy.create_namespace);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("# Written by driftless import.") && stdout.contains("#   example-plugin-nix"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(dir.path().join("report.txt")).expect("report");
    assert!(
        report.contains("Application argocd/example.plugin-kasane (")
            && report.contains("spec.source.plugin: config management plugins are not supported"),
        "{report}"
    );
    assert!(
        output.stderr.is_empty(),
        "the report went to the file: {}",
        text(&output)
    );

    // --strict fails on what was not carried over; the output is written all the same.
    let strict = import(
        dir.path(),
        &["-f", apps.to_str().expect("utf-8"), "--strict"],
        None,
    );
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict));
    assert!(
        String::from_utf8_lossy(&strict.stderr).contains("not carried over"),
        "{}",
        text(&strict)
    );
}

#[test]
fn import_reads_standard_input_and_writes_manifests_against_the_configured_clusters() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("driftless.yaml"),
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - name: production\n    kubeconfig: /nonexistent/kubeconfig\n",
    )
    .expect("config");
    let flux = std::fs::read_to_string(fixtures().join("flux-bootstrap.yaml")).expect("fixture");
    let output = import(dir.path(), &["-f", "-", "--format", "manifests"], Some(&flux));
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&stdout).expect("YAML");
    let names: Vec<&str> = documents
        .iter()
        .map(|document| document["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["flux-system", "apps", "from-bucket", "chart-in-git"]);
    // Flux's own cluster is the configuration's first.
    assert_eq!(documents[0]["spec"]["destination"]["cluster"], "production");
    let root =
        driftless_config::application_from_manifest(&documents[0], "flux-system", &["production".into()])
            .expect("a valid Application");
    assert_eq!(root.source.revision, "main");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("<stdin>#3): spec.images: not supported yet"),
        "{stderr}"
    );

    // Hard errors are errors: a file that is not YAML, named.
    std::fs::write(dir.path().join("broken.yaml"), "a: [").expect("write");
    let broken = import(dir.path(), &["-f", "broken.yaml"], None);
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("broken.yaml"),
        "{}",
        text(&broken)
    );
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is on PATH (see DEVELOPMENT.md)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("kubectl");
    assert!(output.status.success(), "kubectl {args:?}: {}", text(&output));
}

#[tokio::test]
async fn import_from_cluster_lists_the_argo_and_flux_kinds_the_cluster_serves() {
    let env = TestEnv::new("cli-import-cluster").await;
    let ns = env.namespace.clone();
    let kubeconfig = env.kubeconfig_path();
    let crds = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/crds.yaml"),
    )
    .expect("CRDs");
    kubectl(kubeconfig, &["apply", "-f", "-"], &crds);
    kubectl(
        kubeconfig,
        &["wait", "--for=condition=Established", "--timeout=60s", "-f", "-"],
        &crds,
    );
    kubectl(
        kubeconfig,
        &["apply", "-n", &ns, "-f", "-"],
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: imported-guestbook}
spec:
  project: default
  source: {repoURL: 'https://github.com/argoproj/argocd-example-apps', targetRevision: HEAD, path: guestbook}
  destination: {server: 'https://kubernetes.default.svc', namespace: guestbook}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: imported-fleet}
spec: {interval: 1m, url: 'https://github.com/example/fleet', ref: {branch: main}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: imported-apps}
spec:
  interval: 10m
  path: ./apps
  prune: true
  sourceRef: {kind: GitRepository, name: imported-fleet}
",
    );
    let dir = tempfile::tempdir().expect("dir");
    let output = import(
        dir.path(),
        &[
            "--from-cluster",
            "--kubeconfig",
            kubeconfig.to_str().expect("utf-8"),
            "--cluster",
            "local",
        ],
        None,
    );
    assert!(output.status.success(), "{}", text(&output));
    let config = loads(dir.path(), &output);
    let guestbook = config
        .applications
        .iter()
        .find(|app| app.name == "imported-guestbook")
        .expect("the Argo CD Application");
    assert_eq!(guestbook.destination.cluster, "local");
    assert_eq!(guestbook.source.path, "guestbook");
    let apps = config
        .applications
        .iter()
        .find(|app| app.name == "imported-apps")
        .expect("the Flux Kustomization, its GitRepository resolved");
    assert_eq!(apps.source.repo_url, "https://github.com/example/fleet");
    assert_eq!(
        (apps.source.revision.as_str(), apps.source.path.as_str()),
        ("main", "apps")
    );
}

#[tokio::test]
async fn status_shows_why_a_child_from_argo_cd_does_not_sync() {
    let env = TestEnv::new("cli-foreign-status").await;
    let repo = driftless_testenv::git::TestRepo::new();
    let argo_application = |name: &str, spec: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: {name}, namespace: argocd}}
spec:
  project: default
  destination: {{server: 'https://kubernetes.default.svc', namespace: {}}}
{spec}",
            env.namespace
        )
    };
    let url = repo.file_url();
    repo.write(
        "apps/plugin.yaml",
        &argo_application(
            "with-plugin",
            &format!("  source:\n    repoURL: '{url}'\n    path: web\n    plugin: {{name: kasane}}\n"),
        ),
    )
    .write(
        "apps/history.yaml",
        &argo_application(
            "with-history",
            &format!("  revisionHistoryLimit: 3\n  source: {{repoURL: '{url}', path: web}}\n"),
        ),
    )
    .write(
        "web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    );
    repo.commit("an Argo CD Application with a plugin, one keeping a revision history");
    let dir = tempfile::tempdir().expect("dir");
    let config = common::write_config(
        dir.path(),
        env.kubeconfig_path(),
        ("root", &repo.file_url(), "apps"),
        &env.namespace,
        "",
    );
    let status = common::driftless(&config, &["status", "-o", "json"]);
    assert!(status.status.success(), "{}", text(&status));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&status.stdout).expect("JSON");
    let child = rows
        .iter()
        .find(|row| row["application"] == "with-plugin")
        .unwrap_or_else(|| panic!("the child is listed: {}", text(&status)));
    let message = child["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Application argocd/with-plugin (apps/plugin.yaml")
            && message.contains("spec.source.plugin: config management plugins are not supported"),
        "{}",
        text(&status)
    );
    let sync = common::driftless(&config, &["sync", "with-plugin"]);
    assert_eq!(sync.status.code(), Some(2), "{}", text(&sync));
    assert_conversion_notes(&config);
    assert_conversion_notes_through_a_server(&config).await;
}

/// A `driftless serve` for `config`, killed when dropped.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With `driftless serve` running, `status APP` goes through it and its notes come from the
/// API's application detail: the same as without.
async fn assert_conversion_notes_through_a_server(config: &Path) {
    let log = std::fs::File::create(config.with_file_name("serve.log")).expect("serve log");
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(log.try_clone().expect("serve log"))
            .stderr(log)
            .spawn()
            .expect("start driftless serve"),
    );
    // `refresh` works only through a server: once it does, the CLI goes through it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(1);
    loop {
        let through_server = common::driftless(config, &["refresh", "with-history"])
            .status
            .success();
        let listed = common::driftless(config, &["status", "with-history", "-o", "json"]);
        if through_server && listed.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve does not list with-history: {}\n{}",
            text(&listed),
            std::fs::read_to_string(config.with_file_name("serve.log")).unwrap_or_default()
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert_conversion_notes(config);
}

/// One application's status shows the Argo CD fields its child syncs without, in JSON and in
/// text; a child whose object differs in nothing shows no notes.
fn assert_conversion_notes(config: &Path) {
    let note = "Application argocd/with-history (apps/history.yaml (document 1, line 1)): spec.revisionHistoryLimit: has no equivalent in driftless; ignored";
    let json = common::driftless(config, &["status", "with-history", "-o", "json"]);
    assert!(json.status.success(), "{}", text(&json));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(
        rows[0]["conversion_notes"],
        serde_json::json!([note]),
        "{}",
        text(&json)
    );
    let table = common::driftless(config, &["status", "with-history"]);
    assert!(table.status.success(), "{}", text(&table));
    let shown = String::from_utf8_lossy(&table.stdout);
    assert!(
        shown.contains("with-history: converted from an Argo CD or Flux object; it syncs, but these fields work differently here:")
            && shown.contains(&format!("\n  {note}\n")),
        "{shown}"
    );
    let plain = common::driftless(config, &["status", "with-plugin", "-o", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&plain.stdout).expect("JSON");
    assert!(rows[0].get("conversion_notes").is_none(), "{}", text(&plain));
}
