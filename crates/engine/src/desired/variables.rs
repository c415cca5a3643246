//! An application's post-build variables (Flux's `postBuild`), read when it renders and dropped
//! with the render: `substituteFrom` ConfigMaps and Secrets from its destination namespace on
//! its destination cluster (where Flux reads them from the Kustomization's namespace), in order,
//! then the inline `substitute`.

use base64::Engine as _;
use driftless_core::ObjectRef;
use driftless_core::application::{Application, SubstituteKind};
use driftless_kube::ApiResource;
use driftless_render::{SubstituteError, Substitution, Variables};

use crate::clusters::ClusterHandle;
use crate::error::Failure;

fn resource(kind: SubstituteKind) -> ApiResource {
    let plural = match kind {
        SubstituteKind::ConfigMap => "configmaps",
        SubstituteKind::Secret => "secrets",
    };
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: kind.to_string(),
        plural: plural.into(),
    }
}

/// The substitution `app` asks for, or `None` when it has no `postBuild`. A missing object fails
/// the render unless its entry is `optional`; without a cluster (an offline plan) any
/// `substituteFrom` entry does.
pub(crate) async fn load(
    app: &Application,
    cluster: Option<&ClusterHandle>,
) -> Result<Option<Substitution>, Failure> {
    let Some(post_build) = &app.post_build else {
        return Ok(None);
    };
    let mut variables = Variables::new();
    let namespace = app.destination.namespace.clone().unwrap_or_default();
    for reference in &post_build.substitute_from {
        let failed = |reason: String| {
            Failure::from(driftless_render::RenderError::Substitute(
                SubstituteError::Source {
                    kind: reference.kind.to_string(),
                    namespace: namespace.clone(),
                    name: reference.name.clone(),
                    reason,
                },
            ))
        };
        let Some(cluster) = cluster else {
            return Err(failed("needs the cluster, which this run does not reach".into()));
        };
        let object = ObjectRef {
            group: String::new(),
            kind: reference.kind.to_string(),
            namespace: Some(namespace.clone()),
            name: reference.name.clone(),
        };
        let found = cluster
            .objects
            .get(&resource(reference.kind), &object)
            .await
            .map_err(|err| failed(format!("cannot be read: {err}")))?;
        let Some(found) = found else {
            if reference.optional {
                continue;
            }
            return Err(failed(
                "does not exist (mark the entry optional: true if it may be absent)".into(),
            ));
        };
        let origin = format!("{} {namespace}/{}", reference.kind, reference.name);
        let data = found["data"].as_object().cloned().unwrap_or_default();
        let mut entries = Vec::with_capacity(data.len());
        for (key, value) in data {
            let text = value.as_str().unwrap_or_default();
            let value = match reference.kind {
                SubstituteKind::ConfigMap => zeroize::Zeroizing::new(text.to_owned()),
                SubstituteKind::Secret => {
                    let bytes = zeroize::Zeroizing::new(
                        base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .map_err(|_| failed(format!("key {key} is not base64")))?,
                    );
                    zeroize::Zeroizing::new(
                        std::str::from_utf8(&bytes)
                            .map_err(|_| failed(format!("key {key} is not UTF-8 text")))?
                            .to_owned(),
                    )
                }
            };
            entries.push((key, value));
        }
        variables
            .extend(
                &origin,
                entries.iter().map(|(key, value)| (key.clone(), value.as_str())),
            )
            .map_err(|err| Failure::from(driftless_render::RenderError::Substitute(err)))?;
    }
    variables
        .extend("postBuild.substitute", post_build.substitute.clone())
        .map_err(|err| Failure::from(driftless_render::RenderError::Substitute(err)))?;
    Ok(Some(Substitution {
        variables,
        always: post_build.always,
    }))
}
