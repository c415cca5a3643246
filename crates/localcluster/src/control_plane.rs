use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use std::{fs, io};

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::binaries::{Binaries, BinariesError};
use crate::certs;
use crate::supervised::Supervised;

/// How long kube-apiserver may take to answer `/readyz` with 200. It is ~2 s on an idle 2-core
/// machine; the margin is for a cold start while the machine compiles.
const READY_TIMEOUT: Duration = Duration::from_mins(2);

/// How many times [`ControlPlane::start`] starts over when a port was taken.
const PORT_ATTEMPTS: usize = 5;

/// What etcd and kube-apiserver log when they cannot bind their port (Go's `EADDRINUSE` text).
const ADDRESS_IN_USE: &str = "address already in use";

/// The admin token in the API server's token file. Only ever reachable on loopback, and the
/// directory holding it is private to this process.
const ADMIN_TOKEN_USER: &str = "driftless-admin";

/// Returned by [`ControlPlane::start`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    MissingBinary(#[from] BinariesError),
    #[error("failed to {action}")]
    Io {
        action: String,
        #[source]
        source: io::Error,
    },
    #[error("failed to generate the control plane's certificates")]
    Certificates(#[from] rcgen::Error),
    #[error("{name} exited with {status} while the control plane started; its last log lines:\n{log_tail}")]
    Exited {
        name: &'static str,
        status: ExitStatus,
        log_tail: String,
    },
    #[error(
        "{name} was not ready after {waited:?} (last answer: {last_answer}); its last log lines:\n{log_tail}"
    )]
    NotReady {
        name: &'static str,
        waited: Duration,
        last_answer: String,
        log_tail: String,
    },
    #[error("failed to build a client for the control plane")]
    Client(#[source] kube::Error),
}

fn io_error(action: impl Into<String>) -> impl FnOnce(io::Error) -> StartError {
    let action = action.into();
    move |source| StartError::Io { action, source }
}

/// A running etcd + kube-apiserver + kube-controller-manager on loopback ports, in a directory of
/// its own. Dropping it stops every process and removes the directory (kept when
/// `DRIFTLESS_TESTENV_KEEP=1`, for reading the logs).
pub struct ControlPlane {
    dir: PathBuf,
    server_url: String,
    kubeconfig_path: PathBuf,
    /// Stopped in reverse start order: controller-manager, API server, etcd.
    processes: Vec<Supervised>,
    /// How kube-apiserver and kube-controller-manager were started, so an outage can be
    /// simulated and ended.
    api_server_command: (PathBuf, Vec<String>),
    controller_manager_command: (PathBuf, Vec<String>),
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("dir", &self.dir)
            .field("kubeconfig_path", &self.kubeconfig_path)
            .field(
                "processes",
                &self.processes.iter().map(Supervised::name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts a control plane and waits until kube-apiserver reports ready. When etcd or
    /// kube-apiserver finds its port taken (see [`free_port`]), it starts again on other ports, up
    /// to [`PORT_ATTEMPTS`] times.
    pub async fn start() -> Result<Self, StartError> {
        Self::start_with_ports(free_port).await
    }

    /// [`ControlPlane::start`] with ports from `pick` (tests give it one that is taken).
    async fn start_with_ports(mut pick: impl FnMut() -> Result<u16, StartError>) -> Result<Self, StartError> {
        let mut attempt = 1;
        loop {
            match Self::start_once(&mut pick).await {
                Err(StartError::Exited { name, log_tail, .. })
                    if log_tail.contains(ADDRESS_IN_USE) && attempt < PORT_ATTEMPTS =>
                {
                    tracing::warn!(
                        process = name,
                        attempt,
                        "port taken by another process; starting again on others"
                    );
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(pick: &mut impl FnMut() -> Result<u16, StartError>) -> Result<Self, StartError> {
        let binaries = Binaries::locate()?;
        let root = state_root();
        fs::create_dir_all(&root).map_err(io_error(format!("create {}", root.display())))?;
        remove_abandoned_dirs(&root);
        let dir = unique_dir(&root)?;

        let mut control_plane = Self {
            dir: dir.clone(),
            server_url: String::new(),
            kubeconfig_path: dir.join("kubeconfig"),
            processes: Vec::new(),
            api_server_command: (binaries.kube_apiserver.clone(), Vec::new()),
            controller_manager_command: (binaries.kube_controller_manager.clone(), Vec::new()),
        };
        // From here on, an early return drops `control_plane`, which stops what was started.
        let (etcd_client, etcd_peer, apiserver_port) = (pick()?, pick()?, pick()?);
        control_plane.server_url = format!("https://127.0.0.1:{apiserver_port}");
        control_plane.write_files()?;

        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        control_plane.spawn(
            "etcd",
            &binaries.etcd,
            &[
                "--name=driftless-testenv".into(),
                format!("--data-dir={}", dir.join("etcd").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
                format!("--initial-cluster=driftless-testenv=http://127.0.0.1:{etcd_peer}"),
                "--log-level=warn".into(),
                "--logger=zap".into(),
            ],
        )?;
        // Serving before kube-apiserver starts: an etcd that lost its port exits now, and a new
        // attempt then has only that to clean up.
        control_plane.wait_for_etcd(etcd_client).await?;
        control_plane.controller_manager_command.1 = vec![
            format!("--kubeconfig={}", control_plane.kubeconfig_path.display()),
            format!(
                "--service-account-private-key-file={}",
                dir.join("sa.key").display()
            ),
            format!("--root-ca-file={}", dir.join("ca.crt").display()),
            "--leader-elect=false".into(),
            // No ports to collide with other control planes: nothing scrapes it.
            "--port=0".into(),
            "--secure-port=0".into(),
            "--use-service-account-credentials=false".into(),
            "--v=1".into(),
        ];
        control_plane.api_server_command.1 = apiserver_args(&dir, &etcd_url, apiserver_port);
        // Starts kube-controller-manager once the API server is ready.
        control_plane.start_api_server().await?;
        tracing::info!(server = %control_plane.server_url, dir = %dir.display(), "local control plane ready");
        Ok(control_plane)
    }

    /// The API server's URL, `https://127.0.0.1:<port>`.
    #[must_use]
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// A kubeconfig file with an admin token and the control plane's CA; usable by kubectl.
    #[must_use]
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// Where the processes keep their data and logs (`<name>.log`).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The client configuration, read from [`Self::kubeconfig_path`] the way a user's would be.
    pub async fn kube_config(&self) -> Result<kube::Config, kube::Error> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig_path).map_err(kube::Error::from)?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(kube::Error::from)
    }

    /// A new client. A client belongs to the tokio runtime it was made in, so each test makes its
    /// own rather than sharing one across test runtimes.
    pub async fn client(&self) -> Result<kube::Client, kube::Error> {
        kube::Client::try_from(self.kube_config().await?)
    }

    /// Stops kube-apiserver (etcd and its data stay), for tests of what clients do in an outage.
    /// kube-controller-manager goes too: it exits on its own once the API server is gone.
    pub fn stop_api_server(&mut self) {
        for name in ["kube-controller-manager", "kube-apiserver"] {
            if let Some(index) = self.processes.iter().position(|p| p.name() == name) {
                self.processes.remove(index).stop(Duration::from_secs(12));
            }
        }
    }

    /// Starts kube-apiserver on its old port (after [`Self::stop_api_server`]), waits until it is
    /// ready, then starts kube-controller-manager. Clients keep the old URL, so there is no other
    /// port to try: should another process have taken it meanwhile, this fails
    /// ([`StartError::Exited`], "address already in use").
    pub async fn start_api_server(&mut self) -> Result<(), StartError> {
        let (program, args) = self.api_server_command.clone();
        self.spawn("kube-apiserver", &program, &args)?;
        let client = self.client().await.map_err(StartError::Client)?;
        self.wait_until_ready(&client).await?;
        if self
            .processes
            .iter()
            .all(|p| p.name() != "kube-controller-manager")
        {
            self.start_controller_manager()?;
        }
        Ok(())
    }

    fn start_controller_manager(&mut self) -> Result<(), StartError> {
        let (program, args) = self.controller_manager_command.clone();
        self.spawn("kube-controller-manager", &program, &args)
    }

    /// `Some((process, status))` for the first control-plane process that has exited.
    pub fn exited_process(&mut self) -> Option<(&'static str, ExitStatus)> {
        self.processes
            .iter_mut()
            .find_map(|process| process.exit_status().map(|status| (process.name(), status)))
    }

    fn spawn(&mut self, name: &'static str, program: &Path, args: &[String]) -> Result<(), StartError> {
        let log = self.dir.join(format!("{name}.log"));
        let process = Supervised::spawn(name, program, args, log)
            .map_err(io_error(format!("start {}", program.display())))?;
        self.processes.push(process);
        Ok(())
    }

    fn write_files(&self) -> Result<(), StartError> {
        let certs = certs::generate()?;
        let token = random_token()?;
        let files = [
            ("ca.crt", certs.ca.clone()),
            ("apiserver.crt", certs.serving_cert),
            ("apiserver.key", certs.serving_key),
            ("sa.key", certs.service_account_key),
            ("sa.pub", certs.service_account_public),
            (
                "tokens.csv",
                format!("{token},{ADMIN_TOKEN_USER},{ADMIN_TOKEN_USER},\"system:masters\"\n"),
            ),
            ("kubeconfig", kubeconfig_yaml(&self.server_url, &certs.ca, &token)),
        ];
        for (name, contents) in files {
            let path = self.dir.join(name);
            fs::write(&path, contents).map_err(io_error(format!("write {}", path.display())))?;
        }
        Ok(())
    }

    /// Ready means `/readyz` answers `ok` *and* the `default` namespace exists: the API server's
    /// bootstrap controller creates it a moment after `/readyz` first passes, and clients that
    /// write into `default` straight away would otherwise race it.
    async fn wait_until_ready(&mut self, client: &kube::Client) -> Result<(), StartError> {
        let started = Instant::now();
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
        loop {
            self.check_running()?;
            let request = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a static request is valid");
            let last_answer = match client.request_text(request).await {
                Ok(body) if body.trim() == "ok" => match namespaces.get_opt("default").await {
                    Ok(Some(_)) => return Ok(()),
                    Ok(None) => "ready, but the default namespace does not exist yet".to_owned(),
                    Err(err) => err.to_string(),
                },
                Ok(body) => body,
                Err(err) => err.to_string(),
            };
            if started.elapsed() > READY_TIMEOUT {
                let log_tail = self.log_tail("kube-apiserver");
                return Err(StartError::NotReady {
                    name: "kube-apiserver",
                    waited: started.elapsed(),
                    last_answer,
                    log_tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Until etcd answers its health check on `port` (and is still running: an answer from a
    /// process that holds a port ours could not bind must not count).
    async fn wait_for_etcd(&mut self, port: u16) -> Result<(), StartError> {
        let started = Instant::now();
        loop {
            let healthy = etcd_health(port).await;
            self.check_running()?;
            if healthy {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(StartError::NotReady {
                    name: "etcd",
                    waited: started.elapsed(),
                    last_answer: "no healthy answer to GET /health".to_owned(),
                    log_tail: self.log_tail("etcd"),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// [`StartError::Exited`] for the first process that has exited, with its last log lines.
    fn check_running(&mut self) -> Result<(), StartError> {
        match self.exited_process() {
            Some((name, status)) => Err(StartError::Exited {
                name,
                status,
                log_tail: self.log_tail(name),
            }),
            None => Ok(()),
        }
    }

    fn log_tail(&self, name: &str) -> String {
        self.processes
            .iter()
            .find(|process| process.name() == name)
            .map(|process| process.log_tail(30))
            .unwrap_or_default()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            process.stop(Duration::from_secs(12));
        }
        if std::env::var_os("DRIFTLESS_TESTENV_KEEP").is_some_and(|keep| keep == "1") {
            eprintln!("driftless-localcluster: keeping {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn apiserver_args(dir: &Path, etcd_url: &str, port: u16) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        format!("--etcd-servers={etcd_url}"),
        "--bind-address=127.0.0.1".into(),
        "--advertise-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        // v1.20 still serves plain HTTP on 8080 by default; two control planes would collide there.
        "--insecure-port=0".into(),
        format!("--tls-cert-file={}", file("apiserver.crt")),
        format!("--tls-private-key-file={}", file("apiserver.key")),
        format!("--token-auth-file={}", file("tokens.csv")),
        "--authorization-mode=RBAC".into(),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        format!("--service-account-key-file={}", file("sa.pub")),
        format!("--service-account-signing-key-file={}", file("sa.key")),
        // An allocation range for Service IPs only; no traffic ever goes there.
        "--service-cluster-ip-range=10.96.0.0/16".into(),
        "--allow-privileged=true".into(),
        // Pods never run here, and without this every Pod created right after its namespace
        // would race the controller-manager creating the namespace's default ServiceAccount.
        "--disable-admission-plugins=ServiceAccount".into(),
        "--profiling=false".into(),
        "--v=1".into(),
    ]
}

fn kubeconfig_yaml(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: driftless-local
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: driftless-admin
  user:
    token: {token}
contexts:
- name: driftless-local
  context:
    cluster: driftless-local
    user: driftless-admin
current-context: driftless-local
",
        ca = base64::engine::general_purpose::STANDARD.encode(ca_pem)
    )
}

/// Whether etcd on `port` says it is healthy (`GET /health`, plain HTTP/1.0, a second at most).
async fn etcd_health(port: u16) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"GET /health HTTP/1.0\r\n\r\n").await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, io::Error>(answer)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), ask).await,
        Ok(Ok(answer)) if String::from_utf8_lossy(&answer).contains("\"health\":\"true\"")
    )
}

/// 32 random bytes from the kernel, hex-encoded.
fn random_token() -> Result<String, StartError> {
    use std::io::Read as _;
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut urandom| urandom.read_exact(&mut bytes))
        .map_err(io_error("read /dev/urandom"))?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    }))
}

/// A port the kernel just handed out on 127.0.0.1, released for the server to bind. Another
/// process could take it in between, which is why [`ControlPlane::start`] tries again: neither
/// server can bind port 0 itself — etcd dials its own advertised client URL, so it must know the
/// port beforehand, and kube-apiserver's `--secure-port=0` means "serve nothing".
fn free_port() -> Result<u16, StartError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(io_error("find a free loopback port"))
}

/// tmpfs when there is one: etcd fsyncs on every write, which is free in memory and slow on disk.
/// The directory and variable names predate this crate (it was part of `driftless-testenv`); they
/// stay so documented debugging steps and `remove_abandoned_dirs` keep finding earlier directories.
fn state_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("DRIFTLESS_TESTENV_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join("driftless-testenv")
}

/// Directories are named `<pid>-<n>`; one whose process is gone was left by a test binary that
/// could not clean up (killed, aborted). Its processes are already stopped by their watchdogs.
fn remove_abandoned_dirs(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

fn unique_dir(root: &Path) -> Result<PathBuf, StartError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = root.join(format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir(&dir).map_err(io_error(format!("create {}", dir.display())))?;
    restrict_to_owner(&dir)?;
    Ok(dir)
}

/// The directory holds the admin token and private keys.
fn restrict_to_owner(dir: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(io_error(format!("chmod {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real control plane whose first port is held by someone else: etcd cannot bind it and
    /// exits, and the start goes on with three other ports.
    #[tokio::test]
    async fn a_taken_port_is_given_up_for_others() {
        let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("address").port();
        let mut picked = 0;
        let control_plane = ControlPlane::start_with_ports(|| {
            picked += 1;
            if picked == 1 { Ok(port) } else { free_port() }
        })
        .await
        .expect("started on other ports");
        assert_eq!(picked, 6, "a second attempt, with three new ports");
        assert!(
            !control_plane.server_url().ends_with(&format!(":{port}")),
            "{}",
            control_plane.server_url()
        );
        let client = control_plane.client().await.expect("client");
        let version = client.apiserver_version().await.expect("the API server answers");
        assert_eq!(version.git_version, crate::K8S_VERSION);
        drop(taken);
    }
}
