//! Hooks: objects that run during a sync (a migration Job, say) rather than being kept in step
//! with Git. Every rule about them is here, so compare, sync and the controller cannot disagree:
//! which phase a hook runs in, when it is deleted, how an object created from `generateName` is
//! found again, and when a hook's failure fails the sync.
//!
//! The model is Argo CD's, which Helm hooks are mapped onto by the renderer: a hook runs in one
//! or more phases (`PreSync`, `Sync`, `PostSync`, `SyncFail`) on every sync, within its phase by
//! sync wave; `Skip` marks an object that is never applied. Hooks are not compared with the
//! cluster (their absence or their live state is never drift), never tracked in the inventory and
//! never pruned: only their deletion policy deletes them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DesiredObject;
use crate::HealthState;
use crate::plan::LiveOwnership;
use crate::sync_order::InvalidWave;

/// Marks a hook: comma-separated phases `PreSync`, `Sync`, `PostSync`, `SyncFail`, `Skip`.
/// The Helm renderer writes it for each chart hook.
pub const HOOK_ANNOTATION: &str = "driftless.dev/hook";
/// Argo CD's equivalent, read so Argo CD repositories work unchanged; ours wins.
pub const ARGO_HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// When a hook is deleted: comma-separated `BeforeHookCreation`, `HookSucceeded`, `HookFailed`
/// (Argo CD's names; Helm's `before-hook-creation`, `hook-succeeded`, `hook-failed` are read too).
/// Without it a hook is deleted before it is created again (`BeforeHookCreation`, Argo CD's and
/// Helm's default).
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "driftless.dev/hook-delete-policy";
/// Argo CD's equivalent.
pub const ARGO_HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
/// Helm's hook annotation, read as Argo CD reads it when neither hook annotation above is there
/// (manifests rendered by Helm elsewhere and committed, say): `pre-install`/`pre-upgrade` are
/// `PreSync`, `post-install`/`post-upgrade` `PostSync`; a hook of none of these (`test`,
/// `*-delete`, `*-rollback`) is never applied, and `crd-install` is no hook at all.
pub const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
/// Helm's deletion policy, read after ours and Argo CD's.
pub const HELM_HOOK_DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";
/// Label on every object created from a `generateName` hook: which hook it was created from (its
/// `generateName`, as a label value), so that the next sync finds the earlier ones to delete.
pub const GENERATED_HOOK_LABEL: &str = "driftless.dev/hook";
/// Label on every object created from a `generateName` hook: the sync (its history id) that
/// created it.
pub const HOOK_SYNC_LABEL: &str = "driftless.dev/sync";

/// The phases of a sync, in the order they run. Objects that are not hooks are applied in
/// [`SyncPhase::Sync`], together with that phase's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SyncPhase {
    /// Before anything else; a failure stops the sync before any other object is applied.
    PreSync,
    /// The application's objects and `Sync` hooks, wave by wave.
    Sync,
    /// Once every object of the `Sync` phase is healthy.
    PostSync,
    /// Only when the sync failed.
    SyncFail,
}

impl SyncPhase {
    const NAMES: [(&'static str, Self); 4] = [
        ("PreSync", Self::PreSync),
        ("Sync", Self::Sync),
        ("PostSync", Self::PostSync),
        ("SyncFail", Self::SyncFail),
    ];
}

impl std::fmt::Display for SyncPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::NAMES
            .iter()
            .find_map(|(name, phase)| (phase == self).then_some(*name))
            .unwrap_or_default();
        f.write_str(name)
    }
}

/// What part an object plays in a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An ordinary object: applied in the `Sync` phase, compared, tracked and pruned.
    Resource,
    /// A hook, run in each of these phases (at least one).
    Hook(BTreeSet<SyncPhase>),
    /// `Skip` (or Flux's `kustomize.toolkit.fluxcd.io/ssa: Ignore` or `reconcile: disabled`):
    /// never applied, compared, tracked or pruned.
    Skipped,
}

impl Role {
    /// Whether the object is a hook (run, not kept in step with Git).
    #[must_use]
    pub fn is_hook(&self) -> bool {
        matches!(self, Self::Hook(_))
    }
}

const EXPECTED_PHASES: &str = "a comma-separated list of PreSync, Sync, PostSync, SyncFail or Skip";
const EXPECTED_POLICIES: &str = "a comma-separated list of BeforeHookCreation, HookSucceeded or HookFailed";

fn invalid(
    object: &DesiredObject,
    annotation: &'static str,
    value: &str,
    expected: &'static str,
) -> InvalidWave {
    InvalidWave {
        object: object.reference.to_string(),
        source_location: object.source.to_string(),
        annotation,
        value: value.to_owned(),
        expected,
    }
}

/// The object's role, from our hook annotation, else Argo CD's, else Helm's (read as Argo CD reads
/// it); Flux's `ssa: Ignore` and `reconcile: disabled` make it skipped. Argo CD ignores a phase it
/// does not know; driftless refuses it (the hook would silently never run), naming the object,
/// its file and the annotation. An object with our or Argo CD's deletion policy but no phase is a
/// `Sync` hook, as driftless read its own deletion-policy annotation before hook phases existed.
pub fn role_of(object: &DesiredObject) -> Result<Role, InvalidWave> {
    // Flux's `ssa: Ignore` and `reconcile: disabled` in Git mean what Argo CD's `Skip` does:
    // Flux's apply library skips such an object whether or not it exists.
    let flux = |key: &str, value: &str| {
        object
            .annotation(key)
            .is_some_and(|found| found.trim().eq_ignore_ascii_case(value))
    };
    if flux(crate::plan::FLUX_SSA_ANNOTATION, "Ignore")
        || flux(crate::plan::FLUX_RECONCILE_ANNOTATION, "disabled")
    {
        return Ok(Role::Skipped);
    }
    let declared = [HOOK_ANNOTATION, ARGO_HOOK_ANNOTATION]
        .into_iter()
        .find_map(|annotation| Some((annotation, object.annotation(annotation)?)));
    let Some((annotation, value)) = declared else {
        if let Some(helm) = object.annotation(HELM_HOOK_ANNOTATION) {
            return helm_role(object, helm);
        }
        let ours_or_argo = [HOOK_DELETE_POLICY_ANNOTATION, ARGO_HOOK_DELETE_POLICY_ANNOTATION]
            .iter()
            .any(|annotation| object.annotation(annotation).is_some());
        return if ours_or_argo {
            delete_policy(object)?;
            Ok(Role::Hook(BTreeSet::from([SyncPhase::Sync])))
        } else {
            Ok(Role::Resource)
        };
    };
    let mut phases = BTreeSet::new();
    let mut skip = false;
    for name in value.split(',').map(str::trim) {
        if name.eq_ignore_ascii_case("Skip") {
            skip = true;
            continue;
        }
        let phase = SyncPhase::NAMES
            .iter()
            .find_map(|(known, phase)| known.eq_ignore_ascii_case(name).then_some(*phase))
            .ok_or_else(|| invalid(object, annotation, value, EXPECTED_PHASES))?;
        phases.insert(phase);
    }
    delete_policy(object)?;
    // As in Argo CD, Skip alongside a phase is ignored.
    match (phases.is_empty(), skip) {
        (false, _) => Ok(Role::Hook(phases)),
        (true, true) => Ok(Role::Skipped),
        (true, false) => Err(invalid(object, annotation, value, EXPECTED_PHASES)),
    }
}

/// Whether the object is kept in step with Git: compared, tracked in the inventory, pruned. Not
/// hooks nor skipped objects; nor objects whose hook annotations are invalid, which planning
/// refuses before anything is applied.
#[must_use]
pub fn kept_in_step(object: &DesiredObject) -> bool {
    matches!(role_of(object), Ok(Role::Resource))
}

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookDeletePolicy {
    /// A live hook is deleted before it is created again (a Job's template cannot be changed in
    /// place, and a hook runs anew on every sync).
    pub before_creation: bool,
    /// Deleted once it is healthy (a Job complete).
    pub on_success: bool,
    /// Deleted when it fails; the sync fails too.
    pub on_failure: bool,
}

impl Default for HookDeletePolicy {
    /// Argo CD's and Helm's default: deleted before it is created again.
    fn default() -> Self {
        Self {
            before_creation: true,
            on_success: false,
            on_failure: false,
        }
    }
}

/// The role Helm's `helm.sh/hook` value gives, as Argo CD reads it.
fn helm_role(object: &DesiredObject, value: &str) -> Result<Role, InvalidWave> {
    let names: Vec<&str> = value.split(',').map(str::trim).collect();
    if names.iter().all(|name| *name == "crd-install") {
        return Ok(Role::Resource);
    }
    let mut phases = BTreeSet::new();
    for name in names {
        match name {
            "pre-install" | "pre-upgrade" => phases.insert(SyncPhase::PreSync),
            "post-install" | "post-upgrade" => phases.insert(SyncPhase::PostSync),
            _ => false,
        };
    }
    delete_policy(object)?;
    Ok(if phases.is_empty() {
        Role::Skipped
    } else {
        Role::Hook(phases)
    })
}

fn delete_policy_annotation(object: &DesiredObject) -> Option<(&'static str, &str)> {
    [
        HOOK_DELETE_POLICY_ANNOTATION,
        ARGO_HOOK_DELETE_POLICY_ANNOTATION,
        HELM_HOOK_DELETE_POLICY_ANNOTATION,
    ]
    .into_iter()
    .find_map(|annotation| Some((annotation, object.annotation(annotation)?)))
}

fn delete_policy(object: &DesiredObject) -> Result<HookDeletePolicy, InvalidWave> {
    let Some((annotation, value)) = delete_policy_annotation(object) else {
        return Ok(HookDeletePolicy::default());
    };
    let mut policy = HookDeletePolicy {
        before_creation: false,
        on_success: false,
        on_failure: false,
    };
    for name in value
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase().replace('-', ""))
    {
        match name.as_str() {
            "beforehookcreation" => policy.before_creation = true,
            "hooksucceeded" => policy.on_success = true,
            "hookfailed" => policy.on_failure = true,
            _ => return Err(invalid(object, annotation, value, EXPECTED_POLICIES)),
        }
    }
    Ok(policy)
}

/// The object's hook deletion policy; `None`: not a hook (or its annotations are invalid, which
/// planning reports).
#[must_use]
pub fn hook_delete_policy(object: &DesiredObject) -> Option<HookDeletePolicy> {
    role_of(object)
        .ok()
        .filter(Role::is_hook)
        .and_then(|_| delete_policy(object).ok())
}

/// The `generateName` of a hook that is created afresh on every sync (it has no name of its own);
/// `None` for an object with a name.
#[must_use]
pub fn generated_name(object: &DesiredObject) -> Option<&str> {
    let metadata = object.manifest.get("metadata")?;
    if metadata.get("name").is_some() {
        return None;
    }
    metadata.get("generateName")?.as_str()
}

/// The value of [`GENERATED_HOOK_LABEL`] for a `generateName`: a valid label value (at most 63
/// characters, alphanumeric at both ends).
#[must_use]
pub fn generated_hook_label(generate_name: &str) -> String {
    let kept: String = generate_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(63)
        .collect();
    let trimmed = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "hook".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// Labels an object about to be created from a `generateName` hook: which hook it came from and
/// which sync created it (`None` for a dry-run, which records no sync).
pub fn label_generated(object: &mut DesiredObject, sync: Option<i64>) {
    let Some(generate_name) = generated_name(object).map(generated_hook_label) else {
        return;
    };
    crate::plan::set_label(object, GENERATED_HOOK_LABEL, &generate_name);
    if let Some(sync) = sync {
        crate::plan::set_label(object, HOOK_SYNC_LABEL, &sync.to_string());
    }
}

/// The label selector that finds every object `application` created from the `generateName`
/// hook `object` in earlier syncs (in the hook's kind and namespace).
#[must_use]
pub fn generated_selector(object: &DesiredObject, application: &str) -> Option<String> {
    let label = generated_hook_label(generated_name(object)?);
    Some(format!(
        "{}={application},{GENERATED_HOOK_LABEL}={label}",
        crate::plan::APPLICATION_LABEL
    ))
}

/// What to do with the live object before a hook is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeforeApply {
    /// Apply it as any other object.
    Apply,
    /// `BeforeHookCreation`: delete the live hook, wait until it is gone, then create it anew.
    DeleteFirst,
}

/// Before a hook is applied: a `BeforeHookCreation` hook that is live *and carries this
/// application's label* is deleted first. A live object without the label (adopted) or another
/// application's is never deleted here; the plan decides whether it may be applied at all.
#[must_use]
pub fn before_apply(object: &DesiredObject, live: Option<&Value>, application: &str) -> BeforeApply {
    let recreated = hook_delete_policy(object).is_some_and(|policy| policy.before_creation);
    let ours = live.is_some_and(|live| LiveOwnership::of(live).owner.as_deref() == Some(application));
    if recreated && ours {
        BeforeApply::DeleteFirst
    } else {
        BeforeApply::Apply
    }
}

/// Whether the hook is deleted once its wave is over: `HookSucceeded` when the wave became
/// healthy, `HookFailed` when it did not.
#[must_use]
pub fn delete_after_wave(object: &DesiredObject, wave_succeeded: bool) -> bool {
    hook_delete_policy(object).is_some_and(|policy| {
        if wave_succeeded {
            policy.on_success
        } else {
            policy.on_failure
        }
    })
}

/// Whether a wave must be waited on even when it is the last: a hook must be seen to succeed or
/// fail, as the sync's result depends on it.
#[must_use]
pub fn wave_awaits_hooks<'a>(members: impl IntoIterator<Item = &'a DesiredObject>) -> bool {
    members
        .into_iter()
        .any(|object| hook_delete_policy(object).is_some())
}

/// Whether an object's health ends the wait for its wave at once: a hook that failed (a Job past
/// its backoff limit) will not recover.
#[must_use]
pub fn failed_for_good(object: &DesiredObject, health: HealthState) -> bool {
    health == HealthState::Degraded && hook_delete_policy(object).is_some()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::APPLICATION_LABEL;
    use crate::{GroupVersionKind, ObjectRef, SourceLocation};

    fn with_annotations(annotations: &Value) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version("batch/v1", "Job").expect("valid");
        DesiredObject {
            reference: ObjectRef::new(&gvk, Some("default"), "migrate"),
            gvk,
            manifest: json!({ "metadata": { "name": "migrate", "annotations": annotations } }),
            source: SourceLocation {
                file: "job.yaml".into(),
                document: 0,
                line: None,
            },
        }
    }

    fn hook(policy: &str) -> DesiredObject {
        with_annotations(&json!({ HOOK_DELETE_POLICY_ANNOTATION: policy }))
    }

    fn argo(phases: &str) -> DesiredObject {
        with_annotations(&json!({ ARGO_HOOK_ANNOTATION: phases }))
    }

    fn live_labelled(owner: Option<&str>) -> Value {
        match owner {
            Some(owner) => json!({"metadata": {"labels": {APPLICATION_LABEL: owner}}}),
            None => json!({"metadata": {}}),
        }
    }

    #[test]
    fn phases_are_read_from_our_annotation_or_argo_cds() {
        assert_eq!(
            role_of(&argo("PreSync")),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::PreSync])))
        );
        assert_eq!(
            role_of(&argo(" PreSync , PostSync")),
            Ok(Role::Hook(BTreeSet::from([
                SyncPhase::PreSync,
                SyncPhase::PostSync
            ])))
        );
        assert_eq!(role_of(&argo("Skip")), Ok(Role::Skipped));
        let flux_ignored = with_annotations(&json!({ crate::plan::FLUX_SSA_ANNOTATION: "Ignore" }));
        assert_eq!(role_of(&flux_ignored), Ok(Role::Skipped));
        let flux_disabled = with_annotations(&json!({ crate::plan::FLUX_RECONCILE_ANNOTATION: "disabled" }));
        assert_eq!(role_of(&flux_disabled), Ok(Role::Skipped));
        assert_eq!(
            role_of(&argo("Skip,SyncFail")),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::SyncFail]))),
            "Skip beside a phase is ignored, as in Argo CD"
        );
        let both = with_annotations(&json!({ HOOK_ANNOTATION: "PostSync", ARGO_HOOK_ANNOTATION: "PreSync" }));
        assert_eq!(
            role_of(&both),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::PostSync])))
        );
        assert_eq!(role_of(&with_annotations(&json!({}))), Ok(Role::Resource));
        assert!(kept_in_step(&with_annotations(&json!({}))));
        assert!(!kept_in_step(&argo("Sync")));
        assert!(!kept_in_step(&argo("Skip")));
        // Before phases existed, a deletion policy alone marked a hook.
        assert_eq!(
            role_of(&hook("HookSucceeded")),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::Sync])))
        );
    }

    #[test]
    fn helm_hooks_are_read_as_argo_cd_reads_them_when_no_hook_annotation_is_there() {
        let helm = |hooks: &str| {
            with_annotations(
                &json!({ HELM_HOOK_ANNOTATION: hooks, HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded" }),
            )
        };
        assert_eq!(
            role_of(&helm("pre-install,pre-upgrade")),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::PreSync])))
        );
        assert_eq!(
            role_of(&helm("post-upgrade")),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::PostSync])))
        );
        assert_eq!(role_of(&helm("test")), Ok(Role::Skipped), "not part of a sync");
        assert_eq!(role_of(&helm("crd-install")), Ok(Role::Resource));
        assert!(hook_delete_policy(&helm("pre-install")).is_some_and(|policy| policy.on_success));
        let argo_wins = with_annotations(
            &json!({ HELM_HOOK_ANNOTATION: "pre-install", ARGO_HOOK_ANNOTATION: "PostSync" }),
        );
        assert_eq!(
            role_of(&argo_wins),
            Ok(Role::Hook(BTreeSet::from([SyncPhase::PostSync])))
        );
        let helm_policy_only =
            with_annotations(&json!({ HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded" }));
        assert_eq!(
            role_of(&helm_policy_only),
            Ok(Role::Resource),
            "Helm's policy alone is no hook"
        );
    }

    #[test]
    fn an_unknown_phase_or_policy_is_refused_naming_object_file_and_annotation() {
        let err = role_of(&argo("PreSync,PostDelete")).expect_err("unknown phase");
        assert_eq!(
            err.to_string(),
            "batch/Job/default/migrate (job.yaml (document 1)): annotation argocd.argoproj.io/hook must be \
             a comma-separated list of PreSync, Sync, PostSync, SyncFail or Skip, found \"PreSync,PostDelete\""
        );
        let policy = with_annotations(
            &json!({ ARGO_HOOK_ANNOTATION: "PreSync", ARGO_HOOK_DELETE_POLICY_ANNOTATION: "Never" }),
        );
        let err = role_of(&policy).expect_err("unknown policy");
        assert_eq!(err.annotation, ARGO_HOOK_DELETE_POLICY_ANNOTATION);
        assert!(role_of(&argo("")).is_err());
    }

    #[test]
    fn hook_policies_read_argo_and_helm_names_and_default_to_before_creation() {
        let ours = with_annotations(
            &json!({ HOOK_DELETE_POLICY_ANNOTATION: "before-hook-creation, hook-succeeded" }),
        );
        assert_eq!(
            hook_delete_policy(&ours),
            Some(HookDeletePolicy {
                before_creation: true,
                on_success: true,
                on_failure: false
            })
        );
        let argo_policy = with_annotations(&json!({ ARGO_HOOK_DELETE_POLICY_ANNOTATION: "HookFailed" }));
        assert!(hook_delete_policy(&argo_policy).is_some_and(|p| p.on_failure && !p.before_creation));
        assert_eq!(hook_delete_policy(&with_annotations(&json!({}))), None);
        assert_eq!(
            hook_delete_policy(&argo("PreSync")),
            Some(HookDeletePolicy::default()),
            "Argo CD's default"
        );
        assert!(HookDeletePolicy::default().before_creation);
    }

    #[test]
    fn generated_hooks_are_labelled_by_hook_and_sync_and_found_again_by_selector() {
        let mut object = argo("PreSync");
        object.manifest["metadata"] =
            json!({ "generateName": "db-migrate-", "annotations": { ARGO_HOOK_ANNOTATION: "PreSync" } });
        assert_eq!(generated_name(&object), Some("db-migrate-"));
        assert_eq!(generated_name(&argo("PreSync")), None, "has a name");
        label_generated(&mut object, Some(42));
        assert_eq!(
            object.manifest["metadata"]["labels"][GENERATED_HOOK_LABEL],
            "db-migrate"
        );
        assert_eq!(object.manifest["metadata"]["labels"][HOOK_SYNC_LABEL], "42");
        assert_eq!(
            generated_selector(&object, "web").as_deref(),
            Some("driftless.dev/application=web,driftless.dev/hook=db-migrate")
        );
        assert_eq!(generated_hook_label(&"a".repeat(70)), "a".repeat(63));
        assert_eq!(generated_hook_label("-."), "hook");
    }

    #[test]
    fn only_our_own_live_hook_is_deleted_before_it_is_created_again() {
        let recreated = hook("BeforeHookCreation");
        let ours = live_labelled(Some("web"));
        assert_eq!(
            before_apply(&recreated, Some(&ours), "web"),
            BeforeApply::DeleteFirst
        );
        assert_eq!(
            before_apply(&argo("Sync"), Some(&ours), "web"),
            BeforeApply::DeleteFirst,
            "the default policy"
        );
        assert_eq!(before_apply(&recreated, None, "web"), BeforeApply::Apply);
        // Adopted (no label) or another application's: never deleted here.
        assert_eq!(
            before_apply(&recreated, Some(&live_labelled(None)), "web"),
            BeforeApply::Apply
        );
        assert_eq!(
            before_apply(&recreated, Some(&live_labelled(Some("api"))), "web"),
            BeforeApply::Apply
        );
        assert_eq!(
            before_apply(&hook("HookSucceeded"), Some(&ours), "web"),
            BeforeApply::Apply
        );
        assert_eq!(
            before_apply(&with_annotations(&json!({})), Some(&ours), "web"),
            BeforeApply::Apply,
            "not a hook"
        );
    }

    #[test]
    fn hooks_are_deleted_after_their_wave_as_their_policy_says() {
        let both = hook("HookSucceeded,HookFailed");
        assert!(delete_after_wave(&both, true) && delete_after_wave(&both, false));
        assert!(delete_after_wave(&hook("HookSucceeded"), true));
        assert!(!delete_after_wave(&hook("HookSucceeded"), false));
        assert!(delete_after_wave(&hook("HookFailed"), false));
        assert!(!delete_after_wave(&hook("HookFailed"), true));
        assert!(!delete_after_wave(&argo("Sync"), true));
        assert!(!delete_after_wave(&with_annotations(&json!({})), true));
        assert!(wave_awaits_hooks([&with_annotations(&json!({})), &argo("Sync")]));
        assert!(!wave_awaits_hooks([&with_annotations(&json!({}))]));
    }

    #[test]
    fn a_degraded_hook_fails_its_wave_at_once() {
        assert!(failed_for_good(&hook("HookSucceeded"), HealthState::Degraded));
        assert!(failed_for_good(&argo("PreSync"), HealthState::Degraded));
        assert!(!failed_for_good(&hook("HookSucceeded"), HealthState::Progressing));
        assert!(!failed_for_good(
            &with_annotations(&json!({})),
            HealthState::Degraded
        ));
    }
}
