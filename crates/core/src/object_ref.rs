use std::fmt;

use serde::{Deserialize, Serialize};

/// The API group, version and kind of an object, as written in its `apiVersion` and `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupVersionKind {
    /// Empty for the core group (`apiVersion: v1`).
    pub group: String,
    pub version: String,
    pub kind: String,
}

/// Returned by [`GroupVersionKind::from_api_version`] when `apiVersion` is not `version` or
/// `group/version`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("apiVersion {api_version:?} is not of the form \"version\" or \"group/version\"")]
pub struct ParseGroupVersionError {
    pub api_version: String,
}

impl GroupVersionKind {
    /// Splits an `apiVersion` such as `apps/v1` or `v1` and pairs it with `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Result<Self, ParseGroupVersionError> {
        let invalid = || ParseGroupVersionError {
            api_version: api_version.to_owned(),
        };
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        if version.is_empty() || version.contains('/') || (api_version.contains('/') && group.is_empty()) {
            return Err(invalid());
        }
        Ok(Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
        })
    }

    /// The `apiVersion` string: `group/version`, or `version` for the core group.
    #[must_use]
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Identifies one Kubernetes object across versions of its API: group and kind, namespace and name.
///
/// The version is deliberately not part of the identity: `apps/v1` and `apps/v1beta2` Deployments
/// with the same name are the same object on the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectRef {
    pub group: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    #[must_use]
    pub fn new(gvk: &GroupVersionKind, namespace: Option<&str>, name: &str) -> Self {
        Self {
            group: gvk.group.clone(),
            kind: gvk.kind.clone(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

/// `Kind/namespace/name`, with `group` when it is not the core group: `apps/Deployment/web/frontend`.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{}/", self.kind)?;
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_core_and_named_groups() {
        let core = GroupVersionKind::from_api_version("v1", "ConfigMap").expect("valid");
        assert_eq!((core.group.as_str(), core.version.as_str()), ("", "v1"));
        assert_eq!(core.api_version(), "v1");

        let apps = GroupVersionKind::from_api_version("apps/v1", "Deployment").expect("valid");
        assert_eq!((apps.group.as_str(), apps.version.as_str()), ("apps", "v1"));
        assert_eq!(apps.api_version(), "apps/v1");
    }

    #[test]
    fn rejects_malformed_api_versions() {
        for bad in ["", "/v1", "apps/", "a/b/c"] {
            let err = GroupVersionKind::from_api_version(bad, "X").expect_err(bad);
            assert_eq!(err.api_version, bad);
        }
    }

    #[test]
    fn identity_ignores_version_and_displays_readably() {
        let v1 = GroupVersionKind::from_api_version("apps/v1", "Deployment").expect("valid");
        let beta = GroupVersionKind::from_api_version("apps/v1beta2", "Deployment").expect("valid");
        assert_eq!(
            ObjectRef::new(&v1, Some("web"), "frontend"),
            ObjectRef::new(&beta, Some("web"), "frontend")
        );
        assert_eq!(
            ObjectRef::new(&v1, Some("web"), "frontend").to_string(),
            "apps/Deployment/web/frontend"
        );

        let ns = GroupVersionKind::from_api_version("v1", "Namespace").expect("valid");
        assert_eq!(ObjectRef::new(&ns, None, "web").to_string(), "Namespace/web");
    }
}
