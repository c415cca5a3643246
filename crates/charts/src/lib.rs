//! Helm charts from chart repositories: an HTTP repository's `index.yaml` or an OCI registry,
//! a chart name and an exact version or a range. Pulled archives are checked against their
//! digest, kept on disk by digest, and unpacked into memory with every hostile shape refused
//! ([`archive`]). Nothing here renders a chart; `driftless-render` does, with the files this
//! returns.
//!
//! Network access is only to the repository an application names (and to archive URLs of its
//! index on the same origin, or under a configured `repositories[]` URL); credentials go only to
//! URLs under the `repositories[]` entry they are configured for, and redirects to another origin
//! are not followed.

mod archive;
mod http;
mod oci;
mod version;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use driftless_core::application::RepositoryCredentials;
use driftless_git::{CredentialsError, FileTree};
use sha2::{Digest as _, Sha256};

/// Unpacks a chart archive into memory, refusing hostile shapes (public for fuzzing).
pub use archive::unpack;

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
    Credentials(#[from] CredentialsError),
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

/// Chart repositories and registries, with their indexes, resolutions and archives cached.
/// One per process, shared by every application.
pub struct Charts {
    cache_dir: Option<PathBuf>,
    credentials: Vec<RepositoryCredentials>,
    limits: ChartLimits,
    http: reqwest::Client,
    oci: oci::Registries,
    indexes: Mutex<HashMap<String, (Instant, Arc<http::Index>)>>,
    /// The last pull of each reference. A released chart version does not change (Helm and Argo
    /// CD treat versions as immutable), so an exact version is looked up once per process; a
    /// range is looked up again once the index it was resolved from is renewed.
    pulled: Mutex<HashMap<ChartRef, (Instant, PulledChart)>>,
    unpacked: Mutex<HashMap<String, Arc<FileTree>>>,
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
            http: http::client(&limits),
            oci: oci::Registries::new(&limits),
            cache_dir,
            credentials,
            limits,
            indexes: Mutex::default(),
            pulled: Mutex::default(),
            unpacked: Mutex::default(),
        }
    }

    /// Resolves the reference's version, pulls the archive (or takes it from the cache) and
    /// unpacks it. Cheap when nothing changed: an application's reconcile calls it to learn
    /// whether its chart did.
    #[tracing::instrument(level = "debug", skip_all, fields(chart = %chart))]
    pub async fn pull(&self, chart: &ChartRef) -> Result<PulledChart, ChartError> {
        let exact = is_exact(&chart.version);
        if let Some((pulled_at, pulled)) = lock(&self.pulled).get(chart)
            && (exact || pulled_at.elapsed() < self.limits.index_lifetime)
        {
            return Ok(pulled.clone());
        }
        let pulled = self.pull_now(chart).await?;
        let mut known = lock(&self.pulled);
        if known.len() >= PULLED_LIMIT {
            known.clear();
        }
        known.insert(chart.clone(), (Instant::now(), pulled.clone()));
        Ok(pulled)
    }

    async fn pull_now(&self, chart: &ChartRef) -> Result<PulledChart, ChartError> {
        let resolved = self.resolve(chart).await?;
        let (archive, digest) = match &resolved.location {
            Location::Http { url, digest } => {
                let digest = digest.as_ref().map(|hex| format!("sha256:{hex}"));
                if let Some(files) = digest.as_ref().and_then(|d| self.unpacked_chart(d)) {
                    return Ok(PulledChart {
                        version: resolved.version,
                        digest: digest.unwrap_or_default(),
                        files,
                    });
                }
                let archive = match digest.as_deref().and_then(|d| self.cached_archive(d)) {
                    Some(archive) => archive,
                    None => self.download_archive(chart, url).await?,
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
                (archive, actual)
            }
            Location::Oci { reference } => {
                let auth = self.oci_auth(chart)?;
                let layer = self.oci.chart_layer(chart, reference, &auth).await?;
                if let Some(files) = self.unpacked_chart(&layer.digest) {
                    return Ok(PulledChart {
                        version: resolved.version,
                        digest: layer.digest,
                        files,
                    });
                }
                let archive = match self.cached_archive(&layer.digest) {
                    Some(archive) => archive,
                    None => {
                        self.oci
                            .pull_layer(chart, reference, &layer, &self.limits)
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
                (archive, actual)
            }
        };
        let files = Arc::new(unpack(&chart.name, &archive, &self.limits)?);
        self.keep(&digest, &archive, &files);
        Ok(PulledChart {
            version: resolved.version,
            digest,
            files,
        })
    }

    async fn resolve(&self, chart: &ChartRef) -> Result<Resolved, ChartError> {
        let constraint =
            version::Constraint::parse(&chart.version).map_err(|message| ChartError::Reference {
                chart: chart.to_string(),
                message: format!("version: {message}"),
            })?;
        if chart.repository.starts_with("oci://") {
            let auth = self.oci_auth(chart)?;
            self.oci
                .resolve(chart, &constraint, is_exact(&chart.version), &auth)
                .await
        } else {
            let index = self.index(chart).await?;
            index.resolve(chart, &constraint, |url| self.may_fetch(&chart.repository, url))
        }
    }

    /// Whether an archive URL an index names may be fetched: on the repository's own origin, or
    /// under a configured `repositories[]` URL.
    fn may_fetch(&self, repository: &str, url: &str) -> Result<(), ChartError> {
        if http::origin(url) == http::origin(repository)
            || driftless_core::application::credentials_for(&self.credentials, url).is_some()
        {
            Ok(())
        } else {
            Err(ChartError::Refused {
                url: driftless_git::scrub_url(url),
                reason: format!(
                    "the index of {} points at another host; add it to repositories[] to allow it",
                    driftless_git::scrub_url(repository)
                ),
            })
        }
    }

    async fn index(&self, chart: &ChartRef) -> Result<Arc<http::Index>, ChartError> {
        let key = chart.repository.trim_end_matches('/').to_owned();
        if let Some((fetched, index)) = lock(&self.indexes).get(&key)
            && fetched.elapsed() < self.limits.index_lifetime
        {
            return Ok(Arc::clone(index));
        }
        let url = format!("{key}/index.yaml");
        let body = self.get(&url, self.limits.max_index_bytes).await?;
        let index = Arc::new(http::Index::parse(&url, &key, &body)?);
        lock(&self.indexes).insert(key, (Instant::now(), Arc::clone(&index)));
        Ok(index)
    }

    async fn download_archive(&self, chart: &ChartRef, url: &str) -> Result<Vec<u8>, ChartError> {
        tracing::info!(chart = %chart, "pulling chart");
        self.get(url, self.limits.max_archive_bytes).await
    }

    async fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, ChartError> {
        let credentials = driftless_core::application::credentials_for(&self.credentials, url);
        http::get(&self.http, url, credentials, limit).await
    }

    fn oci_auth(&self, chart: &ChartRef) -> Result<oci_client::secrets::RegistryAuth, ChartError> {
        let url = format!("{}/{}", chart.repository.trim_end_matches('/'), chart.name);
        oci::auth(driftless_core::application::credentials_for(
            &self.credentials,
            &url,
        ))
    }

    fn unpacked_chart(&self, digest: &str) -> Option<Arc<FileTree>> {
        lock(&self.unpacked).get(digest).cloned()
    }

    fn archive_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        hex.bytes().all(|b| b.is_ascii_hexdigit()).then(|| {
            self.cache_dir
                .as_ref()
                .map(|dir| dir.join(format!("sha256-{hex}.tgz")))
        })?
    }

    fn cached_archive(&self, digest: &str) -> Option<Vec<u8>> {
        let archive = std::fs::read(self.archive_path(digest)?).ok()?;
        // A damaged or tampered cache file is pulled again.
        (sha256(&archive) == digest).then_some(archive)
    }

    fn keep(&self, digest: &str, archive: &[u8], files: &Arc<FileTree>) {
        {
            let mut unpacked = lock(&self.unpacked);
            if unpacked.len() >= UNPACKED_LIMIT {
                unpacked.clear();
            }
            unpacked.insert(digest.to_owned(), Arc::clone(files));
        }
        let Some(path) = self.archive_path(digest) else {
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
