//! The inventory: what an application applied and still tracks (each object with the API version
//! it was applied as), the only list pruning deletes from. Its rules: what it holds after a sync,
//! and which of its objects a comparison counts as left to prune.

use std::collections::{BTreeMap, BTreeSet};

use crate::ObjectRef;
use crate::plan::LiveOwnership;

/// Objects and the API version each was applied as.
pub type Inventory = BTreeMap<ObjectRef, String>;

/// The inventory after a sync. A successful sync tracks what the plan said it should
/// (`planned`) minus what it pruned, each at the version it was applied as now or before; a
/// failed one forgets nothing — what was tracked before and what it applied now — so that no
/// object it may own escapes a later prune.
#[must_use]
pub fn after_sync(
    succeeded: bool,
    planned: &BTreeSet<ObjectRef>,
    previous: &Inventory,
    applied: &Inventory,
    pruned: &BTreeSet<ObjectRef>,
) -> Inventory {
    if succeeded {
        planned
            .iter()
            .filter(|reference| !pruned.contains(*reference))
            .filter_map(|reference| {
                let version = applied.get(reference).or_else(|| previous.get(reference))?;
                Some((reference.clone(), version.clone()))
            })
            .collect()
    } else {
        let mut next = previous.clone();
        next.extend(
            applied
                .iter()
                .map(|(reference, version)| (reference.clone(), version.clone())),
        );
        next
    }
}

/// The inventory's objects a comparison counts as left to prune: no longer declared, still
/// labelled as this application's in the cluster (`ownership`), not a hook nor marked
/// `IgnoreExtraneous` (or left alone by Flux's annotations), and not refused by its project
/// (`refused`). An object kept by `Prune=false` still counts, as in Argo CD: Git and the cluster
/// differ.
#[must_use]
pub fn left_to_prune(
    application: &str,
    inventory: Inventory,
    declared: &BTreeSet<&ObjectRef>,
    ownership: impl Fn(&ObjectRef) -> Option<LiveOwnership>,
    refused: impl Fn(&ObjectRef) -> bool,
) -> Vec<ObjectRef> {
    inventory
        .into_keys()
        .filter(|reference| !declared.contains(reference))
        .filter(|reference| {
            ownership(reference).is_some_and(|ownership| {
                ownership.owner.as_deref() == Some(application)
                    && !ownership.marks.extraneous_ignored
                    && !ownership.marks.hook
            })
        })
        .filter(|reference| !refused(reference))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupVersionKind;

    fn config_map(name: &str) -> ObjectRef {
        let gvk = GroupVersionKind::from_api_version("v1", "ConfigMap").expect("valid");
        ObjectRef::new(&gvk, Some("default"), name)
    }

    fn inventory(entries: &[(&str, &str)]) -> Inventory {
        entries
            .iter()
            .map(|(name, version)| (config_map(name), (*version).to_owned()))
            .collect()
    }

    #[test]
    fn a_successful_sync_tracks_what_was_planned_minus_what_it_pruned() {
        let previous = inventory(&[("a", "v1"), ("b", "v1"), ("gone", "v1")]);
        let applied = inventory(&[("b", "v2"), ("c", "v1")]);
        let planned: BTreeSet<ObjectRef> = ["a", "b", "c", "gone"].iter().map(|n| config_map(n)).collect();
        let pruned: BTreeSet<ObjectRef> = [config_map("gone")].into();
        assert_eq!(
            after_sync(true, &planned, &previous, &applied, &pruned),
            inventory(&[("a", "v1"), ("b", "v2"), ("c", "v1")])
        );
    }

    #[test]
    fn a_failed_sync_forgets_nothing() {
        let previous = inventory(&[("a", "v1"), ("old", "v1")]);
        let applied = inventory(&[("a", "v2"), ("new", "v1")]);
        assert_eq!(
            after_sync(false, &BTreeSet::new(), &previous, &applied, &BTreeSet::new()),
            inventory(&[("a", "v2"), ("new", "v1"), ("old", "v1")])
        );
    }

    #[test]
    fn only_undeclared_objects_still_ours_and_allowed_are_left_to_prune() {
        let tracked = inventory(&[
            ("kept", "v1"),
            ("ours", "v1"),
            ("theirs", "v1"),
            ("gone", "v1"),
            ("refused", "v1"),
            ("generated", "v1"),
            ("hook", "v1"),
            ("unpruned", "v1"),
        ]);
        let kept = config_map("kept");
        let declared: BTreeSet<&ObjectRef> = [&kept].into();
        let ownership = |reference: &ObjectRef| {
            let annotation = |key: &str| match (reference.name.as_str(), key) {
                ("generated", "argocd.argoproj.io/compare-options") => Some("IgnoreExtraneous"),
                ("hook", "argocd.argoproj.io/hook") => Some("PostSync"),
                ("unpruned", "argocd.argoproj.io/sync-options") => Some("Prune=false"),
                _ => None,
            };
            match reference.name.as_str() {
                "gone" => None,
                "theirs" => Some(LiveOwnership::from_metadata(Some("other"), annotation)),
                _ => Some(LiveOwnership::from_metadata(Some("app"), annotation)),
            }
        };
        let refused = |reference: &ObjectRef| reference.name == "refused";
        assert_eq!(
            left_to_prune("app", tracked, &declared, ownership, refused),
            vec![config_map("ours"), config_map("unpruned")],
            "a generated object marked IgnoreExtraneous and a hook are not extraneous; Prune=false is"
        );
    }
}
