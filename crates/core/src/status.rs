use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether the live cluster matches what Git declares for an application or object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SyncState {
    Synced,
    OutOfSync,
    /// Not compared yet, or the comparison failed.
    Unknown,
}

/// How well an object or application is running, from best to worst as declared.
///
/// The order matters: an application's health is the worst of its objects' ([`HealthState::worst`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum HealthState {
    Healthy,
    Suspended,
    Progressing,
    Unknown,
    Missing,
    Degraded,
}

impl HealthState {
    /// The worst of several states; `Healthy` for none (an empty application has nothing wrong).
    #[must_use]
    pub fn worst(states: impl IntoIterator<Item = Self>) -> Self {
        states.into_iter().max().unwrap_or(Self::Healthy)
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_health_is_the_worst_of_its_objects() {
        use HealthState::{Degraded, Healthy, Missing, Progressing};
        assert_eq!(HealthState::worst([]), Healthy);
        assert_eq!(HealthState::worst([Healthy, Progressing, Healthy]), Progressing);
        assert_eq!(HealthState::worst([Missing, Degraded, Progressing]), Degraded);
    }

    #[test]
    fn states_serialise_as_their_names() {
        assert_eq!(
            serde_json::to_string(&SyncState::OutOfSync).expect("serialise"),
            "\"OutOfSync\""
        );
        assert_eq!(HealthState::Progressing.to_string(), "Progressing");
    }
}
