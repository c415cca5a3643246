//! driftless's messages to the outside world, apart from the API.
//!
//! - [`spawn`] delivers the controller's notices (`StatusUpdate::notices`) to the targets their
//!   subscriptions name: Slack-compatible and signed JSON webhooks, mail (STARTTLS required) and
//!   GitHub/GitLab commit statuses for the synced commit, each with retries (`delivery.rs`).
//! - [`PullRequest`] posts a plan on a pull/merge request (`driftless plan --post`): one comment,
//!   edited on every run, and a commit status on the head commit (`review.rs`).
//!
//! Both speak GitHub's and GitLab's REST APIs through `forge.rs`. Errors name the target or the
//! forge, never a URL (a Slack URL is a secret) or a token.

mod delivery;
mod forge;
mod review;
#[cfg(test)]
mod testing;

pub use delivery::spawn;
pub use forge::ForgeError;
pub use review::{PostError, PullRequest, STATUS_CONTEXT};
