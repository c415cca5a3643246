use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{GroupVersionKind, ObjectRef};

/// Where a desired object came from, for error messages and the API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceLocation {
    /// Path relative to the repository root (or a renderer's name, e.g. `kustomize build apps/web`).
    pub file: String,
    /// Zero-based index of the YAML document in the file.
    pub document: usize,
    /// One-based line where the document starts, when known.
    pub line: Option<usize>,
}

impl std::fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (document {}", self.file, self.document + 1)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        f.write_str(")")
    }
}

/// One object as Git declares it, after rendering: its identity (namespace already defaulted for
/// namespaced kinds), the manifest to apply, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredObject {
    pub gvk: GroupVersionKind,
    pub reference: ObjectRef,
    pub manifest: Value,
    pub source: SourceLocation,
}

impl DesiredObject {
    /// An annotation of the manifest.
    #[must_use]
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.manifest.pointer("/metadata/annotations")?.get(key)?.as_str()
    }

    #[must_use]
    pub fn is_cluster_scoped(&self) -> bool {
        self.reference.namespace.is_none()
    }
}
