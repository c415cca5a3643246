//! The sync plan: a pure function of what Git declares, what this application applied before
//! (its inventory) and who owns the live objects.
//!
//! Ownership is marked on every object driftless applies with the label
//! [`APPLICATION_LABEL`]`=<application>`. An application never takes over an object another
//! application owns, never adopts an object driftless did not create unless asked to, and never
//! deletes anything that does not carry its own label. Pruning comes after everything else was
//! applied, in reverse apply order (namespaced objects, then cluster-scoped ones, then CRDs and
//! Namespaces), and the annotation [`PRUNE_ANNOTATION`]`: "false"` keeps an object.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hooks::{Role, SyncPhase, kept_in_step, role_of};
use crate::sync_order::{InvalidWave, Wave, kind_rank, plan_order, stage_of_reference};
use crate::{DesiredObject, ObjectRef};

/// The field manager driftless applies as (server-side apply).
pub const FIELD_MANAGER: &str = "driftless";
/// The label marking which application owns an object.
pub const APPLICATION_LABEL: &str = "driftless.dev/application";
/// `"false"` on a live object: never prune it.
pub const PRUNE_ANNOTATION: &str = "driftless.dev/prune";

/// Flux's per-object switch: `disabled` — in Git, never applied, compared or pruned (Argo CD's
/// `Skip`); on a live object, never changed nor pruned.
pub const FLUX_RECONCILE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/reconcile";
/// Flux's per-object apply mode: `IfNotPresent` — created when absent, never updated; `Ignore`
/// — never applied, compared or pruned.
pub const FLUX_SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";
/// Flux's `disabled`: never pruned.
pub const FLUX_PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";
/// `IgnoreExtraneous`: a live object that Git no longer declares does not make the application
/// OutOfSync (it is still pruned when pruning is on, as in Argo CD).
pub const COMPARE_OPTIONS_ANNOTATION: &str = "driftless.dev/compare-options";
/// Argo CD's equivalent.
pub const ARGO_COMPARE_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/compare-options";

/// What a live object's annotations say about deleting and comparing it once Git no longer
/// declares it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMarks {
    /// Never pruned: [`PRUNE_ANNOTATION`] `"false"`, sync option `Prune=false` (or `confirm`,
    /// which driftless has no way to give) or `Delete=false`, Flux's `prune: disabled`,
    /// `reconcile: disabled` or `ssa: Ignore`.
    pub prune_disabled: bool,
    /// Not counted as left to prune in a comparison: `IgnoreExtraneous`, Flux's `reconcile:
    /// disabled` or `ssa: Ignore`.
    pub extraneous_ignored: bool,
    /// A hook: only its deletion policy deletes it, and it is never extraneous.
    pub hook: bool,
}

impl LiveMarks {
    /// Reads the marks through `annotation`, which gives the value of one annotation.
    #[must_use]
    pub fn from_annotations<'a>(annotation: impl Fn(&str) -> Option<&'a str>) -> Self {
        let is = |key: &str, expected: &str| {
            annotation(key).is_some_and(|value| value.trim().eq_ignore_ascii_case(expected))
        };
        let sync_option_off = |key: &str| {
            [SYNC_OPTIONS_ANNOTATION, ARGO_SYNC_OPTIONS_ANNOTATION]
                .iter()
                .filter_map(|name| annotation(name))
                .any(|value| option_in(value, key) == Some(false))
        };
        let left_alone = is(FLUX_RECONCILE_ANNOTATION, "disabled") || is(FLUX_SSA_ANNOTATION, "Ignore");
        let ignore_extraneous = [COMPARE_OPTIONS_ANNOTATION, ARGO_COMPARE_OPTIONS_ANNOTATION]
            .iter()
            .filter_map(|name| annotation(name))
            .any(|value| {
                value
                    .split(',')
                    .any(|option| option.trim().eq_ignore_ascii_case("IgnoreExtraneous"))
            });
        let hook = [
            crate::hooks::HOOK_ANNOTATION,
            crate::hooks::ARGO_HOOK_ANNOTATION,
            crate::hooks::HELM_HOOK_ANNOTATION,
            crate::hooks::HOOK_DELETE_POLICY_ANNOTATION,
            crate::hooks::ARGO_HOOK_DELETE_POLICY_ANNOTATION,
        ]
        .iter()
        .any(|name| annotation(name).is_some());
        Self {
            prune_disabled: is(PRUNE_ANNOTATION, "false")
                || sync_option_off("Prune")
                || sync_option_off("Delete")
                || is(FLUX_PRUNE_ANNOTATION, "disabled")
                || left_alone,
            extraneous_ignored: ignore_extraneous || left_alone,
            hook,
        }
    }
}

/// What the cluster says about an object's ownership (only what planning needs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveOwnership {
    /// The value of [`APPLICATION_LABEL`], if any.
    pub owner: Option<String>,
    pub marks: LiveMarks,
}

impl LiveOwnership {
    /// Reads ownership from a live object.
    #[must_use]
    pub fn of(object: &Value) -> Self {
        let metadata = object.get("metadata");
        let value = |map: &str, key: &str| {
            metadata
                .and_then(|metadata| metadata.get(map))
                .and_then(|entries| entries.get(key))
                .and_then(Value::as_str)
        };
        Self::from_metadata(value("labels", APPLICATION_LABEL), |key| {
            value("annotations", key)
        })
    }

    /// Ownership from the value of [`APPLICATION_LABEL`] and the object's annotations (for
    /// metadata read without the object).
    #[must_use]
    pub fn from_metadata<'a>(
        application_label: Option<&str>,
        annotation: impl Fn(&str) -> Option<&'a str>,
    ) -> Self {
        Self {
            owner: application_label.map(str::to_owned),
            marks: LiveMarks::from_annotations(annotation),
        }
    }
}

/// Adds the ownership label to a desired object's manifest.
pub fn mark_owned(object: &mut DesiredObject, application: &str) {
    set_label(object, APPLICATION_LABEL, application);
}

/// Sets one label of a desired object's manifest.
pub(crate) fn set_label(object: &mut DesiredObject, key: &str, value: &str) {
    let Some(metadata) = object.manifest.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanOptions {
    /// Delete objects that left Git (automated `prune`, or `sync --prune`).
    pub prune: bool,
    /// Take over live objects that exist without any owner label (`sync --adopt`).
    pub adopt: bool,
}

/// Why a desired object will not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OwnershipConflict {
    #[error("{object} belongs to application {owner:?}; an object is never taken from another application")]
    OwnedByOther { object: ObjectRef, owner: String },
    #[error("{object} exists and was not created by driftless; sync with --adopt to take it over")]
    Unmanaged { object: ObjectRef },
}

/// Why an object that left Git stays in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepReason {
    /// Pruning is off for this sync; the object is out of sync ("requires pruning").
    PruningOff,
    /// The live object's annotations say never to prune it (see [`LiveMarks::prune_disabled`]).
    PruneDisabled,
    /// A hook: only its deletion policy deletes it.
    Hook,
    /// The live object now belongs to another application.
    OwnedByOther,
    /// The live object no longer carries our label (someone changed it): not ours to delete.
    NotOurs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Objects to apply, phase by phase and wave by wave (indices into the desired objects):
    /// `PreSync` hooks, the objects with `Sync` hooks, `PostSync` hooks.
    pub waves: Vec<Wave>,
    /// `SyncFail` hooks, applied wave by wave only when the sync failed.
    #[serde(default)]
    pub sync_fail: Vec<Wave>,
    pub conflicts: Vec<OwnershipConflict>,
    /// Objects to delete once everything else is applied, in this order.
    pub prune: Vec<ObjectRef>,
    pub kept: Vec<(ObjectRef, KeepReason)>,
    /// What the inventory should hold once the plan has run: every applied object and every object
    /// that is still ours in the cluster.
    pub next_inventory: BTreeSet<ObjectRef>,
}

/// Plans a sync of `application`. `live` holds ownership for every desired or inventory object
/// that exists in the cluster (absent = does not exist).
pub fn plan(
    application: &str,
    desired: &[DesiredObject],
    inventory: &BTreeSet<ObjectRef>,
    live: &BTreeMap<ObjectRef, LiveOwnership>,
    options: PlanOptions,
) -> Result<Plan, Vec<InvalidWave>> {
    let mut conflicts = Vec::new();
    // An object never applied (`Skip`), or not once it exists (Flux's `ssa: IfNotPresent`),
    // cannot conflict with whoever owns it.
    let applied = desired.iter().filter(|object| {
        !matches!(role_of(object), Ok(Role::Skipped)) && when_live(object, None) == WhenLive::Update
    });
    for object in applied {
        let Some(ownership) = live.get(&object.reference) else {
            continue;
        };
        match &ownership.owner {
            Some(owner) if owner != application => {
                conflicts.push(OwnershipConflict::OwnedByOther {
                    object: object.reference.clone(),
                    owner: owner.clone(),
                });
            }
            None if !options.adopt && !inventory.contains(&object.reference) => {
                conflicts.push(OwnershipConflict::Unmanaged {
                    object: object.reference.clone(),
                });
            }
            _ => {}
        }
    }
    let blocked: BTreeSet<&ObjectRef> = conflicts
        .iter()
        .map(|conflict| match conflict {
            OwnershipConflict::OwnedByOther { object, .. } | OwnershipConflict::Unmanaged { object } => {
                object
            }
        })
        .collect();
    let mut waves = plan_order(desired)?;
    for wave in &mut waves {
        for (_, objects) in &mut wave.stages {
            objects.retain(|index| !blocked.contains(&desired[*index].reference));
        }
        wave.stages.retain(|(_, objects)| !objects.is_empty());
    }
    waves.retain(|wave| !wave.stages.is_empty());
    let (sync_fail, waves) = waves
        .into_iter()
        .partition(|wave| wave.phase == SyncPhase::SyncFail);

    let declared: BTreeSet<&ObjectRef> = desired.iter().map(|object| &object.reference).collect();
    // Hooks and skipped objects are not kept in step with Git: never tracked, so never pruned.
    let mut next_inventory: BTreeSet<ObjectRef> = desired
        .iter()
        .filter(|object| kept_in_step(object) && !blocked.contains(&object.reference))
        .map(|object| object.reference.clone())
        .collect();
    let mut prune = Vec::new();
    let mut kept = Vec::new();
    for reference in inventory.iter().filter(|reference| !declared.contains(reference)) {
        let Some(ownership) = live.get(reference) else {
            continue;
        }; // already gone
        let reason = match &ownership.owner {
            Some(owner) if owner != application => Some(KeepReason::OwnedByOther),
            None => Some(KeepReason::NotOurs),
            Some(_) if ownership.marks.hook => Some(KeepReason::Hook),
            Some(_) if ownership.marks.prune_disabled => Some(KeepReason::PruneDisabled),
            Some(_) if !options.prune => Some(KeepReason::PruningOff),
            Some(_) => None,
        };
        match reason {
            None => prune.push(reference.clone()),
            Some(reason) => {
                if matches!(reason, KeepReason::PruneDisabled | KeepReason::PruningOff) {
                    next_inventory.insert(reference.clone());
                }
                kept.push((reference.clone(), reason));
            }
        }
    }
    // Reverse apply order: what depends on a namespace or CRD goes before it.
    prune.sort_by(|a, b| {
        (stage_of_reference(b), kind_rank(&b.kind), b).cmp(&(stage_of_reference(a), kind_rank(&a.kind), a))
    });
    Ok(Plan {
        waves,
        sync_fail,
        conflicts,
        prune,
        kept,
        next_inventory,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{GroupVersionKind, SourceLocation};

    fn reference(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef::new(
            &GroupVersionKind::from_api_version(api_version, kind).expect("valid"),
            namespace,
            name,
        )
    }

    fn desired(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version(api_version, kind).expect("valid");
        DesiredObject {
            reference: ObjectRef::new(&gvk, namespace, name),
            gvk,
            manifest: json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": name } }),
            source: SourceLocation {
                file: "f.yaml".into(),
                document: 0,
                line: None,
            },
        }
    }

    fn owned(owner: Option<&str>) -> LiveOwnership {
        LiveOwnership {
            owner: owner.map(str::to_owned),
            marks: LiveMarks::default(),
        }
    }

    const PRUNE: PlanOptions = PlanOptions {
        prune: true,
        adopt: false,
    };

    #[test]
    fn objects_owned_elsewhere_or_by_nobody_are_not_applied() {
        let objects = [
            desired("v1", "ConfigMap", Some("a"), "ours"),
            desired("v1", "ConfigMap", Some("a"), "theirs"),
            desired("v1", "ConfigMap", Some("a"), "manual"),
            desired("v1", "ConfigMap", Some("a"), "new"),
        ];
        let live = BTreeMap::from([
            (objects[0].reference.clone(), owned(Some("web"))),
            (objects[1].reference.clone(), owned(Some("billing"))),
            (objects[2].reference.clone(), owned(None)),
        ]);
        let plan = plan("web", &objects, &BTreeSet::new(), &live, PRUNE).expect("plan");
        let applied: Vec<&str> = plan.waves[0]
            .objects()
            .map(|i| objects[i].reference.name.as_str())
            .collect();
        assert_eq!(applied, vec!["new", "ours"]);
        assert_eq!(plan.conflicts.len(), 2);
        assert_eq!(
            plan.conflicts[0].to_string(),
            "ConfigMap/a/theirs belongs to application \"billing\"; an object is never taken from another application"
        );
        assert!(!plan.next_inventory.contains(&objects[1].reference));

        let adopting = plan_with_adopt(&objects, &live);
        assert_eq!(
            adopting.conflicts.len(),
            1,
            "--adopt takes unmanaged objects, never another application's"
        );
    }

    fn plan_with_adopt(objects: &[DesiredObject], live: &BTreeMap<ObjectRef, LiveOwnership>) -> Plan {
        plan(
            "web",
            objects,
            &BTreeSet::new(),
            live,
            PlanOptions {
                prune: true,
                adopt: true,
            },
        )
        .expect("plan")
    }

    #[test]
    fn objects_that_left_git_are_pruned_only_when_ours_and_allowed() {
        let gone = reference("v1", "ConfigMap", Some("a"), "gone");
        let keep = reference("v1", "ConfigMap", Some("a"), "keep");
        let moved = reference("v1", "ConfigMap", Some("a"), "moved");
        let relabelled = reference("v1", "ConfigMap", Some("a"), "relabelled");
        let vanished = reference("v1", "ConfigMap", Some("a"), "vanished");
        let inventory = BTreeSet::from([
            gone.clone(),
            keep.clone(),
            moved.clone(),
            relabelled.clone(),
            vanished.clone(),
        ]);
        let live = BTreeMap::from([
            (gone.clone(), owned(Some("web"))),
            (
                keep.clone(),
                LiveOwnership {
                    owner: Some("web".into()),
                    marks: LiveMarks {
                        prune_disabled: true,
                        ..LiveMarks::default()
                    },
                },
            ),
            (moved.clone(), owned(Some("billing"))),
            (relabelled.clone(), owned(None)),
        ]);
        let plan1 = plan("web", &[], &inventory, &live, PRUNE).expect("plan");
        assert_eq!(plan1.prune, vec![gone.clone()]);
        assert_eq!(
            plan1.kept,
            vec![
                (keep.clone(), KeepReason::PruneDisabled),
                (moved, KeepReason::OwnedByOther),
                (relabelled, KeepReason::NotOurs)
            ]
        );
        assert_eq!(
            plan1.next_inventory,
            BTreeSet::from([keep.clone()]),
            "kept-but-ours stays tracked; vanished is dropped"
        );

        let manual = plan(
            "web",
            &[],
            &inventory,
            &live,
            PlanOptions {
                prune: false,
                adopt: false,
            },
        )
        .expect("plan");
        assert!(manual.prune.is_empty());
        assert!(manual.kept.contains(&(gone.clone(), KeepReason::PruningOff)));
        assert!(manual.next_inventory.contains(&gone));
    }

    #[test]
    fn pruning_runs_in_reverse_apply_order() {
        let refs = [
            reference("v1", "Namespace", None, "team"),
            reference(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com",
            ),
            reference("rbac.authorization.k8s.io/v1", "ClusterRole", None, "reader"),
            reference("v1", "ConfigMap", Some("team"), "settings"),
            reference("apps/v1", "Deployment", Some("team"), "web"),
        ];
        let inventory: BTreeSet<ObjectRef> = refs.iter().cloned().collect();
        let live = refs.iter().map(|r| (r.clone(), owned(Some("web")))).collect();
        let plan = plan("web", &[], &inventory, &live, PRUNE).expect("plan");
        let order: Vec<&str> = plan.prune.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            order,
            vec![
                "Deployment",
                "ConfigMap",
                "ClusterRole",
                "CustomResourceDefinition",
                "Namespace"
            ]
        );
    }

    #[test]
    fn ownership_is_read_from_and_written_to_labels() {
        let live = json!({ "metadata": { "labels": { APPLICATION_LABEL: "web" }, "annotations": { PRUNE_ANNOTATION: "false" } } });
        assert_eq!(
            LiveOwnership::of(&live),
            LiveOwnership {
                owner: Some("web".into()),
                marks: LiveMarks {
                    prune_disabled: true,
                    ..LiveMarks::default()
                }
            }
        );
        assert_eq!(LiveOwnership::of(&json!({ "metadata": {} })), owned(None));

        let mut object = desired("v1", "ConfigMap", Some("a"), "x");
        mark_owned(&mut object, "web");
        assert_eq!(object.manifest["metadata"]["labels"][APPLICATION_LABEL], "web");
    }
}

/// Per-object sync options, comma-separated `Key=value` pairs (e.g. `Replace=true`).
pub const SYNC_OPTIONS_ANNOTATION: &str = "driftless.dev/sync-options";
/// Argo CD's equivalent, read so Argo CD users can migrate without editing manifests.
pub const ARGO_SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";

/// The value of one per-object sync option (`Replace` → `Some(true)` for `Replace=true`); our
/// annotation wins over Argo CD's. Keys driftless does not know are ignored, as Argo CD ignores
/// them (`ServerSideApply=true` is what driftless always does; `CreateNamespace` is an
/// application's option, not an object's).
#[must_use]
pub fn object_sync_option(object: &DesiredObject, key: &str) -> Option<bool> {
    manifest_sync_option(&object.manifest, key)
}

/// [`object_sync_option`] of a manifest not resolved to an object yet.
#[must_use]
pub fn manifest_sync_option(manifest: &Value, key: &str) -> Option<bool> {
    let annotations = manifest.pointer("/metadata/annotations")?;
    [SYNC_OPTIONS_ANNOTATION, ARGO_SYNC_OPTIONS_ANNOTATION]
        .iter()
        .find_map(|annotation| option_in(annotations.get(annotation)?.as_str()?, key))
}

/// `key`'s value in one sync-options annotation value: `true` only for `true`, any other value
/// (`false`, Argo CD's `confirm`) is `false`.
fn option_in(value: &str, key: &str) -> Option<bool> {
    value.split(',').find_map(|option| {
        let (k, v) = option.trim().split_once('=')?;
        (k.trim() == key).then(|| v.trim().eq_ignore_ascii_case("true"))
    })
}

/// `Validate=false`: applied without the API server's field validation, and left out of the
/// schema checks of a plan.
#[must_use]
pub fn validation_skipped(object: &DesiredObject) -> bool {
    object_sync_option(object, "Validate") == Some(false)
}

/// `SkipDryRunOnMissingResource=true`: a custom object whose kind is not served yet (its CRD
/// comes from elsewhere, in the same sync) is no error before it is applied; it is applied once
/// the rest of its wave is, and fails then if the kind is still not served.
#[must_use]
pub fn skips_dry_run_on_missing_resource(manifest: &Value) -> bool {
    manifest_sync_option(manifest, "SkipDryRunOnMissingResource") == Some(true)
}

/// What to do with a declared object that exists already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenLive {
    /// Bring it in step with Git.
    Update,
    /// Leave it as it is and do not compare it: Flux's `ssa: IfNotPresent` (in Git) or
    /// `reconcile: disabled` set on the live object. The annotation is named.
    LeaveAlone(&'static str),
}

/// Whether a declared object that exists (`live`) is updated.
#[must_use]
pub fn when_live(object: &DesiredObject, live: Option<&Value>) -> WhenLive {
    let desired = |key: &str| object.annotation(key).map(str::trim);
    let on_live = |key: &str| {
        live.and_then(|live| live.pointer("/metadata/annotations"))
            .and_then(|annotations| annotations.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
    };
    // In Git, `reconcile: disabled` skips the object altogether (`hooks::Role::Skipped`).
    if on_live(FLUX_RECONCILE_ANNOTATION).is_some_and(|value| value.eq_ignore_ascii_case("disabled")) {
        WhenLive::LeaveAlone("kustomize.toolkit.fluxcd.io/reconcile: disabled")
    } else if desired(FLUX_SSA_ANNOTATION).is_some_and(|value| value.eq_ignore_ascii_case("IfNotPresent")) {
        WhenLive::LeaveAlone("kustomize.toolkit.fluxcd.io/ssa: IfNotPresent")
    } else {
        WhenLive::Update
    }
}

#[cfg(test)]
mod sync_option_tests {
    use serde_json::json;

    use super::*;
    use crate::{GroupVersionKind, SourceLocation};

    fn with_annotations(annotations: &Value) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version("v1", "ConfigMap").expect("valid");
        DesiredObject {
            reference: ObjectRef::new(&gvk, Some("a"), "x"),
            gvk,
            manifest: json!({ "metadata": { "name": "x", "annotations": annotations } }),
            source: SourceLocation {
                file: "f".into(),
                document: 0,
                line: None,
            },
        }
    }

    #[test]
    fn per_object_sync_options_are_read_from_either_annotation() {
        let ours = with_annotations(&json!({ SYNC_OPTIONS_ANNOTATION: "PruneLast=true, Replace=true" }));
        assert_eq!(object_sync_option(&ours, "Replace"), Some(true));
        let argo = with_annotations(&json!({ ARGO_SYNC_OPTIONS_ANNOTATION: "Replace=true" }));
        assert_eq!(object_sync_option(&argo, "Replace"), Some(true));
        let both = with_annotations(
            &json!({ SYNC_OPTIONS_ANNOTATION: "Replace=false", ARGO_SYNC_OPTIONS_ANNOTATION: "Replace=true" }),
        );
        assert_eq!(object_sync_option(&both, "Replace"), Some(false));
        assert_eq!(object_sync_option(&with_annotations(&json!({})), "Replace"), None);
    }

    #[test]
    fn validate_and_skip_dry_run_options_are_read() {
        let object = with_annotations(
            &json!({ ARGO_SYNC_OPTIONS_ANNOTATION: "Validate=false,SkipDryRunOnMissingResource=true,Unknown=1" }),
        );
        assert!(validation_skipped(&object));
        assert!(skips_dry_run_on_missing_resource(&object.manifest));
        assert!(!validation_skipped(&with_annotations(&json!({}))));
        assert!(!skips_dry_run_on_missing_resource(
            &with_annotations(&json!({})).manifest
        ));
    }

    #[test]
    fn flux_annotations_leave_an_existing_object_alone() {
        let live = json!({ "metadata": { "name": "x" } });
        let plain = with_annotations(&json!({}));
        assert_eq!(when_live(&plain, Some(&live)), WhenLive::Update);
        let if_absent = with_annotations(&json!({ FLUX_SSA_ANNOTATION: "IfNotPresent" }));
        assert!(matches!(
            when_live(&if_absent, Some(&live)),
            WhenLive::LeaveAlone(_)
        ));
        let disabled_in_cluster =
            json!({ "metadata": { "annotations": { FLUX_RECONCILE_ANNOTATION: "disabled" } } });
        assert_eq!(
            when_live(&plain, Some(&disabled_in_cluster)),
            WhenLive::LeaveAlone("kustomize.toolkit.fluxcd.io/reconcile: disabled"),
            "someone disabled it in the cluster"
        );
    }

    #[test]
    fn live_marks_read_every_tools_annotations() {
        let marks = |annotations: &Value| {
            LiveOwnership::of(&json!({ "metadata": { "annotations": annotations } })).marks
        };
        let keep = LiveMarks {
            prune_disabled: true,
            ..LiveMarks::default()
        };
        assert_eq!(marks(&json!({})), LiveMarks::default());
        assert_eq!(marks(&json!({ PRUNE_ANNOTATION: "false" })), keep);
        assert_eq!(
            marks(&json!({ ARGO_SYNC_OPTIONS_ANNOTATION: "Prune=false" })),
            keep
        );
        assert_eq!(
            marks(&json!({ ARGO_SYNC_OPTIONS_ANNOTATION: "Prune=confirm" })),
            keep
        );
        assert_eq!(marks(&json!({ SYNC_OPTIONS_ANNOTATION: "Delete=false" })), keep);
        assert_eq!(marks(&json!({ FLUX_PRUNE_ANNOTATION: "disabled" })), keep);
        assert_eq!(
            marks(&json!({ ARGO_SYNC_OPTIONS_ANNOTATION: "Prune=true,Replace=true" })),
            LiveMarks::default()
        );
        assert_eq!(
            marks(&json!({ ARGO_COMPARE_OPTIONS_ANNOTATION: "IgnoreExtraneous" })),
            LiveMarks {
                extraneous_ignored: true,
                ..LiveMarks::default()
            }
        );
        let left_alone = LiveMarks {
            prune_disabled: true,
            extraneous_ignored: true,
            hook: false,
        };
        assert_eq!(
            marks(&json!({ FLUX_RECONCILE_ANNOTATION: "disabled" })),
            left_alone
        );
        assert_eq!(marks(&json!({ FLUX_SSA_ANNOTATION: "Ignore" })), left_alone);
        assert!(marks(&json!({ crate::hooks::ARGO_HOOK_ANNOTATION: "PreSync" })).hook);
    }

    #[test]
    fn hooks_are_never_tracked_nor_pruned_and_sync_fail_hooks_wait_for_a_failure() {
        let hook = |name: &str, phase: &str| {
            let mut object = with_annotations(&json!({ crate::hooks::ARGO_HOOK_ANNOTATION: phase }));
            object.reference.name = name.to_owned();
            object
        };
        let objects = [
            with_annotations(&json!({})),
            hook("migrate", "PreSync"),
            hook("rollback", "SyncFail"),
            hook("never", "Skip"),
        ];
        let old_hook = ObjectRef {
            name: "old-hook".into(),
            ..objects[0].reference.clone()
        };
        let live = BTreeMap::from([(
            old_hook.clone(),
            LiveOwnership::of(&json!({ "metadata": {
                "labels": { APPLICATION_LABEL: "web" },
                "annotations": { crate::hooks::ARGO_HOOK_ANNOTATION: "PostSync" } } })),
        )]);
        let inventory = BTreeSet::from([old_hook.clone()]);
        let options = PlanOptions {
            prune: true,
            adopt: false,
        };
        let plan = plan("web", &objects, &inventory, &live, options).expect("plan");
        let phases: Vec<SyncPhase> = plan.waves.iter().map(|wave| wave.phase).collect();
        assert_eq!(phases, vec![SyncPhase::PreSync, SyncPhase::Sync]);
        assert_eq!(plan.sync_fail.len(), 1);
        assert_eq!(plan.sync_fail[0].objects().collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            plan.next_inventory,
            BTreeSet::from([objects[0].reference.clone()])
        );
        assert!(plan.prune.is_empty());
        assert_eq!(plan.kept, vec![(old_hook, KeepReason::Hook)]);

        // A skipped object someone else made is no conflict: it is never applied; nor is one
        // applied only when absent.
        let mut objects = objects;
        objects[0].manifest["metadata"]["annotations"] = json!({ FLUX_SSA_ANNOTATION: "IfNotPresent" });
        let unmanaged = BTreeMap::from([
            (objects[3].reference.clone(), LiveOwnership::of(&json!({}))),
            (objects[0].reference.clone(), LiveOwnership::of(&json!({}))),
        ]);
        let skipped = super::plan("web", &objects, &BTreeSet::new(), &unmanaged, options).expect("plan");
        assert!(skipped.conflicts.is_empty(), "{:?}", skipped.conflicts);
    }
}
