//! Time as the engine records it (milliseconds since the Unix epoch, as the store and statuses
//! do), and how old a Git fetch may be ([`FetchClock`]).

use std::time::{Duration, Instant};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    millis(elapsed)
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Every fetch this process made started after the clock was made: "any fetch will do" means
/// "since then".
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchClock {
    created: Instant,
}

impl FetchClock {
    pub(crate) fn new() -> Self {
        Self {
            created: Instant::now(),
        }
    }

    /// Any fetch this process made, however old.
    pub(crate) fn any(self) -> Instant {
        self.created
    }

    /// The instant a fetch must have started at or after to be at most `max_age` old; any fetch
    /// this process made when that is before it (or the machine) started.
    pub(crate) fn since(self, max_age: Duration) -> Instant {
        Instant::now()
            .checked_sub(max_age)
            .map_or(self.created, |since| since.max(self.created))
    }
}
