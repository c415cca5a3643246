//! Helm charts from chart repositories: an HTTP repository's `index.yaml` or an OCI registry,
//! a chart name and an exact version or a range. Pulled archives are checked against their
//! digest, kept on disk by digest (and by the `repositories[]` entry whose credentials fetched
//! them: a kept archive goes only to a pull with the same credentials), and unpacked into memory with every hostile shape refused
//! ([`archive`]). Nothing here renders a chart; `driftless-render` does, with the files this
//! returns.
//!
//! Network access is only to the repository an application names and to the archive URLs its
//! index names that are allowed ([`Charts::for_project`]): an archive must be one the
//! application's project allows (its `sourceRepos`), and one on another origin than the index
//! must also be under a configured `repositories[]` URL and carry a digest in the index (so the
//! index's author vouches for exactly those bytes). Credentials go only to URLs under the
//! `repositories[]` entry they are configured for, and to an archive only when that entry is
//! the one of the index too — never another entry's, so one tenant's index cannot make driftless
//! fetch another tenant's private archive with the other tenant's credentials. Redirects to
//! another origin are not followed.

mod archive;
mod http;
mod oci;
mod version;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use driftless_core::application::{RepositoryCredentials, RepositoryKey, credentials_for};
use driftless_core::project::{Project, check_source};
use driftless_files::FileTree;
use driftless_secrets::{ReadSecretError, scrub_url};
use sha2::{Digest as _, Sha256};

/// Unpacks a chart archive into memory, refusing hostile shapes (public for fuzzing).
pub use archive::unpack;
pub use version::ConstraintError;

/// A chart in a chart repository, as an application (or a chart's `Chart.yaml`) names it.
pub use driftless_core::application::RepositoryChart as ChartRef;

/// Bounds on what one chart repository may make driftless download and unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartLimits {
    pub max_index_bytes: u64,
    pub max_archive_bytes: u64,
    pub max_unpacked_bytes: u64,
    pub max_files: usize,
    /// For each request.
    pub timeout: Duration,
    /// How long a repository's index (or a registry's tag list) is reused before it is asked
    /// again: with the default, one request a minute per repository, however many applications
    /// use it.
    pub index_lifetime: Duration,
}

impl Default for ChartLimits {
    fn default() -> Self {
        Self {
            max_index_bytes: 64 * 1024 * 1024,
            max_archive_bytes: 32 * 1024 * 1024,
            max_unpacked_bytes: 128 * 1024 * 1024,
            max_files: 10_000,
            timeout: Duration::from_mins(1),
            index_lifetime: Duration::from_mins(1),
        }
    }
}

/// A chart as pulled: the version chosen, the archive's digest and its files (relative to the
/// chart's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledChart {
    pub version: String,
    /// `sha256:<hex>` of the archive.
    pub digest: String,
    pub files: Arc<FileTree>,
}

/// Returned by [`Charts::pull`]. Every variant names the chart or the URL (without credentials).
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("chart {chart}: {message}")]
    Reference { chart: String, message: String },
    #[error("chart {chart}: version: {source}")]
    Version {
        chart: String,
        #[source]
        source: ConstraintError,
    },
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{url}: the server answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: not a chart repository index: {message}")]
    Index { url: String, message: String },
    #[error("chart {name} is not in the repository {repository}")]
    NoSuchChart { repository: String, name: String },
    #[error("no version of chart {name} in {repository} matches {constraint:?} (it has {available})")]
    NoMatchingVersion {
        repository: String,
        name: String,
        constraint: String,
        available: String,
    },
    #[error("chart {chart}: {message}")]
    Archive { chart: String, message: String },
    #[error("chart {chart}: the archive's digest is {actual}, the repository says {expected}")]
    Digest {
        chart: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: refused: {reason}")]
    Refused { url: String, reason: String },
    #[error("chart repository credentials: {0}")]
    Credentials(#[from] ReadSecretError),
    #[error("{reference}: {message}")]
    Oci { reference: String, message: String },
}

/// Unpacked charts kept in memory (each one shared by every application that uses it).
const UNPACKED_LIMIT: usize = 64;
/// References whose last pull is remembered.
const PULLED_LIMIT: usize = 4096;

/// Whether a version names one release: `1.2` is a range for Helm; only a full version is exact.
fn is_exact(version: &str) -> bool {
    let core = version.trim().trim_start_matches('v');
    version::parse_version(core).is_some()
        && core
            .split(['-', '+'])
            .next()
            .is_some_and(|c| c.split('.').count() == 3)
        && !core.contains(['*', 'x', 'X'])
}

/// Which version a reference resolves to, and where its archive is.
#[derive(Debug, Clone)]
struct Resolved {
    version: String,
    location: Location,
}

#[derive(Debug, Clone)]
enum Location {
    Http { url: String, digest: Option<String> },
    Oci { reference: String },
}

/// When a reference was pulled, what came of it, and from which archive URL (`None`: OCI).
type Pull = (Instant, PulledChart, Option<String>);

/// Chart repositories and registries, with their indexes, resolutions and archives cached.
/// One per process, shared by every application; [`Charts::for_project`] gives a view that
/// shares the caches and refuses archives the project does not allow.
#[derive(Clone)]
pub struct Charts {
    shared: Arc<Shared>,
    /// The project whose `sourceRepos` every archive URL must match; `None`: any.
    project: Option<Arc<Project>>,
}

struct Shared {
    cache_dir: Option<PathBuf>,
    credentials: Vec<RepositoryCredentials>,
    limits: ChartLimits,
    http: reqwest::Client,
    oci: oci::Registries,
    indexes: Mutex<HashMap<String, (Instant, Arc<http::Index>)>>,
    /// The last pull of each reference. A released chart version does not change (Helm and Argo
    /// CD treat versions as immutable), so an exact version is looked up once per process; a
    /// range is looked up again once the index it was resolved from is renewed. With the
    /// archive's URL, which every view checks again.
    pulled: Mutex<HashMap<ChartRef, Pull>>,
    /// By digest and by who fetched it ([`Kept`]).
    unpacked: Mutex<HashMap<Kept, Arc<FileTree>>>,
}

/// A kept archive's digest and the URL prefix of the `repositories[]` entry whose credentials
/// fetched it (`None`: fetched without). A digest is no secret — anyone's index can name it —
/// so a kept archive is only for a pull that would fetch it with the same credentials: a
/// tenant whose index names another tenant's private digest on its own server gets what its
/// server answers, never the other tenant's chart.
type Kept = (String, Option<String>);

fn kept(digest: &str, credentials: Option<&RepositoryCredentials>) -> Kept {
    (
        digest.to_owned(),
        credentials.map(|entry| entry.url_prefix.clone()),
    )
}

/// Whether `url` is on `repository`'s origin (scheme, host and port; a default port is no
/// port), and with `under`, also under its path.
fn on_origin(url: &str, repository: &str, under: bool) -> bool {
    match (RepositoryKey::parse(url), RepositoryKey::parse(repository)) {
        (Ok(url), Ok(repository)) => url.same_origin(&repository) && (!under || url.is_within(&repository)),
        _ => false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl Charts {
    /// `cache_dir` keeps pulled archives by digest across processes (`None`: memory only).
    #[must_use]
    pub fn new(
        cache_dir: Option<PathBuf>,
        credentials: Vec<RepositoryCredentials>,
        limits: ChartLimits,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                http: http::client(&limits),
                oci: oci::Registries::new(&limits),
                cache_dir,
                credentials,
                limits,
                indexes: Mutex::default(),
                pulled: Mutex::default(),
                unpacked: Mutex::default(),
            }),
            project: None,
        }
    }

    /// The same charts and caches, pulling only archives whose URL `project` allows (its
    /// `sourceRepos`, as for the chart repository itself; `None`: unrestricted).
    #[must_use]
    pub fn for_project(&self, project: Option<&Project>) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            project: project.cloned().map(Arc::new),
        }
    }

    /// Whether the project allows fetching `url`, an archive `repository`'s index names: one
    /// under the repository's own URL, on its origin, is the repository's (which the project
    /// allowed before it was asked); any other must match the project's `sourceRepos` itself.
    fn project_allows(&self, repository: &str, url: &str) -> Result<(), ChartError> {
        let under_repository = on_origin(url, repository, true);
        match &self.project {
            Some(_) if under_repository => Ok(()),
            Some(project) => check_source(project, url).map_err(|violation| ChartError::Refused {
                url: scrub_url(url),
                reason: scrub_url(&violation.to_string()),
            }),
            None => Ok(()),
        }
    }

    /// Resolves the reference's version, pulls the archive (or takes it from the cache) and
    /// unpacks it. Cheap when nothing changed: an application's reconcile calls it to learn
    /// whether its chart did.
    #[tracing::instrument(level = "debug", skip_all, fields(chart = %chart))]
    pub async fn pull(&self, chart: &ChartRef) -> Result<PulledChart, ChartError> {
        let exact = is_exact(&chart.version);
        let known = lock(&self.shared.pulled).get(chart).cloned();
        if let Some((pulled_at, pulled, archive)) = known
            && (exact || pulled_at.elapsed() < self.shared.limits.index_lifetime)
        {
            // Pulled through another view, perhaps one with a wider project.
            if let Some(url) = &archive {
                self.project_allows(&chart.repository, url)?;
            }
            return Ok(pulled);
        }
        let (pulled, archive) = self.pull_now(chart).await?;
        let mut known = lock(&self.shared.pulled);
        if known.len() >= PULLED_LIMIT {
            known.clear();
        }
        known.insert(chart.clone(), (Instant::now(), pulled.clone(), archive));
        Ok(pulled)
    }

    /// The chart, and its archive's URL (`None` for OCI).
    async fn pull_now(&self, chart: &ChartRef) -> Result<(PulledChart, Option<String>), ChartError> {
        let resolved = self.resolve(chart).await?;
        let (archive, kept) = match &resolved.location {
            Location::Http { url, digest } => {
                let digest = digest.as_ref().map(|hex| format!("sha256:{hex}"));
                let credentials = self.archive_credentials(&chart.repository, url);
                let cached = digest.as_deref().map(|digest| kept(digest, credentials));
                if let Some(files) = cached.as_ref().and_then(|key| self.unpacked_chart(key)) {
                    let pulled = PulledChart {
                        version: resolved.version,
                        digest: digest.unwrap_or_default(),
                        files,
                    };
                    return Ok((pulled, Some(url.clone())));
                }
                let archive = match cached.as_ref().and_then(|key| self.cached_archive(key)) {
                    Some(archive) => archive,
                    None => self.download_archive(chart, url, credentials).await?,
                };
                let actual = sha256(&archive);
                if let Some(expected) = digest
                    && expected != actual
                {
                    return Err(ChartError::Digest {
                        chart: chart.to_string(),
                        expected,
                        actual,
                    });
                }
                (archive, kept(&actual, credentials))
            }
            Location::Oci { reference } => {
                let credentials = self.oci_credentials(chart);
                let auth = oci::auth(credentials)?;
                let layer = self.shared.oci.chart_layer(chart, reference, &auth).await?;
                let cached = kept(&layer.digest, credentials);
                if let Some(files) = self.unpacked_chart(&cached) {
                    let pulled = PulledChart {
                        version: resolved.version,
                        digest: layer.digest,
                        files,
                    };
                    return Ok((pulled, None));
                }
                let archive = match self.cached_archive(&cached) {
                    Some(archive) => archive,
                    None => {
                        self.shared
                            .oci
                            .pull_layer(chart, reference, &layer, &self.shared.limits)
                            .await?
                    }
                };
                let actual = sha256(&archive);
                if actual != layer.digest {
                    return Err(ChartError::Digest {
                        chart: chart.to_string(),
                        expected: layer.digest,
                        actual,
                    });
                }
                (archive, cached)
            }
        };
        let files = Arc::new(unpack(&chart.name, &archive, &self.shared.limits)?);
        self.keep(&kept, &archive, &files);
        let url = match resolved.location {
            Location::Http { url, .. } => Some(url),
            Location::Oci { .. } => None,
        };
        let pulled = PulledChart {
            version: resolved.version,
            digest: kept.0,
            files,
        };
        Ok((pulled, url))
    }

    async fn resolve(&self, chart: &ChartRef) -> Result<Resolved, ChartError> {
        let constraint =
            version::Constraint::parse(&chart.version).map_err(|source| ChartError::Version {
                chart: chart.to_string(),
                source,
            })?;
        if chart.repository.starts_with("oci://") {
            let auth = oci::auth(self.oci_credentials(chart))?;
            self.shared
                .oci
                .resolve(chart, &constraint, is_exact(&chart.version), &auth)
                .await
        } else {
            let index = self.index(chart).await?;
            index.resolve(chart, &constraint, |url, digest| {
                self.may_fetch(&chart.repository, url, digest)
            })
        }
    }

    /// Whether an archive URL an index names may be fetched: one the project allows, and on
    /// the repository's own origin, or — under a configured `repositories[]` URL and with the
    /// archive's digest in the index — on another.
    fn may_fetch(&self, repository: &str, url: &str, digest: Option<&str>) -> Result<(), ChartError> {
        self.project_allows(repository, url)?;
        if http::origin(url) == http::origin(repository) {
            return Ok(());
        }
        let refused = |reason: String| ChartError::Refused {
            url: scrub_url(url),
            reason,
        };
        if self.credentials_for(url).is_none() {
            return Err(refused(format!(
                "the index of {} points at another host; add it to repositories[] to allow it",
                scrub_url(repository)
            )));
        }
        if digest.is_none() {
            return Err(refused(format!(
                "the index of {} points at another host without the archive's digest",
                scrub_url(repository)
            )));
        }
        Ok(())
    }

    fn credentials_for(&self, url: &str) -> Option<&RepositoryCredentials> {
        credentials_for(&self.shared.credentials, url)
    }

    /// The credentials an archive of `repository`'s index gets: those of the `repositories[]`
    /// entry of the index, when that entry covers the archive too and the archive is on the
    /// index's origin (a port-less entry covers every port of its host; the archive is not
    /// the index's on another); never another entry's.
    fn archive_credentials(&self, repository: &str, url: &str) -> Option<&RepositoryCredentials> {
        if !on_origin(url, repository, false) {
            return None;
        }
        let index = format!("{}/index.yaml", repository.trim_end_matches('/'));
        self.credentials_for(&index)
            .filter(|credentials| credentials.covers(url) && self.credentials_for(url) == Some(credentials))
    }

    async fn index(&self, chart: &ChartRef) -> Result<Arc<http::Index>, ChartError> {
        let key = chart.repository.trim_end_matches('/').to_owned();
        if let Some((fetched, index)) = lock(&self.shared.indexes).get(&key)
            && fetched.elapsed() < self.shared.limits.index_lifetime
        {
            return Ok(Arc::clone(index));
        }
        let url = format!("{key}/index.yaml");
        let credentials = self.credentials_for(&url);
        let body = http::get(
            &self.shared.http,
            &url,
            credentials,
            self.shared.limits.max_index_bytes,
        )
        .await?;
        let index = Arc::new(http::Index::parse(&url, &key, &body)?);
        lock(&self.shared.indexes).insert(key, (Instant::now(), Arc::clone(&index)));
        Ok(index)
    }

    async fn download_archive(
        &self,
        chart: &ChartRef,
        url: &str,
        credentials: Option<&RepositoryCredentials>,
    ) -> Result<Vec<u8>, ChartError> {
        tracing::info!(chart = %chart, "pulling chart");
        http::get(
            &self.shared.http,
            url,
            credentials,
            self.shared.limits.max_archive_bytes,
        )
        .await
    }

    fn oci_credentials(&self, chart: &ChartRef) -> Option<&RepositoryCredentials> {
        self.credentials_for(&format!(
            "{}/{}",
            chart.repository.trim_end_matches('/'),
            chart.name
        ))
    }

    fn unpacked_chart(&self, kept: &Kept) -> Option<Arc<FileTree>> {
        lock(&self.shared.unpacked).get(kept).cloned()
    }

    /// `sha256-<hex>.tgz` when fetched without credentials, `sha256-<hex>-<entry>.tgz` with
    /// an entry's (`<entry>`: the start of the SHA-256 of its URL prefix).
    fn archive_path(&self, (digest, entry): &Kept) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        let name = match entry {
            None => format!("sha256-{hex}.tgz"),
            Some(prefix) => format!("sha256-{hex}-{}.tgz", &sha256(prefix.as_bytes())[7..23]),
        };
        hex.bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| self.shared.cache_dir.as_ref().map(|dir| dir.join(name)))?
    }

    fn cached_archive(&self, kept: &Kept) -> Option<Vec<u8>> {
        let archive = std::fs::read(self.archive_path(kept)?).ok()?;
        // A damaged or tampered cache file is pulled again.
        (sha256(&archive) == kept.0).then_some(archive)
    }

    fn keep(&self, kept: &Kept, archive: &[u8], files: &Arc<FileTree>) {
        {
            let mut unpacked = lock(&self.shared.unpacked);
            if unpacked.len() >= UNPACKED_LIMIT {
                unpacked.clear();
            }
            unpacked.insert(kept.clone(), Arc::clone(files));
        }
        let Some(path) = self.archive_path(kept) else {
            return;
        };
        let written = (|| {
            let dir = path.parent().unwrap_or(&path);
            std::fs::create_dir_all(dir)?;
            let mut file = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut file, archive)?;
            file.persist(&path).map_err(|err| err.error)?;
            Ok::<_, std::io::Error>(())
        })();
        if let Err(err) = written {
            tracing::warn!(path = %path.display(), error = %err, "could not keep the chart archive");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(prefix: &str, password: bool) -> RepositoryCredentials {
        RepositoryCredentials {
            url_prefix: prefix.into(),
            username: Some("robot".into()),
            password: password.then(|| driftless_core::application::SecretSource::Env("UNUSED".into())),
            ssh_private_key: None,
            known_hosts: None,
        }
    }

    /// A project allowing the repository `https://a.example/charts` only.
    fn team_a() -> Project {
        Project {
            name: "team-a".into(),
            source_repos: Some(vec!["https://a.example/charts".into()]),
            destinations: None,
            cluster_resource_whitelist: Vec::new(),
            namespace_resource_blacklist: Vec::new(),
        }
    }

    #[test]
    fn archives_elsewhere_need_an_entry_a_digest_and_never_get_anothers_credentials() {
        let charts = Charts::new(
            None,
            vec![
                entry("https://a.example/charts", true),
                entry("https://b.example/private", true),
                entry("https://a.example/charts/b-team", true),
            ],
            ChartLimits::default(),
        );
        let a = "https://a.example/charts";
        assert!(
            charts
                .may_fetch(a, "https://a.example/charts/web-1.tgz", None)
                .is_ok()
        );
        let err = charts
            .may_fetch(a, "https://b.example/private/web-1.tgz", None)
            .expect_err("no digest");
        assert!(err.to_string().contains("without the archive's digest"), "{err}");
        assert!(
            charts
                .may_fetch(a, "https://b.example/private/web-1.tgz", Some("ab"))
                .is_ok()
        );
        let err = charts
            .may_fetch(a, "https://c.example/web-1.tgz", Some("ab"))
            .expect_err("no entry");
        assert!(err.to_string().contains("add it to repositories[]"), "{err}");

        let prefix = |url: &str| charts.archive_credentials(a, url).map(|c| c.url_prefix.as_str());
        assert_eq!(prefix("https://A.example:443/charts/web-1.tgz"), Some(a));
        assert_eq!(
            prefix("https://b.example/private/web-1.tgz"),
            None,
            "another origin's"
        );
        assert_eq!(
            prefix("https://a.example/charts/b-team/web-1.tgz"),
            None,
            "another entry's, even on the same origin"
        );

        let scoped = charts.for_project(Some(&team_a()));
        assert!(
            scoped
                .may_fetch(a, "https://a.example/charts/web-1.tgz", None)
                .is_ok()
        );
        let err = scoped
            .may_fetch(a, "https://b.example/private/web-1.tgz", Some("ab"))
            .expect_err("not the project's");
        assert_eq!(
            err.to_string(),
            "https://b.example/private/web-1.tgz: refused: project team-a does not allow the source repository https://b.example/private/web-1.tgz"
        );
    }

    /// A port-less entry covers its host's every port for Git, but an archive is the
    /// repository's, and gets the index's credentials, only on the index's own origin.
    #[test]
    fn an_archive_on_another_port_is_neither_the_repositorys_nor_gets_its_credentials() {
        let charts = Charts::new(
            None,
            vec![entry("https://a.example", true)],
            ChartLimits::default(),
        );
        let a = "https://a.example/charts";
        let prefix = |url: &str| charts.archive_credentials(a, url).map(|c| c.url_prefix.as_str());
        assert_eq!(
            prefix("https://a.example:443/charts/web-1.tgz"),
            Some("https://a.example")
        );
        assert_eq!(prefix("https://a.example:9999/charts/web-1.tgz"), None);
        assert_eq!(prefix("http://a.example/charts/web-1.tgz"), None);

        let scoped = charts.for_project(Some(&team_a()));
        assert!(
            scoped
                .project_allows(a, "https://a.example/charts/web-1.tgz")
                .is_ok()
        );
        assert!(
            scoped
                .project_allows(a, "https://A.example:443/charts/web-1.tgz")
                .is_ok()
        );
        let err = scoped
            .project_allows(a, "https://a.example:9999/charts/web-1.tgz")
            .expect_err("another origin");
        assert!(err.to_string().contains("project team-a does not allow"), "{err}");
    }
}
