//! Syncing one application: plan, apply wave by wave, prune after success, record.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use driftless_core::application::Application;
use driftless_core::diff::keep_ignored_live_values;
use driftless_core::health::{self, Health};
use driftless_core::plan::{
    HookDeletePolicy, KeepReason, OwnershipConflict, Plan, PlanOptions, hook_delete_policy,
    object_sync_option, plan,
};
use driftless_core::project::Project;
use driftless_core::sync_order::Stage;
use driftless_core::{HealthState, ObjectRef};
use driftless_kube::{ApplyOptions, ObjectError};
use driftless_store::{AppliedState, ObjectAction, ObjectOutcome, SyncEffects, SyncResult, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desired::DesiredState;
use crate::engine::{ClusterHandle, Prepared};
use crate::live::LiveSnapshot;
use crate::throttle::{self, AdaptiveLimit};
use crate::{Engine, EngineError, applied};

/// How long a CRD may take to become Established before its custom objects are applied.
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_mins(1);
/// How often health is polled while waiting between waves.
const HEALTH_POLL: Duration = Duration::from_millis(500);
/// How long a hook deleted before it is created again may take to be gone (its finalizers).
const HOOK_GONE_TIMEOUT: Duration = Duration::from_mins(1);

async fn wait_gone(
    objects: &driftless_kube::Objects,
    resource: &kube::core::ApiResource,
    reference: &ObjectRef,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        match objects.get(resource, reference).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) if started.elapsed() < HOOK_GONE_TIMEOUT => tokio::time::sleep(HEALTH_POLL).await,
            Ok(Some(_)) => return Err(format!("still there after {HOOK_GONE_TIMEOUT:?}")),
            Err(err) => return Err(err.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent flags of `driftless sync`, as in kubectl and argocd"
)]
pub struct SyncOptions {
    /// Sync this revision instead of the pinned or configured one (rollback).
    pub revision: Option<String>,
    /// Delete objects that left Git.
    pub prune: bool,
    /// Ask the server what would happen; change nothing and record nothing.
    pub dry_run: bool,
    /// Take fields other field managers own.
    pub force: bool,
    /// Take over live objects that exist without an owner label.
    pub adopt: bool,
    pub trigger: Trigger,
    /// How long each wave may take to become healthy before the next starts.
    pub wave_health_timeout: Duration,
    /// Told what the sync is doing, as it happens (the CLI shows it).
    pub progress: Option<ProgressSink>,
}

/// What a running sync is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncProgress {
    /// A wave starts: its number and how many objects it applies.
    Wave {
        number: i64,
        objects: usize,
    },
    Applied {
        object: ObjectRef,
        action: ObjectAction,
    },
    /// Waiting for something to become healthy; the message names what and why (changes only).
    Waiting {
        message: String,
    },
    Pruned {
        object: ObjectRef,
    },
}

/// Receives [`SyncProgress`]; cheap to clone.
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<dyn Fn(SyncProgress) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl ProgressSink {
    fn send(sink: Option<&Self>, event: SyncProgress) {
        if let Some(sink) = sink {
            (sink.0)(event);
        }
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            revision: None,
            prune: false,
            dry_run: false,
            force: false,
            adopt: false,
            trigger: Trigger::Manual,
            wave_health_timeout: Duration::from_mins(5),
            progress: None,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncReport {
    pub application: String,
    pub revision: String,
    pub result: SyncResult,
    pub message: String,
    pub outcomes: Vec<ObjectOutcome>,
    /// The history record; `None` for a dry-run.
    pub sync_id: Option<i64>,
    pub dry_run: bool,
    /// The worst health of the applied and unchanged objects as the server returned them (no
    /// extra reads); `None` for a dry-run.
    #[serde(default)]
    pub health: Option<Health>,
}

/// Milliseconds since the Unix epoch, as the store and statuses record times.
pub(crate) fn now_millis() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    millis(elapsed)
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn keep_message(reason: KeepReason) -> &'static str {
    match reason {
        KeepReason::PruningOff => "left Git; pruning is off for this sync (requires pruning)",
        KeepReason::PruneDisabled => "left Git; kept by the annotation driftless.dev/prune: \"false\"",
        KeepReason::OwnedByOther => "left Git; now owned by another application, not pruned",
        KeepReason::NotOurs => "left Git; no longer carries this application's label, not pruned",
    }
}

/// The state of one sync while it runs.
struct SyncRun<'a> {
    engine: &'a Engine,
    app: &'a Application,
    /// The application's project; `None`: unrestricted.
    project: Option<&'a Project>,
    cluster: ClusterHandle,
    desired: DesiredState,
    options: &'a SyncOptions,
    outcomes: Vec<ObjectOutcome>,
    /// The first reason the sync failed; `None` while it succeeds.
    failure: Option<String>,
    /// Objects applied in this run, with the version they were applied as.
    applied: BTreeMap<ObjectRef, String>,
    /// What each object looked like when last brought in sync (read at the start).
    recorded: BTreeMap<ObjectRef, AppliedState>,
    /// What to remember (or forget, `None`) of objects touched by this run.
    applied_states: BTreeMap<ObjectRef, Option<AppliedState>>,
    limit: AdaptiveLimit,
    /// Health of each object as last seen in this run (from the apply answer or the snapshot).
    healths: Vec<Health>,
}

impl SyncRun<'_> {
    fn record(&mut self, object: &ObjectRef, action: ObjectAction, message: impl Into<String>) {
        match action {
            ObjectAction::Pruned => {
                ProgressSink::send(
                    self.options.progress.as_ref(),
                    SyncProgress::Pruned {
                        object: object.clone(),
                    },
                );
            }
            // Unchanged objects are counted in the report, not announced one by one.
            ObjectAction::Kept | ObjectAction::Skipped | ObjectAction::Unchanged => {}
            _ => ProgressSink::send(
                self.options.progress.as_ref(),
                SyncProgress::Applied {
                    object: object.clone(),
                    action,
                },
            ),
        }
        self.outcomes.push(ObjectOutcome {
            object: object.clone(),
            action,
            message: message.into(),
        });
    }

    fn fail(&mut self, object: &ObjectRef, message: String, reason: impl FnOnce() -> String) {
        self.failure.get_or_insert_with(reason);
        self.record(object, ObjectAction::Failed, message);
    }

    /// Fails closed: when the project refuses any object, or a policy denies any change,
    /// nothing at all is applied or pruned (a half-applied application is no safer), and every
    /// refused object is reported with why; the others are skipped with `others`.
    fn refuse(&mut self, refused: &[(ObjectRef, String)], reason: &str, others: &str) {
        for (object, message) in refused {
            self.fail(object, message.clone(), || reason.to_owned());
        }
        let skipped: Vec<ObjectRef> = self
            .desired
            .objects
            .iter()
            .map(|(object, _)| &object.reference)
            .filter(|reference| !refused.iter().any(|(object, _)| object == *reference))
            .cloned()
            .collect();
        for reference in &skipped {
            self.record(reference, ObjectAction::Skipped, others);
        }
    }

    fn has_failed_object(&self) -> bool {
        self.outcomes
            .iter()
            .any(|outcome| outcome.action == ObjectAction::Failed)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn apply_waves(&mut self, plan: &Plan, live_objects: &LiveSnapshot) {
        for (position, wave) in plan.waves.iter().enumerate() {
            if self.has_failed_object() {
                for index in wave.objects() {
                    let reference = self.desired.objects[index].0.reference.clone();
                    self.record(
                        &reference,
                        ObjectAction::Skipped,
                        "not applied: an earlier wave failed",
                    );
                }
                continue;
            }
            let size = wave.objects().count();
            ProgressSink::send(
                self.options.progress.as_ref(),
                SyncProgress::Wave {
                    number: wave.number,
                    objects: size,
                },
            );
            for (stage, indices) in &wave.stages {
                self.apply_stage(indices, live_objects).await;
                if *stage == Stage::Foundations && !self.options.dry_run && !self.has_failed_object() {
                    self.await_crds(indices).await;
                }
            }
            let members: Vec<usize> = wave.objects().collect();
            // A hook deleted once it ran must be seen to succeed or fail, even in the last wave.
            let deletes_hooks = members.iter().any(|&index| {
                hook_delete_policy(&self.desired.objects[index].0)
                    .is_some_and(HookDeletePolicy::deleted_after_run)
            });
            if (position + 1 < plan.waves.len() || deletes_hooks)
                && !self.options.dry_run
                && !self.has_failed_object()
            {
                let waited = self
                    .engine
                    .wait_healthy(
                        &self.cluster,
                        &self.desired,
                        &members,
                        self.options.wave_health_timeout,
                        self.options.progress.as_ref(),
                    )
                    .await;
                self.delete_hooks_after_run(&members, waited.is_ok()).await;
                if let Err(message) = waited {
                    let first = self.desired.objects[members[0]].0.reference.clone();
                    let message = format!("wave {} did not become healthy: {message}", wave.number);
                    self.fail(&first, message.clone(), || message);
                }
            }
        }
    }

    /// Deletes the wave's hooks whose policy says so: `HookSucceeded` ones when the wave became
    /// healthy, `HookFailed` ones when it did not. Their absence is not drift afterwards.
    async fn delete_hooks_after_run(&mut self, members: &[usize], succeeded: bool) {
        for &index in members {
            let (object, resolved) = &self.desired.objects[index];
            let Some(policy) = hook_delete_policy(object) else {
                continue;
            };
            if !(succeeded && policy.on_success || !succeeded && policy.on_failure) {
                continue;
            }
            let reference = object.reference.clone();
            match self.cluster.objects.delete(&resolved.resource, &reference).await {
                Ok(_) => {
                    self.applied_states.insert(reference.clone(), None);
                    let when = if succeeded { "succeeded" } else { "failed" };
                    self.record(
                        &reference,
                        ObjectAction::Pruned,
                        format!("hook deleted after it {when} (its hook-delete-policy)"),
                    );
                }
                Err(err) => self.fail(&reference, err.to_string(), || {
                    format!("deleting hook {reference} failed")
                }),
            }
        }
    }

    /// `BeforeHookCreation`: a live hook that differs from Git is deleted, and gone, before the
    /// new one is created (a Job's template cannot change in place; the changed hook runs again).
    async fn delete_changed_hooks(&mut self, to_apply: &mut Vec<usize>, live_objects: &LiveSnapshot) {
        if self.options.dry_run {
            return;
        }
        let mut kept = Vec::with_capacity(to_apply.len());
        for index in std::mem::take(to_apply) {
            let (object, resolved) = &self.desired.objects[index];
            let replaces = hook_delete_policy(object).is_some_and(|policy| policy.before_creation)
                && live_objects.get(&object.reference).is_some();
            if !replaces {
                kept.push(index);
                continue;
            }
            let reference = object.reference.clone();
            let objects = &self.cluster.objects;
            let deleted = match objects.delete(&resolved.resource, &reference).await {
                Ok(_) => wait_gone(objects, &resolved.resource, &reference).await,
                Err(err) => Err(err.to_string()),
            };
            match deleted {
                Ok(()) => kept.push(index),
                Err(message) => self.fail(&reference, message, || {
                    format!("deleting hook {reference} before creating it again failed")
                }),
            }
        }
        *to_apply = kept;
    }

    /// Applies the objects of one stage concurrently (they do not depend on each other), except
    /// those already as Git wants them: those cost no request at all.
    async fn apply_stage(&mut self, indices: &[usize], live_objects: &LiveSnapshot) {
        let mut to_apply = Vec::with_capacity(indices.len());
        for &index in indices {
            let object = &self.desired.objects[index].0;
            let cached = live_objects.unchanged(&object.reference);
            let live = live_objects.get(&object.reference);
            if cached.is_some() || live_objects.read_unchanged(&self.recorded, self.app, object) {
                let health = cached.map(|entry| entry.health.clone()).or_else(|| {
                    live.map(|live| health::assess(&object.reference.group, &object.reference.kind, live))
                });
                self.healths.extend(health);
                let reference = object.reference.clone();
                if !self.options.dry_run
                    && let Some(state) = live_objects.refreshed(&self.recorded, self.app, object)
                {
                    self.applied_states.insert(reference.clone(), Some(state));
                }
                self.applied.insert(reference.clone(), object.gvk.version.clone());
                self.record(&reference, ObjectAction::Unchanged, "");
            } else {
                to_apply.push(index);
            }
        }
        self.delete_changed_hooks(&mut to_apply, live_objects).await;
        let mut limit = std::mem::take(&mut self.limit);
        let results = throttle::run_adaptive(
            &to_apply,
            &mut limit,
            |&index| self.apply_request(index, live_objects),
            |result: &Result<Value, ObjectError>| result.as_ref().is_err_and(ObjectError::is_transient),
        )
        .await;
        self.limit = limit;
        for (position, result) in results {
            self.record_apply(to_apply[position], result, live_objects);
        }
    }

    /// The request that applies one object (server-side apply, or a replace when asked for).
    fn apply_request(
        &self,
        index: usize,
        live_objects: &LiveSnapshot,
    ) -> impl Future<Output = Result<Value, ObjectError>> + use<> {
        let (object, resolved) = &self.desired.objects[index];
        let options = ApplyOptions {
            force: self.options.force,
            dry_run: self.options.dry_run,
        };
        // ignoreDifferences hold for apply too: an ignored field of an existing object is left
        // to whoever owns it, never reverted.
        let rules = applied::rules_for(self.app, &object.reference);
        let mut object = object.clone();
        if let Some(live) = live_objects.get(&object.reference).filter(|_| !rules.is_empty()) {
            keep_ignored_live_values(&mut object.manifest, &rules, live);
        }
        let replace = object_sync_option(&object, "Replace").unwrap_or(self.app.sync_policy.replace);
        let (objects, resource) = (self.cluster.objects.clone(), resolved.resource.clone());
        async move {
            if replace {
                objects.replace(&resource, &object, options).await
            } else {
                objects.apply(&resource, &object, options).await
            }
        }
    }

    fn record_apply(
        &mut self,
        index: usize,
        result: Result<Value, ObjectError>,
        live_objects: &LiveSnapshot,
    ) {
        let object = &self.desired.objects[index].0;
        let reference = object.reference.clone();
        match result {
            Ok(after) => {
                let live = live_objects.get(&reference);
                let action = match live {
                    None => ObjectAction::Created,
                    Some(before)
                        if applied::resource_version(before) != applied::resource_version(&after)
                            && !self.options.dry_run =>
                    {
                        ObjectAction::Configured
                    }
                    Some(_) => ObjectAction::Unchanged,
                };
                if !self.options.dry_run {
                    let state = applied::state_of(self.app, object, &after);
                    self.applied_states.insert(reference.clone(), state);
                    self.healths
                        .push(health::assess(&reference.group, &reference.kind, &after));
                }
                self.applied.insert(reference.clone(), object.gvk.version.clone());
                self.record(&reference, action, "");
            }
            Err(err) => self.fail(&reference, err.to_string(), || format!("{reference} failed")),
        }
    }

    /// CRDs must be Established before anything that uses them is applied.
    async fn await_crds(&mut self, indices: &[usize]) {
        let crds: Vec<usize> = indices
            .iter()
            .copied()
            .filter(|&i| self.desired.objects[i].0.reference.kind == "CustomResourceDefinition")
            .collect();
        if crds.is_empty() {
            return;
        }
        if let Err(message) = self
            .engine
            .wait_healthy(
                &self.cluster,
                &self.desired,
                &crds,
                CRD_ESTABLISHED_TIMEOUT,
                self.options.progress.as_ref(),
            )
            .await
        {
            let first = self.desired.objects[crds[0]].0.reference.clone();
            self.fail(&first, message.clone(), || message);
        }
        // Kinds the new CRDs define are served now.
        self.cluster.discovery.invalidate();
    }

    /// Prunes after a fully successful apply; returns what was deleted.
    async fn prune(
        &mut self,
        plan: &Plan,
        inventory: &BTreeMap<ObjectRef, String>,
    ) -> Result<BTreeSet<ObjectRef>, EngineError> {
        let mut pruned = BTreeSet::new();
        if self.failure.is_some() {
            for reference in &plan.prune {
                self.record(
                    reference,
                    ObjectAction::Skipped,
                    "not pruned: the sync failed, nothing is deleted",
                );
            }
            return Ok(pruned);
        }
        for reference in &plan.prune {
            if let Some(violation) = crate::projects::prune_refused(self.project, self.app, reference) {
                self.record(
                    reference,
                    ObjectAction::Kept,
                    format!("left Git; not pruned: {violation}"),
                );
                continue;
            }
            let version = inventory.get(reference).map_or("", String::as_str);
            let Some(resource) = self
                .engine
                .resource_for(self.app, &self.cluster, reference, version)
                .await?
            else {
                continue;
            };
            if self.options.dry_run {
                self.record(reference, ObjectAction::Pruned, "would be pruned (dry-run)");
                continue;
            }
            match self.cluster.objects.delete(&resource, reference).await {
                Ok(_) => {
                    pruned.insert(reference.clone());
                    self.applied_states.insert(reference.clone(), None);
                    self.record(reference, ObjectAction::Pruned, "");
                }
                Err(err) => self.fail(reference, err.to_string(), || {
                    format!("pruning {reference} failed")
                }),
            }
        }
        Ok(pruned)
    }
}

impl SyncRun<'_> {
    /// Records the inventory and the history entry (unless this is a dry-run) and builds the report.
    #[tracing::instrument(level = "debug", skip_all)]
    fn finish(
        self,
        next_inventory: &BTreeSet<ObjectRef>,
        inventory: &BTreeMap<ObjectRef, String>,
        pruned: &BTreeSet<ObjectRef>,
        sync_id: Option<i64>,
    ) -> Result<SyncReport, EngineError> {
        let result = if self.failure.is_some() {
            SyncResult::Failed
        } else {
            SyncResult::Succeeded
        };
        let message = self.failure.clone().unwrap_or_default();
        let store = &self.engine.store;
        if let Some(id) = sync_id {
            let next: BTreeMap<ObjectRef, String> = if result == SyncResult::Succeeded {
                next_inventory
                    .iter()
                    .filter(|reference| !pruned.contains(*reference))
                    .filter_map(|reference| {
                        let version = self.applied.get(reference).or_else(|| inventory.get(reference))?;
                        Some((reference.clone(), version.clone()))
                    })
                    .collect()
            } else {
                // Keep tracking everything: what was there before and what was applied now.
                let mut next = inventory.clone();
                next.extend(self.applied.clone());
                next
            };
            let effects = SyncEffects {
                application: &self.app.name,
                inventory: (next != *inventory).then_some(&next),
                applied: &self.applied_states,
            };
            store.finish_sync(id, result, &message, &self.outcomes, now_millis(), Some(effects))?;
        }
        let revision = self.desired.commit.to_string();
        tracing::info!(application = %self.app.name, %revision, ?result, objects = self.outcomes.len(), "sync finished");
        Ok(SyncReport {
            application: self.app.name.clone(),
            revision,
            result,
            message,
            outcomes: self.outcomes,
            sync_id,
            dry_run: self.options.dry_run,
            health: (!self.options.dry_run).then(|| health::worst(&self.healths)),
        })
    }
}

impl Engine {
    /// Syncs the application. Fetch, render or resolve errors fail the sync before anything is
    /// applied or deleted; a failed object fails the sync (later waves are skipped, nothing is
    /// pruned) while the report still lists every object's outcome.
    pub async fn sync(&self, name: &str, options: SyncOptions) -> Result<SyncReport, EngineError> {
        self.timed_sync(name, options, None).await
    }

    /// A sync, counted and timed for `/metrics` (dry-runs are not syncs).
    async fn timed_sync(
        &self,
        name: &str,
        options: SyncOptions,
        prepared: Option<Prepared>,
    ) -> Result<SyncReport, EngineError> {
        let started = Instant::now();
        let dry_run = options.dry_run;
        let result = self.sync_from(name, options, prepared).await;
        if !dry_run {
            let outcome = match &result {
                Ok(report) => format!("{:?}", report.result).to_ascii_lowercase(),
                Err(_) => "error".to_owned(),
            };
            self.metrics
                .record_sync(&outcome, started.elapsed().as_secs_f64());
        }
        result
    }

    /// [`Engine::sync`] from what [`Engine::compare_for_sync`] just rendered and read (at the
    /// pinned or configured revision; `options.revision` is ignored).
    pub async fn sync_prepared(
        &self,
        name: &str,
        mut options: SyncOptions,
        prepared: Prepared,
    ) -> Result<SyncReport, EngineError> {
        options.revision = None;
        self.timed_sync(name, options, Some(prepared)).await
    }

    #[tracing::instrument(name = "sync", skip(self, options, prepared), fields(dry_run = options.dry_run))]
    async fn sync_from(
        &self,
        name: &str,
        options: SyncOptions,
        prepared: Option<Prepared>,
    ) -> Result<SyncReport, EngineError> {
        let app = self.find_application(name).await?;
        let app = &*app;
        let requested = options
            .revision
            .clone()
            .or(self.store.pinned(&app.name)?)
            .unwrap_or_else(|| app.source.revision.clone());
        let (desired, prepared_live) = match prepared {
            Some(Prepared { desired, live }) => (desired, Some(live)),
            None => (self.desired_or_failed(app, &requested, &options).await?, None),
        };
        let cluster = self.cluster(&app.destination.cluster).await?;
        let inventory = self.store.inventory(&app.name)?;
        let mut run = SyncRun {
            engine: self,
            app,
            project: self.project_of(app)?,
            cluster,
            desired,
            options: &options,
            outcomes: Vec::new(),
            failure: None,
            applied: BTreeMap::new(),
            recorded: self.store.applied(&app.name)?,
            applied_states: BTreeMap::new(),
            limit: AdaptiveLimit::default(),
            healths: Vec::new(),
        };
        let refused = self.refused_objects(app, &run.desired)?;
        if !refused.is_empty() {
            let sync_id = self.begin_recorded_sync(app, &run.desired, &requested, &options)?;
            let project = run.project.map_or("", |project| project.name.as_str());
            let reason = format!(
                "project {project} refuses {} object(s); nothing is applied or pruned",
                refused.len()
            );
            let refused: Vec<_> = refused
                .into_iter()
                .map(|(object, violation)| (object, violation.to_string()))
                .collect();
            let others = "not applied: the project refuses other objects of this application";
            run.refuse(&refused, &reason, others);
            return run.finish(&BTreeSet::new(), &inventory, &BTreeSet::new(), sync_id);
        }
        let live_objects = match prepared_live {
            Some(live) => live,
            None => {
                self.live_snapshot(app, &run.cluster, &run.desired, &inventory, &run.recorded)
                    .await?
            }
        };
        let live = live_objects.ownership();
        let objects: Vec<_> = run
            .desired
            .objects
            .iter()
            .map(|(object, _)| object.clone())
            .collect();
        let inventory_set: BTreeSet<ObjectRef> = inventory.keys().cloned().collect();
        let plan = plan(
            &app.name,
            &objects,
            &inventory_set,
            &live,
            PlanOptions {
                prune: options.prune,
                adopt: options.adopt,
            },
        )
        .map_err(|errors| EngineError::Waves {
            application: app.name.clone(),
            errors,
        })?;
        let sync_id = self.begin_recorded_sync(app, &run.desired, &requested, &options)?;
        let denied = self.policy_denials(app, &run.desired, &live_objects, &plan);
        if !denied.is_empty() {
            let reason = format!(
                "policy denies {} change(s); nothing is applied or pruned",
                denied.len()
            );
            let others = "not applied: policy denies other changes of this application";
            run.refuse(&denied, &reason, others);
            return run.finish(&BTreeSet::new(), &inventory, &BTreeSet::new(), sync_id);
        }

        for conflict in &plan.conflicts {
            let (OwnershipConflict::OwnedByOther { object, .. } | OwnershipConflict::Unmanaged { object }) =
                conflict;
            run.record(object, ObjectAction::Skipped, conflict.to_string());
            run.failure.get_or_insert_with(|| {
                format!("{} object(s) skipped: ownership conflict", plan.conflicts.len())
            });
        }
        run.apply_waves(&plan, &live_objects).await;
        let pruned = run.prune(&plan, &inventory).await?;
        for (reference, reason) in &plan.kept {
            run.record(reference, ObjectAction::Kept, keep_message(*reason));
        }

        run.finish(&plan.next_inventory, &inventory, &pruned, sync_id)
    }

    /// The changes a denying policy rule refuses: each object to apply (an update of its live
    /// state, or a creation) and each object to prune (a deletion). Warnings are logged.
    fn policy_denials(
        &self,
        app: &Application,
        desired: &DesiredState,
        live: &LiveSnapshot,
        plan: &Plan,
    ) -> Vec<(ObjectRef, String)> {
        let changes = desired
            .objects
            .iter()
            .map(|(object, _)| crate::admission::Change {
                object: &object.reference,
                new: Some(&object.manifest),
                old: live.get(&object.reference),
            })
            .chain(plan.prune.iter().filter_map(|reference| {
                Some(crate::admission::Change {
                    object: reference,
                    new: None,
                    old: Some(live.get(reference)?),
                })
            }));
        let mut denied = Vec::new();
        for (object, finding) in crate::admission::check(&self.policies, changes) {
            let message = format!("policy rule {}: {}", finding.rule, finding.message);
            match finding.action {
                driftless_policy::Action::Deny => denied.push((object, message)),
                driftless_policy::Action::Warn => {
                    tracing::warn!(application = %app.name, object = %object, "{message}");
                }
            }
        }
        denied
    }

    /// The history record of a sync that starts now; `None` for a dry-run, which records nothing.
    fn begin_recorded_sync(
        &self,
        app: &Application,
        desired: &DesiredState,
        requested: &str,
        options: &SyncOptions,
    ) -> Result<Option<i64>, EngineError> {
        if options.dry_run {
            return Ok(None);
        }
        let commit = desired.commit.as_str();
        Ok(Some(self.store.begin_sync(
            &app.name,
            commit,
            requested,
            options.trigger,
            now_millis(),
        )?))
    }

    /// The desired state at `requested`; when it cannot be had, a failed sync is recorded (not
    /// for a dry-run) before the error is returned.
    async fn desired_or_failed(
        &self,
        app: &Application,
        requested: &str,
        options: &SyncOptions,
    ) -> Result<DesiredState, EngineError> {
        let err = match self
            .desired_state(app, Some(requested), self.fetched_since(Duration::ZERO))
            .await
        {
            Ok(desired) => return Ok(desired),
            Err(err) => err,
        };
        if !options.dry_run {
            let id = self
                .store
                .begin_sync(&app.name, requested, requested, options.trigger, now_millis())?;
            self.store
                .finish_sync(id, SyncResult::Failed, &err.to_string(), &[], now_millis(), None)?;
        }
        Err(err)
    }

    /// Polls the health of `desired.objects[members]` until all are healthy (or suspended); `Err`
    /// names the first that is not, with its health message, after `timeout`.
    async fn wait_healthy(
        &self,
        cluster: &ClusterHandle,
        desired: &DesiredState,
        members: &[usize],
        timeout: Duration,
        progress: Option<&ProgressSink>,
    ) -> Result<(), String> {
        let started = Instant::now();
        let mut last_reported: Option<String> = None;
        loop {
            let mut waiting = None;
            for &index in members {
                let (object, resolved) = &desired.objects[index];
                let health = match cluster.objects.get(&resolved.resource, &object.reference).await {
                    Ok(Some(live)) => health::assess(&object.reference.group, &object.reference.kind, &live),
                    Ok(None) => Health::missing(),
                    Err(err) => Health::new(HealthState::Unknown, err.to_string()),
                };
                // A hook that failed (a Job past its backoff limit) will not recover.
                if health.state == HealthState::Degraded && hook_delete_policy(object).is_some() {
                    return Err(format!("hook {}: {}", object.reference, health.message));
                }
                if !matches!(health.state, HealthState::Healthy | HealthState::Suspended) {
                    waiting = Some(format!(
                        "{}: {} {}",
                        object.reference, health.state, health.message
                    ));
                    break;
                }
            }
            let Some(waiting) = waiting else { return Ok(()) };
            if last_reported.as_ref() != Some(&waiting) {
                ProgressSink::send(
                    progress,
                    SyncProgress::Waiting {
                        message: waiting.clone(),
                    },
                );
                last_reported = Some(waiting.clone());
            }
            if started.elapsed() > timeout {
                return Err(format!("after {timeout:?}, {waiting}"));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }
}

impl Engine {
    /// Syncs an earlier revision that was once synced successfully, then pins the application
    /// there: automated syncs stop until [`Engine::unpin`]. The GitOps-native alternative is a
    /// `git revert`, which keeps Git the source of truth.
    pub async fn rollback(
        &self,
        name: &str,
        revision: &str,
        mut options: SyncOptions,
    ) -> Result<SyncReport, EngineError> {
        let app = self.application(name)?;
        self.check_project(&app)?;
        let commit = self
            .mirrors
            .fetch_and_resolve(&app.source.repo_url, revision)
            .await
            .map_err(|source| EngineError::Git {
                application: app.name.clone(),
                source: Box::new(source),
            })?;
        if !self.store.was_synced(&app.name, commit.as_str())? {
            return Err(EngineError::NotInHistory {
                application: app.name.clone(),
                revision: revision.to_owned(),
            });
        }
        options.revision = Some(commit.to_string());
        options.trigger = Trigger::Rollback;
        let report = self.sync(name, options).await?;
        if report.result == SyncResult::Succeeded && !report.dry_run {
            self.store.pin(&app.name, commit.as_str())?;
        }
        Ok(report)
    }

    /// Stops automated syncs of the application (it is still compared and reported, and manual
    /// syncs still work) until [`Engine::resume`]; `false` if it already was suspended.
    pub fn suspend(&self, name: &str) -> Result<bool, EngineError> {
        let app = self.application(name)?;
        Ok(self.store.suspend(&app.name, now_millis())?)
    }

    /// Lets automated syncs of the application run again; `false` if it was not suspended.
    pub fn resume(&self, name: &str) -> Result<bool, EngineError> {
        let app = self.application(name)?;
        Ok(self.store.resume(&app.name)?)
    }

    /// Lets the application follow its configured revision again; `false` if it was not pinned.
    /// Pins the application at the revision its last successful sync applied (what the cluster
    /// runs): new commits are not deployed until [`Engine::unpin`]. Returns that revision.
    pub fn pin(&self, name: &str) -> Result<String, EngineError> {
        let app = self.application(name)?;
        let deployed =
            self.store
                .last_synced_revision(&app.name)?
                .ok_or_else(|| EngineError::NeverSynced {
                    application: app.name.clone(),
                })?;
        self.store.pin(&app.name, &deployed)?;
        Ok(deployed)
    }

    pub fn unpin(&self, name: &str) -> Result<bool, EngineError> {
        let app = self.application(name)?;
        Ok(self.store.unpin(&app.name)?)
    }
}
