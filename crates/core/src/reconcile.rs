//! What a reconcile decides once an application has been compared: whether the difference is
//! a new revision or drift, whether to sync automatically, how long self-heal waits before it
//! reverts again, and which health changes are worth telling people. The controller gathers the
//! facts and acts; every rule is here.

use std::time::Duration;

use crate::application::Automated;
use crate::health::Health;
use crate::notifications::NoticeKind;
use crate::{HealthState, SyncState};

/// A self-heal this long after the previous one starts a new streak.
pub const HEAL_STREAK_RESET: Duration = Duration::from_mins(5);
/// The longest wait between self-heals of an application that keeps being changed back.
pub const MAX_HEAL_DELAY: Duration = Duration::from_mins(5);

/// What a reconcile knows when it decides.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The comparison's outcome.
    pub sync: SyncState,
    /// The revision compared.
    pub revision: &'a str,
    /// The revision of the last successful sync, however long ago (`None`: never synced).
    pub last_synced: Option<&'a str>,
    pub automated: Option<Automated>,
    /// Pinned by a rollback or `driftless pin`.
    pub pinned: bool,
    /// `driftless suspend`.
    pub suspended: bool,
}

/// What to do about an out-of-sync application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The application differs from the revision it was last synced to: someone changed the
    /// cluster, not Git.
    pub drifted: bool,
    /// Sync automatically (for drift, once self-heal's backoff allows: [`heal_timing`]).
    pub sync: Option<AutoSync>,
}

/// How an automated sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoSync {
    /// Delete what left Git.
    pub prune: bool,
    /// Take fields other managers own: self-heal reverts others' changes.
    pub force: bool,
}

/// A new revision is always synced when automated; drift at the revision already synced only
/// with `selfHeal` (otherwise it is reported, as Argo CD does). Nothing is synced automatically
/// while pinned or suspended.
#[must_use]
pub fn decide(facts: &Facts<'_>) -> Decision {
    let out_of_sync = facts.sync == SyncState::OutOfSync;
    let new_revision = facts.last_synced != Some(facts.revision);
    let drifted = out_of_sync && !new_revision;
    let sync = facts
        .automated
        .filter(|automated| !facts.pinned && !facts.suspended && (new_revision || automated.self_heal))
        .filter(|_| out_of_sync)
        .map(|automated| AutoSync {
            prune: automated.prune,
            force: automated.self_heal,
        });
    Decision { drifted, sync }
}

/// How long self-heal waits before the `streak`-th revert in a row: none for the first, then
/// 1 s, 2 s, 4 s … up to [`MAX_HEAL_DELAY`].
#[must_use]
pub fn heal_delay(streak: u32) -> Duration {
    if streak <= 1 {
        return Duration::ZERO;
    }
    let seconds = 1_u64.checked_shl(streak - 2).unwrap_or(u64::MAX);
    Duration::from_secs(seconds).min(MAX_HEAL_DELAY)
}

/// Whether self-heal may revert now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealTiming {
    /// Revert now; this revert is the `streak`-th in a row.
    Now { streak: u32 },
    /// Another writer keeps changing the objects back: wait this long first.
    Wait { remaining: Duration },
}

/// Each revert soon after the last (within [`HEAL_STREAK_RESET`]) waits twice as long as the one
/// before. `last_heal_at` and `now` are milliseconds since the Unix epoch.
#[must_use]
pub fn heal_timing(streak: u32, last_heal_at: Option<i64>, now: i64) -> HealTiming {
    let since_last = last_heal_at.map(|at| now.saturating_sub(at));
    let reset = i64::try_from(HEAL_STREAK_RESET.as_millis()).unwrap_or(i64::MAX);
    let streak = match since_last {
        Some(elapsed) if elapsed < reset => streak.saturating_add(1),
        _ => 1,
    };
    let wait = i64::try_from(heal_delay(streak).as_millis()).unwrap_or(i64::MAX);
    let remaining = wait.saturating_sub(since_last.unwrap_or(i64::MAX));
    if remaining > 0 {
        HealTiming::Wait {
            remaining: Duration::from_millis(u64::try_from(remaining).unwrap_or(0)),
        }
    } else {
        HealTiming::Now { streak }
    }
}

/// The notice a change of health is worth: degraded (with why), or recovered from degraded.
#[must_use]
pub fn health_notice(before: Option<HealthState>, now: Option<&Health>) -> Option<(NoticeKind, String)> {
    let state = now.map(|health| health.state);
    let degraded = Some(HealthState::Degraded);
    if state == degraded && before != degraded {
        Some((
            NoticeKind::HealthDegraded,
            now.map(|health| health.message.clone()).unwrap_or_default(),
        ))
    } else if before == degraded && state == Some(HealthState::Healthy) {
        Some((NoticeKind::HealthRecovered, "healthy again".to_owned()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAL: Automated = Automated {
        prune: true,
        self_heal: true,
    };
    const NO_HEAL: Automated = Automated {
        prune: false,
        self_heal: false,
    };

    fn facts(
        sync: SyncState,
        last_synced: Option<&'static str>,
        automated: Option<Automated>,
    ) -> Facts<'static> {
        Facts {
            sync,
            revision: "b",
            last_synced,
            automated,
            pinned: false,
            suspended: false,
        }
    }

    #[test]
    fn a_new_revision_is_synced_when_automated() {
        let decision = decide(&facts(SyncState::OutOfSync, Some("a"), Some(NO_HEAL)));
        assert_eq!(
            decision,
            Decision {
                drifted: false,
                sync: Some(AutoSync {
                    prune: false,
                    force: false
                })
            }
        );
        assert!(
            decide(&facts(SyncState::OutOfSync, None, Some(NO_HEAL)))
                .sync
                .is_some()
        );
        assert_eq!(decide(&facts(SyncState::OutOfSync, Some("a"), None)).sync, None);
        assert_eq!(
            decide(&facts(SyncState::Synced, Some("a"), Some(HEAL))).sync,
            None
        );
    }

    #[test]
    fn drift_at_the_synced_revision_is_reverted_only_with_self_heal() {
        let reported = decide(&facts(SyncState::OutOfSync, Some("b"), Some(NO_HEAL)));
        assert!(reported.drifted);
        assert_eq!(reported.sync, None);
        let healed = decide(&facts(SyncState::OutOfSync, Some("b"), Some(HEAL)));
        assert!(healed.drifted);
        assert_eq!(
            healed.sync,
            Some(AutoSync {
                prune: true,
                force: true
            })
        );
    }

    #[test]
    fn nothing_is_synced_automatically_while_pinned_or_suspended() {
        for (pinned, suspended) in [(true, false), (false, true)] {
            let decision = decide(&Facts {
                pinned,
                suspended,
                ..facts(SyncState::OutOfSync, Some("a"), Some(HEAL))
            });
            assert_eq!(decision.sync, None);
        }
    }

    #[test]
    fn self_heal_waits_twice_as_long_each_time_it_is_changed_back_soon() {
        assert_eq!(heal_delay(1), Duration::ZERO);
        assert_eq!(heal_delay(2), Duration::from_secs(1));
        assert_eq!(heal_delay(4), Duration::from_secs(4));
        assert_eq!(heal_delay(40), MAX_HEAL_DELAY);
        assert_eq!(heal_delay(u32::MAX), MAX_HEAL_DELAY);
        // The first revert, or one long after the last, is immediate and starts a streak.
        assert_eq!(heal_timing(0, None, 1_000), HealTiming::Now { streak: 1 });
        assert_eq!(
            heal_timing(7, Some(0), 10 * 60 * 1000),
            HealTiming::Now { streak: 1 }
        );
        // The second revert half a second after the first waits the rest of a second.
        assert_eq!(
            heal_timing(1, Some(10_000), 10_500),
            HealTiming::Wait {
                remaining: Duration::from_millis(500)
            }
        );
        assert_eq!(
            heal_timing(1, Some(10_000), 11_000),
            HealTiming::Now { streak: 2 }
        );
    }

    #[test]
    fn degraded_and_recovered_are_told_once_each() {
        let degraded = Health::new(HealthState::Degraded, "crash loop");
        let healthy = Health::new(HealthState::Healthy, "");
        assert_eq!(
            health_notice(Some(HealthState::Healthy), Some(&degraded)),
            Some((NoticeKind::HealthDegraded, "crash loop".to_owned()))
        );
        assert_eq!(health_notice(Some(HealthState::Degraded), Some(&degraded)), None);
        assert_eq!(
            health_notice(Some(HealthState::Degraded), Some(&healthy)),
            Some((NoticeKind::HealthRecovered, "healthy again".to_owned()))
        );
        assert_eq!(
            health_notice(Some(HealthState::Progressing), Some(&healthy)),
            None
        );
        assert_eq!(health_notice(None, None), None);
    }
}
