//! The configuration's policy rules applied to what a change does to an application's objects,
//! for a plan and before a sync applies.

use driftless_core::ObjectRef;
use driftless_policy::{Admission, Finding, Operation, Policies};
use serde_json::Value;

/// One object's change: what it becomes (`None`: deleted) and what it was (`None`: created).
pub(crate) struct Change<'a> {
    pub object: &'a ObjectRef,
    pub new: Option<&'a Value>,
    pub old: Option<&'a Value>,
}

/// The rules each change breaks, by object, in the order of `changes`.
pub(crate) fn check<'a>(
    policies: &Policies,
    changes: impl IntoIterator<Item = Change<'a>>,
) -> Vec<(ObjectRef, Finding)> {
    if policies.is_empty() {
        return Vec::new();
    }
    changes
        .into_iter()
        .flat_map(|change| {
            let operation = match (change.new, change.old) {
                (Some(_), Some(_)) => Operation::Update,
                (Some(_), None) => Operation::Create,
                (None, _) => Operation::Delete,
            };
            let admission = Admission {
                operation,
                object: change.new,
                old_object: change.old,
            };
            policies
                .check(&admission)
                .into_iter()
                .map(|finding| (change.object.clone(), finding))
        })
        .collect()
}
