//! Where the engine applies an application's project (`driftless_core::project`): its source
//! and destination before anything is fetched, its objects before anything is applied, and the
//! projects of the Applications a root declares.

use driftless_core::ObjectRef;
use driftless_core::application::Application;
use driftless_core::project::{
    Project, Violation, check_destination, check_object, check_source, child_project,
};

use crate::desired::DesiredState;
use crate::{Engine, EngineError};

impl Engine {
    /// The project bounding `app`; `None`: unrestricted.
    pub(crate) fn project_of(&self, app: &Application) -> Result<Option<&Project>, EngineError> {
        let Some(name) = &app.project else {
            return Ok(None);
        };
        self.config
            .projects
            .iter()
            .find(|project| project.name == *name)
            .map(Some)
            .ok_or_else(|| EngineError::UnknownProject {
                application: app.name.clone(),
                project: name.clone(),
            })
    }

    /// Refuses an application whose project does not allow its repository or destination, before
    /// its repository is fetched or any key is read.
    pub(crate) fn check_project(&self, app: &Application) -> Result<(), EngineError> {
        let Some(project) = self.project_of(app)? else {
            return Ok(());
        };
        let chart = match &app.source.renderer {
            driftless_core::application::Renderer::Helm(options) => options.chart.as_ref(),
            _ => None,
        };
        check_source(project, &app.source.repo_url)
            .and_then(|()| chart.map_or(Ok(()), |chart| check_source(project, &chart.repository)))
            .and_then(|()| {
                check_destination(
                    project,
                    &app.destination.cluster,
                    app.destination.namespace.as_deref(),
                )
            })
            .map_err(|violation| EngineError::Project {
                application: app.name.clone(),
                // The violation already leaves userinfo out; scrubbed again so no future
                // message can carry a credential.
                message: driftless_secrets::scrub_url(&violation.to_string()),
            })
    }

    /// Whether the application's project lets it pull charts from `url` (its `sourceRepos`
    /// cover chart repositories too, as Argo CD's do).
    pub(crate) fn check_chart_repository(&self, app: &Application, url: &str) -> Result<(), String> {
        match self.project_of(app) {
            Ok(Some(project)) => check_source(project, url)
                .map_err(|violation| driftless_secrets::scrub_url(&violation.to_string())),
            Ok(None) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    }

    /// Every desired object the project refuses, with why.
    pub(crate) fn refused_objects(
        &self,
        app: &Application,
        desired: &DesiredState,
    ) -> Result<Vec<(ObjectRef, Violation)>, EngineError> {
        let Some(project) = self.project_of(app)? else {
            return Ok(Vec::new());
        };
        Ok(desired
            .objects
            .iter()
            .filter_map(|(object, resolved)| {
                check_object(
                    project,
                    &app.destination.cluster,
                    &object.reference,
                    resolved.namespaced,
                )
                .err()
                .map(|violation| (object.reference.clone(), violation))
            })
            .collect())
    }

    /// [`Engine::refused_objects`] as an error, for operations that cannot report per object.
    pub(crate) fn refuse_objects(
        &self,
        app: &Application,
        desired: &DesiredState,
    ) -> Result<(), EngineError> {
        let refused = self.refused_objects(app, desired)?;
        if refused.is_empty() {
            return Ok(());
        }
        Err(EngineError::ProjectObjects {
            application: app.name.clone(),
            objects: refused
                .iter()
                .map(|(object, violation)| format!("{object}: {violation}"))
                .collect(),
        })
    }

    /// The project of a child `root` declares, or why it may have none: it stays in its root's
    /// project, and one it names must exist.
    pub(crate) fn child_project(
        &self,
        root: &Application,
        child: &Application,
    ) -> Result<Option<String>, String> {
        let project = child_project(root.project.as_deref(), child.project.as_deref())
            .map_err(|err| format!("application {:?} {err}", child.name))?;
        if let Some(name) = &project
            && !self.config.projects.iter().any(|known| known.name == *name)
        {
            return Err(format!(
                "application {:?} names unknown project {name:?}",
                child.name
            ));
        }
        Ok(project)
    }
}

/// Why the project keeps `app` from pruning `reference` (a kind or namespace it does not
/// allow, e.g. after the project was narrowed); `None` when it may.
pub(crate) fn prune_refused(
    project: Option<&Project>,
    app: &Application,
    reference: &ObjectRef,
) -> Option<Violation> {
    let project = project?;
    // Inventory objects are known by reference only: namespaced ones have a namespace.
    check_object(
        project,
        &app.destination.cluster,
        reference,
        reference.namespace.is_some(),
    )
    .err()
}
