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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use driftless_core::SyncState;
use driftless_core::health::Health;
use driftless_store::{SyncResult, Trigger};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock, Semaphore, mpsc};

use crate::{Engine, SyncOptions};

/// What the controller last saw of an application.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
}

pub struct Controller {
    engine: Arc<Engine>,
    workers: usize,
    statuses: Arc<RwLock<HashMap<String, AppStatus>>>,
    requests: mpsc::UnboundedSender<String>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    /// One lock per application: a reconcile and a sync asked for through the API never overlap.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// One timer per known application; applications declared by roots come and go.
    timers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

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
        })
    }

    /// Asks for a reconcile of `application` now (e.g. from a webhook or the CLI).
    pub fn refresh(&self, application: &str) {
        let _ = self.requests.send(application.to_owned());
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
        self.update_timers().await;
        let permits = Arc::new(Semaphore::new(self.workers));
        // Applications being reconciled, and those asked for again meanwhile (re-run after).
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let again: Arc<Mutex<HashSet<String>>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(name) = receiver.recv() => {
                    if !running.lock().await.insert(name.clone()) {
                        again.lock().await.insert(name);
                        continue;
                    }
                    let (controller, permits) = (Arc::clone(self), Arc::clone(&permits));
                    let (running, again) = (Arc::clone(&running), Arc::clone(&again));
                    tasks.spawn(async move {
                        let permit = permits.acquire_owned().await.expect("the semaphore is never closed");
                        controller.reconcile(&name).await;
                        // A root may have declared or dropped applications.
                        controller.update_timers().await;
                        drop(permit);
                        running.lock().await.remove(&name);
                        if again.lock().await.remove(&name) {
                            controller.refresh(&name);
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
                self.refresh(&name);
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
            self.refresh(&name);
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
    ) -> Result<crate::SyncReport, crate::EngineError> {
        let report = {
            let _guard = self.lock(name).await;
            self.engine.sync(name, options).await?
        };
        self.refresh(name);
        Ok(report)
    }

    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    async fn reconcile(&self, name: &str) {
        let _guard = self.lock(name).await;
        let Ok(app) = self.engine.application(name) else {
            return;
        };
        let pinned = self.engine.store().pinned(name).ok().flatten().is_some();
        let mut status = self.statuses.read().await.get(name).cloned().unwrap_or_default();
        status.pinned = pinned;
        match self.engine.compare(name).await {
            Ok(comparison) => {
                status.revision = Some(comparison.revision.clone());
                status.sync = Some(comparison.sync);
                status.health = Some(comparison.health.clone());
                status.error = None;
                // A new revision is always synced; drift on the revision already applied only with
                // selfHeal (otherwise it is reported, as Argo CD does).
                let last_applied = self
                    .engine
                    .store()
                    .history(name, 20)
                    .ok()
                    .and_then(|records| records.into_iter().find(|r| r.result == SyncResult::Succeeded))
                    .map(|record| record.revision);
                let new_revision = last_applied.as_deref() != Some(comparison.revision.as_str());
                let automated = app
                    .sync_policy
                    .automated
                    .filter(|a| !pinned && (new_revision || a.self_heal));
                if let (Some(automated), SyncState::OutOfSync) = (automated, comparison.sync) {
                    // selfHeal means reverting others' changes, which takes their fields over.
                    let options = SyncOptions {
                        prune: automated.prune,
                        force: automated.self_heal,
                        trigger: Trigger::Automated,
                        ..SyncOptions::default()
                    };
                    match self.engine.sync(name, options).await {
                        Ok(report) => {
                            status.last_sync = Some(report.result);
                            if report.result == SyncResult::Succeeded {
                                status.sync = Some(SyncState::Synced);
                                // The health seen before the sync (often Missing) is stale now.
                                status.health = report.health;
                            } else {
                                status.error = Some(report.message);
                            }
                        }
                        Err(err) => status.error = Some(err.to_string()),
                    }
                }
            }
            Err(err) => {
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
        self.statuses.write().await.insert(name.to_owned(), status);
    }
}
