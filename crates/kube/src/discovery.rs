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
/// at any moment, and the next lookup should see it. [`Discovery::offline`] answers from
/// Kubernetes' built-in kinds alone, for plans made without a cluster.
pub struct Discovery {
    /// `None`: offline.
    client: Option<kube::Client>,
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
            client: Some(client),
            known: Mutex::new(HashMap::new()),
            capabilities: Mutex::new(None),
        }
    }

    /// Without a cluster: built-in kinds are known by their scope; other kinds are namespaced
    /// unless a CustomResourceDefinition among the manifests says otherwise.
    #[must_use]
    pub fn offline() -> Self {
        Self {
            client: None,
            known: Mutex::new(HashMap::new()),
            capabilities: Mutex::new(None),
        }
    }

    #[must_use]
    pub fn is_offline(&self) -> bool {
        self.client.is_none()
    }

    /// The server's version and served group/versions; asked once, until [`Discovery::invalidate`].
    /// Offline: no version and no group/versions (charts render with Helm's defaults).
    pub async fn capabilities(&self) -> Result<Capabilities, DiscoveryError> {
        let Some(client) = &self.client else {
            return Ok(Capabilities {
                kube_version: String::new(),
                api_versions: Vec::new(),
            });
        };
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
        let version = client.apiserver_version().await.map_err(failed)?;
        let core = client.list_core_api_versions().await.map_err(failed)?;
        let groups = client.list_api_groups().await.map_err(failed)?;
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

    /// The server's OpenAPI v2 document (`/openapi/v2`): the schemas of every kind it serves,
    /// custom kinds with structural schemas included. Not cached: a plan asks once. Offline:
    /// `None`.
    pub async fn openapi_v2(&self) -> Result<Option<serde_json::Value>, DiscoveryError> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let failed = |source| DiscoveryError {
            api_version: "the server's OpenAPI schemas".into(),
            kind: String::new(),
            source,
        };
        let request = http::Request::get("/openapi/v2")
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|err| failed(kube::Error::HttpError(err)))?;
        client.request(request).await.map(Some).map_err(failed)
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
        let Some(client) = &self.client else {
            return Ok(builtin(gvk));
        };
        match kube::discovery::pinned_kind(client, &kube_gvk).await {
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
/// Groups whose kinds Kubernetes serves itself.
const BUILTIN_GROUPS: [&str; 20] = [
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "events.k8s.io",
    "certificates.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "resource.k8s.io",
    "storagemigration.k8s.io",
];

/// Built-in kinds that are not namespaced.
const CLUSTER_SCOPED: [&str; 24] = [
    "Namespace",
    "Node",
    "PersistentVolume",
    "ComponentStatus",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "CertificateSigningRequest",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "CustomResourceDefinition",
    "APIService",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "PodSecurityPolicy",
    "DeviceClass",
];

/// A built-in kind as the API server would serve it (plural: the lowercase kind plus `s`, `es`
/// or `ies`, as Kubernetes names its own resources); `None` for other groups.
#[must_use]
pub fn builtin(gvk: &GroupVersionKind) -> Option<Resolved> {
    if !BUILTIN_GROUPS.contains(&gvk.group.as_str()) {
        return None;
    }
    let kind = gvk.kind.to_ascii_lowercase();
    let plural = if let Some(stem) = kind.strip_suffix('y') {
        format!("{stem}ies")
    } else if kind.ends_with('s') || kind.ends_with("ch") {
        format!("{kind}es")
    } else {
        format!("{kind}s")
    };
    Some(Resolved {
        resource: ApiResource::from_gvk_with_plural(
            &KubeGvk::gvk(&gvk.group, &gvk.version, &gvk.kind),
            &plural,
        ),
        namespaced: !CLUSTER_SCOPED.contains(&gvk.kind.as_str()),
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn gvk(group: &str, kind: &str) -> GroupVersionKind {
        GroupVersionKind {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
        }
    }

    #[test]
    fn offline_built_in_kinds_have_their_scope_and_plural() {
        for (group, kind, namespaced, plural) in [
            ("", "ConfigMap", true, "configmaps"),
            ("apps", "Deployment", true, "deployments"),
            ("networking.k8s.io", "Ingress", true, "ingresses"),
            ("", "Namespace", false, "namespaces"),
            ("rbac.authorization.k8s.io", "ClusterRole", false, "clusterroles"),
            ("networking.k8s.io", "NetworkPolicy", true, "networkpolicies"),
            ("storage.k8s.io", "StorageClass", false, "storageclasses"),
        ] {
            let found = builtin(&gvk(group, kind)).expect("built in");
            assert_eq!(
                (found.namespaced, found.resource.plural.as_str()),
                (namespaced, plural),
                "{kind}"
            );
        }
        assert_eq!(builtin(&gvk("cert-manager.io", "Certificate")), None);
    }
}
