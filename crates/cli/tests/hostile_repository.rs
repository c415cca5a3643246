//! A hostile repository against the real binary: trees whose entries are named `..` (a chain that
//! climbs out of any private copy) or hold a backslash, behind a plain-YAML, a Kustomize and a
//! Helm application, over file:// and git daemon, for `render`, `diff`, `sync`, `plan` and
//! `serve`. Each command fails naming the refusal, and no file lands outside the work directory.
//!
//! Three situations: a fresh fetch of the `..` tree (refused by git's object checks, fsck), a
//! mirror that already holds it (fetched before those checks: refused when the tree is read,
//! with the path named), and a backslash in a name (fsck lets it in; the tree check names it).
//! The `..` chains are 1 to 6 levels deep from inside each application, and driftless runs with
//! `TMPDIR` four levels below the test's directory, so every place a chain could reach from a
//! private copy is inside that directory, where the test looks for `pwned-*` files.

// Commands here run with their own TMPDIR; only `text` is shared.
mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use driftless_testenv::TestEnv;
use driftless_testenv::git::{GitDaemon, RawEntry, TestRepo, git};

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{a: b}}\n")
}

/// The three applications' files.
fn clean_files() -> Vec<(Vec<String>, String)> {
    let at = |path: &str| path.split('/').map(str::to_owned).collect::<Vec<_>>();
    vec![
        (at("apps/plain/cm.yaml"), config_map("plain")),
        (
            at("apps/kust/kustomization.yaml"),
            "resources: [cm.yaml]\n".to_owned(),
        ),
        (at("apps/kust/cm.yaml"), config_map("kust")),
        (
            at("apps/helm/Chart.yaml"),
            "apiVersion: v2\nname: hostile\nversion: 0.1.0\n".to_owned(),
        ),
        (at("apps/helm/templates/cm.yaml"), config_map("helm")),
    ]
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// `apps/<app>/x/../…/pwned-<k>.txt`, k = 1..=6.
    DotDot,
    /// `apps/<app>/a\b/pwned.txt`.
    Backslash,
}

/// `clean` with the clean files; `main` with them and the hostile entries under each application.
fn repository(shape: Shape) -> TestRepo {
    let repo = TestRepo::new();
    let clean = clean_files();
    let mut hostile: Vec<(Vec<String>, String)> = Vec::new();
    for app in ["plain", "kust", "helm"] {
        match shape {
            Shape::DotDot => {
                for k in 1..=6 {
                    let mut path = vec!["apps".to_owned(), app.to_owned(), "x".to_owned()];
                    path.extend(std::iter::repeat_n("..".to_owned(), k));
                    path.push(format!("pwned-{k}.txt"));
                    hostile.push((path, "pwned\n".to_owned()));
                }
            }
            Shape::Backslash => hostile.push((
                vec![
                    "apps".to_owned(),
                    app.to_owned(),
                    "a\\b".to_owned(),
                    "pwned.txt".to_owned(),
                ],
                "pwned\n".to_owned(),
            )),
        }
    }
    let commit = |branch: &str, files: &[(Vec<String>, String)]| {
        let components: Vec<Vec<&str>> = files
            .iter()
            .map(|(path, _)| path.iter().map(String::as_str).collect())
            .collect();
        let entries: Vec<RawEntry<'_>> = files
            .iter()
            .zip(&components)
            .map(|((_, contents), path)| RawEntry::file(path, contents))
            .collect();
        repo.commit_raw_tree(branch, &entries);
    };
    commit("clean", &clean);
    let mut all = clean;
    all.extend(hostile);
    commit("main", &all);
    repo
}

/// The work directory: the configuration, `state/` and `a/b/c/tmp/` (driftless's `TMPDIR`).
struct Work {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Work {
    fn new(env: &TestEnv, url: &str) -> Self {
        Self::with_apps(
            env,
            url,
            &[
                ("plain", "apps/plain"),
                ("kust", "apps/kust"),
                ("helm", "apps/helm"),
            ],
        )
    }

    /// A configuration with the applications `(name, path)` of `url`.
    fn with_apps(env: &TestEnv, url: &str, apps: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b/c/tmp")).expect("tmp");
        let mut applications = String::new();
        for (name, path) in apps {
            let _ = write!(
                applications,
                "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{url}', revision: main, path: {path} }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n      syncPolicy: {{ automated: {{ prune: true }}, interval: 1s }}\n",
                namespace = env.namespace,
            );
        }
        let config = dir.path().join("driftless.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - name: local\n    kubeconfig: {}\napplications:\n{applications}",
                env.kubeconfig_path().display(),
            ),
        )
        .expect("config");
        Self { dir, config }
    }

    fn tmp(&self) -> PathBuf {
        self.dir.path().join("a/b/c/tmp")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_driftless"));
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("NO_COLOR", "1")
            .env("TMPDIR", self.tmp());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run driftless")
    }

    /// A mirror of `url` where driftless keeps it, made by a plain `git clone --mirror`: no
    /// object checks, as a mirror fetched by an earlier driftless would be.
    fn unchecked_mirror(&self, url: &str) {
        let mut sha = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sha256sum");
        std::io::Write::write_all(&mut sha.stdin.take().expect("stdin"), url.as_bytes()).expect("write");
        let digest = String::from_utf8(sha.wait_with_output().expect("sha256sum").stdout).expect("hex");
        let mirrors = self.dir.path().join("state/git");
        std::fs::create_dir_all(&mirrors).expect("mirrors");
        let target = mirrors.join(format!("{}.git", &digest[..32]));
        git(
            &mirrors,
            &[
                "clone",
                "--quiet",
                "--mirror",
                "--no-local",
                url,
                &target.display().to_string(),
            ],
        );
    }

    fn assert_nothing_escaped(&self, what: &str, output: &str) {
        assert_eq!(
            self.escaped(),
            Vec::<PathBuf>::new(),
            "{what} wrote outside its private copy:\n{output}"
        );
    }

    /// `pwned-*` files anywhere below the work directory, in the system's temporary directory or
    /// at the root (private copies are gone once a command ends, so any found escaped).
    fn escaped(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![self.dir.path().to_owned()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push(path);
                } else if entry.file_name().to_string_lossy().starts_with("pwned") {
                    found.push(path);
                }
            }
        }
        for dir in [std::env::temp_dir(), PathBuf::from("/")] {
            for k in 1..=6 {
                let path = dir.join(format!("pwned-{k}.txt"));
                if path.exists() {
                    found.push(path);
                }
            }
        }
        found
    }
}

/// What the refusal must say in each situation.
fn expected(shape: Shape, fresh: bool) -> &'static [&'static str] {
    match (shape, fresh) {
        // git's fsck, at fetch time.
        (Shape::DotDot, true) => &["hasDotdot"],
        (Shape::DotDot, false) => &["/x/../", "has a `..` component"],
        (Shape::Backslash, _) => &["a\\\\b/pwned.txt", "holds a backslash"],
    }
}

fn check(work: &Work, what: &str, output: &Output, needles: &[&str]) {
    let text = common::text(output);
    assert!(!output.status.success(), "{what} must fail:\n{text}");
    for needle in needles {
        assert!(text.contains(needle), "{what} must say {needle:?}:\n{text}");
    }
    work.assert_nothing_escaped(what, &text);
}

fn serve(work: &Work, needles: &[&str]) {
    let log_path = work.dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("serve log");
    let mut child = work
        .command(&["serve"])
        .env("DRIFTLESS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start driftless serve");
    // Until every application's reconcile has failed (each one's own mirror and renderer had
    // their chance to write something) and the log names the problem.
    let failed = |text: &str, app: &str| {
        text.lines().any(|line| {
            line.contains("reconcile failed")
                && (line.contains(&format!("application={app} "))
                    || line.contains(&format!("application=\"{app}\"")))
        })
    };
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if needles.iter().all(|n| text.contains(n))
            && ["plain", "kust", "helm"].iter().all(|app| failed(&text, app))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not fail every application's reconcile within a minute:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    for needle in needles {
        assert!(text.contains(needle), "serve must log {needle:?}:\n{text}");
    }
    work.assert_nothing_escaped("serve", &text);
}

fn every_command_refuses(env: &TestEnv, shape: Shape, fresh: bool) {
    let repo = repository(shape);
    let daemon = GitDaemon::start(repo.root());
    for url in [repo.file_url(), daemon.url("origin.git")] {
        let needles = expected(shape, fresh);
        let situation = format!(
            "{shape:?} over {url} ({})",
            if fresh { "fresh" } else { "mirror" }
        );
        let work = Work::new(env, &url);
        if !fresh {
            work.unchecked_mirror(&url);
        }
        for app in ["plain", "kust", "helm"] {
            for command in ["render", "diff", "sync"] {
                let output = work.run(&[command, app]);
                check(&work, &format!("{command} {app}, {situation}"), &output, needles);
            }
        }
        let output = work.run(&["plan", "--base", "clean", "--head", "main"]);
        check(&work, &format!("plan, {situation}"), &output, needles);
        serve(&work, needles);
    }
}

#[tokio::test]
async fn a_tree_with_dot_dot_entries_is_refused_at_fetch_and_writes_nothing() {
    let env = TestEnv::new("hostile-fetch").await;
    every_command_refuses(&env, Shape::DotDot, true);
}

#[tokio::test]
async fn a_dot_dot_tree_already_in_a_mirror_is_refused_naming_the_path_and_writes_nothing() {
    let env = TestEnv::new("hostile-mirror").await;
    every_command_refuses(&env, Shape::DotDot, false);
}

#[tokio::test]
async fn a_backslash_in_a_tree_is_refused_naming_the_path() {
    let env = TestEnv::new("hostile-backslash").await;
    every_command_refuses(&env, Shape::Backslash, true);
}

/// A monorepo: a Kustomize application `apps/web`, and in `junk/` what no copy on disk can hold
/// safely: a backslash in a name, a macOS `Icon\r`, a link to its own directory.
#[tokio::test]
async fn hostile_entries_elsewhere_in_a_monorepo_fail_only_the_application_that_holds_them() {
    let env = TestEnv::new("hostile-monorepo").await;
    let repo = TestRepo::new();
    repo.commit_raw_tree(
        "main",
        &[
            RawEntry::file(&["apps", "web", "kustomization.yaml"], "resources: [cm.yaml]\n"),
            RawEntry::file(&["apps", "web", "cm.yaml"], &config_map("web")),
            RawEntry::file(&["junk", "cm.yaml"], &config_map("junk")),
            RawEntry::file(&["junk", "a\\b"], "x\n"),
            RawEntry::file(&["junk", "Icon\r"], ""),
            RawEntry::symlink(&["junk", "self"], "."),
        ],
    );
    let url = repo.file_url();
    let work = Work::with_apps(&env, &url, &[("web", "apps/web"), ("junk", "junk")]);
    let output = work.run(&["render", "web"]);
    let text = common::text(&output);
    assert!(output.status.success(), "render web succeeds:\n{text}");
    assert!(
        text.contains("name: web"),
        "render web shows its ConfigMap:\n{text}"
    );
    let output = work.run(&["render", "junk"]);
    let text = common::text(&output);
    assert!(!output.status.success(), "render junk must fail:\n{text}");
    assert!(
        text.contains("junk/") && text.contains("refused"),
        "render junk names the refused entry:\n{text}"
    );
}
