//! Which API resource serves a kind, and whether it is namespaced.

use std::collections::HashMap;
use std::sync::Mutex;

use driftless_core::{DesiredObject, GroupVersionKind};
use kube::core::{ApiResource, GroupVersionKind as KubeGvk};
use kube::discovery::Scope;

/// What discovery knows about one group/version/kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Returned when the API server cannot be asked.
#[derive(Debug, thiserror::Error)]
#[error(
    "failed to discover {api_version} {kind}: {}{}",
    if self.is_unreachable() { "cannot reach the API server: " } else { "" },
    crate::objects::root_cause(.source)
)]
pub struct DiscoveryError {
    pub api_version: String,
    pub kind: String,
    #[source]
    pub source: kube::Error,
}

impl DiscoveryError {
    /// The API server could not be reached at all (worded as for object requests).
    #[must_use]
    pub fn is_unreachable(&self) -> bool {
        crate::objects::is_unreachable(&self.source)
    }
}

/// A per-cluster cache of discovery answers. Unknown kinds are not cached: a CRD may be installed
/// at any moment, and the next lookup should see it.
pub struct Discovery {
    client: kube::Client,
    known: Mutex<HashMap<GroupVersionKind, Resolved>>,
    capabilities: Mutex<Option<Capabilities>>,
}

/// What a chart's `.Capabilities` should say about this cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `v1.20.2`.
    pub kube_version: String,
    /// Every served group/version (`v1`, `apps/v1`, …).
    pub api_versions: Vec<String>,
}

impl Discovery {
    #[must_use]
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            known: Mutex::new(HashMap::new()),
            capabilities: Mutex::new(None),
        }
    }

    /// The server's version and served group/versions; asked once, until [`Discovery::invalidate`].
    pub async fn capabilities(&self) -> Result<Capabilities, DiscoveryError> {
        if let Some(known) = self
            .capabilities
            .lock()
            .expect("no code panics while holding the cache lock")
            .clone()
        {
            return Ok(known);
        }
        let failed = |source| DiscoveryError {
            api_version: "the server's version and API groups".into(),
            kind: String::new(),
            source,
        };
        let version = self.client.apiserver_version().await.map_err(failed)?;
        let core = self.client.list_core_api_versions().await.map_err(failed)?;
        let groups = self.client.list_api_groups().await.map_err(failed)?;
        let mut api_versions = core.versions;
        api_versions.extend(
            groups
                .groups
                .iter()
                .flat_map(|group| group.versions.iter().map(|v| v.group_version.clone())),
        );
        let capabilities = Capabilities {
            kube_version: version.git_version,
            api_versions,
        };
        *self
            .capabilities
            .lock()
            .expect("no code panics while holding the cache lock") = Some(capabilities.clone());
        Ok(capabilities)
    }

    /// `Ok(None)` when the server does not serve this kind (e.g. its CRD is not installed).
    pub async fn lookup(&self, gvk: &GroupVersionKind) -> Result<Option<Resolved>, DiscoveryError> {
        if let Some(hit) = self
            .known
            .lock()
            .expect("no code panics while holding the cache lock")
            .get(gvk)
        {
            return Ok(Some(hit.clone()));
        }
        let kube_gvk = KubeGvk::gvk(&gvk.group, &gvk.version, &gvk.kind);
        match kube::discovery::pinned_kind(&self.client, &kube_gvk).await {
            Ok((resource, capabilities)) => {
                let resolved = Resolved {
                    resource,
                    namespaced: capabilities.scope == Scope::Namespaced,
                };
                self.known
                    .lock()
                    .expect("no code panics while holding the cache lock")
                    .insert(gvk.clone(), resolved.clone());
                Ok(Some(resolved))
            }
            Err(kube::Error::Discovery(_)) => Ok(None),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(source) => Err(DiscoveryError {
                api_version: gvk.api_version(),
                kind: gvk.kind.clone(),
                source,
            }),
        }
    }

    /// Forgets everything, e.g. after CRDs changed.
    pub fn invalidate(&self) {
        self.known
            .lock()
            .expect("no code panics while holding the cache lock")
            .clear();
        *self
            .capabilities
            .lock()
            .expect("no code panics while holding the cache lock") = None;
    }
}

/// What a CustomResourceDefinition among the desired objects says about the kind it defines, for
/// custom objects applied in the same sync as their CRD.
pub(crate) fn from_desired_crd(gvk: &GroupVersionKind, desired: &[&DesiredObject]) -> Option<Resolved> {
    desired.iter().find_map(|object| {
        let manifest = &object.manifest;
        let spec = manifest.get("spec")?;
        let matches = object.reference.group == "apiextensions.k8s.io"
            && object.reference.kind == "CustomResourceDefinition"
            && spec.get("group")?.as_str()? == gvk.group
            && spec.pointer("/names/kind")?.as_str()? == gvk.kind;
        if !matches {
            return None;
        }
        let plural = spec.pointer("/names/plural")?.as_str()?;
        let namespaced = spec.get("scope").and_then(|s| s.as_str()) != Some("Cluster");
        let resource =
            ApiResource::from_gvk_with_plural(&KubeGvk::gvk(&gvk.group, &gvk.version, &gvk.kind), plural);
        Some(Resolved { resource, namespaced })
    })
}
