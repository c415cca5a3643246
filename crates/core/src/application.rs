//! An application as driftless runs it: validated, defaults applied. Produced by the
//! `driftless-config` crate from `driftless.yaml` or from Application manifests in Git.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The default reconcile interval, jittered by up to 10 % so applications do not fire together.
pub const DEFAULT_INTERVAL: Duration = Duration::from_mins(3);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub source: Source,
    pub destination: Destination,
    pub sync_policy: SyncPolicy,
    pub ignore_differences: Vec<IgnoreDifference>,
    /// Keys for SOPS-encrypted files in the source; `None`: encrypted files are an error.
    #[serde(default)]
    pub decryption: Option<Decryption>,
    /// Whose commit signatures the application trusts; `None`: the repository's
    /// ([`RepositoryVerification`]), if any.
    #[serde(default)]
    pub verify: Option<Verification>,
    /// The [`crate::project::Project`] that bounds what the application may deploy; `None`:
    /// unrestricted (only an application of `driftless.yaml`, or one its unrestricted root
    /// declares).
    #[serde(default)]
    pub project: Option<String>,
}

/// Commits an application may deploy must be signed by one of these keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub mode: VerifyMode,
    /// An OpenSSH `allowed_signers` text.
    pub ssh: Option<SecretSource>,
    /// Armored OpenPGP public keys.
    pub pgp: Option<SecretSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyMode {
    /// Only the commit deployed: history before it may hold unsigned commits.
    Head,
    /// Every commit since the one last synced successfully, so none slips in under a signed one.
    AllSinceLastSynced,
}

/// The verification a `repositories[]` entry requires of every application whose repository
/// URL starts with `url_prefix` (those declared in Git included) unless one sets its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryVerification {
    pub url_prefix: String,
    pub verify: Verification,
}

/// Where an application's SOPS keys come from. Each source holds age identities, an OpenSSH
/// private key or armored OpenPGP secret keys (told apart by their contents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decryption {
    pub keys: Vec<KeySource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeySource {
    File(PathBuf),
    Env(String),
    /// A Secret on the application's destination cluster: one data key, or every key.
    Secret {
        namespace: String,
        name: String,
        key: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub repo_url: String,
    /// A branch, tag or (full or abbreviated) commit; `HEAD` when not given.
    pub revision: String,
    /// Relative to the repository root, normalised, without `..`; empty for the root.
    pub path: String,
    pub renderer: Renderer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Renderer {
    /// Kustomize when the path holds a kustomization file, a directory of manifests otherwise.
    Detect,
    Directory(DirectoryOptions),
    Kustomize,
    /// A Helm chart at the source's path, rendered with `helm template`.
    Helm(HelmOptions),
}

/// How a chart is rendered (Argo CD's `source.helm`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmOptions {
    /// A chart from a chart repository; `None`: the chart at the source's path. With one, values
    /// files are relative to the source's path.
    #[serde(default)]
    pub chart: Option<RepositoryChart>,
    /// Default: the application's name.
    pub release_name: Option<String>,
    /// `.Release.Namespace`; default: the destination namespace.
    pub namespace: Option<String>,
    /// Values files, relative to the chart's directory, inside the repository; later ones win.
    pub value_files: Vec<String>,
    /// Inline values (a mapping, as JSON text), above the files.
    pub values: Option<String>,
    /// `--set` (or `--set-string`) values, above everything else.
    pub parameters: Vec<HelmParameter>,
    /// `.Capabilities.KubeVersion`; default: Helm's own.
    pub kube_version: Option<String>,
    /// Extra `.Capabilities.APIVersions`.
    pub api_versions: Vec<String>,
    /// Leave out the chart's `crds/` (they are included by default, as Argo CD does).
    pub skip_crds: bool,
}

/// A chart in an HTTP chart repository (`https://…`, with an `index.yaml`) or an OCI registry
/// (`oci://host/path`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepositoryChart {
    pub repository: String,
    pub name: String,
    /// An exact version or a Helm range (`1.2.x`, `^1.2`, `>=1 <2`); empty: the newest.
    pub version: String,
    /// An OCI registry over HTTP (a local registry).
    pub plain_http: bool,
}

impl std::fmt::Display for RepositoryChart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let repository = crate::project::without_userinfo(&self.repository);
        if self.version.is_empty() {
            write!(f, "{} from {repository}", self.name)
        } else {
            write!(f, "{} {} from {repository}", self.name, self.version)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmParameter {
    pub name: String,
    pub value: String,
    /// `--set-string`: the value stays a string even when it looks like a number or boolean.
    pub force_string: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryOptions {
    pub recurse: bool,
    /// Glob over file paths relative to the application path; every manifest file when `None`.
    pub include: Option<String>,
    pub exclude: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub cluster: String,
    /// For namespaced objects that name none.
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncPolicy {
    /// `None`: only manual syncs.
    pub automated: Option<Automated>,
    pub interval: Duration,
    pub retry: Retry,
    pub create_namespace: bool,
    pub prune_last: bool,
    /// Replace (delete and create) instead of server-side apply, for every object.
    pub replace: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Automated {
    pub prune: bool,
    pub self_heal: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Attempts after the first failure; 0 disables retries.
    pub limit: u32,
    pub backoff: Duration,
    pub factor: u32,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            limit: 5,
            backoff: Duration::from_secs(5),
            factor: 2,
            max_backoff: Duration::from_mins(3),
        }
    }
}

impl Retry {
    /// The wait before retry number `attempt` (1-based): `backoff * factor^(attempt-1)`, capped.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        let multiplier = self.factor.saturating_pow(attempt.saturating_sub(1));
        self.backoff.saturating_mul(multiplier).min(self.max_backoff)
    }
}

/// Differences driftless neither reports nor reverts, for the objects it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreDifference {
    /// Empty matches the core group; `None` any group.
    pub group: Option<String>,
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub json_pointers: Vec<String>,
    pub managed_fields_managers: Vec<String>,
}

/// Where the kube client for a destination comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterConnection {
    Kubeconfig { path: PathBuf, context: Option<String> },
    InCluster,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub connection: ClusterConnection,
}

/// Values shown only as salted hashes, like Secret values (`redaction:` in driftless.yaml; Argo
/// CD's `resource.sensitive.mask.annotations`, and fields by JSON pointer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitiveData {
    /// Annotation keys masked on every object.
    pub annotations: Vec<String>,
    pub fields: Vec<SensitiveField>,
}

/// Fields masked on the objects of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitiveField {
    /// Empty is the core group; `None` any group.
    pub group: Option<String>,
    pub kind: String,
    pub json_pointers: Vec<String>,
}

/// Nothing beyond Secrets is sensitive.
pub static NO_SENSITIVE_DATA: SensitiveData = SensitiveData {
    annotations: Vec::new(),
    fields: Vec::new(),
};

/// Bounds on what one application's source may load and render, against oversized or hostile
/// repositories (`limits:` in driftless.yaml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLimits {
    /// Files read from the repository for one render.
    pub max_files: usize,
    /// Bytes of those files together.
    pub max_repository_bytes: u64,
    /// Bytes of any one manifest file.
    pub max_file_bytes: usize,
    /// YAML documents (objects) one render may produce.
    pub max_documents: usize,
    /// How long an external renderer (kustomize) may run before it is killed.
    pub render_timeout: Duration,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_files: 20_000,
            max_repository_bytes: 256 * 1024 * 1024,
            max_file_bytes: 16 * 1024 * 1024,
            max_documents: 10_000,
            render_timeout: Duration::from_mins(1),
        }
    }
}

/// A secret's location; the value itself is only read when used, and never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// The secrets of the Git webhook receivers (`webhooks:`); a receiver answers only when its
/// secret is configured, so no unsigned push is ever taken for a real one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSecrets {
    pub github: Option<SecretSource>,
    pub gitlab: Option<SecretSource>,
    /// Gitea and Forgejo.
    pub gitea: Option<SecretSource>,
    pub bitbucket: Option<SecretSource>,
    /// driftless's own (`X-Driftless-Signature` over a timestamp and the body).
    pub generic: Option<SecretSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryCredentials {
    /// Applies to every repository URL that starts with this prefix.
    pub url_prefix: String,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub ssh_private_key: Option<SecretSource>,
    pub known_hosts: Option<SecretSource>,
}

impl RepositoryCredentials {
    /// Whether `url` is under this entry's URL: the prefix must end where a path segment, the
    /// host (before a port) or, for scp-like `git@host:path`, the host ends, so
    /// `https://charts.example` does not cover `https://charts.example.evil`.
    #[must_use]
    pub fn covers(&self, url: &str) -> bool {
        let Some(rest) = url.strip_prefix(&self.url_prefix) else {
            return false;
        };
        let port = rest.strip_prefix(':').is_some_and(|port| {
            port.split('/')
                .next()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        rest.is_empty()
            || self.url_prefix.ends_with(['/', ':'])
            || rest.starts_with(['/', '?', '#'])
            // Another port of the same host, as a plain prefix match would allow.
            || (port && url.contains("://"))
            || (rest.starts_with(':') && !url.contains("://"))
    }
}

/// The most specific credentials for `url` (longest covering prefix).
#[must_use]
pub fn credentials_for<'a>(all: &'a [RepositoryCredentials], url: &str) -> Option<&'a RepositoryCredentials> {
    all.iter()
        .filter(|credentials| credentials.covers(url))
        .max_by_key(|credentials| credentials.url_prefix.len())
}

/// `host/path` of a repository URL, the same for its https, ssh, scp-like and web forms.
#[must_use]
pub fn repository_key(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, path) = match without_scheme.split_once('/') {
        // scp-like `git@host:org/repo.git`
        _ if !url.contains("://") && without_scheme.contains(':') => {
            without_scheme.split_once(':').unwrap_or((without_scheme, ""))
        }
        Some((authority, path)) => (authority, path),
        None => (without_scheme, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    // An ssh port (`ssh://git@host:2222/…`) is not part of the repository's identity.
    let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let path = path.trim_end_matches('/').trim_end_matches(".git");
    format!("{host}/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_cover_only_urls_under_their_prefix() {
        let entry = |prefix: &str| RepositoryCredentials {
            url_prefix: prefix.into(),
            username: None,
            password: None,
            ssh_private_key: None,
            known_hosts: None,
        };
        let all = [
            entry("https://charts.example"),
            entry("https://charts.example/private/"),
            entry("git@github.com"),
        ];
        let covered = |url: &str| credentials_for(&all, url).map(|c| c.url_prefix.as_str());
        assert_eq!(covered("https://charts.example"), Some("https://charts.example"));
        assert_eq!(
            covered("https://charts.example/stable/index.yaml"),
            Some("https://charts.example")
        );
        assert_eq!(
            covered("https://charts.example/private/x.tgz"),
            Some("https://charts.example/private/")
        );
        assert_eq!(covered("https://charts.example.evil/index.yaml"), None);
        assert_eq!(
            covered("https://charts.example:8443/index.yaml"),
            Some("https://charts.example")
        );
        assert_eq!(covered("https://charts.example:evil@x/index.yaml"), None);
        assert_eq!(covered("https://charts.examplex"), None);
        assert_eq!(covered("git@github.com:org/repo.git"), Some("git@github.com"));
        assert_eq!(covered("git@github.com.evil:org/repo.git"), None);
    }

    #[test]
    fn retry_backoff_grows_and_is_capped() {
        let retry = Retry {
            limit: 10,
            backoff: Duration::from_secs(5),
            factor: 2,
            max_backoff: Duration::from_mins(1),
        };
        let delays: Vec<u64> = (1..=6).map(|attempt| retry.delay(attempt).as_secs()).collect();
        assert_eq!(delays, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(retry.delay(u32::MAX), Duration::from_mins(1), "no overflow");
    }
}
