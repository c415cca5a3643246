//! Hooks: objects that run during a sync (a migration Job, say) and are deleted as their policy
//! says. Every rule about them is here, so compare, sync and the controller cannot disagree:
//! whether a missing hook is drift, whether a live hook is deleted before it is created again,
//! which hooks are deleted after their wave, and when a hook's failure fails the sync.

use serde_json::Value;

use crate::DesiredObject;
use crate::HealthState;
use crate::plan::LiveOwnership;

/// Marks a hook: an object that runs during a sync (a migration Job, say) and is deleted as its
/// policy says. Comma-separated `BeforeHookCreation`, `HookSucceeded`, `HookFailed` (Argo CD's
/// names; Helm's `before-hook-creation`, `hook-succeeded`, `hook-failed` are read too). The Helm
/// renderer writes it for each chart hook.
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "driftless.dev/hook-delete-policy";
/// Argo CD's equivalent.
pub const ARGO_HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";

/// When a hook object is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookDeletePolicy {
    /// A live hook that differs from Git is deleted before the new one is created (a Job's
    /// template cannot be changed in place, and a changed hook should run again).
    pub before_creation: bool,
    /// Deleted once it is healthy (a Job complete); its absence then is not drift.
    pub on_success: bool,
    /// Deleted when it fails; the sync fails too.
    pub on_failure: bool,
}

impl HookDeletePolicy {
    /// Whether the hook may be absent from the cluster once it ran.
    #[must_use]
    pub fn deleted_after_run(self) -> bool {
        self.on_success || self.on_failure
    }
}

/// The object's hook deletion policy; `None`: not a hook.
#[must_use]
pub fn hook_delete_policy(object: &DesiredObject) -> Option<HookDeletePolicy> {
    let value = [HOOK_DELETE_POLICY_ANNOTATION, ARGO_HOOK_DELETE_POLICY_ANNOTATION]
        .iter()
        .find_map(|annotation| object.annotation(annotation))?;
    let mut policy = HookDeletePolicy::default();
    for name in value
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase().replace('-', ""))
    {
        match name.as_str() {
            "beforehookcreation" => policy.before_creation = true,
            "hooksucceeded" => policy.on_success = true,
            "hookfailed" => policy.on_failure = true,
            _ => {}
        }
    }
    Some(policy)
}

/// Whether the hook may be missing from the cluster without being drift: its policy deletes it
/// once it ran. `false` for objects that are not hooks.
#[must_use]
pub fn absent_is_expected(object: &DesiredObject) -> bool {
    hook_delete_policy(object).is_some_and(HookDeletePolicy::deleted_after_run)
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

/// Whether a wave must be waited on even when it is the last: a hook deleted after it runs
/// must be seen to succeed or fail.
#[must_use]
pub fn wave_awaits_hooks<'a>(members: impl IntoIterator<Item = &'a DesiredObject>) -> bool {
    members.into_iter().any(absent_is_expected)
}

/// Whether an object's health ends the wait for its wave at once: a hook that failed (a Job past
/// its backoff limit) will not recover.
#[must_use]
pub fn failed_for_good(object: &DesiredObject, health: HealthState) -> bool {
    health == HealthState::Degraded && hook_delete_policy(object).is_some()
}

/// Whether a server-side dry-run the API server refused (`code`) means only that the object
/// differs: a `BeforeHookCreation` hook is deleted and created anew, so an immutable field (a
/// Job's template) is no error.
#[must_use]
pub fn refused_dry_run_is_difference(object: &DesiredObject, code: u16) -> bool {
    code == 422 && hook_delete_policy(object).is_some_and(|policy| policy.before_creation)
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

    fn live_labelled(owner: Option<&str>) -> Value {
        match owner {
            Some(owner) => json!({"metadata": {"labels": {APPLICATION_LABEL: owner}}}),
            None => json!({"metadata": {}}),
        }
    }

    #[test]
    fn hook_policies_read_argo_and_helm_names() {
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
        let argo = with_annotations(&json!({ ARGO_HOOK_DELETE_POLICY_ANNOTATION: "HookFailed" }));
        assert!(hook_delete_policy(&argo).is_some_and(|p| p.on_failure && p.deleted_after_run()));
        assert_eq!(hook_delete_policy(&with_annotations(&json!({}))), None);
    }

    #[test]
    fn a_hook_deleted_after_it_ran_is_not_missing() {
        assert!(absent_is_expected(&hook("HookSucceeded")));
        assert!(absent_is_expected(&hook("HookFailed")));
        assert!(!absent_is_expected(&hook("BeforeHookCreation")));
        assert!(!absent_is_expected(&with_annotations(&json!({}))));
        assert!(wave_awaits_hooks([
            &hook("BeforeHookCreation"),
            &hook("HookSucceeded")
        ]));
        assert!(!wave_awaits_hooks([&hook("BeforeHookCreation")]));
    }

    #[test]
    fn only_our_own_live_hook_is_deleted_before_it_is_created_again() {
        let recreated = hook("BeforeHookCreation");
        let ours = live_labelled(Some("web"));
        assert_eq!(
            before_apply(&recreated, Some(&ours), "web"),
            BeforeApply::DeleteFirst
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
    }

    #[test]
    fn hooks_are_deleted_after_their_wave_as_their_policy_says() {
        let both = hook("HookSucceeded,HookFailed");
        assert!(delete_after_wave(&both, true) && delete_after_wave(&both, false));
        assert!(delete_after_wave(&hook("HookSucceeded"), true));
        assert!(!delete_after_wave(&hook("HookSucceeded"), false));
        assert!(delete_after_wave(&hook("HookFailed"), false));
        assert!(!delete_after_wave(&hook("HookFailed"), true));
        assert!(!delete_after_wave(&with_annotations(&json!({})), true));
    }

    #[test]
    fn a_degraded_hook_fails_its_wave_at_once_and_a_recreated_hook_may_differ_immutably() {
        assert!(failed_for_good(&hook("HookSucceeded"), HealthState::Degraded));
        assert!(!failed_for_good(&hook("HookSucceeded"), HealthState::Progressing));
        assert!(!failed_for_good(
            &with_annotations(&json!({})),
            HealthState::Degraded
        ));
        assert!(refused_dry_run_is_difference(&hook("BeforeHookCreation"), 422));
        assert!(!refused_dry_run_is_difference(&hook("BeforeHookCreation"), 500));
        assert!(!refused_dry_run_is_difference(&hook("HookSucceeded"), 422));
    }
}
