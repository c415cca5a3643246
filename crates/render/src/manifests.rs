//! Parsing YAML and JSON streams into manifests.

use driftless_core::{GroupVersionKind, SourceLocation};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::{RenderError, RenderLimits, RenderedManifest};

/// YAML as Kubernetes reads it (YAML 1.1 scalars: `yes`/`on` booleans, `0644` octal, as
/// sigs.k8s.io/yaml does), with bounds on aliases, nesting and size against YAML bombs.
fn yaml_options(limits: &RenderLimits) -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        budget: serde_saphyr::budget! {
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 256,
            max_documents: limits.max_documents,
        },
    }
}

/// Parses one file (YAML stream or JSON document) into manifests. `List` kinds are expanded,
/// empty documents skipped, and each manifest is checked for `apiVersion`, `kind` and
/// `metadata.name`.
pub fn parse_documents(
    text: &str,
    file: &str,
    limits: &RenderLimits,
) -> Result<Vec<RenderedManifest>, RenderError> {
    check_size(text, file, limits)?;
    let documents: Vec<Spanned<Value>> = serde_saphyr::from_multiple_with_options(text, yaml_options(limits))
        .map_err(|err| RenderError::Unparsable {
            file: file.to_owned(),
            line: err.location().map(|l| l.line()).filter(|l| *l > 0),
            message: first_line(&err.to_string()),
        })?;
    let mut manifests = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let line = Some(document.referenced.line())
            .filter(|l| *l > 0)
            .and_then(|l| usize::try_from(l).ok());
        let location = SourceLocation {
            file: file.to_owned(),
            document: index,
            line,
        };
        push_manifest(document.value, &location, &mut manifests)?;
        if manifests.len() > limits.max_documents {
            return Err(RenderError::TooManyDocuments {
                limit: limits.max_documents,
            });
        }
    }
    Ok(manifests)
}

/// One YAML document (a kustomization), bounded like manifests.
pub(crate) fn parse_one(text: &str, file: &str) -> Result<Value, RenderError> {
    serde_saphyr::from_str_with_options(text, yaml_options(&RenderLimits::default())).map_err(|err| {
        RenderError::Unparsable {
            file: file.to_owned(),
            line: err.location().map(|l| l.line()).filter(|l| *l > 0),
            message: first_line(&err.to_string()),
        }
    })
}

/// Refuses a file larger than the render limits allow.
pub(crate) fn check_size(text: &str, file: &str, limits: &RenderLimits) -> Result<(), RenderError> {
    if text.len() > limits.max_file_bytes {
        return Err(RenderError::FileTooLarge {
            file: file.to_owned(),
            limit: limits.max_file_bytes,
        });
    }
    Ok(())
}

/// serde-saphyr's messages end in a source snippet; the first line says what is wrong.
fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

fn invalid(location: &SourceLocation, message: impl Into<String>) -> RenderError {
    RenderError::Invalid {
        location: location.clone(),
        message: message.into(),
    }
}

pub(crate) fn push_manifest(
    value: Value,
    location: &SourceLocation,
    out: &mut Vec<RenderedManifest>,
) -> Result<(), RenderError> {
    if value.is_null() {
        return Ok(());
    }
    let Value::Object(object) = &value else {
        return Err(invalid(
            location,
            "a document must be a mapping (an object), not a list or a scalar",
        ));
    };
    let text = |key: &str| object.get(key).and_then(Value::as_str);
    let kind = text("kind").ok_or_else(|| invalid(location, "field kind is missing or not a string"))?;
    let api_version =
        text("apiVersion").ok_or_else(|| invalid(location, "field apiVersion is missing or not a string"))?;
    GroupVersionKind::from_api_version(api_version, kind)
        .map_err(|err| invalid(location, format!("field apiVersion: {err}")))?;
    if kind.ends_with("List") && object.contains_key("items") {
        let Some(Value::Array(items)) = object.get("items") else {
            return Err(invalid(location, format!("field items of {kind} must be a list")));
        };
        for item in items.clone() {
            push_manifest(item, location, out)?;
        }
        return Ok(());
    }
    match value.pointer("/metadata/name") {
        Some(Value::String(name)) if !name.is_empty() => {}
        Some(_) => {
            return Err(invalid(
                location,
                format!("{kind}: field metadata.name must be a non-empty string"),
            ));
        }
        None if value.pointer("/metadata/generateName").is_some() => {
            check_generated_name(&value, kind, location)?;
        }
        None => {
            return Err(invalid(
                location,
                format!("{kind}: field metadata.name is missing"),
            ));
        }
    }
    if let Some(namespace) = value.pointer("/metadata/namespace")
        && !namespace.is_string()
    {
        return Err(invalid(
            location,
            format!("{kind}: field metadata.namespace must be a string"),
        ));
    }
    out.push(RenderedManifest {
        manifest: value,
        source: location.clone(),
    });
    Ok(())
}

/// Annotations that make an object a hook, which runs afresh on every sync and so may name only
/// its `generateName` (as in Argo CD; Helm's hooks are mapped onto the same model).
const HOOK_ANNOTATIONS: &[&str] = &[
    driftless_core::hooks::HOOK_ANNOTATION,
    driftless_core::hooks::ARGO_HOOK_ANNOTATION,
    driftless_core::hooks::HELM_HOOK_ANNOTATION,
];
/// Room the API server needs for the random suffix it appends to a `generateName` (5
/// characters) within a name of at most 253.
const MAX_GENERATE_NAME: usize = 248;

/// `metadata.generateName` without a name: allowed on hooks only (an object kept in step with Git
/// needs a stable name to be found again), and only as a DNS subdomain prefix, since it reaches
/// the API server's URLs and labels.
fn check_generated_name(value: &Value, kind: &str, location: &SourceLocation) -> Result<(), RenderError> {
    let generate_name = value.pointer("/metadata/generateName").and_then(Value::as_str);
    let Some(generate_name) = generate_name.filter(|name| !name.is_empty()) else {
        return Err(invalid(
            location,
            format!("{kind}: field metadata.generateName must be a non-empty string"),
        ));
    };
    let is_hook = HOOK_ANNOTATIONS.iter().any(|key| {
        value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(*key))
            .is_some()
    });
    if !is_hook {
        return Err(invalid(
            location,
            format!(
                "{kind} {generate_name:?}: field metadata.generateName is allowed only on hooks \
                 (annotation argocd.argoproj.io/hook or driftless.dev/hook); other objects need \
                 metadata.name, a stable name to be found again"
            ),
        ));
    }
    let valid = generate_name.len() <= MAX_GENERATE_NAME
        && generate_name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && generate_name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'));
    if !valid {
        return Err(invalid(
            location,
            format!(
                "{kind} {generate_name:?}: field metadata.generateName must be a DNS subdomain prefix \
                 (lowercase letters, digits, '-' and '.', starting with a letter or digit, at most \
                 {MAX_GENERATE_NAME} characters)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<Vec<RenderedManifest>, RenderError> {
        parse_documents(text, "app/x.yaml", &RenderLimits::default())
    }

    #[test]
    fn multi_document_streams_skip_empty_documents_and_expand_lists() {
        let text = "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n  - {apiVersion: v1, kind: Secret, metadata: {name: c}}\n";
        let manifests = parse(text).expect("valid");
        let names: Vec<_> = manifests
            .iter()
            .map(|m| m.manifest["metadata"]["name"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(manifests[0].source.line, Some(4));
        assert_eq!(
            manifests[2].source.line,
            Some(8),
            "list items keep the list's location"
        );
    }

    #[test]
    fn scalars_are_read_as_kubernetes_reads_them() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nspec: {mode: 0644, replicas: 3, enabled: yes, tag: \"010\"}\n";
        let manifest = &parse(text).expect("valid")[0].manifest;
        assert_eq!(
            manifest["spec"],
            json!({ "mode": 420, "replicas": 3, "enabled": true, "tag": "010" })
        );
    }

    #[test]
    fn json_files_parse_too() {
        let manifests =
            parse(r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}"#).expect("valid");
        assert_eq!(manifests[0].manifest["metadata"]["name"], "j");
    }

    #[test]
    fn errors_name_file_document_line_and_field() {
        let missing_name = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {}\n";
        assert_eq!(
            parse(missing_name).expect_err("no name").to_string(),
            "app/x.yaml (document 2, line 5): Secret: field metadata.name is missing"
        );
        let no_kind = "apiVersion: v1\nmetadata: {name: a}\n";
        assert_eq!(
            parse(no_kind).expect_err("no kind").to_string(),
            "app/x.yaml (document 1, line 1): field kind is missing or not a string"
        );
        let bad_version = "apiVersion: apps/v1/extra\nkind: Deployment\nmetadata: {name: a}\n";
        assert!(
            parse(bad_version)
                .expect_err("bad apiVersion")
                .to_string()
                .contains("field apiVersion")
        );
        let scalar = "just a string\n";
        assert!(
            parse(scalar)
                .expect_err("scalar")
                .to_string()
                .contains("must be a mapping")
        );
        match parse("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: [\n")
            .expect_err("malformed")
        {
            RenderError::Unparsable { file, line, message } => {
                assert_eq!((file.as_str(), line), ("app/x.yaml", Some(5)));
                assert!(message.contains("unclosed"), "{message}");
            }
            other => panic!("expected Unparsable, got {other:?}"),
        }
    }

    #[test]
    fn generate_name_is_allowed_on_hooks_only_and_only_as_a_dns_prefix() {
        let job = |annotations: &str, generate_name: &str| {
            format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: {generate_name}\n  annotations: {{{annotations}}}\n"
            )
        };
        for annotation in [
            "argocd.argoproj.io/hook: PreSync",
            "driftless.dev/hook: PostSync",
            "helm.sh/hook: pre-install",
        ] {
            let manifests = parse(&job(annotation, "db-migrate-")).expect(annotation);
            assert_eq!(manifests[0].manifest["metadata"]["generateName"], "db-migrate-");
        }
        assert_eq!(
            parse(&job("", "db-migrate-"))
                .expect_err("not a hook")
                .to_string(),
            "app/x.yaml (document 1, line 1): Job \"db-migrate-\": field metadata.generateName is \
             allowed only on hooks (annotation argocd.argoproj.io/hook or driftless.dev/hook); other \
             objects need metadata.name, a stable name to be found again"
        );
        for hostile in ["'../../x-'", "'Upper-'", "'-lead'", "''"] {
            let err = parse(&job("argocd.argoproj.io/hook: Sync", hostile)).expect_err(hostile);
            assert!(err.to_string().contains("field metadata.generateName"), "{err}");
        }
    }

    #[test]
    fn yaml_bombs_and_document_floods_are_refused() {
        let mut bomb = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for level in 1..12 {
            let items = vec![format!("*a{}", level - 1); 10].join(", ");
            writeln!(bomb, "  a{level}: &a{level} [{items}]").expect("writing to a String cannot fail");
        }
        assert!(
            matches!(parse(&bomb), Err(RenderError::Unparsable { .. })),
            "alias expansion is bounded"
        );

        let deep = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata: {}{}\n",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        assert!(parse(&deep).is_err(), "nesting is bounded");

        let limits = RenderLimits {
            max_documents: 3,
            ..RenderLimits::default()
        };
        let flood = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n".repeat(5);
        assert!(
            parse_documents(&flood, "f.yaml", &limits).is_err(),
            "document count is bounded"
        );
    }
}
