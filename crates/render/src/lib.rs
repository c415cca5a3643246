//! driftless's renderers: from an application's files at one commit to the manifests it declares.
//!
//! - `manifests`: parsing YAML/JSON streams into manifests, with file, document and line on every
//!   error, `List` kinds expanded, empty documents skipped, YAML bombs bounded. Pure.
//! - `directory`: plain directories of manifests (recursion, include/exclude globs).
//! - `kustomize`: `kustomize build` (or `kubectl kustomize`) on a private copy of the tree.
//!
//! Renderers never talk to the API server: the manifests they return are not yet namespaced or
//! checked against discovery; that is the kube adapter's job.

mod decrypt;
mod directory;
mod helm;
mod jsonnet;
mod kustomize;
mod kustomize_guard;
mod manifests;
pub mod substitute;

use std::collections::BTreeSet;
use std::time::Duration;

pub use driftless_charts::ChartRef;
use driftless_core::SourceLocation;
use driftless_core::application::{DirectoryOptions, HelmOptions, Renderer, Source};
use driftless_core::arguments::ArgumentError;
use driftless_core::source_type::SourceType;
use driftless_files::{FileTree, TreeError};
pub use driftless_sops::Keys;
use serde_json::Value;

pub use jsonnet::JsonnetError;
pub use manifests::parse_documents;
pub use substitute::{SubstituteError, Substitution, Variables};

/// One manifest as rendered, before namespace defaulting.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedManifest {
    pub manifest: Value,
    pub source: SourceLocation,
}

/// What a render produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub manifests: Vec<RenderedManifest>,
    /// Repository paths the render read, when the renderer can tell (plain directories); `None`
    /// means "possibly anything in the repository".
    pub inputs: Option<BTreeSet<String>>,
    /// Which renderer ran (for `driftless render` and history).
    pub renderer: &'static str,
    /// Whether any manifest holds values decrypted from SOPS files: such a render must not be
    /// kept anywhere beyond the apply.
    pub decrypted: bool,
    /// Charts pulled from chart repositories (the application's, and dependencies its chart
    /// declares), with their archives' digests: a render is current only while each still
    /// resolves to the same digest.
    pub charts: Vec<(ChartRef, String)>,
}

/// Bounds on one render, against oversized or hostile repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderLimits {
    pub max_documents: usize,
    pub max_file_bytes: usize,
    pub timeout: Duration,
    /// Largest output accepted from an external renderer.
    pub max_output_bytes: usize,
    /// What the private copy a renderer reads (Kustomize, Helm) may hold, each symlinked
    /// directory counted every time it is copied: the repository read limits.
    pub materialize: driftless_files::ReadLimits,
}

impl Default for RenderLimits {
    fn default() -> Self {
        Self {
            max_documents: 10_000,
            max_file_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_mins(1),
            max_output_bytes: 128 * 1024 * 1024,
            materialize: driftless_files::ReadLimits::default(),
        }
    }
}

/// Returned by [`render`]. Every variant names the file (and document and line where known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{location}: {message}")]
    Invalid {
        location: SourceLocation,
        message: String,
    },
    #[error("{file}: {message}")]
    Unparsable {
        file: String,
        line: Option<u64>,
        message: String,
    },
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("path {path:?} does not exist in the repository at this commit")]
    PathNotFound { path: String },
    #[error("invalid {which} glob {pattern:?}: {message}")]
    Glob {
        which: &'static str,
        pattern: String,
        message: String,
    },
    #[error("{file}: larger than the limit of {limit} bytes")]
    FileTooLarge { file: String, limit: usize },
    #[error("more than {limit} documents")]
    TooManyDocuments { limit: usize },
    #[error("neither kustomize nor kubectl is installed (install kubectl, which includes kustomize)")]
    KustomizeNotInstalled,
    #[error("kustomize build {path} failed: {message}")]
    Kustomize { path: String, message: String },
    #[error("kustomize build {path} did not finish within {after:?}")]
    KustomizeTimedOut { path: String, after: Duration },
    #[error("failed to {action}: {message}")]
    Io { action: String, message: String },
    #[error("{file}: {message}")]
    Decrypt { file: String, message: String },
    #[error("helm is not installed (put a helm binary on PATH to render charts)")]
    HelmNotInstalled,
    #[error("helm template {path} failed: {message}")]
    Helm { path: String, message: String },
    /// A value that would reach helm's command line breaks its grammar; helm was not run.
    #[error("helm template {path}: {field}: {reason}{hint}")]
    HelmArgument {
        path: String,
        field: String,
        #[source]
        reason: ArgumentError,
        hint: ArgumentHint,
    },
    #[error("helm template {path} did not finish within {after:?}")]
    HelmTimedOut { path: String, after: Duration },
    #[error("values file {file}: {message}")]
    HelmValues { file: String, message: String },
    #[error("{message}")]
    Chart { chart: String, message: String },
    /// [`ChartAccess::allowed`] refused the chart's repository; nothing was contacted.
    #[error("chart {chart}: {refusal}")]
    ChartRefused {
        chart: String,
        #[source]
        refusal: ChartRefused,
    },
    /// Flux's post-build variable substitution failed (names the object and field, never a
    /// value).
    #[error(transparent)]
    Substitute(#[from] SubstituteError),
    #[error(transparent)]
    Jsonnet(#[from] JsonnetError),
    /// The source yielded no object and the application does not say that is intended.
    #[error(
        "{path}: rendered no object: {found} (set spec.syncPolicy.allowEmpty: true if an application of nothing is intended)"
    )]
    NothingRendered { path: String, found: String },
    #[error("{file}: {field}: {path:?} {reason}")]
    KustomizeRefused {
        file: String,
        field: String,
        path: String,
        reason: String,
    },
}

/// What a [`RenderError::HelmArgument`] says after the grammar's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentHint {
    None,
    /// No `releaseName` is set, so the release takes the application's name.
    NamedAfterApplication,
}

impl std::fmt::Display for ArgumentHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => Ok(()),
            Self::NamedAfterApplication => f.write_str(
                "; the release is named after the application unless spec.source.helm.releaseName is set",
            ),
        }
    }
}

/// Who a render is for: Helm's release name and namespace default to these.
#[derive(Debug, Clone, Copy)]
pub struct RenderTarget<'a> {
    pub application: &'a str,
    pub namespace: Option<&'a str>,
    /// The destination cluster's version and group/versions, for a chart's `.Capabilities`
    /// (the source's `kubeVersion` wins; its `apiVersions` add to these).
    pub kube_version: Option<&'a str>,
    pub api_versions: &'a [String],
    /// Where charts from chart repositories come from; `None`: a chart (or dependency) from a
    /// chart repository is an error.
    pub charts: Option<ChartAccess<'a>>,
    /// A render that yields no object is what the application intends (`allowEmpty`); otherwise
    /// it is [`RenderError::NothingRendered`].
    pub allow_empty: bool,
}

/// The chart repositories a render may pull from.
#[derive(Clone, Copy)]
pub struct ChartAccess<'a> {
    pub charts: &'a driftless_charts::Charts,
    /// Vets each chart repository URL before it is contacted (the application's project's
    /// `sourceRepos`); the error says why not.
    pub allowed: &'a (dyn Fn(&str) -> Result<(), ChartRefused> + Sync),
}

/// Why [`ChartAccess::allowed`] refused a chart repository, as users read it after the chart's
/// name. The caller words it, and leaves out any credentials the URL holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ChartRefused {
    pub reason: String,
}

impl std::fmt::Debug for ChartAccess<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChartAccess")
    }
}

/// Renders `source` from `tree` (which must hold the application's path, and for Kustomize and
/// Helm the whole repository, since bases and values files may live anywhere in it), decrypting
/// SOPS files with `keys`.
pub async fn render(
    tree: &FileTree,
    source: &Source,
    target: RenderTarget<'_>,
    limits: &RenderLimits,
    keys: &Keys,
) -> Result<Rendered, RenderError> {
    render_substituting(tree, source, target, limits, keys, None).await
}

/// [`render`], then Flux's post-build variable substitution ([`substitute`]) on the YAML text of
/// each object a Kustomize or directory source renders (other renderers are left alone).
pub async fn render_substituting(
    tree: &FileTree,
    source: &Source,
    target: RenderTarget<'_>,
    limits: &RenderLimits,
    keys: &Keys,
    substitution: Option<&Substitution>,
) -> Result<Rendered, RenderError> {
    let environment = jsonnet_environment(source, &target);
    // A detected source renders as one of its type declared with default options would.
    let detected;
    let renders_as = match &source.renderer {
        Renderer::Detect => {
            detected = match detect(tree, &source.path) {
                SourceType::Kustomize => Renderer::Kustomize,
                SourceType::Helm => Renderer::Helm(HelmOptions::default()),
                SourceType::Jsonnet | SourceType::Directory => {
                    Renderer::Directory(DirectoryOptions::default())
                }
            };
            &detected
        }
        declared => declared,
    };
    let rendered = match renders_as {
        Renderer::Helm(options) => {
            let release = helm::Release {
                name: options.release_name.as_deref().unwrap_or(target.application),
                namespace: target.namespace,
                kube_version: target.kube_version,
                api_versions: target.api_versions,
            };
            helm::render(tree, &source.path, &release, options, limits, keys, target.charts).await
        }
        Renderer::Kustomize => kustomize::render(tree, &source.path, limits, keys, substitution).await,
        Renderer::Directory(options) => directory::render(
            tree,
            &source.path,
            options,
            limits,
            keys,
            substitution,
            &environment,
        ),
        Renderer::Detect => unreachable!("a detected source has a renderer of its type"),
    }?;
    // An application that renders nothing would sync "successfully" while deploying nothing;
    // an app-of-apps root that declares only Applications is not empty.
    if rendered.manifests.is_empty() && !target.allow_empty {
        return Err(nothing_rendered(tree, &source.path));
    }
    Ok(rendered)
}

/// What the files directly at `path` say the source is ([`driftless_core::source_type::detect`]).
#[must_use]
pub fn detect(tree: &FileTree, path: &str) -> SourceType {
    let Ok(root) = tree.resolve(path) else {
        // The directory renderer names what is wrong with the path.
        return SourceType::Directory;
    };
    driftless_core::source_type::detect(
        relative_paths_under(tree, &root).filter(|relative| !relative.contains('/')),
    )
}

/// The paths of the files under `root` (a resolved tree path), relative to it.
fn relative_paths_under<'a>(tree: &'a FileTree, root: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let prefix = if root.is_empty() { 0 } else { root.len() + 1 };
    tree.paths_under(root).map(move |file| &file[prefix..])
}

/// The error for a source that yielded no object, saying what its path held.
fn nothing_rendered(tree: &FileTree, path: &str) -> RenderError {
    let root = tree.resolve(path).unwrap_or_else(|_| path.to_owned());
    let found = driftless_core::source_type::describe_found(relative_paths_under(tree, &root));
    RenderError::NothingRendered {
        path: if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
        found,
    }
}

/// Argo CD's build environment, which `directory.jsonnet` values may name (`$ARGOCD_APP_NAME`).
fn jsonnet_environment<'a>(source: &'a Source, target: &RenderTarget<'a>) -> [(&'static str, &'a str); 4] {
    [
        ("ARGOCD_APP_NAME", target.application),
        ("ARGOCD_APP_NAMESPACE", target.namespace.unwrap_or_default()),
        ("ARGOCD_APP_SOURCE_PATH", &source.path),
        ("ARGOCD_APP_SOURCE_TARGET_REVISION", &source.revision),
    ]
}

/// The JSON value of one Jsonnet program in `tree` (a repository path), as a directory source
/// evaluates it: imports from the program's directory, `options.libs`, then `app_path`; bounded by
/// `limits`' timeout and output size. No `$ARGOCD_APP_*` variable is known to its values.
pub fn evaluate_jsonnet(
    tree: &FileTree,
    file: &str,
    app_path: &str,
    options: &driftless_core::application::JsonnetOptions,
    limits: &RenderLimits,
) -> Result<Value, JsonnetError> {
    let evaluation = jsonnet::Evaluation {
        options,
        app_path,
        environment: &[],
        timeout: limits.timeout,
        max_output_bytes: limits.max_output_bytes,
    };
    let mut values = jsonnet::evaluate(tree, &[file.to_owned()], &evaluation)?;
    Ok(values.pop().unwrap_or(Value::Null))
}

/// The renderers' names, as [`Rendered::renderer`] gives them.
pub const RENDERERS: &[&str] = &["directory", "jsonnet", "kustomize", "helm"];

/// The external tools renders may run, identified by path, size and modification time: a render
/// kept from an earlier process is reused only while the same tools are installed. Looked up once
/// per process.
#[must_use]
pub fn tools_stamp() -> &'static str {
    static STAMP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STAMP.get_or_init(|| {
        format!(
            "{}; {}",
            kustomize::command_stamp(),
            kustomize::program_stamp("helm")
        )
    })
}

/// Whether `source` needs the whole repository (Kustomize, Helm, Jsonnet libraries) or only its
/// own path. A directory's Jsonnet programs import from outside its path only through `libs`
/// (or another setting that makes them Jsonnet's).
#[must_use]
pub fn needs_whole_repository(source: &Source) -> bool {
    !matches!(&source.renderer, Renderer::Directory(options) if options.jsonnet.is_empty())
}
