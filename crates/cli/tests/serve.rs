//! `driftless serve` as a process: automated syncs, clean SIGTERM, and a restart after a crash.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use driftless_testenv::git::TestRepo;
use driftless_testenv::{ControlPlane, TestEnv};
use k8s_openapi::api::core::v1::ConfigMap;

mod listening;

/// A `driftless serve` that is killed if the test ends early.
struct Serve(Child);

impl Serve {
    /// Logs (and the address it listens on) go to `serve.log` beside the configuration.
    fn start(config: &Path) -> Self {
        Self::start_with(config, &[])
    }

    fn start_with(config: &Path, extra: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(config.with_file_name("serve.log"))
            .expect("open the serve log");
        let child = Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(["serve", "--config"])
            .arg(config)
            .args(extra)
            .env("DRIFTLESS_LOG", "info")
            .stdout(log.try_clone().expect("the serve log"))
            .stderr(log)
            .spawn()
            .expect("start driftless serve");
        Self(child)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_config(dir: &Path, kubeconfig: &Path, apps: &str) -> std::path::PathBuf {
    let config = dir.join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - name: local\n    kubeconfig: {}\napplications:\n{apps}",
            kubeconfig.display()
        ),
    )
    .expect("write config");
    config
}

fn app(name: &str, repo: &TestRepo, path: &str, namespace: &str, automated: bool) -> String {
    let policy = if automated {
        "automated: { prune: true, selfHeal: true }, interval: 1s"
    } else {
        "interval: 1s"
    };
    format!(
        "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{}', path: {path} }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n      syncPolicy: {{ {policy} }}\n",
        repo.file_url()
    )
}

/// Polls `check` until it holds; on timeout, fails with the tail of serve's log.
async fn eventually<F, Fut>(limit: Duration, what: &str, config: &Path, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(config.with_file_name("serve.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "timed out after {limit:?} waiting for {what}; serve log (newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `driftless <command> <application> -o json` as JSON (`Null` when it printed none).
fn json(command: &str, config: &Path, application: &str) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args([command, application, "-o", "json", "--config"])
        .arg(config)
        .output()
        .unwrap_or_else(|err| panic!("driftless {command}: {err}"));
    serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
}

/// The application's row of `driftless status`.
fn status(config: &Path, application: &str) -> serde_json::Value {
    json("status", config, application)[0].clone()
}

fn history(config: &Path, application: &str) -> serde_json::Value {
    json("history", config, application)
}

#[tokio::test]
async fn serve_syncs_automated_applications_only_and_stops_on_sigterm() {
    let env = TestEnv::new("serve_automated").await;
    let repo = TestRepo::new();
    repo.write(
        "auto/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: auto}\ndata: {key: one}\n",
    )
    .write(
        "manual/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: manual}\ndata: {key: one}\n",
    );
    repo.commit("first");
    let dir = tempfile::tempdir().expect("tempdir");
    let apps = app("auto", &repo, "auto", &env.namespace, true)
        + &app("manual", &repo, "manual", &env.namespace, false);
    let config = write_config(dir.path(), env.kubeconfig_path(), &apps);
    // Structured logs as an option: one JSON object per line.
    let serve = Serve::start_with(&config, &["--log-format", "json"]);
    let config_maps = env.api::<ConfigMap>();

    eventually(
        Duration::from_mins(1),
        "the automated application to sync",
        &config,
        || async { config_maps.get_opt("auto").await.ok().flatten().is_some() },
    )
    .await;
    repo.write(
        "auto/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: auto}\ndata: {key: two}\n",
    );
    repo.commit("second");
    eventually(
        Duration::from_mins(1),
        "the new commit to be applied",
        &config,
        || async {
            config_maps
                .get_opt("auto")
                .await
                .ok()
                .flatten()
                .and_then(|cm| cm.data)
                .is_some_and(|d| d["key"] == "two")
        },
    )
    .await;
    assert!(
        config_maps.get_opt("manual").await.expect("get").is_none(),
        "a manual application is never synced by serve"
    );

    serve.signal("TERM");
    let mut serve = serve;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = serve.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    let log = std::fs::read_to_string(config.with_file_name("serve.log")).expect("log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")))
        .collect();
    assert!(
        lines.iter().all(|line| line["level"].is_string()
            && line["timestamp"].is_string()
            && line["fields"].is_object()),
        "{log}"
    );
    assert!(
        log.contains("\"auto\""),
        "the reconcile span names the application: {log}"
    );
}

#[tokio::test]
async fn a_sync_cut_short_by_a_crash_is_recorded_as_interrupted() {
    let env = TestEnv::new("serve_restart").await;
    let repo = TestRepo::new();
    // Wave 0 never becomes healthy (no kubelet runs Pods), so the sync waits in it.
    repo.write(
        "app/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: example.invalid/web:1}]}\n",
    )
    .write(
        "app/later.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later\n  annotations: {driftless.dev/sync-wave: \"1\"}\n",
    );
    repo.commit("two waves");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        env.kubeconfig_path(),
        &app("web", &repo, "app", &env.namespace, true),
    );

    let first = Serve::start(&config);
    eventually(Duration::from_mins(1), "a running sync", &config, || async {
        history(&config, "web")
            .get(0)
            .is_some_and(|record| record["result"] == "running")
    })
    .await;
    first.signal("KILL");
    drop(first);
    assert!(
        env.api::<ConfigMap>()
            .get_opt("later")
            .await
            .expect("get")
            .is_none(),
        "wave 1 waits for wave 0"
    );

    let _second = Serve::start(&config);
    eventually(
        Duration::from_mins(1),
        "the cut-short sync to be marked interrupted",
        &config,
        || async {
            let records = history(&config, "web");
            records.as_array().is_some_and(|all| {
                all.iter().any(|r| {
                    r["result"] == "interrupted" && r["message"] == "driftless stopped while this sync ran"
                })
            })
        },
    )
    .await;
}

#[tokio::test]
async fn the_cli_goes_through_a_running_server() {
    let env = TestEnv::new("serve_api").await;
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: via-api}\n",
    );
    repo.commit("first");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        env.kubeconfig_path(),
        &app("web", &repo, "app", &env.namespace, false),
    );
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run driftless")
    };
    let without_server = cli(&["refresh", "web"]);
    assert_eq!(
        without_server.status.code(),
        Some(2),
        "refresh needs a running server"
    );

    let _serve = Serve::start(&config);
    eventually(Duration::from_mins(1), "the API socket", &config, || async {
        cli(&["refresh", "web"]).status.success()
    })
    .await;
    let all = cli(&["refresh", "--all"]);
    assert!(all.status.success(), "{}", String::from_utf8_lossy(&all.stderr));
    assert_eq!(String::from_utf8_lossy(&all.stdout), "web: refresh requested\n");
    let elsewhere = cli(&["refresh", "--repo", "file:///nowhere"]);
    assert_eq!(
        elsewhere.status.code(),
        Some(2),
        "no application uses that repository"
    );
    assert!(
        String::from_utf8_lossy(&elsewhere.stderr).contains("no application's source is that repository")
    );
    let second = Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("second serve");
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another driftless serve is already running"));

    let sync = cli(&["sync", "web"]);
    assert!(sync.status.success(), "{}", String::from_utf8_lossy(&sync.stderr));
    assert!(
        env.api::<ConfigMap>()
            .get_opt("via-api")
            .await
            .expect("get")
            .is_some()
    );
    let log = std::fs::read_to_string(config.with_file_name("serve.log")).expect("serve log");
    assert!(log.contains("sync finished"), "the sync ran inside serve: {log}");

    eventually(
        Duration::from_mins(1),
        "the server's status to show the sync",
        &config,
        || async {
            let status = cli(&["status", "-o", "json"]);
            let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
            rows.get(0).is_some_and(|row| row["sync"] == "Synced")
        },
    )
    .await;
    let diff = cli(&["diff", "web"]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "in sync, through the server: {}",
        String::from_utf8_lossy(&diff.stderr)
    );

    administration_goes_through(&config);
}

/// `pin`, `unpin`, `suspend`, `resume` and `rollback` run inside the running serve, under the
/// lock its reconciles take: each is logged there (a rollback as a sync).
fn administration_goes_through(config: &Path) {
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .expect("run driftless")
    };
    let revision = history(config, "web")[0]["revision"]
        .as_str()
        .expect("a synced revision")
        .to_owned();
    for (args, said) in [
        (vec!["pin", "web"], "pinned at"),
        (vec!["unpin", "web"], "unpinned"),
        (vec!["suspend", "web"], "suspended"),
        (vec!["resume", "web"], "resumed"),
    ] {
        let output = cli(&args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains(said), "{args:?}");
        let log = std::fs::read_to_string(config.with_file_name("serve.log")).expect("serve log");
        assert!(
            log.lines()
                .any(|line| line.contains("administrative change") && line.contains(args[0])),
            "driftless {} ran inside serve: {log}",
            args[0]
        );
    }
    let syncs_before = std::fs::read_to_string(config.with_file_name("serve.log"))
        .expect("serve log")
        .matches("sync finished")
        .count();
    let rollback = cli(&["rollback", "web", "--to", &revision]);
    assert!(
        rollback.status.success(),
        "{}",
        String::from_utf8_lossy(&rollback.stderr)
    );
    let log = std::fs::read_to_string(config.with_file_name("serve.log")).expect("serve log");
    assert_eq!(
        log.matches("sync finished").count(),
        syncs_before + 1,
        "the rollback's sync ran inside serve: {log}"
    );
}

#[tokio::test]
async fn an_api_server_outage_is_reported_and_survived_without_deleting_anything() {
    // A control plane of its own: stopping the shared one would break the other tests.
    let mut control_plane = ControlPlane::start().await.expect("start a control plane");
    let client = control_plane.client().await.expect("client");
    let config_maps: kube::Api<ConfigMap> = kube::Api::namespaced(client, "default");
    let repo = TestRepo::new();
    let config_map = |name: &str, value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{key: {value}}}\n")
    };
    repo.write("app/kept.yaml", &config_map("kept", "one"))
        .write("app/removed.yaml", &config_map("removed", "one"));
    let first = repo.commit("first");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        control_plane.kubeconfig_path(),
        &app("web", &repo, "app", "default", true),
    );
    let mut serve = Serve::start(&config);
    eventually(Duration::from_mins(1), "the first sync", &config, || async {
        status(&config, "web")["sync"] == "Synced"
    })
    .await;
    assert_eq!(
        status(&config, "web")["health"],
        "Healthy",
        "health is assessed after the sync, not left as it was before"
    );

    control_plane.stop_api_server();
    // Git moves on while the cluster is unreachable: one object leaves, one changes.
    repo.remove("app/removed.yaml")
        .write("app/kept.yaml", &config_map("kept", "two"));
    repo.commit("second");
    eventually(
        Duration::from_mins(1),
        "the outage to be reported on the application",
        &config,
        || async {
            let row = status(&config, "web");
            row["sync"] == "Unknown" && row["message"].as_str().is_some_and(|m| !m.is_empty())
        },
    )
    .await;
    let row = status(&config, "web");
    assert!(
        row["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot reach the API server") && m.contains("Connection refused")),
        "the error says what is wrong: {row}"
    );
    assert_eq!(
        row["revision"], first,
        "the last known revision is kept through the outage: {row}"
    );
    assert!(
        serve.0.try_wait().expect("wait").is_none(),
        "serve keeps running through an outage"
    );

    control_plane
        .start_api_server()
        .await
        .expect("restart kube-apiserver");
    eventually(
        Duration::from_mins(1),
        "recovery: the new commit applied and the removed object pruned",
        &config,
        || async {
            let kept = config_maps.get_opt("kept").await.ok().flatten();
            let removed = config_maps.get_opt("removed").await.ok().flatten();
            kept.and_then(|cm| cm.data).is_some_and(|d| d["key"] == "two")
                && removed.is_none()
                && status(&config, "web")["sync"] == "Synced"
        },
    )
    .await;
    let records = history(&config, "web");
    assert!(
        records
            .as_array()
            .is_some_and(|all| all.iter().all(|r| r["result"] != "running")),
        "no sync is left running: {records}"
    );
}

/// The status code of a GET over plain HTTP/1.1 (with a bearer token when given); `None` while
/// nothing listens.
fn http_status(address: &str, path: &str, token: Option<&str>) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    let authorization = token.map_or(String::new(), |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{authorization}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

/// `driftless status --server` through the TCP API: with the token from the environment, without
/// it, with a forged one, and over plain HTTP to a non-loopback address (refused before sending).
fn remote_cli_uses_the_token(config: &Path, address: &str, secret: &str) {
    // The CLI through the remote API, with the token from the environment.
    let remote = |server: &str, token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_driftless"));
        command
            .args(["status", "--server", server, "--config"])
            .arg(config);
        command.env_remove("DRIFTLESS_TOKEN");
        if let Some(token) = token {
            command.env("DRIFTLESS_TOKEN", token);
        }
        command.output().expect("run driftless")
    };
    let url = format!("http://{address}");
    let through = remote(&url, Some(secret));
    assert!(
        through.status.success(),
        "{}",
        String::from_utf8_lossy(&through.stderr)
    );
    assert!(
        String::from_utf8_lossy(&through.stdout).contains("web"),
        "{through:?}"
    );
    let missing = remote(&url, None);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("DRIFTLESS_TOKEN"),
        "{missing:?}"
    );
    let forged = remote(&url, Some("dlt_forged"));
    assert!(!forged.status.success(), "a forged token is refused");
    let in_clear = remote("http://192.0.2.1:8080", Some(secret));
    assert!(
        String::from_utf8_lossy(&in_clear.stderr).contains("use https://"),
        "{in_clear:?}"
    );
}

#[tokio::test]
async fn the_tcp_api_needs_a_token_the_cli_creates_and_revokes() {
    let repo = TestRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    );
    repo.commit("first");
    let dir = tempfile::tempdir().expect("tempdir");
    // No cluster is contacted: listing applications needs none.
    let config = write_config(
        dir.path(),
        Path::new("/nonexistent/kubeconfig"),
        &app("web", &repo, "app", "default", false),
    );
    let cli = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_driftless"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run driftless");
        assert!(
            output.status.success(),
            "driftless {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let secret = cli(&[
        "token",
        "create",
        "dashboard",
        "--role",
        "viewer",
        "--app",
        "web*",
    ]);
    assert!(secret.starts_with("dlt_"), "{secret}");
    let listed = cli(&["token", "list"]);
    assert!(
        listed.starts_with("dashboard\tviewer\tweb*\tnever used"),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "a list never shows secrets");

    let mut serve = Serve::start_with(&config, &["--listen", "127.0.0.1:0"]);
    let url = listening::api_url(&config.with_file_name("serve.log"), &mut serve.0);
    let address = url
        .strip_prefix("http://")
        .expect("plain HTTP on loopback")
        .to_owned();
    eventually(
        Duration::from_secs(30),
        "the TCP API answers",
        &config,
        || async { http_status(&address, "/api/v1/applications", None).is_some() },
    )
    .await;
    assert_eq!(http_status(&address, "/api/v1/applications", None), Some(401));
    assert_eq!(
        http_status(&address, "/api/v1/applications", Some(&secret)),
        Some(200)
    );
    assert!(cli(&["token", "list"]).ends_with("\tused"), "its use is recorded");

    remote_cli_uses_the_token(&config, &address, &secret);
    cli(&["token", "revoke", "dashboard"]);
    assert_eq!(
        http_status(&address, "/api/v1/applications", Some(&secret)),
        Some(401),
        "revoked at once"
    );
}
