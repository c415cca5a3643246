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
    /// Flux's post-build variable substitution (`spec.source.postBuild`), for Kustomize and
    /// directory sources; `None`: `${…}` is left as it is.
    #[serde(default)]
    pub post_build: Option<PostBuild>,
}

/// Flux's `postBuild`: variables substituted into every rendered object's YAML
/// (`driftless_render::substitute`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostBuild {
    /// Inline variables; they override every `substitute_from` entry.
    pub substitute: BTreeMap<String, String>,
    /// ConfigMaps and Secrets in the destination namespace whose data are variables; later
    /// entries override earlier ones.
    pub substitute_from: Vec<SubstituteReference>,
    /// `substituteStrategy: Always`: substitute even when no variable is defined.
    pub always: bool,
}

/// One `postBuild.substituteFrom` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubstituteReference {
    pub kind: SubstituteKind,
    pub name: String,
    /// A missing object counts as holding no variables instead of failing the render.
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubstituteKind {
    ConfigMap,
    Secret,
}

/// Whether `name` may be a post-build variable: Flux's `^[_[:alpha:]][_[:alpha:][:digit:]]*$`
/// (POSIX classes are ASCII in Go's regexp).
#[must_use]
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl std::fmt::Display for SubstituteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ConfigMap => "ConfigMap",
            Self::Secret => "Secret",
        })
    }
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
    /// Decided by the file names at the path, as Argo CD does
    /// ([`crate::source_type::detect`]): Kustomize, Helm, or a directory of manifests and Jsonnet
    /// programs.
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
    /// How the directory's `.jsonnet` files are evaluated (Argo CD's `directory.jsonnet`).
    #[serde(default)]
    pub jsonnet: JsonnetOptions,
}

/// What a directory's Jsonnet programs are given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonnetOptions {
    /// `std.extVar` values.
    pub ext_vars: Vec<JsonnetVariable>,
    /// Top-level arguments, passed when a program evaluates to a function.
    pub tlas: Vec<JsonnetVariable>,
    /// Library directories, repository-relative and normalised, searched for imports after the
    /// importing file's own directory (the last first, as `jsonnet -J` does), then the
    /// application's path.
    pub libs: Vec<String>,
}

impl JsonnetOptions {
    /// Whether nothing is set. A program given libraries may import from anywhere in the
    /// repository, so a directory with any of these is read whole.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ext_vars.is_empty() && self.tlas.is_empty() && self.libs.is_empty()
    }
}

/// One external variable or top-level argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonnetVariable {
    pub name: String,
    pub value: String,
    /// The value is Jsonnet code (`--ext-code`, `--tla-code`), not a string.
    pub code: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub cluster: String,
    /// For namespaced objects that name none.
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches, each one of Argo CD's sync options"
)]
pub struct SyncPolicy {
    /// `None`: only manual syncs.
    pub automated: Option<Automated>,
    pub interval: Duration,
    pub retry: Retry,
    pub create_namespace: bool,
    pub prune_last: bool,
    /// Replace (delete and create) instead of server-side apply, for every object.
    pub replace: bool,
    /// A render that yields no object is a sync of nothing, not an error (Argo CD's
    /// `automated.allowEmpty`; ours for manual syncs too).
    #[serde(default)]
    pub allow_empty: bool,
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
    /// Whether `url` is under this entry's URL, both read as [`RepositoryKey`]s: the same
    /// scheme and host (whatever their case, user-info and default port), the entry's path
    /// segments leading the URL's — so `https://charts.example` does not cover
    /// `https://charts.example.evil`, nor `…/org/apps` cover `…/org/apps-2`. An entry without a
    /// port covers every port of its host, one without a host (`ssh://`) every host of its
    /// scheme. A URL that has no key (`..` segments) is covered by nothing.
    #[must_use]
    pub fn covers(&self, url: &str) -> bool {
        match (RepositoryKey::prefix(&self.url_prefix), RepositoryKey::parse(url)) {
            (Ok(prefix), Ok(url)) => url.is_within(&prefix),
            _ => false,
        }
    }

    /// How specific the entry is: longer paths win, then a named host, then a port.
    fn specificity(&self) -> (usize, bool, bool) {
        RepositoryKey::prefix(&self.url_prefix).map_or((0, false, false), |key| {
            (key.segments.len(), !key.host.is_empty(), key.port.is_some())
        })
    }
}

/// The most specific credentials for `url` (the covering entry with the longest path).
#[must_use]
pub fn credentials_for<'a>(all: &'a [RepositoryCredentials], url: &str) -> Option<&'a RepositoryCredentials> {
    all.iter()
        .filter(|credentials| credentials.covers(url))
        .max_by_key(|credentials| credentials.specificity())
}

/// A repository's identity however its URL is spelled: scheme, host and path lower-cased (GitHub,
/// GitLab and Gitea serve a path in any case, and Argo CD lower-cases repository URLs too), a
/// host's trailing `.` removed, user-info removed, the scheme's default port dropped (https 443,
/// http 80, ssh 22, git 9418), empty segments, a trailing `/` and a trailing `.git` removed, scp-like `git@host:path` read as
/// `ssh://git@host/path`, and `%XX` escapes of unreserved characters decoded (others
/// upper-cased). A `.` or `..` segment (also escaped) is refused: git resolves it to a path
/// no policy saw, and so is a host with other than ASCII (or a `%`): curl maps look-alikes such as
/// a fullwidth `ｇ` to another host. Query and fragment are not part of it.
///
/// Every repository policy matches on this key — `repositories[]` credentials and `verify`,
/// and projects' `sourceRepos` — so one repository gets one policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryKey {
    scheme: String,
    /// Empty for `file://` URLs (and for prefixes that name no host).
    host: String,
    /// Only a port that is not the scheme's default.
    port: Option<String>,
    segments: Vec<String>,
}

/// Why a URL has no [`RepositoryKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("repository URL {url}: {reason}")]
pub struct RepositoryKeyError {
    /// Without user-info.
    pub url: String,
    #[source]
    pub reason: KeyRefusal,
}

/// What in a URL keeps it from having a [`RepositoryKey`] (never its user-info, which the key
/// leaves out before these are looked for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("the host {host:?} is not plain ASCII (a look-alike or a %-escape)")]
    Host { host: String },
    #[error("the port {port:?} is not a number")]
    Port { port: String },
    /// A path segment (lower-cased) whose `%` is not followed by two hex digits.
    #[error("{segment:?} has a malformed %-escape")]
    Escape { segment: String },
    #[error("has a '.' or '..' segment, which git would resolve to a path no policy saw")]
    DotSegment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Url,
    Prefix,
    Pattern,
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "https" => Some("443"),
        "http" => Some("80"),
        "ssh" => Some("22"),
        "git" => Some("9418"),
        _ => None,
    }
}

/// Decodes `%XX` escapes of unreserved characters (RFC 3986: they mean the same decoded), as the
/// key's lower case;
/// upper-cases the hex of every other escape, which must stay escaped (`%2F` is not `/`).
fn normalise_escapes(segment: &str) -> Result<String, KeyRefusal> {
    let bytes = segment.as_bytes();
    let mut out = String::with_capacity(segment.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let malformed = || KeyRefusal::Escape {
                segment: segment.to_owned(),
            };
            let hex = segment
                .get(i + 1..i + 3)
                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(malformed)?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| malformed())?;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte.to_ascii_lowercase()));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            let ch = segment[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Ok(out)
}

impl RepositoryKey {
    /// The key of a repository URL.
    pub fn parse(url: &str) -> Result<Self, RepositoryKeyError> {
        Self::read(url, Reading::Url)
    }

    /// The key of a `repositories[]` URL, which may stop anywhere a key may: after the scheme
    /// (`ssh://`), after the host (`git@github.com`, `https://charts.example`) or after a path
    /// segment.
    pub fn prefix(url: &str) -> Result<Self, RepositoryKeyError> {
        Self::read(url, Reading::Prefix)
    }

    /// A `sourceRepos` glob in the key's form (`scheme://host[:port]/path`, see
    /// [`crate::project`]), so that it matches however a repository's URL is spelled. `?` is a
    /// glob there, not a query; a port may be a glob.
    pub fn pattern(pattern: &str) -> Result<String, RepositoryKeyError> {
        let key = Self::read(pattern, Reading::Pattern)?;
        if key.scheme == "file" && !pattern.contains("://") {
            // Not URL-shaped (`*`, `**`): matched as written.
            return Ok(pattern.to_owned());
        }
        Ok(key.to_string())
    }

    fn read(url: &str, reading: Reading) -> Result<Self, RepositoryKeyError> {
        let refuse = |reason: KeyRefusal| RepositoryKeyError {
            url: crate::project::without_userinfo(url),
            reason,
        };
        let url = url.trim();
        let (scheme, authority, path) = if let Some((scheme, rest)) = url.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            let end = match reading {
                Reading::Pattern => rest.find('/'),
                Reading::Url | Reading::Prefix => rest.find(['/', '?', '#']),
            }
            .unwrap_or(rest.len());
            let scheme = match scheme.as_str() {
                "git+ssh" | "ssh+git" => "ssh".to_owned(),
                _ => scheme,
            };
            (scheme, &rest[..end], &rest[end..])
        } else if let Some((authority, path)) = url
            .split_once(':')
            .filter(|(authority, _)| !authority.contains('/'))
        {
            // scp-like `[user@]host:path`, as git reads it (a ':' before any '/').
            ("ssh".to_owned(), authority, path)
        } else if reading == Reading::Prefix && !url.contains('/') && url.contains('@') {
            // `git@host` as a prefix: every path of that host.
            ("ssh".to_owned(), url, "")
        } else {
            ("file".to_owned(), "", url)
        };
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        let (host, port) = match host_port.rsplit_once(':') {
            // `[::1]:22` has a port; `[::1]` has none.
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (host_port, None),
        };
        if !host.is_ascii() || host.contains('%') {
            // curl and git map look-alikes (a fullwidth `ｇ`) to another, ASCII host: no policy
            // could tell which one this is.
            return Err(refuse(KeyRefusal::Host {
                host: host.to_owned(),
            }));
        }
        // `github.com.` is `github.com`, fully qualified.
        let host = host.strip_suffix('.').unwrap_or(host);
        let port = match port {
            None | Some("") => None,
            Some(port) if reading == Reading::Pattern && !port.bytes().all(|b| b.is_ascii_digit()) => {
                Some(port.to_owned())
            }
            Some(port) if !port.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(refuse(KeyRefusal::Port {
                    port: port.to_owned(),
                }));
            }
            Some(port) => {
                let port = port.trim_start_matches('0');
                (Some(port) != default_port(&scheme)).then(|| port.to_owned())
            }
        };
        let path = match reading {
            Reading::Pattern => path,
            Reading::Url | Reading::Prefix => path.split(['?', '#']).next().unwrap_or_default(),
        };
        let mut segments = Vec::new();
        for segment in path.split('/').filter(|segment| !segment.is_empty()) {
            // Lower-cased before the escapes are read, so that their hex stays upper-case.
            let segment = normalise_escapes(&segment.to_lowercase()).map_err(refuse)?;
            if segment == "." || segment == ".." {
                return Err(refuse(KeyRefusal::DotSegment));
            }
            segments.push(segment);
        }
        if let Some(last) = segments.last_mut()
            && let Some(stripped) = last.strip_suffix(".git")
        {
            if stripped.is_empty() {
                segments.pop();
            } else {
                *last = stripped.to_owned();
            }
        }
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            segments,
        })
    }

    /// Whether this key is `prefix` or below it (see [`RepositoryCredentials::covers`]).
    #[must_use]
    pub fn is_within(&self, prefix: &Self) -> bool {
        self.scheme == prefix.scheme
            && (prefix.host.is_empty() || self.host == prefix.host)
            && (prefix.port.is_none() || self.port == prefix.port)
            && self.segments.starts_with(&prefix.segments)
    }

    /// Whether both are on one origin: scheme, host and port (a default port is no port). A
    /// prefix without a port covers every port ([`Self::is_within`]); this does not.
    #[must_use]
    pub fn same_origin(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }

    /// The repository whatever the transport: `host/path` (no scheme, no port), the same for a
    /// repository's https, ssh and scp-like URLs. A `verify` policy matches on it (matching
    /// more can only verify more), as do push webhooks.
    #[must_use]
    pub fn identity(&self) -> String {
        format!("{}/{}", self.host, self.segments.join("/"))
    }

    /// Whether this repository is the one `prefix` names, or below it, whatever the transport.
    #[must_use]
    pub fn identity_within(&self, prefix: &Self) -> bool {
        (prefix.host.is_empty() || self.host == prefix.host) && self.segments.starts_with(&prefix.segments)
    }

    /// The number of path segments (how specific a prefix is).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.segments.len()
    }
}

impl std::fmt::Display for RepositoryKey {
    /// `scheme://host[:port]/path`: what `sourceRepos` patterns are matched against.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = &self.port {
            write!(f, ":{port}")?;
        }
        for segment in &self.segments {
            write!(f, "/{segment}")?;
        }
        Ok(())
    }
}

/// `host/path` of a repository URL, the same for its https, ssh, scp-like and web forms
/// ([`RepositoryKey::identity`]); a URL without a key is its own, lower-cased.
#[must_use]
pub fn repository_key(url: &str) -> String {
    RepositoryKey::parse(url).map_or_else(|_| url.trim().to_ascii_lowercase(), |key| key.identity())
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

    /// One repository spelled five ways (and more): one key, one policy.
    const SPELLINGS: [&str; 9] = [
        "https://github.com/org/apps",
        "https://GitHub.com/org/apps.git",
        "git@github.com:org/apps",
        "ssh://git@github.com:22/org/apps.git",
        "https://user@github.com/org/apps/",
        "https://github.com:443/org/apps",
        "https://github.com//org/%61pps",
        "git+ssh://git@GITHUB.COM/org/apps.git/",
        "https://github.com/org/apps?ref=x#y",
    ];

    #[test]
    fn one_repository_has_one_key_however_it_is_spelled() {
        let key = RepositoryKey::parse("https://github.com/org/apps").expect("key");
        assert_eq!(key.to_string(), "https://github.com/org/apps");
        for spelling in SPELLINGS {
            let other = RepositoryKey::parse(spelling).expect(spelling);
            assert_eq!(other.identity(), key.identity(), "{spelling}");
            assert_eq!(repository_key(spelling), "github.com/org/apps", "{spelling}");
        }
        assert_eq!(
            RepositoryKey::parse("ssh://git@github.com:22/org/apps.git")
                .expect("key")
                .to_string(),
            RepositoryKey::parse("git@github.com:org/apps")
                .expect("key")
                .to_string(),
            "scp-like is ssh://"
        );
        for (url, canonical) in [
            ("http://h:80/a", "http://h/a"),
            ("http://h:8080/a", "http://h:8080/a"),
            ("git://h:9418/a.git", "git://h/a"),
            ("ssh://h:2222/a", "ssh://h:2222/a"),
            ("https://h/a%2fb", "https://h/a%2Fb"),
            ("https://h/a%7e", "https://h/a~"),
            ("file:///srv/git/origin.git", "file:///srv/git/origin"),
            ("https://[::1]:443/a", "https://[::1]/a"),
        ] {
            assert_eq!(
                RepositoryKey::parse(url).expect(url).to_string(),
                canonical,
                "{url}"
            );
        }
        for different in [
            "https://github.com/org/apps-2",
            "https://github.com.evil/org/apps",
            "https://github.com/org/apps/sub",
        ] {
            assert_ne!(repository_key(different), "github.com/org/apps", "{different}");
        }
        for refused in [
            "https://github.com/org/../org/apps",
            "https://github.com/org/./apps",
            "https://github.com/org/%2e%2e/apps",
            "https://github.com/org/%2E/apps",
            "https://github.com:x/org/apps",
            "https://github.com/org/a%zz",
        ] {
            let err = RepositoryKey::parse(refused).expect_err(refused);
            assert!(err.to_string().starts_with("repository URL "), "{err}");
        }
        let err = RepositoryKey::parse("https://bot:s3cret@h/../x").expect_err("dots");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// GitHub, GitLab and Gitea serve a path in any case, and Argo CD lower-cases repository
    /// URLs: `ORG/apps` is the repository `org/apps` is, for every policy. A host's trailing
    /// dot names the same host; a host with other than ASCII (a fullwidth `ｇ`, which curl maps
    /// to `g`) has no key.
    #[test]
    fn case_and_a_trailing_dot_do_not_make_another_repository() {
        let key = RepositoryKey::parse("https://github.com/org/apps").expect("key");
        for same in [
            "https://github.com/Org/apps",
            "https://GITHUB.COM/ORG/APPS.git",
            "git@github.com:ORG/Apps",
            "https://github.com./org/apps",
            "https://github.com/%4Frg/apps",
        ] {
            let other = RepositoryKey::parse(same).expect(same);
            assert_eq!(other.identity(), key.identity(), "{same}");
            assert_eq!(repository_key(same), "github.com/org/apps", "{same}");
        }
        let verify = RepositoryKey::prefix("https://github.com/org/apps").expect("prefix");
        let child = RepositoryKey::parse("https://github.com/ORG/apps").expect("child");
        assert!(child.identity_within(&verify), "a verify entry covers every case");
        let entry = RepositoryCredentials {
            url_prefix: "https://github.com/Org/".into(),
            username: None,
            password: None,
            ssh_private_key: None,
            known_hosts: None,
        };
        assert!(entry.covers("https://github.com/org/apps"));
        for refused in [
            "https://\u{ff47}ithub.com/org/apps",
            "https://github.\u{441}om/org/apps",
            "git@\u{ff47}ithub.com:org/apps",
            "https://github%2ecom/org/apps",
        ] {
            let err = RepositoryKey::parse(refused).expect_err(refused);
            assert!(err.to_string().contains("is not plain ASCII"), "{err}");
        }
        assert!(RepositoryKey::pattern("https://\u{ff47}ithub.com/*").is_err());
    }

    #[test]
    fn a_repository_entry_covers_every_spelling_of_its_repositories() {
        let entry = |prefix: &str| RepositoryCredentials {
            url_prefix: prefix.into(),
            username: None,
            password: None,
            ssh_private_key: None,
            known_hosts: None,
        };
        let https = [entry("https://github.com/org/apps")];
        for spelling in SPELLINGS.iter().filter(|url| url.starts_with("https")) {
            assert!(credentials_for(&https, spelling).is_some(), "{spelling}");
        }
        let ssh = [entry("git@github.com:org")];
        for spelling in ["git@github.com:org/apps", "ssh://git@GitHub.com:22/org/apps.git"] {
            assert!(credentials_for(&ssh, spelling).is_some(), "{spelling}");
        }
        assert!(
            credentials_for(&https, "git@github.com:org/apps").is_none(),
            "https credentials are not an ssh key's"
        );
        for outside in [
            "https://github.com/org/apps-2",
            "https://github.com/org/../other/apps",
            "https://github.com/org/apps/../../other",
            "http://github.com/org/apps",
        ] {
            assert!(credentials_for(&https, outside).is_none(), "{outside}");
        }
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
