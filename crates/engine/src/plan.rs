//! `driftless plan`: what a proposed change (Git at `base` → `head`) does to each application's
//! rendered objects, without a cluster: both sides are rendered exactly as a sync would render
//! them (plain, Kustomize, Helm, SOPS decrypted in memory), given their identity from Kubernetes'
//! built-in kinds and the CRDs among the manifests, and compared ([`driftless_core::preview`]).

use std::collections::BTreeMap;

use driftless_core::ObjectRef;
use driftless_core::application::Application;
use driftless_core::preview::{ApplicationPlan, compare_renders, withhold};
use serde_json::Value;

use crate::desired::render_scope;
use crate::{Engine, EngineError};

impl Engine {
    /// The plan of every application, from `base` to `head`. With `checkout` (a URL or path
    /// to read instead, and the URLs it is a copy of — a CI job's clone of the pull request and
    /// its `origin`), only the applications whose source is one of those URLs, read from the
    /// checkout. An application that cannot be rendered on either side gets its error in its
    /// plan; the others are planned all the same.
    pub async fn plan(
        &self,
        base: &str,
        head: &str,
        checkout: Option<(&str, &[String])>,
    ) -> Vec<ApplicationPlan> {
        use driftless_core::application::repository_key;
        let mut plans = Vec::new();
        for name in self.application_names() {
            let Ok(app) = self.application(&name) else {
                continue;
            };
            let url = match checkout {
                Some((read, copies)) => {
                    let key = repository_key(&app.source.repo_url);
                    if !copies.iter().any(|copy| repository_key(copy) == key) {
                        continue;
                    }
                    read
                }
                None => app.source.repo_url.as_str(),
            };
            let rendered = async {
                let (at_base, base_decrypted) = self.render_offline(&app, url, base).await?;
                let (at_head, head_decrypted) = self.render_offline(&app, url, head).await?;
                let changes = compare_renders(&at_base, &at_head, &self.redaction());
                // Redaction covers Secrets; a decrypted value may sit in any kind.
                Ok::<_, EngineError>(if base_decrypted || head_decrypted {
                    withhold(changes)
                } else {
                    changes
                })
            };
            plans.push(match rendered.await {
                Ok(changes) => ApplicationPlan {
                    application: app.name.clone(),
                    changes,
                    error: None,
                },
                Err(err) => ApplicationPlan {
                    application: app.name.clone(),
                    changes: Vec::new(),
                    error: Some(err.to_string()),
                },
            });
        }
        plans
    }

    /// The objects `app` declares at `revision` of `url`, by identity, and whether the render
    /// decrypted SOPS files; nothing is cached or kept.
    async fn render_offline(
        &self,
        app: &Application,
        url: &str,
        revision: &str,
    ) -> Result<(BTreeMap<ObjectRef, Value>, bool), EngineError> {
        let git_error = |source| EngineError::Git {
            application: app.name.clone(),
            source: Box::new(source),
        };
        let commit = self
            .mirrors
            .fetch_and_resolve(url, revision)
            .await
            .map_err(git_error)?;
        let tree = self
            .mirrors
            .read_tree(url, &commit, render_scope(app))
            .await
            .map_err(git_error)?;
        let (rendered, _) = self.render_tree(app, &tree, None).await?;
        let decrypted = rendered.decrypted;
        let mut manifests: Vec<_> = rendered
            .manifests
            .into_iter()
            .map(|m| (m.manifest, m.source))
            .filter(|(manifest, _)| !crate::desired::is_application(manifest))
            .collect();
        crate::desired::add_created_namespace(app, &mut manifests);
        let objects = driftless_kube::resolve_desired(
            manifests,
            app.destination.namespace.as_deref(),
            &driftless_kube::Discovery::offline(),
        )
        .await
        .map_err(|source| EngineError::Resolve {
            application: app.name.clone(),
            source: Box::new(source),
        })?;
        let objects = objects
            .into_iter()
            .map(|(object, _)| (object.reference, object.manifest))
            .collect();
        Ok((objects, decrypted))
    }
}
