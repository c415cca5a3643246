use std::collections::BTreeMap;

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
}

/// Objects declared more than once: each entry is the object and every place that declares it.
#[must_use]
pub fn duplicates(objects: &[DesiredObject]) -> Vec<(&ObjectRef, Vec<&SourceLocation>)> {
    let mut places: BTreeMap<&ObjectRef, Vec<&SourceLocation>> = BTreeMap::new();
    for object in objects {
        places.entry(&object.reference).or_default().push(&object.source);
    }
    places
        .into_iter()
        .filter(|(_, sources)| sources.len() > 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(name: &str, file: &str) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version("v1", "ConfigMap").expect("valid");
        DesiredObject {
            reference: ObjectRef::new(&gvk, Some("web"), name),
            gvk,
            manifest: json!({}),
            source: SourceLocation {
                file: file.into(),
                document: 0,
                line: Some(1),
            },
        }
    }

    #[test]
    fn duplicates_name_every_place_an_object_is_declared() {
        let objects = [
            object("a", "one.yaml"),
            object("b", "one.yaml"),
            object("a", "two.yaml"),
        ];
        let found = duplicates(&objects);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.name, "a");
        let files: Vec<&str> = found[0].1.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(files, vec!["one.yaml", "two.yaml"]);
    }
}
