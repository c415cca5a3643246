//! Real chart repositories for tests: charts packaged and indexed by real Helm (the shim's
//! `helm package` and `helm repo index`), served over HTTP on loopback, and pushed with
//! `helm push` to a real OCI registry (Debian's `docker-registry`, the CNCF distribution
//! registry) on loopback.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

fn run_helm(args: &[&str]) -> String {
    let helm = crate::helm::helm_binary();
    let output = std::process::Command::new(&helm)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", helm.display()));
    assert!(
        output.status.success(),
        "helm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `helm package CHART_DIR -d DESTINATION`; the archive's path.
pub fn package(chart_dir: &Path, destination: &Path) -> PathBuf {
    let out = run_helm(&[
        "package",
        &chart_dir.display().to_string(),
        "-d",
        &destination.display().to_string(),
    ]);
    let path = out
        .trim()
        .rsplit_once(": ")
        .map(|(_, path)| PathBuf::from(path))
        .expect("helm package names the archive");
    assert!(path.is_file(), "{} was not written", path.display());
    path
}

/// `helm repo index DIR` (archive URLs relative to the index, as most repositories write them).
pub fn repo_index(dir: &Path) {
    run_helm(&["repo", "index", &dir.display().to_string()]);
}

/// `helm push ARCHIVE oci://…` to a plain-HTTP registry on loopback.
pub fn push(archive: &Path, remote: &str) {
    run_helm(&["push", &archive.display().to_string(), remote, "--plain-http"]);
}

/// One request a [`ChartRepositoryServer`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    /// Whether it carried an `Authorization` header.
    pub authorized: bool,
}

struct ServerState {
    root: PathBuf,
    basic_auth: Option<String>,
    redirects: Mutex<HashMap<String, String>>,
    seen: Mutex<Vec<Seen>>,
}

/// Static files of a directory over HTTP on a loopback port, optionally behind basic auth,
/// recording every request; stopped when dropped.
pub struct ChartRepositoryServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl ChartRepositoryServer {
    pub async fn start(root: &Path, credentials: Option<(&str, &str)>) -> Self {
        let state = Arc::new(ServerState {
            root: root.to_owned(),
            basic_auth: credentials.map(|(user, password)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                )
            }),
            redirects: Mutex::default(),
            seen: Mutex::default(),
        });
        let (addr, task) = crate::git::serve_on_loopback(Arc::clone(&state), serve).await;
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT/PATH`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Answers `path` with a 302 to `location`.
    pub fn redirect(&self, path: &str, location: &str) {
        self.state
            .redirects
            .lock()
            .expect("redirects")
            .insert(format!("/{}", path.trim_start_matches('/')), location.to_owned());
    }

    /// Every request so far.
    #[must_use]
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }
}

impl Drop for ChartRepositoryServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .expect("a plain response is valid")
}

async fn serve(
    state: Arc<ServerState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let given = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state.seen.lock().expect("seen").push(Seen {
        path: path.clone(),
        authorized: given.is_some(),
    });
    if let Some(expected) = &state.basic_auth
        && given.as_deref() != Some(expected.as_str())
    {
        let mut response = respond(StatusCode::UNAUTHORIZED, "unauthorized");
        response.headers_mut().insert(
            "WWW-Authenticate",
            hyper::header::HeaderValue::from_static("Basic realm=\"charts\""),
        );
        return Ok(response);
    }
    if let Some(location) = state.redirects.lock().expect("redirects").get(&path) {
        let mut response = respond(StatusCode::FOUND, "");
        if let Ok(value) = hyper::header::HeaderValue::from_str(location) {
            response.headers_mut().insert(hyper::header::LOCATION, value);
        }
        return Ok(response);
    }
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return Ok(respond(StatusCode::BAD_REQUEST, "bad path"));
    }
    Ok(match tokio::fs::read(state.root.join(relative)).await {
        Ok(contents) => respond(StatusCode::OK, contents),
        Err(_) => respond(StatusCode::NOT_FOUND, "not found"),
    })
}

/// A real OCI registry (`docker-registry serve`) on a loopback port, its storage in a temporary
/// directory; stopped when dropped.
pub struct Registry {
    addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Panics, naming the install command, when `docker-registry` is missing.
    #[must_use]
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("registry directory");
        // Port 0: the registry binds a free port itself and logs which (at level info), so no
        // other process can take it in between.
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write the registry's configuration");
        let log = dir.path().join("registry.log");
        let mut child = std::process::Command::new("docker-registry")
            .args(["serve", &config.display().to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the registry's log"))
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start docker-registry ({err}); install it with scripts/testenv (apt-get install docker-registry)")
            });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(|line| {
                let (_, rest) = line.split_once("msg=\"listening on ")?;
                rest.split('"').next()?.parse::<SocketAddr>().ok()
            }) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("docker-registry exited ({status}):\n{text}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "docker-registry did not say where it listens within 20 s:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Self {
            addr,
            child,
            _dir: dir,
        }
    }

    /// `oci://127.0.0.1:PORT/PATH`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("oci://{}/{}", self.addr, path.trim_start_matches('/'))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
