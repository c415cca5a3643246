//! Canary secrets: values planted in Secrets (plain, in `last-applied-configuration`, and SOPS-
//! encrypted), a credential in a repository URL that works (and one whose fetch fails) and a
//! Slack webhook's URL must appear in no output of any command — run directly, through a running
//! `serve`'s socket and through `--server` — in any output or log format (at the most verbose
//! level), in no answer of `serve --listen` that a browser or scraper reaches (API, UI, event
//! stream, metrics, probes), in no notification, and in no file anywhere under the data
//! directory, plain or base64 at any alignment. Each command's exit status is checked too, so a
//! command that failed early cannot pass as clean.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use driftless_testenv::TestEnv;
use driftless_testenv::git::{GitHttpServer, TestRepo};
use driftless_testenv::sops::Lab;

mod listening;
use k8s_openapi::api::core::v1::Secret;

const PLAIN: &str = "canary-plain-6d1c4b";
const ENCODED: &str = "canary-encoded-93fa07";
const ANNOTATED: &str = "canary-annotation-5b2e88";
const SOPS: &str = "canary-sops-e47d19";
const SOPS_NEXT: &str = "canary-sops-next-0c3a52";
/// The password in the URL of the repository that works.
const TOKEN: &str = "canary-token-a8f310";
/// The password in the URL of the repository whose fetch fails.
const DEAD_TOKEN: &str = "canary-dead-token-17c0e2";
/// In the path of the Slack webhook URL (read from a file, as Slack's URLs are secrets).
const SLACK: &str = "canary-slack-4f0b9a";
/// In a ConfigMap's field and annotation that `redaction:` names sensitive.
const FIELD: &str = "canary-field-71b9d4";
const ANNOTATION: &str = "canary-sensitive-annotation-2c6e";

const CANARIES: [&str; 10] = [
    PLAIN, ENCODED, ANNOTATED, SOPS, SOPS_NEXT, TOKEN, DEAD_TOKEN, SLACK, FIELD, ANNOTATION,
];

/// `text` and the forms it takes inside base64 at each of the three alignments (standard and
/// URL-safe alphabets), trimmed to the characters `text` alone decides.
fn forms(text: &str) -> Vec<String> {
    let mut all = vec![text.to_owned()];
    for offset in 0..3 {
        let mut bytes = vec![0_u8; offset];
        bytes.extend_from_slice(text.as_bytes());
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
        ] {
            let encoded = engine.encode(&bytes);
            let skip = (offset * 8).div_ceil(6);
            let end = encoded.trim_end_matches('=').len().saturating_sub(2);
            all.push(encoded[skip..end].to_owned());
        }
    }
    all
}

/// What must never be seen, in every form; `extra` adds credentials made during the run (API
/// tokens), which may be printed once by the command that made them and nowhere else.
fn needles(extra: &[String]) -> Vec<(String, String)> {
    CANARIES
        .iter()
        .map(|c| (*c).to_owned())
        .chain(extra.iter().cloned())
        .flat_map(|secret| forms(&secret).into_iter().map(move |form| (secret.clone(), form)))
        .collect()
}

fn assert_clean_of(what: &str, text: &[u8], extra: &[String]) {
    for (secret, form) in needles(extra) {
        assert!(
            !text.windows(form.len()).any(|window| window == form.as_bytes()),
            "{what} shows the canary {secret} (as {form:?}):\n{}",
            String::from_utf8_lossy(text)
        );
    }
}

fn assert_clean(what: &str, text: &str) {
    assert_clean_of(what, text.as_bytes(), &[]);
}

#[derive(Clone, Copy)]
enum Via<'a> {
    /// Directly against the cluster (`--direct` when a serve is running).
    Direct,
    /// Through the running serve's Unix socket (the default when it answers).
    Socket,
    /// Through `--server URL` with this token.
    Server(&'a str, &'a str),
}

async fn driftless(config: &Path, args: &[&str], log_format: &str, via: Via<'_>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_driftless"));
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--log-format", log_format])
        .env("NO_COLOR", "1")
        .env("DRIFTLESS_LOG", "trace")
        .env("DRIFTLESS_LOG_SPANS", "1")
        .env_remove("DRIFTLESS_SERVER")
        .env_remove("DRIFTLESS_TOKEN")
        .stdin(Stdio::null());
    match via {
        Via::Direct | Via::Socket => {}
        Via::Server(url, token) => {
            command.args(["--server", url]).env("DRIFTLESS_TOKEN", token);
        }
    }
    command.output().await.expect("run driftless")
}

/// Runs a command in every output format and both log formats, checks each exit status is
/// `expected` and each output clean; returns everything it printed.
async fn run_everywhere(config: &Path, args: &[&str], expected: i32, via: Via<'_>) -> String {
    let mut all = String::new();
    for log_format in ["text", "json"] {
        for format in [None, Some("json"), Some("yaml")] {
            let mut full: Vec<&str> = args.to_vec();
            if let Some(format) = format {
                full.extend(["-o", format]);
            }
            let output = driftless(config, &full, log_format, via).await;
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let shown = format!("driftless {} (log format {log_format})", full.join(" "));
            assert_eq!(
                output.status.code(),
                Some(expected),
                "{shown} exited with {:?}:\n{text}",
                output.status
            );
            assert_clean(&shown, &text);
            all.push_str(&text);
        }
    }
    all
}

/// Every file below `dir`, recursively, with its contents; and every file or directory whose mode
/// lets anyone but its owner in (directories must be 0700, files 0600 or stricter).
fn files_below(dir: &Path) -> (Vec<(PathBuf, Vec<u8>)>, Vec<String>) {
    use std::os::unix::fs::PermissionsExt as _;
    let mut files = Vec::new();
    let mut open = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let mode = std::fs::metadata(&dir).expect("stat").permissions().mode() & 0o777;
        if mode != 0o700 {
            open.push(format!("{} is a directory of mode {mode:o}", dir.display()));
        }
        for entry in std::fs::read_dir(&dir).expect("read a directory").flatten() {
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() {
                let mode = entry.metadata().expect("stat").permissions().mode() & 0o777;
                if mode & 0o177 != 0 {
                    open.push(format!("{} has mode {mode:o}", path.display()));
                }
                let contents = std::fs::read(&path).unwrap_or_default();
                files.push((path, contents));
            }
        }
    }
    (files, open)
}

type Received = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

/// A loopback receiver for notifications, recording every request.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new().fallback({
        let received = Arc::clone(&received);
        move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
            let received = Arc::clone(&received);
            async move {
                received
                    .lock()
                    .expect("lock")
                    .push((uri.path().to_owned(), headers, body));
                StatusCode::OK
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, received)
}

/// Two applications: `secrets` (a repository over HTTP whose URL carries the password, SOPS keys
/// from `key`) and `private`, whose URL carries a token and whose fetch fails; `redaction:` names
/// a ConfigMap field and an annotation; every notice goes to a signed webhook and to Slack.
fn write_config(dir: &Path, env: &TestEnv, url: &str, key: &Path, receiver: &str) -> PathBuf {
    std::fs::write(dir.join("hook-secret"), "canary-hook-secret\n").expect("write");
    std::fs::write(
        dir.join("slack-url"),
        format!("{receiver}/slack/T000/B000/{SLACK}\n"),
    )
    .expect("write");
    let config = dir.join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1
kind: Config
dataDir: state
redaction:
  annotations: [example.com/token]
  fields: [{{ group: '', kind: ConfigMap, jsonPointers: [/data/password] }}]
clusters:
  - name: local
    kubeconfig: {kubeconfig}
notifications:
  targets:
    - {{ name: hook, webhook: {{ url: '{receiver}/hook', secret: {{ file: hook-secret }} }} }}
    - {{ name: chat, slack: {{ url: {{ file: slack-url }} }} }}
  subscriptions:
    - {{ targets: [hook, chat] }}
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: {{ name: secrets }}
    spec:
      source: {{ repoURL: '{url}', revision: main, path: app }}
      destination: {{ cluster: local, namespace: {namespace} }}
      syncPolicy: {{ automated: {{ prune: true, selfHeal: true }}, interval: 1s }}
      decryption: {{ keys: [ {{ file: {key} }} ] }}
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: {{ name: private }}
    spec:
      source: {{ repoURL: 'http://driftless:{DEAD_TOKEN}@127.0.0.1:9/private.git', revision: main, path: app }}
      destination: {{ cluster: local, namespace: {namespace} }}
",
            kubeconfig = env.kubeconfig_path().display(),
            namespace = env.namespace,
            key = key.display(),
        ),
    )
    .expect("write config");
    config
}

/// GET (or POST) `path` on the listener with `token`; the status and body.
async fn request(base: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut request = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
        format!("{base}{path}"),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method == "POST" {
        request = request.header("content-type", "application/json").body("{}");
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// What `/api/v1/stream` sends within `for_how_long`.
/// Opens the event stream; once this returns, the server is subscribed for it.
async fn open_stream(base: &str, token: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/stream"))
        .bearer_auth(token)
        .send()
        .await
        .expect("open the stream");
    assert_eq!(response.status().as_u16(), 200, "the stream opens");
    response
}

/// Everything the stream says until `done` fires and it has named `application` (a minute at
/// most: then what it said so far).
async fn read_stream(
    mut response: reqwest::Response,
    application: &str,
    mut done: tokio::sync::oneshot::Receiver<()>,
) -> String {
    let mut seen = Vec::new();
    let mut finished = false;
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    while !(finished && String::from_utf8_lossy(&seen).contains(application)) {
        tokio::select! {
            _ = &mut done, if !finished => finished = true,
            chunk = tokio::time::timeout_at(deadline, response.chunk()) => match chunk {
                Ok(Ok(Some(chunk))) => seen.extend_from_slice(&chunk),
                _ => break,
            },
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one scenario, told in order")]
async fn no_command_log_answer_notification_or_file_shows_a_secret_or_a_credential() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
    let first = repo.commit("secrets");
    let git_server = GitHttpServer::start(repo.root(), Some(("driftless", TOKEN))).await;
    let url = git_server
        .url("origin.git")
        .replacen("http://", &format!("http://driftless:{TOKEN}@"), 1);
    let (notified_at, notified) = receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &env, &url, &key_file, &notified_at);
    let direct = Via::Direct;
    let mut seen = String::new();

    // Every command, directly against the cluster, with the exit status each must have.
    for (args, expected) in [
        (&["render", "secrets"][..], 0),
        (&["diff", "secrets"], 1),
        (&["sync", "secrets", "--prune"], 0),
        (&["diff", "secrets"], 0),
        (&["status", "secrets"], 0),
        (&["history", "secrets"], 0),
        (&["events", "secrets"], 0),
        (&["pin", "secrets"], 0),
        (&["unpin", "secrets"], 0),
        (&["suspend", "secrets"], 0),
        (&["resume", "secrets"], 0),
        (&["rollback", "secrets", "--to", &first], 0),
        (&["unpin", "secrets"], 0),
        (&["status"], 0),
        (&["status", "private"], 0),
        (&["diff", "private"], 2),
        (&["sync", "private"], 2),
        (&["render", "private"], 2),
    ] {
        seen.push_str(&run_everywhere(&config, args, expected, direct).await);
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

    // A rotated value: planned (a pull request's view; exit 2, as `private` cannot be fetched),
    // then applied by a running serve.
    repo.write("app/sealed.yaml", &sealed(SOPS_NEXT));
    let rotated = repo.commit("rotate");
    for args in [
        &["plan", "--base", &first, "--head", &rotated][..],
        &["plan", "--base", &first, "--head", &rotated, "--markdown"],
        &["plan", "--base", &first, "--head", &rotated, "--offline"],
    ] {
        seen.push_str(&run_everywhere(&config, args, 2, direct).await);
    }

    // Tokens: the secret is printed once, by `create`, and then nowhere else.
    let created = driftless(
        &config,
        &["token", "create", "canary-admin", "--role", "admin"],
        "text",
        direct,
    )
    .await;
    assert!(created.status.success(), "token create: {created:?}");
    let api_token = String::from_utf8(created.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert!(!api_token.is_empty(), "token create prints the token");
    let credentials = vec![api_token.clone()];
    let listed = driftless(&config, &["token", "list", "-o", "json"], "json", direct).await;
    assert!(listed.status.success(), "token list: {listed:?}");
    assert_clean_of(
        "token list",
        &[listed.stdout, listed.stderr].concat(),
        &credentials,
    );

    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--config",
        ])
        .arg(&config)
        .env("DRIFTLESS_LOG", "trace")
        .env("DRIFTLESS_LOG_SPANS", "1")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("start serve");
    let base = listening::api_url(&log_path, &mut serve);
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let live = env.api::<Secret>().get("sealed").await.expect("get");
        if live.data.unwrap_or_default()["password"].0 == SOPS_NEXT.as_bytes() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not apply the rotated value:\n{}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while request(&base, "GET", "/healthz", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "serve --listen did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Everything a browser or a scraper reaches, while an event stream is open.
    let opened = open_stream(&base, &api_token).await;
    let (requests_done, done) = tokio::sync::oneshot::channel();
    let stream = tokio::spawn(async move { read_stream(opened, "secrets", done).await });
    let mut answers = String::new();
    let admin = Some(api_token.as_str());
    for (method, path, token, expected) in [
        ("POST", "/api/v1/applications/secrets/sync", admin, 200),
        ("POST", "/api/v1/applications/secrets/refresh", admin, 202),
        ("GET", "/api/v1/applications", admin, 200),
        ("GET", "/api/v1/applications/secrets", admin, 200),
        ("GET", "/api/v1/applications/secrets/diff", admin, 200),
        ("GET", "/api/v1/applications/secrets/tree", admin, 200),
        ("GET", "/api/v1/applications/secrets/history", admin, 200),
        ("GET", "/api/v1/applications/secrets/events", admin, 200),
        ("GET", "/api/v1/applications/private", admin, 200),
        ("GET", "/api/v1/applications/private/diff", admin, 502),
        ("GET", "/api/v1/whoami", admin, 200),
        ("GET", "/api/v1/stats", admin, 200),
        ("GET", "/api/openapi.json", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/healthz", None, 200),
        ("GET", "/readyz", None, 200),
        ("GET", "/ui/", None, 200),
        ("GET", "/ui/app.js", None, 200),
        ("GET", "/ui/style.css", None, 200),
    ] {
        let (status, body) = request(&base, method, path, token).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
        assert_clean_of(&format!("{method} {path}"), body.as_bytes(), &credentials);
        answers.push_str(&body);
    }
    let _ = requests_done.send(());
    let streamed = stream.await.expect("the stream task");
    assert!(
        streamed.contains("secrets"),
        "the stream told the sync and refresh:\n{streamed}"
    );
    assert_clean_of("the event stream", streamed.as_bytes(), &credentials);
    assert!(
        answers.contains("\"secrets\"") && answers.contains("driftless_"),
        "the answers are the real ones (applications, metrics)"
    );

    // Commands through the running serve: its socket, and --server with the token.
    let server = Via::Server(&base, &api_token);
    for via in [Via::Socket, server] {
        for (args, expected) in [
            (&["status", "secrets"][..], 0),
            (&["diff", "secrets"], 0),
            (&["sync", "secrets"], 0),
            (&["refresh", "secrets"], 0),
            (&["status", "private"], 0),
        ] {
            let printed = run_everywhere(&config, args, expected, via).await;
            assert_clean_of("a command through serve", printed.as_bytes(), &credentials);
        }
    }
    let revoked = driftless(&config, &["token", "revoke", "canary-admin"], "text", direct).await;
    assert!(revoked.status.success(), "token revoke: {revoked:?}");

    let _ = std::process::Command::new("kill")
        .arg(serve.id().to_string())
        .status();
    let exit = serve.wait().expect("serve exits");
    assert!(exit.success(), "serve stopped cleanly on SIGTERM: {exit:?}");
    let log = std::fs::read(&log_path).expect("serve log");
    assert!(
        String::from_utf8_lossy(&log).contains("\"level\""),
        "serve logged JSON at trace level"
    );
    assert_clean_of("serve's log", &log, &credentials);

    let deliveries = notified.lock().expect("lock").clone();
    assert!(
        deliveries.iter().any(|(path, _, _)| path == "/hook")
            && deliveries.iter().any(|(path, _, _)| path.ends_with(SLACK)),
        "the webhook and Slack were notified: {:?}",
        deliveries.iter().map(|(path, _, _)| path).collect::<Vec<_>>()
    );
    for (path, headers, body) in &deliveries {
        // The Slack URL's own token is the address it was sent to; nothing else carries it.
        let headers = format!("{headers:?}");
        assert_clean_of(
            &format!("a notification's headers to {path}"),
            headers.as_bytes(),
            &credentials,
        );
        assert_clean_of(&format!("a notification to {path}"), body, &credentials);
    }

    let (files, open) = files_below(&dir.path().join("state"));
    assert_eq!(
        open,
        Vec::<String>::new(),
        "only driftless's user can read the data directory"
    );
    assert!(
        files.iter().any(|(path, _)| path.ends_with("driftless.db")),
        "the store is among the files searched"
    );
    assert!(
        files.iter().any(|(path, _)| path.ends_with("config")),
        "a mirror (its config) is among the files searched"
    );
    for (path, contents) in files {
        assert_clean_of(&format!("{}", path.display()), &contents, &credentials);
    }
}
