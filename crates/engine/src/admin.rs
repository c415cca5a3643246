//! Administrative operations on one application: rollback (sync an earlier revision, then pin),
//! pin and unpin, suspend and resume automated syncs. Each is one step of the state store,
//! except rollback, which syncs.

use driftless_core::application::Application;
use driftless_store::{SyncResult, Trigger};

use crate::clock::now_millis;
use crate::error::Failure;
use crate::parts::Parts;
use crate::sync::{self, SyncOptions, SyncReport};

/// Syncs an earlier revision that was once synced successfully, then pins the application
/// there: automated syncs stop until [`unpin`]. The GitOps-native alternative is a `git revert`,
/// which keeps Git the source of truth.
pub(crate) async fn rollback(
    parts: &Parts,
    app: &Application,
    revision: &str,
    mut options: SyncOptions,
) -> Result<SyncReport, Failure> {
    parts.catalog.check_project(app)?;
    let commit = parts
        .desired
        .fetch_and_resolve(&app.source.repo_url, revision)
        .await?;
    if !parts.store.was_synced(&app.name, commit.as_str())? {
        return Err(Failure::NotInHistory(revision.to_owned()));
    }
    options.revision = Some(commit.to_string());
    options.trigger = Trigger::Rollback;
    let report = sync::sync(parts, app, options, None).await?;
    if report.result == SyncResult::Succeeded && !report.dry_run {
        parts.store.pin(&app.name, commit.as_str())?;
    }
    Ok(report)
}

/// Stops automated syncs of the application (it is still compared and reported, and manual
/// syncs still work) until [`resume`]; `false` if it already was suspended.
pub(crate) fn suspend(parts: &Parts, app: &Application) -> Result<bool, Failure> {
    Ok(parts.store.suspend(&app.name, now_millis())?)
}

/// Lets automated syncs of the application run again; `false` if it was not suspended.
pub(crate) fn resume(parts: &Parts, app: &Application) -> Result<bool, Failure> {
    Ok(parts.store.resume(&app.name)?)
}

/// Pins the application at the revision its last successful sync applied (what the cluster
/// runs): new commits are not deployed until [`unpin`]. Returns that revision.
pub(crate) fn pin(parts: &Parts, app: &Application) -> Result<String, Failure> {
    let deployed = parts
        .store
        .last_synced_revision(&app.name)?
        .ok_or(Failure::NeverSynced)?;
    parts.store.pin(&app.name, &deployed)?;
    Ok(deployed)
}

/// Lets the application follow its configured revision again; `false` if it was not pinned.
pub(crate) fn unpin(parts: &Parts, app: &Application) -> Result<bool, Failure> {
    Ok(parts.store.unpin(&app.name)?)
}
