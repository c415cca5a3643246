//! Sync: plan ([`driftless_core::plan`]), run `PreSync` hooks, apply wave by wave with the
//! `Sync` hooks, run `PostSync` hooks, prune after success (`SyncFail` hooks after a failure),
//! record history and inventory. Fetch, render or resolve errors fail the sync before anything is
//! applied or deleted; a failed object fails the sync (later waves are skipped, nothing is
//! pruned) while the report still lists every object's outcome. [`run`] holds the sync while it
//! runs.

mod run;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use driftless_core::ObjectRef;
use driftless_core::application::Application;
use driftless_core::health::Health;
use driftless_core::plan::{OwnershipConflict, Plan, PlanOptions, plan};
use driftless_store::{ObjectAction, ObjectOutcome, SyncResult, Trigger};
use serde::{Deserialize, Serialize};

use crate::admission;
use crate::clock::now_millis;
use crate::compare::Prepared;
use crate::desired::DesiredState;
use crate::error::Failure;
use crate::live::LiveSnapshot;
use crate::parts::Parts;
use run::{SyncRun, keep_message};

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
    pub(crate) fn send(sink: Option<&Self>, event: SyncProgress) {
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

/// Syncs `app` — from what a comparison just rendered and read when `prepared` is given (at the
/// pinned or configured revision), else at `options.revision` (rollback), the pinned or the
/// configured revision. Counted and timed for `/metrics` (dry-runs are not syncs).
pub(crate) async fn sync(
    parts: &Parts,
    app: &Application,
    options: SyncOptions,
    prepared: Option<Prepared>,
) -> Result<SyncReport, Failure> {
    let started = Instant::now();
    let dry_run = options.dry_run;
    let result = sync_from(parts, app, options, prepared).await;
    if !dry_run {
        let outcome = match &result {
            Ok(report) => format!("{:?}", report.result).to_ascii_lowercase(),
            Err(_) => "error".to_owned(),
        };
        parts
            .metrics
            .record_sync(&outcome, started.elapsed().as_secs_f64());
    }
    result
}

#[tracing::instrument(name = "sync", skip_all, fields(application = %app.name, dry_run = options.dry_run))]
async fn sync_from(
    parts: &Parts,
    app: &Application,
    mut options: SyncOptions,
    prepared: Option<Prepared>,
) -> Result<SyncReport, Failure> {
    if prepared.is_some() {
        options.revision = None;
    }
    let requested = options
        .revision
        .clone()
        .or(parts.store.pinned(&app.name)?)
        .unwrap_or_else(|| app.source.revision.clone());
    let (desired, prepared_live) = match prepared {
        Some(Prepared { desired, live }) => (desired, Some(live)),
        None => (desired_or_failed(parts, app, &requested, &options).await?, None),
    };
    let cluster = parts.clusters.get(&app.destination.cluster).await?;
    let inventory = parts.store.inventory(&app.name)?;
    let mut run = SyncRun::new(parts, app, cluster, desired, &options)?;
    let refused = parts.catalog.refused_objects(app, &run.desired.objects)?;
    if !refused.is_empty() {
        let sync_id = begin_recorded_sync(parts, app, &run.desired, &requested, &options)?;
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
            parts
                .live
                .snapshot(app, &run.cluster, &run.desired, &inventory, &run.recorded)
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
    .map_err(Failure::Waves)?;
    let sync_id = begin_recorded_sync(parts, app, &run.desired, &requested, &options)?;
    run.sync_id = sync_id;
    let denied = policy_denials(parts, app, &run.desired, &live_objects, &plan);
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
        run.failure
            .get_or_insert_with(|| format!("{} object(s) skipped: ownership conflict", plan.conflicts.len()));
    }
    run.record_never_applied();
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
    parts: &Parts,
    app: &Application,
    desired: &DesiredState,
    live: &LiveSnapshot,
    plan: &Plan,
) -> Vec<(ObjectRef, String)> {
    let changes = desired
        .objects
        .iter()
        .map(|(object, _)| admission::Change {
            object: &object.reference,
            new: Some(&object.manifest),
            old: live.get(&object.reference),
        })
        .chain(plan.prune.iter().filter_map(|reference| {
            Some(admission::Change {
                object: reference,
                new: None,
                old: Some(live.get(reference)?),
            })
        }));
    let mut denied = Vec::new();
    for (object, finding) in admission::check(parts.catalog.policies(), changes) {
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
    parts: &Parts,
    app: &Application,
    desired: &DesiredState,
    requested: &str,
    options: &SyncOptions,
) -> Result<Option<i64>, Failure> {
    if options.dry_run {
        return Ok(None);
    }
    let commit = desired.commit.as_str();
    Ok(Some(parts.store.begin_sync(
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
    parts: &Parts,
    app: &Application,
    requested: &str,
    options: &SyncOptions,
) -> Result<DesiredState, Failure> {
    let fetched_since = parts.desired.clock().since(Duration::ZERO);
    let err = match parts
        .desired
        .state(parts.context(), app, Some(requested), fetched_since)
        .await
    {
        Ok(desired) => return Ok(desired),
        Err(err) => err,
    };
    if !options.dry_run {
        let id = parts
            .store
            .begin_sync(&app.name, requested, requested, options.trigger, now_millis())?;
        parts
            .store
            .finish_sync(id, SyncResult::Failed, &err.to_string(), &[], now_millis(), None)?;
    }
    Err(err)
}
