//! What the configuration declares, looked up: the applications (the configuration's and those
//! roots declare, in the [`Registry`]), their projects and the policy rules. Projects are
//! applied here (`driftless_core::project`): an application's source and destination before
//! anything is fetched, its objects before anything is applied, and the projects of the
//! Applications a root declares.

mod registry;

use std::sync::{Arc, OnceLock};

use driftless_config::Config;
use driftless_config::foreign;
use driftless_core::application::{Application, Renderer};
use driftless_core::project::{
    Project, Violation, check_destination, check_object, check_source, child_project,
};
use driftless_core::{DesiredObject, ObjectRef, SourceLocation};
use driftless_kube::Resolved;

pub(crate) use registry::Registry;

use crate::error::Failure;

pub(crate) struct Catalog {
    config: Config,
    registry: Arc<Registry>,
    policies: driftless_policy::Policies,
    /// The configured clusters as an Argo CD destination names them: by name, or by its API
    /// server's URL (read from its kubeconfig once, when a root first declares an Argo CD or
    /// Flux object: every command builds a catalog, and most never convert anything).
    known_clusters: OnceLock<Vec<foreign::KnownCluster>>,
}

impl Catalog {
    pub(crate) fn new(config: Config) -> Result<Self, driftless_policy::PolicyError> {
        let policies = driftless_policy::Policies::new(config.policy.clone())?;
        Ok(Self {
            registry: Arc::new(Registry::new(&config.applications)),
            known_clusters: OnceLock::new(),
            config,
            policies,
        })
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub(crate) fn policies(&self) -> &driftless_policy::Policies {
        &self.policies
    }

    pub(crate) fn application(&self, name: &str) -> Result<Arc<Application>, Failure> {
        self.registry
            .get(name)
            .ok_or_else(|| Failure::UnknownApplication(name.to_owned()))
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.registry.names()
    }

    /// The project bounding `app`; `None`: unrestricted.
    pub(crate) fn project_of(&self, app: &Application) -> Result<Option<&Project>, Failure> {
        let Some(name) = &app.project else {
            return Ok(None);
        };
        self.config
            .projects
            .iter()
            .find(|project| project.name == *name)
            .map(Some)
            .ok_or_else(|| Failure::UnknownProject(name.clone()))
    }

    /// Refuses an application whose project does not allow its repository or destination, before
    /// its repository is fetched or any key is read; and one converted from an Argo CD or Flux
    /// object with what has no equivalent ([`Catalog::declared_children`]).
    pub(crate) fn check_project(&self, app: &Application) -> Result<(), Failure> {
        self.check_converted(app)?;
        let Some(project) = self.project_of(app)? else {
            return Ok(());
        };
        let chart = match &app.source.renderer {
            Renderer::Helm(options) => options.chart.as_ref(),
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
            // The violation already leaves userinfo out; scrubbed again so no future message
            // can carry a credential.
            .map_err(|violation| Failure::Project(driftless_secrets::scrub_url(&violation.to_string())))
    }

    /// Whether the application's project lets it pull charts from `url` (its `sourceRepos`
    /// cover chart repositories too, as Argo CD's do).
    pub(crate) fn check_chart_repository(
        &self,
        app: &Application,
        url: &str,
    ) -> Result<(), driftless_render::ChartRefused> {
        let refused = |reason| driftless_render::ChartRefused { reason };
        match self.project_of(app) {
            Ok(Some(project)) => check_source(project, url)
                .map_err(|violation| refused(driftless_secrets::scrub_url(&violation.to_string()))),
            Ok(None) => Ok(()),
            Err(err) => Err(refused(err.to_string())),
        }
    }

    /// Every desired object the project refuses, with why.
    pub(crate) fn refused_objects(
        &self,
        app: &Application,
        objects: &[(DesiredObject, Resolved)],
    ) -> Result<Vec<(ObjectRef, Violation)>, Failure> {
        let Some(project) = self.project_of(app)? else {
            return Ok(Vec::new());
        };
        Ok(objects
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

    /// [`Catalog::refused_objects`] as an error, for operations that cannot report per object.
    pub(crate) fn refuse_objects(
        &self,
        app: &Application,
        objects: &[(DesiredObject, Resolved)],
    ) -> Result<(), Failure> {
        let refused = self.refused_objects(app, objects)?;
        if refused.is_empty() {
            return Ok(());
        }
        Err(Failure::ProjectObjects(
            refused
                .iter()
                .map(|(object, violation)| format!("{object}: {violation}"))
                .collect(),
        ))
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

    /// The project of a child `root` declares, or why it may have none: it stays in its root's
    /// project, and one it names must exist.
    fn child_project(
        &self,
        root: &Application,
        child: &Application,
    ) -> Result<Option<String>, ChildProjectError> {
        let project = child_project(root.project.as_deref(), child.project.as_deref()).map_err(|reason| {
            ChildProjectError::Outside {
                child: child.name.clone(),
                reason,
            }
        })?;
        if let Some(name) = &project
            && !self.config.projects.iter().any(|known| known.name == *name)
        {
            return Err(ChildProjectError::Unknown {
                child: child.name.clone(),
                project: name.clone(),
            });
        }
        Ok(project)
    }

    /// The Application manifests a root renders, validated exactly as `driftless.yaml` is and
    /// given the root's project (a plan reads them without registering them; any problem fails
    /// them all), each with, for a child converted from an Argo CD or Flux
    /// object, what it has that driftless has no equivalent for. Argo CD and Flux objects are
    /// converted together (Flux's refer to each other) into driftless Application documents,
    /// which then go through the very validation and project checks of the root's own
    /// Applications; an object that becomes no application and cannot be carried over (an
    /// ApplicationSet, say) fails them all, like an invalid Application.
    pub(crate) fn declared_children(
        &self,
        root: &Application,
        children: Vec<(serde_json::Value, SourceLocation)>,
    ) -> Result<Vec<DeclaredChild>, Failure> {
        let clusters: Vec<String> = self
            .config
            .clusters
            .iter()
            .map(|cluster| cluster.name.clone())
            .collect();
        let (native, foreign): (Vec<_>, Vec<_>) = children
            .into_iter()
            .partition(|(manifest, _)| is_driftless_application(manifest));
        let mut declared: Vec<(serde_json::Value, String, Findings)> = native
            .into_iter()
            .map(|(manifest, source)| (manifest, source.to_string(), Findings::default()))
            .collect();
        let mut problems = Vec::new();
        if !foreign.is_empty() {
            let conversion = convert_foreign(
                root,
                self.known_clusters
                    .get_or_init(|| known_clusters(&self.config.clusters)),
                foreign,
            );
            problems.extend(
                conversion
                    .findings
                    .iter()
                    .filter(|finding| finding.blocks())
                    .map(ToString::to_string),
            );
            declared.extend(conversion.applications.into_iter().map(|app| {
                let (unsupported, differs): (Vec<_>, Vec<_>) =
                    app.findings.iter().partition(|finding| finding.blocks());
                let findings = Findings {
                    unconverted: unsupported.into_iter().map(ToString::to_string).collect(),
                    conversion_notes: differs.into_iter().map(ToString::to_string).collect(),
                };
                (app.manifest, app.origin, findings)
            }));
        }
        let mut valid = Vec::new();
        for (manifest, source, findings) in declared {
            match driftless_config::application_from_manifest(&manifest, &source, &clusters) {
                Ok(mut child) => match self.child_project(root, &child) {
                    Ok(project) => {
                        child.project = project;
                        valid.push(DeclaredChild {
                            application: child,
                            unconverted: findings.unconverted,
                            conversion_notes: findings.conversion_notes,
                        });
                    }
                    Err(message) => problems.push(format!("{source}: spec.project: {message}")),
                },
                Err(err) => problems.extend(err.problems.iter().map(ToString::to_string)),
            }
        }
        if problems.is_empty() {
            Ok(valid)
        } else {
            Err(Failure::Children(problems))
        }
    }

    /// Refuses an application declared in Git as an Argo CD or Flux object with something
    /// driftless has no equivalent for: it is listed, with why, and never synced without it.
    fn check_converted(&self, app: &Application) -> Result<(), Failure> {
        match self.registry.unconverted(&app.name) {
            Some(findings) => Err(Failure::Unconverted(findings)),
            None => Ok(()),
        }
    }
}

/// An Application a root declares, and what of the Argo CD or Flux object it was converted
/// from could not be carried over (empty: it syncs).
#[derive(Debug, Clone)]
pub(crate) struct DeclaredChild {
    pub application: Application,
    pub unconverted: Vec<String>,
    /// What of that object only changes how Argo CD or Flux behave; shown, never blocking.
    pub conversion_notes: Vec<String>,
}

/// A converted object's findings, split by whether they keep it from syncing (both empty for
/// a driftless Application).
#[derive(Debug, Default)]
struct Findings {
    unconverted: Vec<String>,
    conversion_notes: Vec<String>,
}

/// Argo CD and Flux objects a root renders, as driftless Applications: `in-cluster` and Flux's
/// own cluster are the root's, and a chart from a chart repository reads its values from the
/// root's repository.
fn convert_foreign(
    root: &Application,
    known: &[foreign::KnownCluster],
    objects: Vec<(serde_json::Value, SourceLocation)>,
) -> foreign::Conversion {
    let objects: Vec<foreign::ForeignObject> = objects
        .into_iter()
        .map(|(mut manifest, source)| {
            // Like every namespaced object the root renders, one naming no namespace is in the
            // root's destination namespace (where Flux's targetNamespace puts it); a HelmRelease's
            // sourceRef without a namespace then finds the HelmRepository declared beside it.
            if let Some(namespace) = &root.destination.namespace
                && manifest["metadata"].is_object()
                && manifest["metadata"]["namespace"]
                    .as_str()
                    .is_none_or(str::is_empty)
            {
                manifest["metadata"]["namespace"] = serde_json::json!(namespace);
            }
            foreign::ForeignObject {
                manifest,
                source: source.to_string(),
            }
        })
        .collect();
    let context = foreign::Context {
        purpose: foreign::Purpose::Children,
        home_cluster: &root.destination.cluster,
        clusters: known,
        home_repository: Some((&root.source.repo_url, &root.source.revision)),
    };
    foreign::convert(&objects, &context)
}

/// Why an Application a root declares cannot have the project it asks for.
#[derive(Debug, thiserror::Error)]
enum ChildProjectError {
    #[error("application {child:?} {reason}")]
    Outside {
        child: String,
        reason: driftless_core::project::ForeignProject,
    },
    #[error("application {child:?} names unknown project {project:?}")]
    Unknown { child: String, project: String },
}

/// The configured clusters as Argo CD destinations name them (`driftless import` reads them
/// the same way).
pub fn known_clusters(clusters: &[driftless_core::application::Cluster]) -> Vec<foreign::KnownCluster> {
    clusters.iter().map(known_cluster).collect()
}

/// `cluster` with the URL of its kubeconfig context's API server, when that can be read (else
/// a destination can name it only by name).
fn known_cluster(cluster: &driftless_core::application::Cluster) -> foreign::KnownCluster {
    foreign::KnownCluster {
        name: cluster.name.clone(),
        server: driftless_kube::api_server_url(cluster),
    }
}

/// An Application for driftless itself (app-of-apps), not an object for the cluster: ours, or
/// an Argo CD or Flux object that becomes one (Flux's sources included, which the conversion
/// consumes). Argo CD and Flux objects are never applied: their controllers are not what
/// deploys them here.
pub(crate) fn is_application(manifest: &serde_json::Value) -> bool {
    is_driftless_application(manifest) || foreign::is_foreign(manifest)
}

fn is_driftless_application(manifest: &serde_json::Value) -> bool {
    manifest["apiVersion"] == driftless_config::API_VERSION
        && manifest["kind"] == driftless_config::APPLICATION_KIND
}
