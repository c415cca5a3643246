//! Rendered manifests to desired objects with their final identity.

use std::fmt::{self, Write as _};

use driftless_core::{DesiredObject, GroupVersionKind, ObjectRef, SourceLocation, duplicates};
use serde_json::Value;

use crate::discovery::{Discovery, DiscoveryError, Resolved, from_desired_crd};

/// One object that cannot be applied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectProblem {
    pub source: SourceLocation,
    /// `Kind/namespace/name` as far as it is known.
    pub object: String,
    pub message: String,
}

impl fmt::Display for ObjectProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.object, self.message)
    }
}

/// Returned by [`resolve_desired`].
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Problems with particular objects; nothing of the application should be applied.
    #[error("{} object(s) cannot be applied:{}", problems.len(), list(problems))]
    Objects { problems: Vec<ObjectProblem> },
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

/// One problem per line, indented, for [`ResolveError::Objects`].
fn list(problems: &[ObjectProblem]) -> String {
    problems.iter().fold(String::new(), |mut text, problem| {
        let _ = write!(text, "\n  {problem}");
        text
    })
}

/// The object's name; for a hook created afresh on every sync, its `generateName`, which stands
/// for it until the server names each sync's object.
fn name_of(manifest: &Value) -> &str {
    manifest
        .pointer("/metadata/name")
        .or_else(|| manifest.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("?")
}

/// Gives every manifest its final identity: the API resource serving its kind, and its namespace
/// (the manifest's own, else `default_namespace`, for namespaced kinds; none for cluster-scoped
/// kinds). Kinds the server does not serve yet are accepted when a CRD among the same manifests
/// defines them. Every problem is collected; any problem fails the whole set.
pub async fn resolve_desired(
    manifests: Vec<(Value, SourceLocation)>,
    default_namespace: Option<&str>,
    discovery: &Discovery,
) -> Result<Vec<(DesiredObject, Resolved)>, ResolveError> {
    let mut problems = Vec::new();
    let mut resolved = Vec::new();
    let mut unknown = Vec::new();
    for (manifest, source) in manifests {
        let kind = manifest.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = manifest
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let gvk = match GroupVersionKind::from_api_version(api_version, kind) {
            Ok(gvk) => gvk,
            Err(err) => {
                problems.push(ObjectProblem {
                    object: format!("{kind}/{}", name_of(&manifest)),
                    source,
                    message: err.to_string(),
                });
                continue;
            }
        };
        match discovery.lookup(&gvk).await? {
            Some(found) => resolved.push((gvk, found, manifest, source)),
            None => unknown.push((gvk, manifest, source)),
        }
    }
    let mut objects = Vec::new();
    for (gvk, found, manifest, source) in resolved {
        match finish(gvk, &found, manifest, source, default_namespace) {
            Ok(object) => objects.push((object, found)),
            Err(problem) => problems.push(problem),
        }
    }
    let desired: Vec<&DesiredObject> = objects.iter().map(|(object, _)| object).collect();
    let mut late = Vec::new();
    for (gvk, manifest, source) in unknown {
        match from_desired_crd(&gvk, &desired) {
            Some(found) => late.push((gvk, found, manifest, source)),
            // Offline, a custom kind without its CRD here is taken as namespaced: its CRD may
            // come from another application, and both sides of a plan are resolved alike. So is
            // an object marked SkipDryRunOnMissingResource=true: its CRD comes from elsewhere in
            // the same sync, and applying it fails if the kind is still not served then.
            None if discovery.is_offline()
                || driftless_core::plan::skips_dry_run_on_missing_resource(&manifest) =>
            {
                let resource = kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                    &gvk.group,
                    &gvk.version,
                    &gvk.kind,
                ));
                let found = Resolved {
                    resource,
                    namespaced: true,
                };
                late.push((gvk, found, manifest, source));
            }
            None => problems.push(ObjectProblem {
                object: format!("{}/{}", gvk.kind, name_of(&manifest)),
                source,
                message: format!(
                    "the API server does not serve kind {} in {} (is its CustomResourceDefinition installed?)",
                    gvk.kind,
                    gvk.api_version()
                ),
            }),
        }
    }
    for (gvk, found, manifest, source) in late {
        match finish(gvk, &found, manifest, source, default_namespace) {
            Ok(object) => objects.push((object, found)),
            Err(problem) => problems.push(problem),
        }
    }
    let just_objects: Vec<DesiredObject> = objects.iter().map(|(object, _)| object.clone()).collect();
    for (reference, places) in duplicates(&just_objects) {
        problems.push(ObjectProblem {
            source: places[0].clone(),
            object: reference.to_string(),
            message: format!(
                "declared more than once (also at {})",
                places[1..]
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    if problems.is_empty() {
        Ok(objects)
    } else {
        Err(ResolveError::Objects { problems })
    }
}

fn finish(
    gvk: GroupVersionKind,
    found: &Resolved,
    mut manifest: Value,
    source: SourceLocation,
    default_namespace: Option<&str>,
) -> Result<DesiredObject, ObjectProblem> {
    let name = name_of(&manifest).to_owned();
    let metadata = manifest
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("the renderer guarantees metadata.name or a hook's generateName, so metadata is an object");
    let namespace = if found.namespaced {
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| default_namespace.map(str::to_owned));
        let Some(namespace) = namespace else {
            return Err(ObjectProblem {
                object: format!("{}/{name}", gvk.kind),
                source,
                message: "a namespaced object without metadata.namespace, and the application's destination names no namespace".to_owned(),
            });
        };
        metadata.insert("namespace".to_owned(), Value::String(namespace.clone()));
        Some(namespace)
    } else {
        // The server ignores it for cluster-scoped kinds; dropping it keeps diffs quiet.
        metadata.remove("namespace");
        None
    };
    let reference = ObjectRef::new(&gvk, namespace.as_deref(), &name);
    Ok(DesiredObject {
        gvk,
        reference,
        manifest,
        source,
    })
}
