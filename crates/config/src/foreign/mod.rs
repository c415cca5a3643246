//! Argo CD and Flux objects read as driftless Applications and projects.
//!
//! A repository written for Argo CD declares `Application`/`AppProject` objects
//! (argoproj.io); one written for Flux declares `Kustomization`s and `HelmRelease`s that name
//! their sources (`GitRepository`, `HelmRepository`, `OCIRepository`) by reference. [`convert`]
//! takes every such object of one render (or of one import) at once, since Flux's references
//! are resolved among them, and gives back documents in driftless.yaml's own shape — so the
//! validator that checks `driftless.yaml` checks them too — with a [`Finding`] for every field
//! that has no equivalent.
//!
//! Pure: no file, cluster or network is read. Every value is copied as text into the document
//! and checked by the validator afterwards, like any Application found in Git.

mod argo;
mod flux;

use std::collections::BTreeMap;
use std::fmt;

use driftless_core::project::Project;
use serde_json::{Map, Value, json};

/// API groups whose objects are read here and never applied to a cluster.
const ARGO_GROUP: &str = "argoproj.io";
const FLUX_KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
const FLUX_SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
const FLUX_SOURCE_EXTENSIONS_GROUP: &str = "source.extensions.fluxcd.io";
const FLUX_HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// The cluster Argo CD calls `in-cluster`: the one Argo CD itself runs in.
const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
const IN_CLUSTER_NAME: &str = "in-cluster";

/// Whether `manifest` is an Argo CD or Flux object that [`convert`] reads (Applications,
/// projects, Flux's reconcilers and sources): such objects describe deployments, they are not
/// deployed.
pub fn is_foreign(manifest: &Value) -> bool {
    let Some(api_version) = manifest["apiVersion"].as_str() else {
        return false;
    };
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    let kind = manifest["kind"].as_str().unwrap_or_default();
    match group {
        ARGO_GROUP => matches!(kind, "Application" | "AppProject" | "ApplicationSet"),
        FLUX_KUSTOMIZE_GROUP => kind == "Kustomization",
        FLUX_SOURCE_GROUP | FLUX_SOURCE_EXTENSIONS_GROUP => true,
        FLUX_HELM_GROUP => kind == "HelmRelease",
        _ => false,
    }
}

/// A cluster of the configuration, as a destination may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCluster {
    pub name: String,
    /// Its API server's URL, when known (from its kubeconfig).
    pub server: Option<String>,
}

/// What a conversion is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The children of a root application: an AppProject declared next to them only narrows
    /// (their project stays the root's), and Argo CD's `default` project is the root's.
    Children,
    /// `driftless import`: AppProjects become the configuration's `projects:`.
    Import,
}

/// Where the conversion happens.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub purpose: Purpose,
    /// The cluster that `in-cluster` and `https://kubernetes.default.svc` mean (the root's own
    /// destination), and of every Flux object without `kubeConfig`.
    pub home_cluster: &'a str,
    pub clusters: &'a [KnownCluster],
    /// A Git repository and revision for applications whose chart comes from a chart
    /// repository: driftless reads values files from Git, so every application has one. A
    /// root's own; `None` in an import, where Flux's `flux-system` GitRepository is used when
    /// it is among the objects.
    pub home_repository: Option<(&'a str, &'a str)>,
}

/// Whether a [`Finding`] keeps the application from syncing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// It changes what would be deployed: the application must not sync without it.
    Unsupported,
    /// Only how Argo CD or Flux themselves behave (timeouts, ordering, retries, history): the
    /// deployed objects are the same.
    Differs,
}

/// One field that could not be carried over as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The object, e.g. `Application argocd/guestbook (apps.yaml#2)`.
    pub object: String,
    /// Where in it, e.g. `spec.source.kustomize.images`.
    pub field: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{}: {}: {}", self.object, self.field, self.message)
        }
    }
}

impl Finding {
    pub fn blocks(&self) -> bool {
        self.severity == Severity::Unsupported
    }
}

/// A driftless Application made from an Argo CD Application, a Flux Kustomization or a Flux
/// HelmRelease.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedApplication {
    /// The object it was made from.
    pub origin: String,
    /// An Application document as driftless.yaml's `applications[]` holds one.
    pub manifest: Value,
    pub findings: Vec<Finding>,
}

impl ConvertedApplication {
    pub fn name(&self) -> &str {
        self.manifest["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// What keeps it from syncing; empty when it may.
    pub fn unsupported(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|finding| finding.blocks())
    }
}

/// A project made from an Argo CD AppProject.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertedProject {
    pub origin: String,
    /// A `projects[]` entry of driftless.yaml.
    pub document: Value,
    pub findings: Vec<Finding>,
}

/// Everything one conversion made, and what it could not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Conversion {
    pub applications: Vec<ConvertedApplication>,
    pub projects: Vec<ConvertedProject>,
    /// Findings about objects that became no application (an ApplicationSet, a source nothing
    /// refers to that cannot be read).
    pub findings: Vec<Finding>,
}

impl Conversion {
    /// Every finding, the applications' and projects' included.
    pub fn all_findings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .chain(self.applications.iter().flat_map(|app| &app.findings))
            .chain(self.projects.iter().flat_map(|project| &project.findings))
    }
}

/// One object to convert and where it was read (a file and document, a cluster).
#[derive(Debug, Clone)]
pub struct ForeignObject {
    pub manifest: Value,
    pub source: String,
}

/// Returned by [`read_objects`]: text that is not a YAML or JSON stream of objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ReadError {
    pub file: String,
    pub message: String,
}

/// The objects of a YAML (or JSON) stream, `List`s expanded, each named `file#N` (N counts
/// documents from 1). Bounded like a configuration: a hostile file cannot expand without end.
pub fn read_objects(text: &str, file: &str) -> Result<Vec<ForeignObject>, ReadError> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_events: 10_000_000,
            max_depth: 128,
        },
    };
    let documents: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).map_err(|err| ReadError {
            file: file.to_owned(),
            message: err.to_string(),
        })?;
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let source = format!("{file}#{}", index + 1);
        match document {
            Value::Null => {}
            Value::Object(_)
                if document["kind"] == "List"
                    || document["items"].is_array()
                        && document["kind"]
                            .as_str()
                            .is_some_and(|kind| kind.ends_with("List")) =>
            {
                for item in document["items"].as_array().into_iter().flatten() {
                    objects.push(ForeignObject {
                        manifest: item.clone(),
                        source: source.clone(),
                    });
                }
            }
            Value::Object(_) => objects.push(ForeignObject {
                manifest: document,
                source,
            }),
            _ => {
                return Err(ReadError {
                    file: file.to_owned(),
                    message: format!("document {} is not an object", index + 1),
                });
            }
        }
    }
    Ok(objects)
}

/// Converts every Argo CD and Flux object of `objects` (others are ignored: see [`is_foreign`]).
/// Flux sources are consumed by the objects that name them; an AppProject becomes a project
/// (import) or narrows the Applications that name it (children).
pub fn convert(objects: &[ForeignObject], context: &Context<'_>) -> Conversion {
    let objects: Vec<Object<'_>> = objects
        .iter()
        .filter(|object| is_foreign(&object.manifest))
        .map(Object::new)
        .collect();
    let mut conversion = Conversion::default();
    let projects = argo::projects(&objects, context, &mut conversion);
    let sources = flux::Sources::new(&objects);
    for object in &objects {
        match (object.group.as_str(), object.kind.as_str()) {
            (ARGO_GROUP, "Application") => {
                conversion
                    .applications
                    .push(argo::application(object, context, &projects));
            }
            (ARGO_GROUP, "ApplicationSet") => conversion.findings.push(object.finding(
                "",
                "ApplicationSets are not supported: write the Applications it generates, or generate them in the root's render (a Helm chart)",
                Severity::Unsupported,
            )),
            (FLUX_KUSTOMIZE_GROUP, "Kustomization") => {
                conversion
                    .applications
                    .push(flux::kustomization(object, context, &sources));
            }
            (FLUX_HELM_GROUP, "HelmRelease") => {
                conversion
                    .applications
                    .push(flux::helm_release(object, context, &sources));
            }
            _ => {}
        }
    }
    conversion.findings.extend(sources.unused());
    unique_names(&mut conversion.applications);
    conversion
}

/// Two objects that would be one application (Flux allows the same name in two namespaces):
/// the second is not carried over under a name that is not its own.
fn unique_names(applications: &mut [ConvertedApplication]) {
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for app in applications {
        let name = app.name().to_owned();
        if let Some(first) = seen.get(&name) {
            app.findings.push(Finding {
                object: app.origin.clone(),
                field: "metadata.name".into(),
                message: format!("{first} converts to the same application name {name:?}; rename one"),
                severity: Severity::Unsupported,
            });
        } else {
            seen.insert(name, app.origin.clone());
        }
    }
}

/// A foreign object with its identity read once.
pub(crate) struct Object<'a> {
    pub manifest: &'a Value,
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// How findings name it.
    pub label: String,
}

impl<'a> Object<'a> {
    fn new(object: &'a ForeignObject) -> Self {
        let manifest = &object.manifest;
        let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
        let group = api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
            .to_owned();
        let kind = manifest["kind"].as_str().unwrap_or_default().to_owned();
        let namespace = manifest["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let name = manifest["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let qualified = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        let label = if object.source.is_empty() {
            format!("{kind} {qualified}")
        } else {
            format!("{kind} {qualified} ({})", object.source)
        };
        Self {
            manifest,
            group,
            kind,
            namespace,
            name,
            label,
        }
    }

    pub(crate) fn spec(&self) -> &'a Value {
        &self.manifest["spec"]
    }

    pub(crate) fn finding(&self, field: &str, message: impl Into<String>, severity: Severity) -> Finding {
        Finding {
            object: self.label.clone(),
            field: field.to_owned(),
            message: message.into(),
            severity,
        }
    }
}

/// Findings about one object, gathered while it converts.
pub(crate) struct Report<'a> {
    object: &'a Object<'a>,
    pub findings: Vec<Finding>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(object: &'a Object<'a>) -> Self {
        Self {
            object,
            findings: Vec::new(),
        }
    }

    pub(crate) fn unsupported(&mut self, field: &str, message: impl Into<String>) {
        self.findings
            .push(self.object.finding(field, message, Severity::Unsupported));
    }

    pub(crate) fn differs(&mut self, field: &str, message: impl Into<String>) {
        self.findings
            .push(self.object.finding(field, message, Severity::Differs));
    }

    /// Each of `keys` set in the mapping `value` (at `field`) differs as `message` says.
    pub(crate) fn differs_where_set(&mut self, value: &Value, field: &str, keys: &[&str], message: &str) {
        for key in keys {
            if !value[*key].is_null() {
                self.differs(&join(field, key), message);
            }
        }
    }

    /// Each of `keys` set in the mapping `value` (at `field`) is unsupported as `message` says.
    pub(crate) fn unsupported_where_set(&mut self, value: &Value, field: &str, keys: &[&str], message: &str) {
        for key in keys {
            if !value[*key].is_null() {
                self.unsupported(&join(field, key), message);
            }
        }
    }

    /// Each of `keys` set in the mapping `value` (at `field`) is a field driftless ignores.
    pub(crate) fn ignored(&mut self, value: &Value, field: &str, keys: &[&str]) {
        self.differs_where_set(value, field, keys, "has no equivalent in driftless; ignored");
    }

    /// Every key of the mapping at `field` that `known` does not list is unsupported; a value
    /// that is not a mapping is reported once.
    pub(crate) fn only_known(&mut self, value: &Value, field: &str, known: &[&str]) {
        match value {
            Value::Null => {}
            Value::Object(map) => {
                for key in map.keys() {
                    if !known.contains(&key.as_str()) {
                        self.unsupported(
                            &join(field, key),
                            "has no equivalent in driftless; the application would deploy something else without it",
                        );
                    }
                }
            }
            _ => self.unsupported(field, "must be a mapping"),
        }
    }

    /// The string at `value`, or a finding when it is there but is not one.
    pub(crate) fn text(&mut self, value: &Value, field: &str) -> Option<String> {
        match value {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => {
                self.unsupported(field, "must be a string");
                None
            }
        }
    }

    pub(crate) fn flag(&mut self, value: &Value, field: &str) -> bool {
        match value {
            Value::Null => false,
            Value::Bool(flag) => *flag,
            Value::String(text) if text == "true" || text == "false" => text == "true",
            _ => {
                self.unsupported(field, "must be true or false");
                false
            }
        }
    }

    /// The list at `value` (empty when absent), or a finding when it is not one.
    pub(crate) fn list<'v>(&mut self, value: &'v Value, field: &str) -> &'v [Value] {
        match value {
            Value::Null => &[],
            Value::Array(items) => items,
            _ => {
                self.unsupported(field, "must be a list");
                &[]
            }
        }
    }
}

/// Each item of the list at `value` with its `fields` copied, and `flag` only where it is true
/// (Helm parameters' `forceString`, Jsonnet variables' `code`, substitution sources' `optional`).
pub(crate) fn items_with_flag(
    report: &mut Report<'_>,
    value: &Value,
    field: &str,
    fields: &[&str],
    flag: &str,
) -> Vec<Value> {
    report
        .list(value, field)
        .iter()
        .map(|item| {
            let mut copied = Map::new();
            for name in fields {
                copied.insert((*name).to_owned(), item[*name].clone());
            }
            if item[flag] == json!(true) {
                copied.insert(flag.to_owned(), json!(true));
            }
            Value::Object(copied)
        })
        .collect()
}

pub(crate) use crate::validate::join;

/// Argo CD allows dots in names; a driftless application's name is a DNS label.
pub(crate) fn application_name(name: &str, report: &mut Report<'_>) -> String {
    let converted: String = name
        .chars()
        .map(|c| match c {
            '.' | '_' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if converted != name {
        report.differs(
            "metadata.name",
            format!("named {converted:?}: a driftless application's name is a DNS label"),
        );
    }
    converted
}

/// The configured cluster a destination names, or the home cluster with a finding.
pub(crate) fn cluster_for(
    context: &Context<'_>,
    name: Option<&str>,
    server: Option<&str>,
    field: &str,
    report: &mut Report<'_>,
) -> String {
    let server = server.map(|server| server.trim_end_matches('/'));
    if name == Some(IN_CLUSTER_NAME) || server == Some(IN_CLUSTER_SERVER) {
        return context.home_cluster.to_owned();
    }
    if let Some(name) = name
        && context.clusters.iter().any(|cluster| cluster.name == name)
    {
        return name.to_owned();
    }
    if let Some(server) = server
        && let Some(cluster) = context.clusters.iter().find(|cluster| {
            cluster.server.as_deref().map(|known| known.trim_end_matches('/')) == Some(server)
        })
    {
        return cluster.name.clone();
    }
    let configured: Vec<&str> = context.clusters.iter().map(|c| c.name.as_str()).collect();
    let wanted = name.map_or_else(
        || format!("with server {:?}", server.unwrap_or_default()),
        |name| format!("named {name:?}"),
    );
    report.unsupported(
        field,
        format!(
            "no configured cluster {wanted} (configured: {}); add it to driftless.yaml's clusters",
            if configured.is_empty() {
                "none".to_owned()
            } else {
                configured.join(", ")
            }
        ),
    );
    context.home_cluster.to_owned()
}

/// The skeleton of a driftless Application document.
pub(crate) fn application_document(
    name: &str,
    labels: &Value,
    source: Map<String, Value>,
    destination: Value,
) -> Value {
    let mut metadata = json!({ "name": name });
    if let Some(labels) = labels.as_object().filter(|labels| !labels.is_empty()) {
        metadata["labels"] = Value::Object(labels.clone());
    }
    let mut spec = Map::new();
    spec.insert("source".into(), Value::Object(source));
    spec.insert("destination".into(), destination);
    json!({
        "apiVersion": crate::API_VERSION,
        "kind": crate::APPLICATION_KIND,
        "metadata": metadata,
        "spec": Value::Object(spec),
    })
}

/// An AppProject read for the Applications that name it: what `driftless_core::project`
/// checks statically (source repository and destination), and its restrictions that nothing
/// enforces here.
pub(crate) struct DeclaredProject {
    pub checks: Project,
    pub unenforced: Vec<String>,
}

/// AppProjects by name.
pub(crate) type Declared = BTreeMap<String, DeclaredProject>;

#[cfg(test)]
mod tests;
