//! One sync while it runs ([`SyncRun`]): apply phase by phase and wave by wave — each stage's
//! changed objects concurrently, unchanged ones not at all —, hooks as [`driftless_core::hooks`]
//! says (run on every sync, `generateName` ones created afresh, `SyncFail` ones after a failure),
//! CRDs Established before their objects, each wave healthy before the next, prune after
//! success, and one store transaction at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use driftless_core::application::Application;
use driftless_core::applied::{self, AppliedState};
use driftless_core::diff::keep_ignored_live_values;
use driftless_core::health::{self, Health};
use driftless_core::hooks::{self, BeforeApply};
use driftless_core::plan::{
    KeepReason, Plan, WhenLive, object_sync_option, skips_dry_run_on_missing_resource, validation_skipped,
    when_live,
};
use driftless_core::project::Project;
use driftless_core::sync_order::{Stage, Wave};
use driftless_core::{HealthState, ObjectRef, inventory};
use driftless_kube::{ApiResource, ApplyOptions, ObjectError};
use driftless_store::{ObjectAction, ObjectOutcome, SyncEffects, SyncResult};
use serde_json::Value;

use super::{ProgressSink, SyncOptions, SyncProgress, SyncReport};
use crate::catalog::Catalog;
use crate::clock::now_millis;
use crate::clusters::ClusterHandle;
use crate::desired::DesiredState;
use crate::error::Failure;
use crate::live::LiveSnapshot;
use crate::parts::Parts;
use crate::throttle::{self, AdaptiveLimit};

/// How long a CRD may take to become Established before its custom objects are applied.
const CRD_ESTABLISHED_TIMEOUT: Duration = Duration::from_mins(1);
/// How often health is polled while waiting between waves.
const HEALTH_POLL: Duration = Duration::from_millis(500);
/// How long a hook deleted before it is created again may take to be gone (its finalizers).
const HOOK_GONE_TIMEOUT: Duration = Duration::from_mins(1);

/// Why a wait during a sync ended without what it waited for.
#[derive(Debug, thiserror::Error)]
pub(super) enum WaitError {
    #[error("still there after {0:?}")]
    StillThere(Duration),
    #[error(transparent)]
    Cluster(#[from] ObjectError),
    /// A hook that failed (a Job past its backoff limit) will not recover.
    #[error("hook {object}: {message}")]
    HookFailed { object: ObjectRef, message: String },
    /// `waiting`: the first object not healthy, its state and health message.
    #[error("after {timeout:?}, {waiting}")]
    TimedOut { timeout: Duration, waiting: String },
}

async fn wait_gone(
    objects: &driftless_kube::Objects,
    resource: &ApiResource,
    reference: &ObjectRef,
) -> Result<(), WaitError> {
    let started = Instant::now();
    loop {
        match objects.get(resource, reference).await? {
            None => return Ok(()),
            Some(_) if started.elapsed() < HOOK_GONE_TIMEOUT => tokio::time::sleep(HEALTH_POLL).await,
            Some(_) => return Err(WaitError::StillThere(HOOK_GONE_TIMEOUT)),
        }
    }
}

pub(super) fn keep_message(reason: KeepReason) -> &'static str {
    match reason {
        KeepReason::PruningOff => "left Git; pruning is off for this sync (requires pruning)",
        KeepReason::PruneDisabled => {
            "left Git; kept by its annotations (driftless.dev/prune: \"false\", sync-options \
             Prune=false or Delete=false, or Flux's prune/reconcile: disabled)"
        }
        KeepReason::Hook => "left Git; a hook, deleted only by its hook-delete-policy",
        KeepReason::OwnedByOther => "left Git; now owned by another application, not pruned",
        KeepReason::NotOurs => "left Git; no longer carries this application's label, not pruned",
    }
}

/// The state of one sync while it runs.
pub(super) struct SyncRun<'a> {
    pub parts: &'a Parts,
    pub app: &'a Application,
    /// The application's project; `None`: unrestricted.
    pub project: Option<&'a Project>,
    pub cluster: ClusterHandle,
    pub desired: DesiredState,
    pub options: &'a SyncOptions,
    pub outcomes: Vec<ObjectOutcome>,
    /// The first reason the sync failed; `None` while it succeeds.
    pub failure: Option<String>,
    /// Objects applied in this run, with the version they were applied as.
    pub applied: BTreeMap<ObjectRef, String>,
    /// What each object looked like when last brought in sync (read at the start).
    pub recorded: BTreeMap<ObjectRef, AppliedState>,
    /// What to remember (or forget, `None`) of objects touched by this run.
    pub applied_states: BTreeMap<ObjectRef, Option<AppliedState>>,
    pub limit: AdaptiveLimit,
    /// Health of each object as last seen in this run (from the apply answer or the snapshot).
    pub healths: Vec<Health>,
    /// The history record of this sync (`None` for a dry-run): hooks created from
    /// `generateName` are labelled with it.
    pub sync_id: Option<i64>,
    /// For each hook created from `generateName` in this run, the object the server named.
    pub generated: BTreeMap<ObjectRef, ObjectRef>,
}

impl<'a> SyncRun<'a> {
    /// A sync of `app` that has applied nothing yet.
    pub(super) fn new(
        parts: &'a Parts,
        app: &'a Application,
        cluster: ClusterHandle,
        desired: DesiredState,
        options: &'a SyncOptions,
    ) -> Result<Self, Failure> {
        Ok(Self {
            parts,
            app,
            project: parts.catalog.project_of(app)?,
            cluster,
            desired,
            options,
            outcomes: Vec::new(),
            failure: None,
            applied: BTreeMap::new(),
            recorded: parts.store.applied(&app.name)?,
            applied_states: BTreeMap::new(),
            limit: AdaptiveLimit::default(),
            healths: Vec::new(),
            sync_id: None,
            generated: BTreeMap::new(),
        })
    }
}

impl SyncRun<'_> {
    pub(super) fn record(&mut self, object: &ObjectRef, action: ObjectAction, message: impl Into<String>) {
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

    pub(super) fn fail(&mut self, object: &ObjectRef, message: String, reason: impl FnOnce() -> String) {
        self.failure.get_or_insert_with(reason);
        self.record(object, ObjectAction::Failed, message);
    }

    /// Fails closed: when the project refuses any object, or a policy denies any change,
    /// nothing at all is applied or pruned (a half-applied application is no safer), and every
    /// refused object is reported with why; the others are skipped with `others`.
    pub(super) fn refuse(&mut self, refused: &[(ObjectRef, String)], reason: &str, others: &str) {
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

    fn failed_objects(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|outcome| outcome.action == ObjectAction::Failed)
            .count()
    }

    /// Reports the objects marked never to be applied (`Skip`, Flux's `ssa: Ignore` and
    /// `reconcile: disabled`), which no wave holds.
    pub(super) fn record_never_applied(&mut self) {
        let declared = std::sync::Arc::clone(&self.desired.objects);
        for (object, _) in declared.iter() {
            if hooks::role_of(object) == Ok(hooks::Role::Skipped) {
                self.record(
                    &object.reference,
                    ObjectAction::Skipped,
                    "never applied: marked Skip (argocd.argoproj.io/hook or driftless.dev/hook), \
                     kustomize.toolkit.fluxcd.io/ssa: Ignore or kustomize.toolkit.fluxcd.io/reconcile: \
                     disabled",
                );
            }
        }
    }

    /// Applies the plan's phases wave by wave; after a failure, later waves are skipped and the
    /// `SyncFail` hooks run (the sync stays failed).
    #[tracing::instrument(level = "debug", skip_all)]
    pub(super) async fn apply_waves(&mut self, plan: &Plan, live_objects: &LiveSnapshot) {
        self.run_waves(&plan.waves, live_objects, "not applied: an earlier wave failed")
            .await;
        if self.failure.is_some() && !self.options.dry_run && !plan.sync_fail.is_empty() {
            // Their own failure is recorded too; the sync already failed.
            self.run_waves(
                &plan.sync_fail,
                live_objects,
                "not applied: an earlier SyncFail hook failed",
            )
            .await;
        } else {
            for index in plan.sync_fail.iter().flat_map(Wave::objects) {
                let reference = self.desired.objects[index].0.reference.clone();
                let message = if self.options.dry_run {
                    "SyncFail hook: would run only if the sync failed (dry-run)"
                } else {
                    "SyncFail hook: not run, the sync did not fail"
                };
                self.record(&reference, ObjectAction::Skipped, message);
            }
        }
    }

    async fn run_waves(&mut self, waves: &[Wave], live_objects: &LiveSnapshot, skipped: &str) {
        let failed_before = self.failed_objects();
        for (position, wave) in waves.iter().enumerate() {
            if self.failed_objects() > failed_before {
                for index in wave.objects() {
                    let reference = self.desired.objects[index].0.reference.clone();
                    self.record(&reference, ObjectAction::Skipped, skipped);
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
                if *stage == Stage::Foundations
                    && !self.options.dry_run
                    && self.failed_objects() == failed_before
                {
                    self.await_crds(indices).await;
                }
            }
            let mut members: Vec<usize> = wave.objects().collect();
            // A hook must be seen to succeed or fail, even in the last wave; the last wave's
            // other objects are not waited for, as before hooks.
            if position + 1 == waves.len() {
                members.retain(|&index| !hooks::kept_in_step(&self.desired.objects[index].0));
            }
            let runs_hooks =
                hooks::wave_awaits_hooks(members.iter().map(|&index| &self.desired.objects[index].0));
            if (position + 1 < waves.len() || runs_hooks)
                && !self.options.dry_run
                && self.failed_objects() == failed_before
            {
                let waited = wait_healthy(
                    &self.cluster,
                    &self.desired,
                    &self.generated,
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
            if !hooks::delete_after_wave(object, succeeded) {
                continue;
            }
            let reference = self
                .generated
                .get(&object.reference)
                .unwrap_or(&object.reference)
                .clone();
            match self.cluster.objects.delete(&resolved.resource, &reference).await {
                Ok(_) => {
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

    /// `BeforeHookCreation`: a live hook of this application is deleted, and gone, before it is
    /// created again (it runs anew on every sync, and a Job's template cannot change in place).
    /// For a `generateName` hook, that is every object earlier syncs created from it.
    async fn delete_hooks_before_creation(&mut self, to_apply: &mut Vec<usize>, live_objects: &LiveSnapshot) {
        if self.options.dry_run {
            return;
        }
        let mut kept = Vec::with_capacity(to_apply.len());
        for index in std::mem::take(to_apply) {
            let (object, resolved) = &self.desired.objects[index];
            let reference = object.reference.clone();
            let deleted = if let Some(selector) = hooks::generated_selector(object, &self.app.name) {
                if hooks::hook_delete_policy(object).is_some_and(|policy| policy.before_creation) {
                    self.delete_generated(&resolved.resource, &reference, &selector)
                        .await
                } else {
                    Ok(())
                }
            } else {
                let live = live_objects.get(&reference);
                if hooks::before_apply(object, live, &self.app.name) == BeforeApply::DeleteFirst {
                    let objects = &self.cluster.objects;
                    match objects.delete(&resolved.resource, &reference).await {
                        Ok(_) => wait_gone(objects, &resolved.resource, &reference).await,
                        Err(err) => Err(WaitError::from(err)),
                    }
                } else {
                    Ok(())
                }
            };
            match deleted {
                Ok(()) => kept.push(index),
                Err(err) => self.fail(&reference, err.to_string(), || {
                    format!("deleting hook {reference} before creating it again failed")
                }),
            }
        }
        *to_apply = kept;
    }

    /// Deletes every object this application created from the `generateName` hook `reference`
    /// in earlier syncs (found by `selector`), and waits until they are gone.
    async fn delete_generated(
        &self,
        resource: &ApiResource,
        reference: &ObjectRef,
        selector: &str,
    ) -> Result<(), WaitError> {
        let objects = &self.cluster.objects;
        let earlier = objects
            .list_metadata(resource, reference.namespace.as_deref(), Some(selector))
            .await?;
        for listed in earlier {
            let created = ObjectRef {
                name: listed.name,
                ..reference.clone()
            };
            objects.delete(resource, &created).await?;
            wait_gone(objects, resource, &created).await?;
        }
        Ok(())
    }

    /// Applies the objects of one stage concurrently (they do not depend on each other), except
    /// those already as Git wants them: those cost no request at all. Hooks are applied on every
    /// sync; an object Flux's annotations leave alone is not touched once it exists.
    async fn apply_stage(&mut self, indices: &[usize], live_objects: &LiveSnapshot) {
        let mut to_apply = Vec::with_capacity(indices.len());
        let mut hooks_to_run = Vec::new();
        for &index in indices {
            let object = &self.desired.objects[index].0;
            let cached = live_objects.unchanged(&object.reference);
            let live = live_objects.get(&object.reference);
            if !hooks::kept_in_step(object) {
                hooks_to_run.push(index);
            } else if let (WhenLive::LeaveAlone(why), true) =
                (when_live(object, live), live.is_some() || cached.is_some())
            {
                let reference = object.reference.clone();
                self.applied.insert(reference.clone(), object.gvk.version.clone());
                self.record(
                    &reference,
                    ObjectAction::Unchanged,
                    format!("exists; left as it is ({why})"),
                );
            } else if cached.is_some() || live_objects.read_unchanged(&self.recorded, self.app, object) {
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
        self.delete_hooks_before_creation(&mut hooks_to_run, live_objects)
            .await;
        to_apply.extend(hooks_to_run);
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

    /// The request that applies one object (server-side apply, a replace when asked for, or a
    /// create for a `generateName` hook).
    fn apply_request(
        &self,
        index: usize,
        live_objects: &LiveSnapshot,
    ) -> impl Future<Output = Result<Value, ObjectError>> + use<> {
        let (object, resolved) = &self.desired.objects[index];
        let options = ApplyOptions {
            force: self.options.force,
            dry_run: self.options.dry_run,
            skip_validation: validation_skipped(object),
        };
        // ignoreDifferences hold for apply too: an ignored field of an existing object is left
        // to whoever owns it, never reverted.
        let rules = applied::rules_for(self.app, &object.reference);
        let mut object = object.clone();
        if let Some(live) = live_objects.get(&object.reference).filter(|_| !rules.is_empty()) {
            keep_ignored_live_values(&mut object.manifest, &rules, live);
        }
        let generated = hooks::generated_name(&object).is_some();
        hooks::label_generated(&mut object, self.sync_id);
        let replace = object_sync_option(&object, "Replace").unwrap_or(self.app.sync_policy.replace);
        let (objects, resource) = (self.cluster.objects.clone(), resolved.resource.clone());
        async move {
            if generated {
                objects.create(&resource, &object, options).await
            } else if replace {
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
        let mut reference = object.reference.clone();
        let hook = !hooks::kept_in_step(object);
        match result {
            Ok(after) => {
                if hooks::generated_name(object).is_some() {
                    let created = ObjectRef {
                        name: after
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        ..reference.clone()
                    };
                    self.generated.insert(reference.clone(), created.clone());
                    reference = created;
                }
                let live = live_objects.get(&object.reference);
                let uid = |object: &Value| object.pointer("/metadata/uid").cloned();
                let action = match live {
                    None => ObjectAction::Created,
                    // A hook deleted before it was created again is a new object.
                    Some(before) if uid(before) != uid(&after) && !self.options.dry_run => {
                        ObjectAction::Created
                    }
                    Some(before)
                        if applied::resource_version(before) != applied::resource_version(&after)
                            && !self.options.dry_run =>
                    {
                        ObjectAction::Configured
                    }
                    Some(_) => ObjectAction::Unchanged,
                };
                // Hooks are run, not kept in step: nothing of them is recorded for comparisons
                // or the inventory.
                if hook {
                    self.record(&reference, action, "hook");
                    return;
                }
                if !self.options.dry_run {
                    let state = applied::applied_state(self.app, object, &after);
                    self.applied_states.insert(reference.clone(), state);
                    self.healths
                        .push(health::assess(&reference.group, &reference.kind, &after));
                }
                self.applied.insert(reference.clone(), object.gvk.version.clone());
                // Argo CD reads CreateNamespace only on an Application; said, not refused.
                let note = if object_sync_option(object, "CreateNamespace").is_some() {
                    "sync option CreateNamespace belongs to the application, not an object: ignored"
                } else {
                    ""
                };
                self.record(&reference, action, note);
            }
            // SkipDryRunOnMissingResource: its kind is to be served by the time the sync applies
            // it (a CRD another application installs), so a dry-run cannot ask the server.
            Err(ObjectError::Rejected { code: 404, .. })
                if skips_dry_run_on_missing_resource(&object.manifest) && self.options.dry_run =>
            {
                self.record(
                    &reference,
                    ObjectAction::Created,
                    "would be created once its kind is served (SkipDryRunOnMissingResource)",
                );
            }
            Err(ObjectError::Rejected { code: 404, .. })
                if skips_dry_run_on_missing_resource(&object.manifest) =>
            {
                let message = format!(
                    "the API server does not serve kind {} in {} yet (SkipDryRunOnMissingResource: \
                     its CustomResourceDefinition must be installed before this sync applies it)",
                    object.gvk.kind,
                    object.gvk.api_version()
                );
                self.fail(&reference, message, || format!("{reference} failed"));
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
        if let Err(message) = wait_healthy(
            &self.cluster,
            &self.desired,
            &self.generated,
            &crds,
            CRD_ESTABLISHED_TIMEOUT,
            self.options.progress.as_ref(),
        )
        .await
        {
            let first = self.desired.objects[crds[0]].0.reference.clone();
            let message = message.to_string();
            self.fail(&first, message.clone(), || message);
        }
        // Kinds the new CRDs define are served now.
        self.cluster.discovery.invalidate();
    }

    /// Prunes after a fully successful apply; returns what was deleted.
    pub(super) async fn prune(
        &mut self,
        plan: &Plan,
        inventory: &BTreeMap<ObjectRef, String>,
    ) -> Result<BTreeSet<ObjectRef>, Failure> {
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
            if let Some(violation) = Catalog::prune_refused(self.project, self.app, reference) {
                self.record(
                    reference,
                    ObjectAction::Kept,
                    format!("left Git; not pruned: {violation}"),
                );
                continue;
            }
            let version = inventory.get(reference).map_or("", String::as_str);
            let Some(resource) = self.cluster.resource_for(reference, version).await? else {
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
    pub(super) fn finish(
        self,
        next_inventory: &BTreeSet<ObjectRef>,
        inventory: &BTreeMap<ObjectRef, String>,
        pruned: &BTreeSet<ObjectRef>,
        sync_id: Option<i64>,
    ) -> Result<SyncReport, Failure> {
        let result = if self.failure.is_some() {
            SyncResult::Failed
        } else {
            SyncResult::Succeeded
        };
        let message = self.failure.clone().unwrap_or_default();
        let store = &self.parts.store;
        if let Some(id) = sync_id {
            let next = inventory::after_sync(
                result == SyncResult::Succeeded,
                next_inventory,
                inventory,
                &self.applied,
                pruned,
            );
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

/// Polls the health of `desired.objects[members]` until all are healthy (or suspended); `Err`
/// names the first that is not, with its health message, after `timeout`.
async fn wait_healthy(
    cluster: &ClusterHandle,
    desired: &DesiredState,
    generated: &BTreeMap<ObjectRef, ObjectRef>,
    members: &[usize],
    timeout: Duration,
    progress: Option<&ProgressSink>,
) -> Result<(), WaitError> {
    let started = Instant::now();
    let mut last_reported: Option<String> = None;
    loop {
        let mut waiting = None;
        for &index in members {
            let (object, resolved) = &desired.objects[index];
            let reference = generated.get(&object.reference).unwrap_or(&object.reference);
            let health = match cluster.objects.get(&resolved.resource, reference).await {
                Ok(Some(live)) => health::assess(&object.reference.group, &object.reference.kind, &live),
                Ok(None) => Health::missing(),
                Err(err) => Health::new(HealthState::Unknown, err.to_string()),
            };
            // A hook that failed (a Job past its backoff limit) will not recover.
            if hooks::failed_for_good(object, health.state) {
                return Err(WaitError::HookFailed {
                    object: reference.clone(),
                    message: health.message,
                });
            }
            if !matches!(health.state, HealthState::Healthy | HealthState::Suspended) {
                waiting = Some(format!("{reference}: {} {}", health.state, health.message));
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
            return Err(WaitError::TimedOut { timeout, waiting });
        }
        tokio::time::sleep(HEALTH_POLL).await;
    }
}
