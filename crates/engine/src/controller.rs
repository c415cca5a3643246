//! The reconcile loop behind `driftless serve`.
//!
//! Every application gets a timer task that asks for a reconcile on its interval (jittered by up to
//! 10 % so applications configured alike do not fire together) or sooner after a failure (the
//! application's retry backoff). Requests go through one queue to a bounded pool of workers; an
//! application is never reconciled twice at once. A reconcile compares the application with its
//! cluster and, when it is out of sync, automated and not pinned, syncs it. Errors (Git or the API
//! server unreachable, a render failure) are kept on the application's status; nothing is deleted,
//! and the last applied state stays as it is. Shutdown stops new work and waits for running
//! reconciles.
//!
//! Under `serve` the engine also watches the live objects of every application ([`crate::live`]):
//! a change the API server reports for an application's object asks for its reconcile at once, so
//! drift is seen within a second and periodic reconciles find nothing to read. Drift at the
//! revision already synced is recorded as an event naming who changed what; with `selfHeal` it is
//! reverted, at once the first time, then with a doubling wait while another writer keeps changing
//! it back (reported in the status and as events, never a hot loop).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use driftless_core::SyncState;
use driftless_core::comparison::AppComparison;
use driftless_core::health::Health;
use driftless_core::notifications::{Notice, NoticeKind};
use driftless_core::reconcile::{self, AutoSync, HealTiming};
use driftless_store::{EventKind, EventRecord, SyncResult, Trigger};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock, Semaphore, mpsc};

use crate::clock::now_millis;
use crate::compare::Prepared;
use crate::engine::Engine;
use crate::error::{AdminError, Failure, SyncError};
use crate::live::LiveChange;
use crate::sync::{SyncOptions, SyncReport};

/// What the controller last saw of an application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppStatus {
    pub revision: Option<String>,
    pub sync: Option<SyncState>,
    pub health: Option<Health>,
    /// The last reconcile's error; `None` when it succeeded.
    pub error: Option<String>,
    pub last_sync: Option<SyncResult>,
    /// Consecutive failed reconciles (drives the retry backoff).
    pub failures: u32,
    pub pinned: bool,
    /// Automated syncs are suspended (`driftless suspend`).
    #[serde(default)]
    pub suspended: bool,
    /// When the last reconcile finished (milliseconds since the Unix epoch).
    #[serde(default)]
    pub reconciled_at: Option<i64>,
    /// When drift from the revision last synced was last detected (milliseconds since the Unix
    /// epoch); kept after it is healed.
    #[serde(default)]
    pub drift_detected_at: Option<i64>,
    /// What drifted, and who changed it, while the application is out of sync through drift.
    #[serde(default)]
    pub drift: Option<String>,
    /// Self-heal is waiting before reverting again (another writer keeps changing the objects).
    #[serde(default)]
    pub self_heal_backoff: Option<String>,
    /// Self-heals in a row, each soon after the last (drives the self-heal backoff).
    #[serde(default)]
    pub heal_streak: u32,
    /// When self-heal last reverted drift (milliseconds since the Unix epoch).
    #[serde(default)]
    pub last_heal_at: Option<i64>,
}

/// Why a reconcile was asked for: it decides how fresh the Git fetch must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The cluster changed, not Git: compare with the last fetch, however old (the interval
    /// polls Git). A busy cluster thus costs no fetches.
    LiveChange,
    /// The application's interval, a root's new children: a recent fetch will do.
    Routine,
    /// Someone asked (API, CLI, webhook) at this instant: the fetch must have started since.
    /// Many refreshes asked at once (a webhook for a monorepo) thus share one fetch.
    Requested(std::time::Instant),
}

impl Reason {
    /// The stricter of two reasons for the same application.
    fn stricter(self, other: Self) -> Self {
        match (self, other) {
            (Self::Requested(a), Self::Requested(b)) => Self::Requested(a.max(b)),
            (Self::Requested(asked), _) | (_, Self::Requested(asked)) => Self::Requested(asked),
            (Self::Routine, _) | (_, Self::Routine) => Self::Routine,
            (Self::LiveChange, Self::LiveChange) => Self::LiveChange,
        }
    }
}

pub struct Controller {
    engine: Arc<Engine>,
    workers: usize,
    statuses: Arc<RwLock<HashMap<String, AppStatus>>>,
    requests: mpsc::UnboundedSender<(String, Reason)>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<(String, Reason)>>>,
    /// One lock per application: a reconcile and a sync asked for through the API never overlap.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// One timer per known application; applications declared by roots come and go.
    timers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// Every change of an application's status, for live views (the API's event stream) and
    /// notifications.
    updates: tokio::sync::broadcast::Sender<StatusUpdate>,
}

/// An application's status after a reconcile that changed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub application: String,
    pub status: AppStatus,
    /// What this reconcile is worth telling people (notifications).
    #[serde(default)]
    pub notices: Vec<Notice>,
}

fn notice(application: &str, kind: NoticeKind, revision: Option<&str>, message: String) -> Notice {
    Notice {
        application: application.to_owned(),
        kind,
        revision: revision.map(str::to_owned),
        message,
    }
}

/// The notice a finished sync is worth: succeeded or failed, at the commit it applied.
fn sync_notice(application: &str, report: &SyncReport) -> Notice {
    let kind = if report.result == SyncResult::Succeeded {
        NoticeKind::SyncSucceeded
    } else {
        NoticeKind::SyncFailed
    };
    let summary = if report.message.is_empty() {
        format!("{} object(s)", report.outcomes.len())
    } else {
        report.message.clone()
    };
    notice(application, kind, Some(&report.revision), summary)
}

/// Status updates a slow listener may fall behind by before it misses some (it is told so).
const UPDATES_BUFFERED: usize = 1024;

/// Up to 10 % of `interval`, from the clock's nanoseconds and the name: no two applications with
/// the same interval fire in lockstep.
fn jittered(interval: Duration, name: &str) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let seed = name.bytes().fold(u64::from(nanos), |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u64::from(b))
    });
    let fraction = f64::from(u32::try_from(seed % 1000).unwrap_or(0)) / 10_000.0;
    interval + interval.mul_f64(fraction)
}

impl Controller {
    #[must_use]
    pub fn new(engine: Arc<Engine>, workers: usize) -> Arc<Self> {
        let (requests, receiver) = mpsc::unbounded_channel();
        Arc::new(Self {
            engine,
            workers: workers.max(1),
            statuses: Arc::new(RwLock::new(HashMap::new())),
            requests,
            receiver: Mutex::new(Some(receiver)),
            timers: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            updates: tokio::sync::broadcast::channel(UPDATES_BUFFERED).0,
        })
    }

    /// Status changes from now on.
    #[must_use]
    pub fn updates(&self) -> tokio::sync::broadcast::Receiver<StatusUpdate> {
        self.updates.subscribe()
    }

    /// Asks for a reconcile of `application` now (e.g. from a webhook or the CLI), with a fresh
    /// fetch of its repository.
    pub fn refresh(&self, application: &str) {
        self.enqueue(application, Reason::Requested(std::time::Instant::now()));
    }

    /// Asks for a reconcile now of every application whose source is `repo_url` (every
    /// application when `None`), as a push webhook does: they share one fresh fetch. Returns
    /// their names.
    pub fn refresh_repository(&self, repo_url: Option<&str>) -> Vec<String> {
        let asked = std::time::Instant::now();
        let names: Vec<String> = self
            .engine
            .application_names()
            .into_iter()
            .filter(|name| {
                repo_url.is_none_or(|url| {
                    self.engine
                        .application(name)
                        .is_ok_and(|app| app.source.repo_url == url)
                })
            })
            .collect();
        for name in &names {
            self.enqueue(name, Reason::Requested(asked));
        }
        names
    }

    fn enqueue(&self, application: &str, reason: Reason) {
        self.engine.metrics().queue_depth.inc();
        let _ = self.requests.send((application.to_owned(), reason));
    }

    /// Reconciles the application a live change belongs to (drift is seen at once).
    async fn watch_changes(self: Arc<Self>, mut changes: mpsc::UnboundedReceiver<LiveChange>) {
        while let Some(change) = changes.recv().await {
            tracing::debug!(application = %change.application, object = %change.object, deleted = change.deleted, "live change");
            if self.engine.application(&change.application).is_ok() {
                self.enqueue(&change.application, Reason::LiveChange);
            }
        }
    }

    pub async fn statuses(&self) -> HashMap<String, AppStatus> {
        self.statuses.read().await.clone()
    }

    /// Runs until `shutdown` completes, then waits for running reconciles to finish.
    pub async fn run(self: &Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut receiver = self
            .receiver
            .lock()
            .await
            .take()
            .expect("Controller::run is called once");
        let watcher = self
            .engine
            .watch_live()
            .map(|changes| tokio::spawn(Arc::clone(self).watch_changes(changes)));
        self.update_timers().await;
        let permits = Arc::new(Semaphore::new(self.workers));
        // Applications being reconciled, and those asked for again meanwhile (re-run after, with
        // the strictest reason asked for).
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let again: Arc<Mutex<HashMap<String, Reason>>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some((name, reason)) = receiver.recv() => {
                    if !running.lock().await.insert(name.clone()) {
                        let mut again = again.lock().await;
                        let queued = again.entry(name).or_insert(reason);
                        *queued = queued.stricter(reason);
                        self.engine.metrics().queue_depth.dec();
                        continue;
                    }
                    let (controller, permits) = (Arc::clone(self), Arc::clone(&permits));
                    let (running, again) = (Arc::clone(&running), Arc::clone(&again));
                    tasks.spawn(async move {
                        let permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                        controller.engine.metrics().queue_depth.dec();
                        controller.reconcile(&name, reason).await;
                        // A root may have declared or dropped applications.
                        controller.update_timers().await;
                        drop(permit);
                        running.lock().await.remove(&name);
                        if let Some(reason) = again.lock().await.remove(&name) {
                            controller.enqueue(&name, reason);
                        }
                    });
                }
                Some(_) = tasks.join_next() => {}
            }
        }
        tracing::info!(
            in_flight = tasks.len(),
            "shutting down: waiting for running reconciles"
        );
        for (_, timer) in self.timers.lock().await.drain() {
            timer.abort();
        }
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Starts a timer (and a first reconcile) for every application without one; stops the timers
    /// of applications that are gone (a root stopped declaring them).
    async fn update_timers(self: &Arc<Self>) {
        let names: HashSet<String> = self.engine.application_names().into_iter().collect();
        let mut timers = self.timers.lock().await;
        timers.retain(|name, timer| {
            let keep = names.contains(name);
            if !keep {
                timer.abort();
            }
            keep
        });
        for name in names {
            if !timers.contains_key(&name) {
                self.enqueue(&name, Reason::Routine);
                timers.insert(name.clone(), tokio::spawn(Arc::clone(self).timer(name)));
            }
        }
    }

    async fn timer(self: Arc<Self>, name: String) {
        let Ok(app) = self.engine.application(&name) else {
            return;
        };
        let (interval, retry) = (app.sync_policy.interval, app.sync_policy.retry.clone());
        loop {
            let failures = self
                .statuses
                .read()
                .await
                .get(&name)
                .map_or(0, |status| status.failures);
            let wait = if failures > 0 && failures <= retry.limit {
                retry.delay(failures)
            } else {
                jittered(interval, &name)
            };
            tokio::time::sleep(wait).await;
            self.enqueue(&name, Reason::Routine);
        }
    }

    #[tracing::instrument(skip(self))]
    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(self.locks.lock().await.entry(name.to_owned()).or_default());
        lock.lock_owned().await
    }

    /// Syncs now, on request (the CLI through the API), never at the same time as a reconcile of
    /// the same application; the status is refreshed afterwards.
    pub async fn sync_now(
        self: &Arc<Self>,
        name: &str,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let dry_run = options.dry_run;
        let report = {
            let _guard = self.lock(name).await;
            self.engine.sync(name, options).await
        };
        self.told_sync(name, dry_run, &report).await;
        self.refresh(name);
        report
    }

    /// Rolls back now, on request, never at the same time as a reconcile of the same
    /// application ([`Engine::rollback`]); the status is refreshed afterwards.
    pub async fn rollback_now(
        self: &Arc<Self>,
        name: &str,
        revision: &str,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let dry_run = options.dry_run;
        let report = {
            let _guard = self.lock(name).await;
            self.engine.rollback(name, revision, options).await
        };
        self.told_sync(name, dry_run, &report).await;
        self.refresh(name);
        report
    }

    /// Pins the application where it runs ([`Engine::pin`]), never while a reconcile of it is
    /// syncing (which could change what runs); the status is refreshed afterwards.
    pub async fn pin_now(self: &Arc<Self>, name: &str) -> Result<String, AdminError> {
        self.admin_now(name, "pin", Engine::pin).await
    }

    /// [`Engine::unpin`], under the application's lock; the status is refreshed afterwards.
    pub async fn unpin_now(self: &Arc<Self>, name: &str) -> Result<bool, AdminError> {
        self.admin_now(name, "unpin", Engine::unpin).await
    }

    /// [`Engine::suspend`], under the application's lock; the status is refreshed afterwards.
    pub async fn suspend_now(self: &Arc<Self>, name: &str) -> Result<bool, AdminError> {
        self.admin_now(name, "suspend", Engine::suspend).await
    }

    /// [`Engine::resume`], under the application's lock; the status is refreshed afterwards.
    pub async fn resume_now(self: &Arc<Self>, name: &str) -> Result<bool, AdminError> {
        self.admin_now(name, "resume", Engine::resume).await
    }

    async fn admin_now<T>(
        self: &Arc<Self>,
        name: &str,
        action: &'static str,
        operation: fn(&Engine, &str) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let done = {
            let _guard = self.lock(name).await;
            operation(&self.engine, name)?
        };
        tracing::info!(application = name, action, "administrative change");
        self.refresh(name);
        Ok(done)
    }

    /// Tells listeners how a sync asked for through the API ended (a dry-run is not worth it;
    /// an unknown application is nobody's business).
    async fn told_sync(&self, name: &str, dry_run: bool, report: &Result<SyncReport, SyncError>) {
        let notice = match report {
            Ok(report) if !report.dry_run => sync_notice(name, report),
            Err(err) if !dry_run && !matches!(err.failure, Failure::UnknownApplication(_)) => {
                notice(name, NoticeKind::SyncFailed, None, err.to_string())
            }
            _ => return,
        };
        self.tell(name, vec![notice]).await;
    }

    /// Sends `notices` with the application's current status.
    async fn tell(&self, name: &str, notices: Vec<Notice>) {
        let status = self.statuses.read().await.get(name).cloned().unwrap_or_default();
        // Nobody listening is fine.
        let _ = self.updates.send(StatusUpdate {
            application: name.to_owned(),
            status,
            notices,
        });
    }

    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for a task that must not keep the controller alive.
    #[must_use]
    pub fn shared_engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine)
    }

    async fn reconcile(self: &Arc<Self>, name: &str, reason: Reason) {
        let _guard = self.lock(name).await;
        let Ok(app) = self.engine.application(name) else {
            return;
        };
        let pinned = self.engine.store().pinned(name).ok().flatten().is_some();
        // A store that cannot answer suspends nothing, as it pins nothing.
        let suspended = self.engine.store().is_suspended(name).unwrap_or(false);
        let mut status = self.statuses.read().await.get(name).cloned().unwrap_or_default();
        let health_before = status.health.as_ref().map(|health| health.state);
        let mut notices = Vec::new();
        status.pinned = pinned;
        status.suspended = suspended;
        // The instant itself, not an age: an age converted back to an instant later would be a
        // little later than the fetch the first of many applications asked at once started.
        let fetched_since = match reason {
            Reason::LiveChange => self.engine.any_fetch(),
            Reason::Routine => self.engine.fetched_since(self.engine.fetch_reuse()),
            Reason::Requested(asked) => asked,
        };
        match self.engine.compare_for_sync(name, fetched_since).await {
            Ok((comparison, prepared)) => {
                let was_out_of_sync = status.sync == Some(SyncState::OutOfSync);
                status.revision = Some(comparison.revision.clone());
                status.sync = Some(comparison.sync);
                status.health = Some(comparison.health.clone());
                status.error = None;
                // Any number of failed syncs since: the revision the cluster last received.
                let last_synced = self.engine.store().last_synced_revision(name).ok().flatten();
                let decision = reconcile::decide(&reconcile::Facts {
                    sync: comparison.sync,
                    revision: &comparison.revision,
                    last_synced: last_synced.as_deref(),
                    automated: app.sync_policy.automated,
                    pinned,
                    suspended,
                });
                if decision.drifted {
                    if let Some(description) =
                        self.note_drift(name, &comparison, &mut status, was_out_of_sync)
                    {
                        notices.push(notice(
                            name,
                            NoticeKind::DriftDetected,
                            Some(&comparison.revision),
                            description,
                        ));
                    }
                } else {
                    status.drift = None;
                    status.self_heal_backoff = None;
                }
                if let Some(automated) = decision.sync
                    && (!decision.drifted || self.heal_due(name, &mut status))
                {
                    self.auto_sync(
                        name,
                        automated,
                        prepared,
                        &comparison.revision,
                        &mut status,
                        &mut notices,
                    )
                    .await;
                }
            }
            Err(err) => {
                if let Failure::Untrusted { commit, .. } = &err.failure {
                    notices.push(notice(
                        name,
                        NoticeKind::SignatureRefused,
                        Some(commit),
                        err.to_string(),
                    ));
                }
                // Keep the last known revision and health; report why this reconcile failed.
                status.sync = Some(SyncState::Unknown);
                status.error = Some(err.to_string());
            }
        }
        status.failures = if status.error.is_some() {
            status.failures.saturating_add(1)
        } else {
            0
        };
        if let Some(error) = &status.error {
            tracing::warn!(application = name, failures = status.failures, error = %error, "reconcile failed");
        }
        self.publish(name, status, health_before, notices).await;
    }

    /// An automated sync from what the comparison rendered and read a moment ago (a change since
    /// then is seen by the watch and reconciled next); its outcome goes into the status and the
    /// notices.
    async fn auto_sync(
        &self,
        name: &str,
        automated: AutoSync,
        prepared: Prepared,
        revision: &str,
        status: &mut AppStatus,
        notices: &mut Vec<Notice>,
    ) {
        let options = SyncOptions {
            prune: automated.prune,
            force: automated.force,
            trigger: Trigger::Automated,
            ..SyncOptions::default()
        };
        // Commit statuses show "pending" while it runs.
        self.tell(
            name,
            vec![notice(
                name,
                NoticeKind::SyncStarted,
                Some(revision),
                "syncing".to_owned(),
            )],
        )
        .await;
        match self.engine.sync_prepared(name, options, prepared).await {
            Ok(report) => {
                status.last_sync = Some(report.result);
                notices.push(sync_notice(name, &report));
                if report.result == SyncResult::Succeeded {
                    status.sync = Some(SyncState::Synced);
                    status.drift = None;
                    // The health seen before the sync (often Missing) is stale now.
                    status.health = report.health;
                } else {
                    status.error = Some(report.message);
                }
            }
            Err(err) => {
                notices.push(notice(
                    name,
                    NoticeKind::SyncFailed,
                    Some(revision),
                    err.to_string(),
                ));
                status.error = Some(err.to_string());
            }
        }
    }

    /// Records the reconcile's status and tells listeners when it changed or has notices, with
    /// a notice when health degraded or recovered.
    async fn publish(
        &self,
        name: &str,
        mut status: AppStatus,
        health_before: Option<driftless_core::HealthState>,
        mut notices: Vec<Notice>,
    ) {
        status.reconciled_at = Some(now_millis());
        if let Some((kind, message)) = reconcile::health_notice(health_before, status.health.as_ref()) {
            notices.push(notice(name, kind, status.revision.as_deref(), message));
        }
        let previous = self
            .statuses
            .write()
            .await
            .insert(name.to_owned(), status.clone());
        let changed = previous.is_none_or(|previous| {
            AppStatus {
                reconciled_at: None,
                ..previous
            } != AppStatus {
                reconciled_at: None,
                ..status.clone()
            }
        });
        if changed || !notices.is_empty() {
            // Nobody listening is fine.
            let _ = self.updates.send(StatusUpdate {
                application: name.to_owned(),
                status,
                notices,
            });
        }
    }

    /// Records drift found at the revision last synced: once when it starts, as an event naming
    /// what changed and who changed it. Returns the description when the drift is new (worth
    /// telling).
    fn note_drift(
        &self,
        name: &str,
        comparison: &AppComparison,
        status: &mut AppStatus,
        was_out_of_sync: bool,
    ) -> Option<String> {
        let description = comparison.describe_drift();
        let new = !was_out_of_sync || status.drift.as_ref() != Some(&description);
        if new {
            let now = now_millis();
            status.drift_detected_at = Some(now);
            tracing::info!(application = name, drift = %description, "drift detected");
            self.record_event(
                name,
                EventKind::DriftDetected,
                format!("drift detected: {description}"),
            );
        }
        status.drift = Some(description.clone());
        new.then_some(description)
    }

    /// Whether self-heal may revert drift now. Each revert soon after the last waits twice as
    /// long as the one before; while waiting, the status says so and a reconcile is scheduled
    /// for when the wait is over.
    fn heal_due(self: &Arc<Self>, name: &str, status: &mut AppStatus) -> bool {
        let now = now_millis();
        match reconcile::heal_timing(status.heal_streak, status.last_heal_at, now) {
            HealTiming::Now { streak } => {
                status.self_heal_backoff = None;
                status.heal_streak = streak;
                status.last_heal_at = Some(now);
                true
            }
            HealTiming::Wait { remaining } => {
                let message = format!(
                    "self-heal backing off: reverted {} time(s) in a row and changed again ({}); next attempt in {:.1} s",
                    status.heal_streak,
                    status.drift.as_deref().unwrap_or("objects changed"),
                    remaining.as_secs_f64()
                );
                if status.self_heal_backoff.is_none() {
                    tracing::warn!(application = name, %message, "self-heal backing off");
                    self.record_event(name, EventKind::SelfHealBackoff, message.clone());
                }
                status.self_heal_backoff = Some(message);
                let (controller, name) = (Arc::clone(self), name.to_owned());
                tokio::spawn(async move {
                    tokio::time::sleep(remaining).await;
                    controller.enqueue(&name, Reason::LiveChange);
                });
                false
            }
        }
    }

    fn record_event(&self, name: &str, kind: EventKind, message: String) {
        let event = EventRecord {
            time: now_millis(),
            kind,
            message,
        };
        self.engine.record_event(name, &event);
    }
}
