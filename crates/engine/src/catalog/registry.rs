//! The applications driftless runs: those in the configuration, and those rendered from the
//! sources of root applications (app-of-apps), which come and go with their root's commits.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use driftless_core::application::Application;
use driftless_core::project::{NameRefusal, check_child_name};

use super::DeclaredChild;
use crate::locks;

struct Registered {
    application: Arc<Application>,
    /// The root application whose source declares it; `None` for the configuration's own.
    root: Option<String>,
    /// What of the Argo CD or Flux object it was converted from has no equivalent; it does not
    /// sync while there is any.
    unconverted: Vec<String>,
    /// What of that object only changes how Argo CD or Flux behave (ordering, timeouts,
    /// retries): it syncs, but a user moving from them must be able to see what differs.
    conversion_notes: Vec<String>,
}

pub(crate) struct Registry {
    applications: RwLock<BTreeMap<String, Registered>>,
}

impl Registry {
    pub(crate) fn new(configured: &[Application]) -> Self {
        let applications = configured
            .iter()
            .map(|app| {
                (
                    app.name.clone(),
                    Registered {
                        application: Arc::new(app.clone()),
                        root: None,
                        unconverted: Vec::new(),
                        conversion_notes: Vec::new(),
                    },
                )
            })
            .collect();
        Self {
            applications: RwLock::new(applications),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Registered>> {
        locks::read(&self.applications)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Application>> {
        self.read()
            .get(name)
            .map(|registered| Arc::clone(&registered.application))
    }

    /// Why `name`, converted from an Argo CD or Flux object, may not sync; `None` when it may.
    pub(crate) fn unconverted(&self, name: &str) -> Option<Vec<String>> {
        self.read()
            .get(name)
            .map(|registered| registered.unconverted.clone())
            .filter(|unconverted| !unconverted.is_empty())
    }

    /// What behaves differently for `name` than under the Argo CD or Flux object it was
    /// converted from; empty for an application not converted, or converted as it was.
    pub(crate) fn conversion_notes(&self, name: &str) -> Vec<String> {
        self.read()
            .get(name)
            .map(|registered| registered.conversion_notes.clone())
            .unwrap_or_default()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// The configured application at the head of `name`'s tree.
    fn top(applications: &BTreeMap<String, Registered>, name: &str) -> String {
        let mut top = name.to_owned();
        // Bounded: a tree is never deeper than the registry is large.
        for _ in 0..=applications.len() {
            match applications
                .get(&top)
                .and_then(|registered| registered.root.clone())
            {
                Some(root) => top = root,
                None => break,
            }
        }
        top
    }

    /// Makes the `children` whose names are free the applications `root` declares, replacing
    /// what it declared before. A child may not take the name of an application it does not
    /// already own, nor one `check_child_name` refuses (under another tree's application, or in
    /// another team's `patterns`); each refused child is reported and left out, and nothing
    /// else — neither the root's other children nor any other application — changes. The names
    /// of the children the root no longer has, and the refusals.
    ///
    /// `claims` (from the store: each Git-declared name and the root that declared it) keep a
    /// name with its root across restarts: a claim by another root stands while that root is
    /// registered or is itself a claimed name (a root further down a tree not yet rendered).
    /// Also returns the names the root now declares, for the store.
    pub(crate) fn set_children(
        &self,
        root: &str,
        children: Vec<DeclaredChild>,
        patterns: &[String],
        claims: &BTreeMap<String, String>,
    ) -> (Vec<String>, Vec<NameRefusal>, Vec<String>) {
        let mut applications = locks::write(&self.applications);
        let top = Self::top(&applications, root);
        let configured: Vec<String> = applications
            .iter()
            .filter(|(_, registered)| registered.root.is_none())
            .map(|(name, _)| name.clone())
            .collect();
        // The tree as it stays: without the children the root declared before.
        let mut tree: Vec<String> = applications
            .iter()
            .filter(|(name, registered)| {
                registered.root.as_deref() != Some(root) && Self::top(&applications, name) == top
            })
            .map(|(name, _)| name.clone())
            .collect();
        let configured: Vec<&str> = configured.iter().map(String::as_str).collect();
        let mut refused = Vec::new();
        let mut accepted: Vec<DeclaredChild> = Vec::new();
        // Shorter names first: a name's owner is shorter than it, so only accepted siblings
        // (never a refused one) can own a child's name.
        let mut children = children;
        children.sort_by_key(|child| child.application.name.len());
        for child in children {
            let name = &child.application.name;
            let taken = *name == root
                || applications
                    .get(name)
                    .is_some_and(|existing| existing.root.as_deref() != Some(root));
            let claimed = Self::claimant(&applications, claims, name).filter(|claimant| *claimant != root);
            let verdict = if taken {
                Err(NameRefusal::Taken { name: name.clone() })
            } else if let Some(claimant) = claimed {
                Err(NameRefusal::Declared {
                    name: name.clone(),
                    root: claimant.to_owned(),
                })
            } else {
                let members: Vec<&str> = tree.iter().map(String::as_str).collect();
                check_child_name(name, &top, &members, &configured, patterns)
            };
            match verdict {
                Ok(()) => {
                    tree.push(name.clone());
                    accepted.push(child);
                }
                Err(refusal) => refused.push(refusal),
            }
        }
        let mut dropped = Vec::new();
        applications.retain(|name, registered| {
            let keep = registered.root.as_deref() != Some(root);
            if !keep && !accepted.iter().any(|child| child.application.name == *name) {
                dropped.push(name.clone());
            }
            keep
        });
        let declared: Vec<String> = accepted
            .iter()
            .map(|child| child.application.name.clone())
            .collect();
        for child in accepted {
            let registered = Registered {
                application: Arc::new(child.application),
                root: Some(root.to_owned()),
                unconverted: child.unconverted,
                conversion_notes: child.conversion_notes,
            };
            applications.insert(registered.application.name.clone(), registered);
        }
        (dropped, refused, declared)
    }

    /// The root whose claim on `name` stands: it is registered, or is itself a standing claim.
    fn claimant<'a>(
        applications: &BTreeMap<String, Registered>,
        claims: &'a BTreeMap<String, String>,
        name: &str,
    ) -> Option<&'a str> {
        let root = claims.get(name)?;
        let mut current = root.as_str();
        // Bounded: a chain of claims is never longer than the claims.
        for _ in 0..=claims.len() {
            if applications.contains_key(current) {
                return Some(root);
            }
            current = claims.get(current)?;
        }
        None
    }
}
