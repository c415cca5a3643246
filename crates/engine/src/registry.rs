//! The applications driftless runs: those in the configuration, and those rendered from the
//! sources of root applications (app-of-apps), which come and go with their root's commits.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use driftless_core::application::Application;

use crate::locks;

struct Registered {
    application: Arc<Application>,
    /// The root application whose source declares it; `None` for the configuration's own.
    root: Option<String>,
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

    pub(crate) fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Makes `children` the applications `root` declares, replacing what it declared before.
    /// A child may not take the name of an application it does not already own; every such
    /// clash is returned and nothing changes. On success, the names of the children the root no
    /// longer declares.
    pub(crate) fn set_children(
        &self,
        root: &str,
        children: Vec<Application>,
    ) -> Result<Vec<String>, Vec<String>> {
        let mut applications = locks::write(&self.applications);
        let clashes: Vec<String> = children
            .iter()
            .filter(|child| {
                child.name == root
                    || applications
                        .get(&child.name)
                        .is_some_and(|existing| existing.root.as_deref() != Some(root))
            })
            .map(|child| {
                format!(
                    "application {:?} is already defined elsewhere; a root cannot redefine it",
                    child.name
                )
            })
            .collect();
        if !clashes.is_empty() {
            return Err(clashes);
        }
        let mut dropped = Vec::new();
        applications.retain(|name, registered| {
            let keep = registered.root.as_deref() != Some(root);
            if !keep && !children.iter().any(|child| child.name == *name) {
                dropped.push(name.clone());
            }
            keep
        });
        for child in children {
            let registered = Registered {
                application: Arc::new(child),
                root: Some(root.to_owned()),
            };
            applications.insert(registered.application.name.clone(), registered);
        }
        Ok(dropped)
    }
}
