//! Compare: an application's desired objects against the cluster — a server-side dry-run of each
//! object not known to be in sync, normalised and redacted ([`driftless_core::diff`]), health,
//! and what would be pruned. Hooks and skipped objects are not compared (they are run, not kept
//! in step), nor existing objects Flux's annotations leave alone. Changes nothing in the cluster;
//! records which objects it found in sync, so the next comparison need not dry-run them.

use std::collections::{BTreeMap, BTreeSet};

use driftless_core::application::Application;
use driftless_core::comparison::{AppComparison, ObjectStatus};
use driftless_core::diff::{ObjectDiff, compare as compare_object};
use driftless_core::plan::{WhenLive, skips_dry_run_on_missing_resource, validation_skipped, when_live};
use driftless_core::sync_order::wave_of;
use driftless_core::{DesiredObject, ObjectRef, applied, health, hooks, inventory, preview};
use driftless_kube::{ApplyOptions, FIELD_MANAGER, ObjectError, Resolved};

use crate::catalog::Catalog;
use crate::clusters::ClusterHandle;
use crate::desired::DesiredState;
use crate::error::Failure;
use crate::live::LiveSnapshot;
use crate::parts::Parts;

/// How to compare.
pub(crate) struct Options {
    /// Dry-run objects missing from the cluster too (for their defaults), not only changed ones.
    pub dry_run_missing: bool,
    /// Record objects found in sync, so that the next comparison need not dry-run them; a plan
    /// of a proposed change records nothing.
    pub record: bool,
    /// Objects besides the inventory that may be pruned when they are live and this
    /// application's own (a plan's objects removed between base and head), with the version
    /// to read them as.
    pub also_prunable: BTreeMap<ObjectRef, String>,
}

/// What a comparison rendered and read, handed to the sync that follows it so that it neither
/// renders nor reads again.
pub struct Prepared {
    pub(crate) desired: DesiredState,
    pub(crate) live: LiveSnapshot,
}

/// Compares `desired` (rendered by the caller) with the cluster.
pub(crate) async fn compare(
    parts: &Parts,
    app: &Application,
    desired: DesiredState,
    options: Options,
) -> Result<(AppComparison, Prepared), Failure> {
    let Options {
        dry_run_missing,
        record,
        also_prunable,
    } = options;
    // Not even a dry-run of an object the project refuses.
    parts.catalog.refuse_objects(app, &desired.objects)?;
    // What a sync would refuse (a wave that is no integer, a hook phase driftless does not know)
    // fails the comparison too, rather than leaving such a hook out of it unnoticed.
    let invalid: Vec<_> = desired
        .objects
        .iter()
        .flat_map(|(object, _)| [hooks::role_of(object).err(), wave_of(object).err()])
        .flatten()
        .collect();
    if !invalid.is_empty() {
        return Err(Failure::Waves(invalid));
    }
    let cluster = parts.clusters.get(&app.destination.cluster).await?;
    let mut inventory = parts.store.inventory(&app.name)?;
    for (reference, version) in also_prunable {
        inventory.entry(reference).or_insert(version);
    }
    let recorded = parts.store.applied(&app.name)?;
    let live = parts
        .live
        .snapshot(app, &cluster, &desired, &inventory, &recorded)
        .await?;
    let redaction = parts.redaction();
    let mut newly_in_sync = BTreeMap::new();
    let mut objects = Vec::with_capacity(desired.objects.len());
    let to_create = preview::namespaces_to_create(
        desired.objects.iter().map(|(object, _)| &object.reference),
        |namespace| live.get(namespace).is_some() || live.unchanged(namespace).is_some(),
    );
    for (object, resolved) in desired.objects.iter() {
        if !hooks::kept_in_step(object) {
            continue;
        }
        if let Some(cached) = live.unchanged(&object.reference) {
            objects.push(ObjectStatus::unchanged(&object.reference, cached.health.clone()));
            continue;
        }
        let live_object = live.get(&object.reference);
        if let (WhenLive::LeaveAlone(_), Some(live_object)) = (when_live(object, live_object), live_object) {
            let health = health::assess(&object.reference.group, &object.reference.kind, live_object);
            objects.push(ObjectStatus::unchanged(&object.reference, health));
            continue;
        }
        // Brought in sync from this manifest and untouched since: no dry-run needed.
        let diff = if live.read_unchanged(&recorded, app, object) {
            if let Some(state) = live.refreshed(&recorded, app, object) {
                newly_in_sync.insert(object.reference.clone(), Some(state));
            }
            ObjectDiff::Unchanged
        } else if live_object.is_none()
            && (!dry_run_missing || preview::in_namespace_to_create(&object.reference, &to_create))
        {
            compare_object(
                &object.reference,
                None,
                &object.manifest,
                &app.ignore_differences,
                &redaction,
            )
        } else {
            // A kind not served yet (SkipDryRunOnMissingResource): the object is to be created.
            let would_be = would_be(&cluster, object, resolved)
                .await?
                .unwrap_or_else(|| object.manifest.clone());
            let diff = compare_object(
                &object.reference,
                live_object,
                &would_be,
                &app.ignore_differences,
                &redaction,
            );
            if diff.is_in_sync()
                && let Some(state) = live_object.and_then(|live| applied::applied_state(app, object, live))
            {
                newly_in_sync.insert(object.reference.clone(), Some(state));
            }
            diff
        };
        objects.push(ObjectStatus::of(object, live_object, diff, FIELD_MANAGER));
    }
    if record && !newly_in_sync.is_empty() {
        parts.store.update_applied(&app.name, &newly_in_sync)?;
    }
    let to_prune = left_to_prune(&parts.catalog, app, &desired, inventory, &live)?;
    let comparison = AppComparison::new(&app.name, desired.commit.as_str(), objects, to_prune);
    Ok((comparison, Prepared { desired, live }))
}

/// What the server says the object would become once applied (a server-side dry-run); `None`
/// when its kind is not served and the object says to skip the dry-run then
/// (`SkipDryRunOnMissingResource=true`: its CRD comes from elsewhere in the same sync).
async fn would_be(
    cluster: &ClusterHandle,
    object: &DesiredObject,
    resolved: &Resolved,
) -> Result<Option<serde_json::Value>, Failure> {
    let dry_run = ApplyOptions {
        dry_run: true,
        force: true,
        skip_validation: validation_skipped(object),
    };
    match cluster.objects.apply(&resolved.resource, object, dry_run).await {
        Ok(would_be) => Ok(Some(would_be)),
        Err(ObjectError::Rejected { code: 404, .. })
            if skips_dry_run_on_missing_resource(&object.manifest) =>
        {
            Ok(None)
        }
        Err(source) => Err(source.into()),
    }
}

/// Objects this application applied before that left Git, are still its own, and that its
/// project lets it delete.
fn left_to_prune(
    catalog: &Catalog,
    app: &Application,
    desired: &DesiredState,
    inventory: BTreeMap<ObjectRef, String>,
    live: &LiveSnapshot,
) -> Result<Vec<ObjectRef>, Failure> {
    let project = catalog.project_of(app)?;
    let declared: BTreeSet<&ObjectRef> = desired.objects.iter().map(|(o, _)| &o.reference).collect();
    Ok(inventory::left_to_prune(
        &app.name,
        inventory,
        &declared,
        |reference| live.ownership_of(reference),
        |reference| Catalog::prune_refused(project, app, reference).is_some(),
    ))
}
