//! From an application to its desired objects at a commit.

use driftless_core::application::Application;
use driftless_core::plan::mark_owned;
use driftless_core::{DesiredObject, SourceLocation};
use driftless_git::CommitId;
use driftless_kube::{Resolved, resolve_desired};
use serde_json::json;

use crate::{Engine, EngineError};

/// An application's desired state at one commit.
pub(crate) struct DesiredState {
    pub commit: CommitId,
    pub objects: Vec<(DesiredObject, Resolved)>,
    pub renderer: &'static str,
}

/// What `driftless render` shows: the objects an application declares at a commit, exactly as
/// they would be applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RenderedApp {
    pub application: String,
    pub revision: String,
    pub renderer: &'static str,
    pub manifests: Vec<serde_json::Value>,
}

/// An `Application` for driftless itself (app-of-apps), not an object for the cluster.
fn is_application(manifest: &serde_json::Value) -> bool {
    manifest["apiVersion"] == driftless_config::API_VERSION
        && manifest["kind"] == driftless_config::APPLICATION_KIND
}

impl Engine {
    /// Validates the Applications a root declares (exactly as `driftless.yaml` is validated) and
    /// makes them the root's children. Any problem fails the root's render; the previous children
    /// stay as they were.
    fn register_children(
        &self,
        root: &Application,
        children: Vec<(serde_json::Value, SourceLocation)>,
    ) -> Result<(), EngineError> {
        let clusters: Vec<String> = self
            .config
            .clusters
            .iter()
            .map(|cluster| cluster.name.clone())
            .collect();
        let mut valid = Vec::new();
        let mut problems = Vec::new();
        for (manifest, source) in children {
            match driftless_config::application_from_manifest(&manifest, &source.to_string(), &clusters) {
                Ok(child) => valid.push(child),
                Err(err) => problems.extend(err.problems.iter().map(ToString::to_string)),
            }
        }
        if problems.is_empty()
            && let Err(clashes) = self.registry.set_children(&root.name, valid)
        {
            problems = clashes;
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Children {
                application: root.name.clone(),
                problems,
            })
        }
    }

    /// Renders the application (at `revision`, or its pinned or configured revision) without
    /// changing anything. Needs the cluster for discovery (namespaces, CRD scopes).
    pub async fn render(&self, name: &str, revision: Option<&str>) -> Result<RenderedApp, EngineError> {
        let app = self.find_application(name).await?;
        let desired = self.desired_state(&app, revision).await?;
        Ok(RenderedApp {
            application: app.name.clone(),
            revision: desired.commit.to_string(),
            renderer: desired.renderer,
            manifests: desired
                .objects
                .into_iter()
                .map(|(object, _)| object.manifest)
                .collect(),
        })
    }

    /// Fetches the application's repository, resolves `revision` (default: the pinned revision,
    /// else the configured one), renders, and gives every object its identity and ownership label.
    pub(crate) async fn desired_state(
        &self,
        app: &Application,
        revision: Option<&str>,
    ) -> Result<DesiredState, EngineError> {
        let git_error = |source| EngineError::Git {
            application: app.name.clone(),
            source: Box::new(source),
        };
        let pinned = self.store.pinned(&app.name)?;
        let revision = revision.or(pinned.as_deref()).unwrap_or(&app.source.revision);
        let url = &app.source.repo_url;
        let commit = self
            .mirrors
            .fetch_and_resolve(url, revision)
            .await
            .map_err(git_error)?;
        let scope = if driftless_render::needs_whole_repository(&app.source) {
            ""
        } else {
            app.source.path.as_str()
        };
        let tree = self
            .mirrors
            .read_tree(url, &commit, scope)
            .await
            .map_err(git_error)?;
        let rendered = driftless_render::render(&tree, &app.source, &self.options.render_limits)
            .await
            .map_err(|source| EngineError::Render {
                application: app.name.clone(),
                source: Box::new(source),
            })?;
        let (children, mut manifests): (Vec<_>, Vec<_>) = rendered
            .manifests
            .into_iter()
            .map(|m| (m.manifest, m.source))
            .partition(|(manifest, _)| is_application(manifest));
        self.register_children(app, children)?;
        if app.sync_policy.create_namespace
            && let Some(namespace) = &app.destination.namespace
        {
            let declared = manifests.iter().any(|(manifest, _)| {
                manifest["kind"] == "Namespace"
                    && manifest["apiVersion"] == "v1"
                    && manifest["metadata"]["name"] == namespace.as_str()
            });
            if !declared {
                let source = SourceLocation {
                    file: "syncOptions: CreateNamespace=true".into(),
                    document: 0,
                    line: None,
                };
                manifests.push((
                    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": namespace } }),
                    source,
                ));
            }
        }
        let cluster = self.cluster(&app.destination.cluster).await?;
        let mut objects = resolve_desired(
            manifests,
            app.destination.namespace.as_deref(),
            &cluster.discovery,
        )
        .await
        .map_err(|source| EngineError::Resolve {
            application: app.name.clone(),
            source: Box::new(source),
        })?;
        for (object, _) in &mut objects {
            mark_owned(object, &app.name);
        }
        Ok(DesiredState {
            commit,
            objects,
            renderer: rendered.renderer,
        })
    }
}
