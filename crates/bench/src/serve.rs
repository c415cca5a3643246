//! A `driftless serve` process under test, and its local API: HTTP over the Unix socket in the
//! data directory (see `driftless_server`). Answers are read as plain JSON rather than through
//! `driftless_server`'s types, so fields the engine adds later are simply absent with an older
//! binary, and the bench keeps working with either.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::metrics;

/// Milliseconds since the epoch: the clock the engine's timestamps use.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// One application's entry in `GET /api/v1/applications`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// "Synced", "OutOfSync" or "Unknown".
    pub sync: Option<String>,
    pub error: Option<String>,
    /// When the last reconcile finished (epoch ms); newer engines only.
    pub reconciled_at: Option<i64>,
    /// When drift was last detected (epoch ms), kept after healing; newer engines only.
    pub drift_detected_at: Option<i64>,
}

impl Status {
    fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let time = |key: &str| value.get(key).and_then(Value::as_i64);
        Self {
            sync: text("sync"),
            error: text("error"),
            reconciled_at: time("reconciled_at"),
            drift_detected_at: time("drift_detected_at"),
        }
    }

    pub fn synced(&self) -> bool {
        self.sync.as_deref() == Some("Synced")
    }
}

pub type Statuses = BTreeMap<String, Status>;

/// `GET /api/v1/stats`: work the engine has done since it started.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub renders: u64,
    pub fetches: u64,
}

impl std::ops::Sub for Stats {
    type Output = Self;

    fn sub(self, before: Self) -> Self {
        Self {
            renders: self.renders.saturating_sub(before.renders),
            fetches: self.fetches.saturating_sub(before.fetches),
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss_kib: u64,
    /// The high-water mark (VmHWM) since the process started.
    pub peak_kib: u64,
}

/// How long a pass over many applications took, and whether the engine said so (its
/// `reconciled_at`) or it was inferred from the API server going quiet.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    pub elapsed: Duration,
    pub exact: bool,
}

impl Pass {
    /// For the report: a marker when the figure is approximate.
    pub fn describe(self) -> String {
        let time = crate::measure::format_duration(self.elapsed);
        if self.exact {
            time
        } else {
            format!("≈ {time} (no reconciled_at: until the API server went quiet)")
        }
    }
}

/// A running `driftless serve`; killed if dropped before [`Serve::stop`].
pub struct Serve {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    /// `host:port` of its TCP listener (webhooks).
    pub listen: String,
    driftless: PathBuf,
    config: PathBuf,
}

impl Serve {
    /// Starts `driftless serve --config <config>` and waits until its API answers. Logs go to
    /// `serve.log` beside the configuration, for error messages.
    pub async fn start(driftless: &Path, config: &Path, data_dir: &Path) -> anyhow::Result<Self> {
        let log = config.with_file_name("serve.log");
        std::fs::write(
            data_dir.with_file_name(crate::workload::WEBHOOK_SECRET_FILE),
            crate::workload::WEBHOOK_SECRET,
        )?;
        // Port 0: serve binds a free port itself and prints which, so no other process can take
        // it in between.
        let out = config.with_file_name("serve.out");
        let child = Command::new(driftless)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            // Warnings only: per-reconcile logging at 1,000 applications would be measured too.
            .env("DRIFTLESS_LOG", "warn")
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("start {}", driftless.display()))?;
        let mut serve = Self {
            child,
            socket: data_dir.join("driftless.sock"),
            log,
            listen: String::new(),
            driftless: driftless.to_owned(),
            config: config.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_mins(1);
        while tokio::net::UnixStream::connect(&serve.socket).await.is_err() {
            if let Some(status) = serve.child.try_wait()? {
                anyhow::bail!("driftless serve exited with {status}:\n{}", serve.log_tail());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "driftless serve did not open {} within 60 s:\n{}",
                serve.socket.display(),
                serve.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        serve.listen = loop {
            let printed = std::fs::read_to_string(&out).unwrap_or_default();
            if let Some(url) = printed
                .lines()
                .find_map(|line| line.strip_prefix("API listening on http://"))
            {
                break url.trim().to_owned();
            }
            if let Some(status) = serve.child.try_wait()? {
                anyhow::bail!("driftless serve exited with {status}:\n{}", serve.log_tail());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "driftless serve did not say where it listens within 60 s:\n{}",
                serve.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(serve)
    }

    /// A new admin token for its TCP API, made as a user makes one (`driftless token create`).
    pub fn create_token(&self, name: &str) -> anyhow::Result<String> {
        let output = Command::new(&self.driftless)
            .args(["token", "create", name, "--role", "admin", "--config"])
            .arg(&self.config)
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "driftless token create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .with_context(|| format!("no {name} in /proc/{}/status", self.child.id()))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }

    /// One request with no body; the status code and the body. HTTP/1.0, so the server closes the
    /// connection after the answer and the body is everything up to the end of the stream.
    async fn request(&self, method: &str, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        self.request_with(method, path, "").await
    }

    /// A request with a JSON body.
    async fn request_with(&self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .with_context(|| format!("connect to {}", self.socket.display()))?;
        let content_type = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/json\r\n"
        };
        stream
            .write_all(
                format!(
                    "{method} {path} HTTP/1.0\r\nHost: localhost\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let end = response
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .context("an HTTP answer without a header end")?;
        let status = std::str::from_utf8(&response[..end])?
            .split_whitespace()
            .nth(1)
            .context("an HTTP answer without a status")?
            .parse()?;
        Ok((status, response.split_off(end + 4)))
    }

    /// `None` when the route does not exist (404): an engine older than the bench.
    async fn get_json(&self, path: &str) -> anyhow::Result<Option<Value>> {
        match self.request("GET", path).await? {
            (404, _) => Ok(None),
            (200, body) => Ok(Some(serde_json::from_slice(&body)?)),
            (status, body) => anyhow::bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body)),
        }
    }

    async fn applications(&self) -> anyhow::Result<serde_json::Map<String, Value>> {
        match self.get_json("/api/v1/applications").await? {
            Some(Value::Object(map)) => Ok(map),
            other => anyhow::bail!("GET /api/v1/applications answered {other:?}"),
        }
    }

    pub async fn statuses(&self) -> anyhow::Result<Statuses> {
        Ok(self
            .applications()
            .await?
            .iter()
            .map(|(name, value)| (name.clone(), Status::from_json(value)))
            .collect())
    }

    /// Whether this engine's statuses carry `field` at all (serialised even when null).
    pub async fn reports(&self, field: &str) -> anyhow::Result<bool> {
        Ok(self
            .applications()
            .await?
            .values()
            .next()
            .is_some_and(|status| status.get(field).is_some()))
    }

    pub async fn stats(&self) -> anyhow::Result<Option<Stats>> {
        let Some(stats) = self.get_json("/api/v1/stats").await? else {
            return Ok(None);
        };
        let count = |key: &str| stats.get(key).and_then(Value::as_u64);
        Ok(count("renders")
            .zip(count("fetches"))
            .map(|(renders, fetches)| Stats { renders, fetches }))
    }

    pub async fn refresh(&self, application: &str) -> anyhow::Result<()> {
        let path = format!("/api/v1/applications/{application}/refresh");
        match self.request("POST", &path).await? {
            (202, _) => Ok(()),
            (status, body) => anyhow::bail!("POST {path}: {status} {}", String::from_utf8_lossy(&body)),
        }
    }

    /// Asks for a reconcile of `names` — all the fleet's applications, one repository — in one
    /// request, as a push webhook does (they share one fetch); one request per application from
    /// an engine without `POST /api/v1/refresh`.
    pub async fn refresh_all(&self, names: &[String]) -> anyhow::Result<()> {
        match self.request_with("POST", "/api/v1/refresh", "{}").await? {
            (200, _) => return Ok(()),
            (404 | 405, _) => {}
            (status, body) => anyhow::bail!(
                "POST /api/v1/refresh: {status} {}",
                String::from_utf8_lossy(&body)
            ),
        }
        for name in names {
            self.refresh(name).await?;
        }
        Ok(())
    }

    /// Polls the statuses every `poll` until `done` holds; fails after `limit` with what was last
    /// seen and serve's log.
    pub async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        poll: Duration,
        mut done: impl FnMut(&Statuses) -> bool,
    ) -> anyhow::Result<Statuses> {
        let deadline = Instant::now() + limit;
        loop {
            let statuses = self.statuses().await?;
            if done(&statuses) {
                return Ok(statuses);
            }
            if Instant::now() > deadline {
                let (name, status) = statuses
                    .iter()
                    .find(|(_, status)| status.error.is_some() || !status.synced())
                    .map_or_else(
                        || (String::new(), Status::default()),
                        |(n, s)| (n.clone(), s.clone()),
                    );
                anyhow::bail!(
                    "timed out after {limit:?} waiting for {what}; e.g. {name}: {status:?}; serve's log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Waits until no reconcile has finished for a second, or a minute has passed (an engine
    /// whose timers keep it busy is never quiet; then it is measured busy). Reconciles still
    /// queued (after a live change, a timer) would otherwise update `reconciled_at` during a
    /// [`Serve::pass`] and end it before the requested ones ran. Without `reconciled_at`, until
    /// the API server has been quiet for a second.
    pub async fn settle(&self, client: &kube::Client) -> anyhow::Result<()> {
        let (quiet, limit) = (Duration::from_secs(1), Duration::from_mins(1));
        if !self.reports("reconciled_at").await? {
            metrics::settle(client, quiet).await?;
            return Ok(());
        }
        let latest = |statuses: &Statuses| statuses.values().filter_map(|s| s.reconciled_at).max();
        let started = Instant::now();
        let (mut last, mut changed) = (latest(&self.statuses().await?), Instant::now());
        while changed.elapsed() < quiet && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = latest(&self.statuses().await?);
            if now != last {
                (last, changed) = (now, Instant::now());
            }
        }
        Ok(())
    }

    /// Asks for a reconcile of every application in `names` (as a webhook for a push would) and
    /// waits until each has finished one that started after the request; settle first. Without
    /// `reconciled_at` the end is when the API server has seen no request for a while.
    pub async fn pass(
        &self,
        names: &[String],
        client: &kube::Client,
        limit: Duration,
    ) -> anyhow::Result<Pass> {
        let exact = self.reports("reconciled_at").await?;
        let since = now_ms();
        let started = Instant::now();
        self.refresh_all(names).await?;
        if !exact {
            let last = metrics::settle(client, Duration::from_secs(3)).await?;
            return Ok(Pass {
                elapsed: last.saturating_duration_since(started),
                exact,
            });
        }
        let statuses = self
            .wait_for(
                "every application to finish a reconcile",
                limit,
                Duration::from_millis(200),
                |statuses| {
                    names.iter().all(|name| {
                        statuses
                            .get(name)
                            .and_then(|status| status.reconciled_at)
                            .is_some_and(|at| at >= since)
                    })
                },
            )
            .await?;
        // The engine's own clock: exact however coarsely the statuses were polled.
        let last = names
            .iter()
            .filter_map(|name| statuses.get(name)?.reconciled_at)
            .max()
            .unwrap_or(since);
        Ok(Pass {
            elapsed: Duration::from_millis(u64::try_from(last - since).unwrap_or(0)),
            exact,
        })
    }

    /// SIGTERM, then waits for running work to finish; killed after 60 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.child.id());
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "driftless serve exited with {status} after SIGTERM:\n{}",
                    self.log_tail()
                );
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "driftless serve did not stop within 60 s of SIGTERM:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn statuses_read_with_and_without_the_newer_fields() {
        let newer = serde_json::json!({
            "sync": "Synced", "error": null, "reconciled_at": 1_700_000_000_123_i64,
            "drift_detected_at": null, "failures": 0, "pinned": false
        });
        let status = Status::from_json(&newer);
        assert!(status.synced());
        assert_eq!(status.reconciled_at, Some(1_700_000_000_123));
        assert_eq!(status.drift_detected_at, None);
        let older = serde_json::json!({"sync": "OutOfSync", "error": "boom", "failures": 1});
        let status = Status::from_json(&older);
        assert!(!status.synced());
        assert_eq!(status.error.as_deref(), Some("boom"));
        assert_eq!(status.reconciled_at, None);
    }
}
