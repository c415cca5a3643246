//! App-of-apps: the Applications a root's render declares — ours, and Argo CD's and Flux's
//! converted — become the root's children in the catalog's registry. A converted child with
//! something that has no equivalent is registered with it, and refuses to sync
//! (`Catalog::check_project`).

use driftless_core::SourceLocation;
use driftless_core::application::Application;

use super::Desired;
use crate::context::Context;
use crate::error::Failure;

impl Desired {
    /// Validates the Applications a root declares (exactly as `driftless.yaml` is validated;
    /// Argo CD and Flux objects converted first) and makes them the root's children. A validation problem fails the root's render, and the
    /// previous children stay as they were; a child whose name is not free (see
    /// `Registry::set_children`) is left out alone, reported as the root's error, while its
    /// siblings are registered.
    pub(super) fn register_children(
        &self,
        cx: Context<'_>,
        root: &Application,
        children: Vec<(serde_json::Value, SourceLocation)>,
    ) -> Result<(), Failure> {
        let valid = cx.catalog.declared_children(root, children)?;
        let patterns = application_patterns(cx)?;
        let claims = cx.store.declared_names()?;
        let (dropped, refused, declared) = cx
            .catalog
            .registry()
            .set_children(&root.name, valid, &patterns, &claims);
        cx.store.set_declared_names(&root.name, &declared)?;
        self.cache.forget(&dropped);
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Failure::Children(
                refused.iter().map(ToString::to_string).collect(),
            ))
        }
    }
}

/// The application-name globs that mark out a team's applications: those of scoped API tokens
/// and of notification subscriptions. A Git-declared child may not enter them.
fn application_patterns(cx: Context<'_>) -> Result<Vec<String>, Failure> {
    let mut patterns: Vec<String> = cx
        .catalog
        .config()
        .notifications
        .subscriptions
        .iter()
        .flat_map(|subscription| subscription.applications.iter().cloned())
        .collect();
    patterns.extend(
        cx.store
            .tokens()?
            .into_iter()
            .flat_map(|token| token.grant.applications),
    );
    patterns.sort();
    patterns.dedup();
    Ok(patterns)
}
