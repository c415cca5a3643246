//! driftless's configuration: `driftless.yaml` (clusters, repository credentials, applications)
//! and Application manifests found in Git (app-of-apps).
//!
//! Stages, as ripgrep does with its flags: `raw` mirrors the YAML and only parses; `validate`
//! checks every field, collects every problem (file, line, field path, what is wrong) and builds
//! the validated `driftless_core::application` types. Paths in the file are relative to the file.

pub mod foreign;
mod policy;
mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use driftless_core::application::{
    Application, Cluster, RepositoryCredentials, RepositoryVerification, SensitiveData, SourceLimits,
};
use driftless_core::project::Project;

pub use validate::{API_VERSION, APPLICATION_KIND, CONFIG_KIND};

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: Option<PathBuf>,
    pub clusters: Vec<Cluster>,
    pub repositories: Vec<RepositoryCredentials>,
    /// The `verify` of `repositories[]` entries, which also binds applications declared in Git.
    pub repository_verifications: Vec<RepositoryVerification>,
    /// Bounds on every application's source (defaults when `limits:` is omitted).
    pub limits: SourceLimits,
    /// Annotations and fields shown only as hashes, like Secret values.
    pub redaction: SensitiveData,
    /// Tenancy guards applications name in `spec.project`.
    pub projects: Vec<Project>,
    /// Secrets of the Git webhook receivers.
    pub webhooks: driftless_core::application::WebhookSecrets,
    /// Who is told what.
    pub notifications: driftless_core::notifications::Notifications,
    /// Policy rules (the starter set as configured, then the configuration's own), checked in
    /// plans and before every sync applies.
    pub policy: Vec<driftless_policy::Rule>,
    pub applications: Vec<Application>,
}

/// One problem in a configuration or Application manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file (or source description) the problem is in.
    pub file: String,
    /// One-based; `None` when the location is unknown.
    pub line: Option<u64>,
    /// Where in the document, e.g. `applications[0].spec.destination.cluster`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Returned when a configuration or Application cannot be used; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(
            f,
            "invalid configuration ({count} problem{})",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
        problems: vec![Problem {
            file: path.display().to_string(),
            line: None,
            field: String::new(),
            message: format!("cannot read the file: {err}"),
        }],
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&text, &path.display().to_string(), base)
}

/// Validates configuration text; `file` names it in errors, relative paths resolve against `base`.
pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
    validate::config(text, file, base)
}

/// Validates one Application object rendered from Git (app-of-apps). `source` names where it came
/// from; `known_clusters` are the clusters its destination may name.
pub fn application_from_manifest(
    manifest: &serde_json::Value,
    source: &str,
    known_clusters: &[String],
) -> Result<Application, ConfigError> {
    validate::application_manifest(manifest, source, known_clusters)
}
