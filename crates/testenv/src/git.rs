//! Real Git repositories for tests, served over `file://`, `git daemon`, smart HTTP
//! (`git http-backend` behind a loopback server, optionally with basic auth) and ssh (a real
//! `sshd` on loopback with generated keys).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tempfile::TempDir;

use crate::inetd::Inetd;

/// Runs git in `dir` with a fixed identity and no user configuration; panics with git's output on
/// failure (test fixtures must not fail silently).
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_with_env(dir, args, &[])
}

/// Like [`git`], with more environment: `GNUPGHOME` for signing, `GIT_COMMITTER_DATE`, …
pub fn git_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Author")
        .env("GIT_COMMITTER_EMAIL", "author@example.com")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("git is not installed ({err}); install it with `apt-get install git`"));
    assert!(
        output.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A bare repository `origin.git` and a work tree that commits and pushes to it.
pub struct TestRepo {
    dir: TempDir,
}

impl TestRepo {
    /// An empty repository whose default branch is `main`.
    #[must_use]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        git(
            dir.path(),
            &["init", "--quiet", "--bare", "--initial-branch=main", "origin.git"],
        );
        git(dir.path(), &["init", "--quiet", "--initial-branch=main", "work"]);
        git(
            &dir.path().join("work"),
            &["remote", "add", "origin", "../origin.git"],
        );
        Self { dir }
    }

    /// The directory that holds `origin.git` (what servers export).
    #[must_use]
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    #[must_use]
    pub fn work_tree(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    #[must_use]
    pub fn file_url(&self) -> String {
        format!("file://{}/origin.git", self.dir.path().display())
    }

    /// Writes a file in the work tree (creating directories).
    pub fn write(&self, path: &str, contents: &str) -> &Self {
        let target = self.work_tree().join(path);
        std::fs::create_dir_all(target.parent().expect("a file has a parent")).expect("create directories");
        std::fs::write(target, contents).expect("write file");
        self
    }

    /// Creates a symlink in the work tree.
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        let link = self.work_tree().join(path);
        std::fs::create_dir_all(link.parent().expect("a file has a parent")).expect("create directories");
        std::os::unix::fs::symlink(target, link).expect("create symlink");
        self
    }

    pub fn remove(&self, path: &str) -> &Self {
        git(&self.work_tree(), &["rm", "-r", "--quiet", path]);
        self
    }

    /// Commits everything and pushes the current branch; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.commit_with(message, &[], &[])
    }

    /// Like [`TestRepo::commit`], with `git -c` settings (`commit.gpgSign=true`, `gpg.format=ssh`,
    /// `user.signingkey=…` to sign) and environment (`GNUPGHOME`, `GIT_COMMITTER_DATE`).
    pub fn commit_with(&self, message: &str, config: &[&str], env: &[(&str, &str)]) -> String {
        let work = self.work_tree();
        git(&work, &["add", "--all"]);
        let mut args: Vec<&str> = config.iter().flat_map(|setting| ["-c", setting]).collect();
        args.extend(["commit", "--quiet", "--allow-empty", "-m", message]);
        git_with_env(&work, &args, env);
        let branch = git(&work, &["rev-parse", "--abbrev-ref", "HEAD"]);
        git(&work, &["push", "--quiet", "origin", &branch]);
        git(&work, &["rev-parse", "HEAD"])
    }

    /// Switches the work tree to `branch`, creating it from the current commit if needed.
    pub fn checkout(&self, branch: &str) {
        let work = self.work_tree();
        if git(&work, &["branch", "--list", branch]).is_empty() {
            git(&work, &["checkout", "--quiet", "-b", branch]);
        } else {
            git(&work, &["checkout", "--quiet", branch]);
        }
    }

    pub fn tag(&self, name: &str) {
        git(&self.work_tree(), &["tag", name]);
        git(&self.work_tree(), &["push", "--quiet", "origin", name]);
    }

    /// Commits a tree built object by object (`git mktree`), so it can hold what no work tree can:
    /// entries named `..`, `.git`, `.GIT`, `a\b`. Each entry is its path as components, a mode
    /// (`100644` file, `120000` symlink whose contents are the target) and contents. The commit
    /// goes straight into `origin.git` on `branch`, after its current tip if any; the work tree is
    /// not touched. Returns the commit id.
    pub fn commit_raw_tree(&self, branch: &str, entries: &[RawEntry<'_>]) -> String {
        let origin = self.root().join("origin.git");
        let tree = raw_tree(&origin, entries);
        let parent = Command::new("git")
            .arg("-C")
            .arg(&origin)
            .args([
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        let mut args = vec!["commit-tree", tree.as_str(), "-m", "raw tree"];
        if let Some(parent) = &parent {
            args.extend(["-p", parent.as_str()]);
        }
        let commit = git(&origin, &args);
        git(&origin, &["update-ref", &format!("refs/heads/{branch}"), &commit]);
        commit
    }

    /// Rewrites `branch` on the remote to `commit` (a force-push).
    pub fn force_push(&self, commit: &str, branch: &str) {
        git(
            &self.work_tree(),
            &[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("{commit}:refs/heads/{branch}"),
            ],
        );
    }
}

/// One entry of [`TestRepo::commit_raw_tree`]: path components (any bytes git stores), mode and
/// contents (a symlink's target for mode `120000`).
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    pub components: &'a [&'a str],
    pub mode: &'a str,
    pub contents: &'a str,
}

impl<'a> RawEntry<'a> {
    #[must_use]
    pub fn file(components: &'a [&'a str], contents: &'a str) -> Self {
        Self {
            components,
            mode: "100644",
            contents,
        }
    }

    #[must_use]
    pub fn symlink(components: &'a [&'a str], target: &'a str) -> Self {
        Self {
            components,
            mode: "120000",
            contents: target,
        }
    }
}

/// Runs `git ARGS` in `git_dir` with `input` on its standard input; its output, trimmed.
fn git_with_input(git_dir: &Path, args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(git_dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot run git {args:?}: {err}"));
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .expect("write to git");
    let output = child.wait_with_output().expect("git");
    assert!(
        output.status.success(),
        "git {args:?} failed for {input:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Writes the blobs and trees of `entries` into the repository at `git_dir`; the root tree's id.
fn raw_tree(git_dir: &Path, entries: &[RawEntry<'_>]) -> String {
    // Children grouped by their first component, in first-seen order.
    let mut groups: Vec<(&str, Vec<RawEntry<'_>>)> = Vec::new();
    let mut lines = String::new();
    for entry in entries {
        let (first, rest) = entry.components.split_first().expect("at least one component");
        let child = RawEntry {
            components: rest,
            ..*entry
        };
        if rest.is_empty() {
            let blob = git_with_input(git_dir, &["hash-object", "-w", "--stdin"], entry.contents);
            lines.push_str(&format!("{} blob {blob}\t{first}\n", entry.mode));
        } else if let Some((_, children)) = groups.iter_mut().find(|(name, _)| name == first) {
            children.push(child);
        } else {
            groups.push((first, vec![child]));
        }
    }
    for (name, children) in &groups {
        let tree = raw_tree(git_dir, children);
        lines.push_str(&format!("040000 tree {tree}\t{name}\n"));
    }
    git_with_input(git_dir, &["mktree"], &lines)
}

impl Default for TestRepo {
    fn default() -> Self {
        Self::new()
    }
}

/// `git daemon` exporting a directory on a loopback port; stopped when dropped. It runs in inetd
/// mode, one process per connection on a port [`Inetd`] bound: `git daemon` cannot listen on
/// port 0 and say which port it got.
pub struct GitDaemon {
    inetd: Inetd,
}

impl GitDaemon {
    /// Serves every repository below `root` as `git://127.0.0.1:<port>/<name>`.
    #[must_use]
    pub fn start(root: &Path) -> Self {
        let root = root.to_owned();
        let inetd = Inetd::start(move || {
            let mut command = Command::new("git");
            command
                .args(["daemon", "--inetd", "--export-all"])
                .arg(format!("--base-path={}", root.display()))
                .arg(&root)
                .stderr(Stdio::null());
            command
        });
        // Fails here, not at the first fetch, when git is missing.
        let version = Command::new("git").arg("version").output();
        assert!(
            version.is_ok_and(|output| output.status.success()),
            "cannot run git; install it with `apt-get install git`"
        );
        Self { inetd }
    }

    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("git://127.0.0.1:{}/{name}", self.inetd.port())
    }
}

/// `sshd` on a loopback port that lets one generated client key in (as the current user) and
/// serves the repositories below `root` as `ssh://<user>@127.0.0.1:<port>/<root>/<name>`;
/// stopped when dropped. It runs in inetd mode (`sshd -i`), one process per connection on a port
/// [`Inetd`] bound: sshd cannot listen on port 0 and say which port it got.
pub struct SshServer {
    inetd: Inetd,
    dir: TempDir,
    root: PathBuf,
    user: String,
}

const SSHD: &str = "/usr/sbin/sshd";

impl SshServer {
    #[must_use]
    pub fn start(root: &Path) -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing; install it with `apt-get install openssh-server` (scripts/testenv does)"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        for key in ["host_key", "client_key"] {
            let path = dir.path().join(key);
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", key, "-f"])
                .arg(&path)
                .stdin(Stdio::null())
                .status()
                .unwrap_or_else(|err| {
                    panic!("cannot run ssh-keygen ({err}); install it with `apt-get install openssh-client`")
                });
            assert!(status.success(), "ssh-keygen failed for {key}");
        }
        // `restrict` leaves only the command itself: no pty, no forwarding.
        let client_public = std::fs::read_to_string(dir.path().join("client_key.pub")).expect("read key");
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("restrict {client_public}"),
        )
        .expect("write authorized_keys");
        // The privilege-separation directory sshd insists on when it runs as root.
        let _ = std::fs::create_dir_all("/run/sshd");
        let config = format!(
            "HostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nPubkeyAuthentication yes\nLogLevel VERBOSE\n",
            dir = dir.path().display()
        );
        std::fs::write(dir.path().join("sshd_config"), config).expect("write sshd_config");
        let (config, log) = (dir.path().join("sshd_config"), dir.path().join("sshd.log"));
        let inetd = Inetd::start(move || {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("sshd log");
            let mut command = Command::new(SSHD);
            command.args(["-i", "-e", "-f"]).arg(&config).stderr(log);
            command
        });
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id -un").stdout)
            .expect("user name")
            .trim()
            .to_owned();
        Self {
            inetd,
            dir,
            root: root.to_path_buf(),
            user,
        }
    }

    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}/{name}",
            self.user,
            self.inetd.port(),
            self.root.display()
        )
    }

    /// The private key the server accepts.
    #[must_use]
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts line for this server's host key.
    #[must_use]
    pub fn known_hosts(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("host key");
        let mut fields = public.split_whitespace();
        let (kind, key) = (fields.next().expect("key type"), fields.next().expect("key"));
        format!("[127.0.0.1]:{} {kind} {key}\n", self.inetd.port())
    }

    /// What sshd logged (for assertions and failure messages).
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

/// Serves HTTP/1 on a free loopback port, `handler` answering each request with `state`; the task
/// runs until aborted.
pub(crate) async fn serve_on_loopback<S, F, Fut>(
    state: Arc<S>,
    handler: F,
) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| handler(Arc::clone(&state), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// Smart HTTP: `git http-backend` run as CGI for each request, on a loopback port.
pub struct GitHttpServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

struct HttpState {
    root: PathBuf,
    backend: PathBuf,
    basic_auth: Option<String>,
    requests: Arc<AtomicUsize>,
}

impl GitHttpServer {
    /// Serves the repositories below `root`; with `credentials`, every request needs that basic auth.
    pub async fn start(root: &Path, credentials: Option<(&str, &str)>) -> Self {
        let exec_path = git(root, &["--exec-path"]);
        let backend = Path::new(&exec_path).join("git-http-backend");
        assert!(
            backend.exists(),
            "{} is missing; install git with `apt-get install git`",
            backend.display()
        );
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(HttpState {
            root: root.to_owned(),
            backend,
            basic_auth: credentials.map(|(user, password)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                )
            }),
            requests: Arc::clone(&requests),
        });
        let (addr, task) = serve_on_loopback(state, serve).await;
        Self { addr, requests, task }
    }

    #[must_use]
    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }

    /// Requests served so far (including refused ones).
    #[must_use]
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    state: Arc<HttpState>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(expected) = &state.basic_auth {
        let given = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Ok(Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("WWW-Authenticate", "Basic realm=\"git\"")
                .body(Full::new(Bytes::from_static(b"unauthorized")))
                .expect("a static response is valid"));
        }
    }
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, git_protocol, encoding) = (
        header("content-type"),
        header("git-protocol"),
        header("content-encoding"),
    );
    let body = request
        .into_body()
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let mut cgi = tokio::process::Command::new(&state.backend);
    cgi.env_clear()
        .env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GIT_PROTOCOL", git_protocol)
        .env("HTTP_CONTENT_ENCODING", encoding)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let Ok(mut child) = cgi.spawn() else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot run git-http-backend",
        ));
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&body).await;
    });
    let Ok(output) = child.wait_with_output().await else {
        return Ok(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "git-http-backend failed",
        ));
    };
    let _ = writer.await;
    Ok(cgi_response(&output.stdout))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("valid response")
}

/// Turns CGI output (headers, a blank line, the body) into a response.
fn cgi_response(output: &[u8]) -> Response<Full<Bytes>> {
    let split = output
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| output.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, separator)) = split else {
        return plain(StatusCode::BAD_GATEWAY, "malformed CGI output");
    };
    let headers = String::from_utf8_lossy(&output[..end]);
    let mut response = Response::builder();
    for line in headers.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
            response = response.status(code);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    response
        .body(Full::new(Bytes::copy_from_slice(&output[end + separator..])))
        .expect("valid response")
}
