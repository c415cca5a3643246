//! Shared bare mirrors of remote repositories.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use driftless_core::application::RepositoryCredentials;
use driftless_files::{Entry, FileTree, ReadLimits};
use driftless_secrets::scrub_url;
use sha2::{Digest as _, Sha256};

use crate::command::{Failure, Git};
use crate::credentials::{self, CredentialsError};
use crate::signatures::{SignatureError, SignaturePolicy, Signer, verify_commit};

/// A full (40 hex digit) commit id, as resolved from a repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(String);

impl CommitId {
    /// A full commit id as `git rev-parse` prints it (40 hex digits).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let full = text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit());
        full.then(|| Self(text.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 7 digits, as git shows them.
    #[must_use]
    pub fn short(&self) -> &str {
        &self.0[..7.min(self.0.len())]
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returned by [`Mirrors`] operations. Every repository URL in it is scrubbed of credentials.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed or cannot be started (install it with `apt-get install git`)")]
    NotInstalled(#[source] std::io::Error),
    #[error("failed to {operation} {repo}: {stderr}")]
    Command {
        operation: &'static str,
        repo: String,
        stderr: String,
    },
    #[error("failed to {operation} {repo}: no answer within {after:?}")]
    TimedOut {
        operation: &'static str,
        repo: String,
        after: Duration,
    },
    #[error("revision {revision:?} not found in {repo}")]
    RevisionNotFound { repo: String, revision: String },
    #[error("credentials for {repo}")]
    Credentials {
        repo: String,
        #[source]
        source: CredentialsError,
    },
    #[error("{repo} at {commit}: {what} exceeds the limit of {limit}")]
    TooLarge {
        repo: String,
        commit: String,
        what: &'static str,
        limit: u64,
    },
    #[error("failed to {action}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unexpected output from git {operation} for {repo}: {detail}")]
    Protocol {
        operation: &'static str,
        repo: String,
        detail: String,
    },
    #[error("unexpected output from git ls-tree for {repo}: {source}")]
    ListTree {
        repo: String,
        #[source]
        source: LsTreeError,
    },
    #[error("unexpected output from git cat-file for {repo}: {source}")]
    CatFile {
        repo: String,
        #[source]
        source: CatFileError,
    },
    #[error("{repo}: more than {limit} commits from {since} to {until}, refusing to walk them all")]
    TooManyCommits {
        repo: String,
        since: String,
        until: String,
        limit: usize,
    },
}

/// Returned by [`Mirrors::verify_commits`]: the first commit whose signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("commit {}: {reason}", commit.short())]
    Commit {
        commit: CommitId,
        #[source]
        reason: SignatureError,
    },
}

/// How long a fetch may take before it is abandoned (and retried on the next reconcile).
const FETCH_TIMEOUT: Duration = Duration::from_mins(5);

/// How many commits [`Mirrors::commits_between`] walks unless told otherwise: enough for a busy
/// day between syncs, few enough that a wrong `since` (say, after a history rewrite) fails fast.
const DEFAULT_COMMIT_WALK_LIMIT: usize = 1_000;

/// The mirrors under one directory, with the credentials to fetch them.
pub struct Mirrors {
    root: PathBuf,
    credentials: Vec<RepositoryCredentials>,
    /// One lock per repository: fetches of one repository are serialised, others run in parallel.
    /// It guards when the last successful fetch started, so callers that waited behind a fetch
    /// that began after they asked need not fetch again.
    fetch_locks: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
    /// Revisions resolved since the repository's last fetch: (mirror, revision) → commit.
    resolved: Mutex<HashMap<(PathBuf, String), CommitId>>,
    limits: ReadLimits,
    commit_walk_limit: usize,
    fetches: std::sync::atomic::AtomicU64,
    clones: std::sync::atomic::AtomicU64,
}

impl Mirrors {
    #[must_use]
    pub fn new(root: PathBuf, credentials: Vec<RepositoryCredentials>) -> Self {
        Self {
            root,
            credentials,
            fetch_locks: Mutex::new(HashMap::new()),
            resolved: Mutex::new(HashMap::new()),
            limits: ReadLimits::default(),
            commit_walk_limit: DEFAULT_COMMIT_WALK_LIMIT,
            fetches: std::sync::atomic::AtomicU64::new(0),
            clones: std::sync::atomic::AtomicU64::new(0),
        }
    }

    #[must_use]
    pub fn with_limits(mut self, limits: ReadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The most commits [`Mirrors::commits_between`] (and so [`Mirrors::verify_commits`]) returns
    /// before it fails with [`GitError::TooManyCommits`].
    #[must_use]
    pub fn with_commit_walk_limit(mut self, limit: usize) -> Self {
        self.commit_walk_limit = limit;
        self
    }

    /// The mirror directory of `url`: named by a hash, so no URL can choose a path.
    #[must_use]
    pub fn mirror_dir(&self, url: &str) -> PathBuf {
        let digest = format!("{:x}", Sha256::digest(url.as_bytes()));
        self.root.join(format!("{}.git", &digest[..32]))
    }

    fn failure(operation: &'static str, url: &str, failure: Failure) -> GitError {
        let repo = scrub_url(url);
        match failure {
            Failure::Spawn(source) => GitError::NotInstalled(source),
            Failure::TimedOut(after) => GitError::TimedOut {
                operation,
                repo,
                after,
            },
            Failure::Exit { stderr, status } => {
                let stderr = scrub_url(&stderr);
                GitError::Command {
                    operation,
                    repo,
                    stderr: if stderr.is_empty() {
                        status.to_string()
                    } else {
                        stderr
                    },
                }
            }
        }
    }

    /// How many fetches (and clones) ran, for statistics.
    #[must_use]
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many of those were clones, each a mirror made anew: one per repository unless its
    /// mirror was removed.
    #[must_use]
    pub fn clone_count(&self) -> u64 {
        self.clones.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Clones the mirror of `url` if it does not exist yet, otherwise fetches what changed.
    pub async fn fetch(&self, url: &str) -> Result<(), GitError> {
        self.fetch_since(url, Instant::now()).await
    }

    /// Like [`Mirrors::fetch`], but content with a successful fetch that started at or after
    /// `not_before`: many applications of one repository asking at once share one fetch, and a
    /// periodic reconcile may accept one a few seconds old.
    pub async fn fetch_since(&self, url: &str, not_before: Instant) -> Result<(), GitError> {
        let dir = self.mirror_dir(url);
        let lock = {
            let mut locks = self
                .fetch_locks
                .lock()
                .expect("the lock map is never left poisoned: no code panics holding it");
            Arc::clone(locks.entry(dir.clone()).or_default())
        };
        let mut last_fetch = lock.lock().await;
        if last_fetch.is_some_and(|started| started >= not_before) {
            return Ok(());
        }
        let started = Instant::now();
        self.fetch_locked(url, &dir).await?;
        *last_fetch = Some(started);
        self.resolved
            .lock()
            .expect("the resolve cache is never left poisoned: no code panics holding it")
            .retain(|(mirror, _), _| *mirror != dir);
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn fetch_locked(&self, url: &str, dir: &Path) -> Result<(), GitError> {
        // Git writes the URL it is given into the mirror's config (and FETCH_HEAD): credentials in
        // it go to the credential helper's environment instead, and git sees the URL without them.
        let (git_url, userinfo) = credentials::split_userinfo(url);
        let prepared = credentials::prepare(
            &git_url,
            driftless_core::application::credentials_for(&self.credentials, url),
            userinfo,
        )
        .map_err(|source| GitError::Credentials {
            repo: scrub_url(url),
            source,
        })?;
        let started = Instant::now();
        if dir.join("HEAD").exists() {
            if git_url != url {
                // Mirrors cloned before credentials were kept out hold them in their config.
                Git::new(["config", "remote.origin.url", git_url.as_str()])
                    .in_dir(dir)
                    .run()
                    .await
                    .map_err(|failure| Self::failure("update the remote URL of", url, failure))?;
            }
            Git::new(["fetch", "--prune", "--quiet", "origin"])
                .in_dir(dir)
                .credentials(&prepared)
                .timeout(FETCH_TIMEOUT)
                .run()
                .await
                .map_err(|failure| Self::failure("fetch", url, failure))?;
        } else {
            std::fs::create_dir_all(&self.root).map_err(|source| GitError::Io {
                action: format!("create {}", self.root.display()),
                source,
            })?;
            // Cloned beside its final place and renamed, so a half-made mirror is never used.
            let staging = tempfile::Builder::new()
                .prefix(".clone-")
                .tempdir_in(&self.root)
                .map_err(|source| GitError::Io {
                    action: format!("create a directory in {}", self.root.display()),
                    source,
                })?;
            let target = staging.path().join("mirror.git");
            // No template: a mirror needs no hook samples or description, only objects and refs.
            Git::new([
                "clone",
                "--mirror",
                "--quiet",
                "--no-local",
                "--template=",
                "--end-of-options",
            ])
            .credentials(&prepared)
            .timeout(FETCH_TIMEOUT)
            .run_with_paths(&git_url, &target)
            .await
            .map_err(|failure| Self::failure("clone", url, failure))?;
            std::fs::rename(&target, dir).map_err(|source| GitError::Io {
                action: format!("move the new mirror to {}", dir.display()),
                source,
            })?;
            self.clones.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::debug!(repo = %scrub_url(url), elapsed_ms = started.elapsed().as_millis(), "fetched");
        Ok(())
    }

    /// The commit `revision` (branch, tag, full or abbreviated commit, `HEAD`) names in the mirror.
    pub async fn resolve(&self, url: &str, revision: &str) -> Result<CommitId, GitError> {
        let dir = self.mirror_dir(url);
        let key = (dir.clone(), revision.to_owned());
        if let Some(commit) = self
            .resolved
            .lock()
            .expect("the resolve cache is never left poisoned: no code panics holding it")
            .get(&key)
        {
            return Ok(commit.clone());
        }
        let commit = self.resolve_uncached(url, &dir, revision).await?;
        self.resolved
            .lock()
            .expect("the resolve cache is never left poisoned: no code panics holding it")
            .insert(key, commit.clone());
        Ok(commit)
    }

    async fn resolve_uncached(&self, url: &str, dir: &Path, revision: &str) -> Result<CommitId, GitError> {
        let output = Git::new(["rev-parse", "--verify", "--quiet", "--end-of-options"])
            .in_dir(dir)
            .run_with_arg(&format!("{revision}^{{commit}}"))
            .await;
        match output {
            Ok(output) => {
                let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                CommitId::parse(&id).ok_or_else(|| GitError::Protocol {
                    operation: "rev-parse",
                    repo: scrub_url(url),
                    detail: id,
                })
            }
            Err(Failure::Exit { .. }) => Err(GitError::RevisionNotFound {
                repo: scrub_url(url),
                revision: revision.to_owned(),
            }),
            Err(failure) => Err(Self::failure("resolve a revision in", url, failure)),
        }
    }

    /// Fetches, then resolves.
    pub async fn fetch_and_resolve(&self, url: &str, revision: &str) -> Result<CommitId, GitError> {
        self.fetch_since_and_resolve(url, revision, Instant::now()).await
    }

    /// [`Mirrors::fetch_since`], then resolves.
    pub async fn fetch_since_and_resolve(
        &self,
        url: &str,
        revision: &str,
        not_before: Instant,
    ) -> Result<CommitId, GitError> {
        self.fetch_since(url, not_before).await?;
        self.resolve(url, revision).await
    }

    /// Reads every file at or below `path` ("" for the whole repository) at `commit` into memory,
    /// within the configured [`ReadLimits`]. Entries no copy on disk could hold safely are left
    /// out and listed in [`FileTree::refused`]; a caller refuses an application with
    /// [`FileTree::check_under`] its own path.
    pub async fn read_tree(&self, url: &str, commit: &CommitId, path: &str) -> Result<FileTree, GitError> {
        let dir = self.mirror_dir(url);
        let mut args = vec![
            "ls-tree".to_owned(),
            "-r".into(),
            "-z".into(),
            "-l".into(),
            "--full-tree".into(),
            commit.0.clone(),
        ];
        if !path.is_empty() {
            args.push("--".into());
            args.push(path.to_owned());
        }
        let listing = Git::new(args)
            .in_dir(&dir)
            .run()
            .await
            .map_err(|f| Self::failure("list files of", url, f))?;
        let entries = parse_ls_tree(&listing.stdout).map_err(|source| GitError::ListTree {
            repo: scrub_url(url),
            source,
        })?;
        let too_large = |what, limit| GitError::TooLarge {
            repo: scrub_url(url),
            commit: commit.0.clone(),
            what,
            limit,
        };
        if entries.len() > self.limits.max_files {
            return Err(too_large("the number of files", self.limits.max_files as u64));
        }
        let total: u64 = entries.iter().map(|e| e.size).sum();
        if total > self.limits.max_bytes {
            return Err(too_large("the total size of the files", self.limits.max_bytes));
        }
        let blob_ids: Vec<&str> = entries
            .iter()
            .filter(|e| e.kind == "blob")
            .map(|e| e.object.as_str())
            .collect();
        let mut contents = self.read_objects(url, &dir, &blob_ids).await?.into_iter();
        // A tree may hold what no work tree can: `FileTree::from_git` leaves such entries out and
        // lists them, for the applications whose path holds one to be refused.
        let mut checked = Vec::with_capacity(entries.len());
        for entry in entries {
            let value = match (entry.kind.as_str(), entry.mode.as_str()) {
                ("commit", _) => Entry::Submodule,
                ("blob", "120000") => {
                    let target = contents.next().unwrap_or_default();
                    Entry::Symlink {
                        target: String::from_utf8_lossy(&target).into_owned(),
                    }
                }
                ("blob", mode) => Entry::File {
                    contents: contents.next().unwrap_or_default(),
                    executable: mode == "100755",
                },
                _ => continue,
            };
            checked.push((entry.path, value));
        }
        Ok(FileTree::from_git(checked))
    }

    /// Contents of objects (blobs, commits), in order, through one `git cat-file --batch`.
    async fn read_objects(&self, url: &str, dir: &Path, ids: &[&str]) -> Result<Vec<Vec<u8>>, GitError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut input = ids.join("\n");
        input.push('\n');
        let output = Git::new(["cat-file", "--batch"])
            .in_dir(dir)
            .stdin(input.into_bytes())
            .run()
            .await
            .map_err(|f| Self::failure("read objects of", url, f))?;
        parse_cat_file_batch(&output.stdout, ids.len()).map_err(|source| GitError::CatFile {
            repo: scrub_url(url),
            source,
        })
    }

    /// Paths that differ between two commits (added, changed, removed, renamed: both sides).
    pub async fn changed_paths(
        &self,
        url: &str,
        from: &CommitId,
        to: &CommitId,
    ) -> Result<Vec<String>, GitError> {
        let dir = self.mirror_dir(url);
        let output = Git::new([
            "diff",
            "--name-only",
            "--no-renames",
            "-z",
            from.as_str(),
            to.as_str(),
        ])
        .in_dir(&dir)
        .run()
        .await
        .map_err(|f| Self::failure("compare commits of", url, f))?;
        Ok(output
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect())
    }

    /// The commit object exactly as git stores it (what its signature covers).
    pub async fn raw_commit(&self, url: &str, commit: &CommitId) -> Result<Vec<u8>, GitError> {
        let output = Git::new(["cat-file", "commit", commit.as_str()])
            .in_dir(&self.mirror_dir(url))
            .run()
            .await
            .map_err(|f| Self::failure("read a commit of", url, f))?;
        Ok(output.stdout)
    }

    /// Every commit reachable from `until` but not from `since` (`git rev-list since..until`),
    /// parents before children; only `until` when there is no `since`. At most the configured
    /// commit walk limit ([`Mirrors::with_commit_walk_limit`]).
    pub async fn commits_between(
        &self,
        url: &str,
        since: Option<&CommitId>,
        until: &CommitId,
    ) -> Result<Vec<CommitId>, GitError> {
        let Some(since) = since else {
            return Ok(vec![until.clone()]);
        };
        // One more than allowed, to tell "exactly the limit" from "too many".
        let output = Git::new([
            "rev-list".to_owned(),
            "--topo-order".into(),
            "--reverse".into(),
            format!("--max-count={}", self.commit_walk_limit.saturating_add(1)),
            "--end-of-options".into(),
            until.as_str().to_owned(),
            format!("^{}", since.as_str()),
        ])
        .in_dir(&self.mirror_dir(url))
        .run()
        .await
        .map_err(|f| Self::failure("list commits of", url, f))?;
        let commits = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                CommitId::parse(line).ok_or_else(|| GitError::Protocol {
                    operation: "rev-list",
                    repo: scrub_url(url),
                    detail: line.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if commits.len() > self.commit_walk_limit {
            return Err(GitError::TooManyCommits {
                repo: scrub_url(url),
                since: since.short().to_owned(),
                until: until.short().to_owned(),
                limit: self.commit_walk_limit,
            });
        }
        Ok(commits)
    }

    /// Verifies the signature of every commit [`Mirrors::commits_between`] lists, oldest first;
    /// fails at the first one `policy` does not accept.
    pub async fn verify_commits(
        &self,
        url: &str,
        since: Option<&CommitId>,
        until: &CommitId,
        policy: &SignaturePolicy,
    ) -> Result<Vec<(CommitId, Signer)>, VerifyError> {
        let commits = self.commits_between(url, since, until).await?;
        let ids: Vec<&str> = commits.iter().map(CommitId::as_str).collect();
        let raw_commits = self.read_objects(url, &self.mirror_dir(url), &ids).await?;
        commits
            .into_iter()
            .zip(raw_commits)
            .map(|(commit, raw)| match verify_commit(&raw, policy) {
                Ok(signer) => Ok((commit, signer)),
                Err(reason) => Err(VerifyError::Commit { commit, reason }),
            })
            .collect()
    }
}

impl Git<'_> {
    /// Runs with a URL and a local path as the final arguments (after `--end-of-options`).
    async fn run_with_paths(self, url: &str, path: &Path) -> Result<crate::command::Output, Failure> {
        let mut git = self;
        git.push_arg(url.to_owned());
        git.push_arg(path.display().to_string());
        git.run().await
    }

    async fn run_with_arg(self, arg: &str) -> Result<crate::command::Output, Failure> {
        let mut git = self;
        git.push_arg(arg.to_owned());
        git.run().await
    }
}

struct ListedEntry {
    mode: String,
    kind: String,
    object: String,
    size: u64,
    path: String,
}

/// In [`GitError::ListTree`]: a record `git ls-tree` should not have written. Quotes the record
/// (mode, type, id, size and path: no file contents).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LsTreeError {
    #[error("a path is not UTF-8: {record:?}")]
    NotUtf8 { record: String },
    #[error("no tab in {record:?}")]
    NoTab { record: String },
    #[error("malformed entry {record:?}")]
    Malformed { record: String },
}

/// `<mode> SP <type> SP <object> SP+ <size> TAB <path> NUL`, size `-` for non-blobs.
fn parse_ls_tree(output: &[u8]) -> Result<Vec<ListedEntry>, LsTreeError> {
    let mut entries = Vec::new();
    for record in output.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let record = std::str::from_utf8(record).map_err(|_| LsTreeError::NotUtf8 {
            record: String::from_utf8_lossy(record).into_owned(),
        })?;
        let (meta, path) = record.split_once('\t').ok_or_else(|| LsTreeError::NoTab {
            record: record.to_owned(),
        })?;
        let mut fields = meta.split_whitespace();
        let (Some(mode), Some(kind), Some(object), Some(size)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(LsTreeError::Malformed {
                record: record.to_owned(),
            });
        };
        entries.push(ListedEntry {
            mode: mode.to_owned(),
            kind: kind.to_owned(),
            object: object.to_owned(),
            size: size.parse().unwrap_or(0),
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

/// In [`GitError::CatFile`]: output `git cat-file --batch` should not have written. Quotes
/// headers only, never an object's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatFileError {
    #[error("truncated header")]
    TruncatedHeader,
    #[error("header is not UTF-8")]
    HeaderNotUtf8,
    #[error("no size in header {header:?}")]
    NoSize { header: String },
    #[error("truncated contents")]
    TruncatedContents,
    #[error("expected {expected} objects, got {got}")]
    Count { expected: usize, got: usize },
}

/// `<oid> SP <type> SP <size> LF <contents> LF`, once per requested object.
fn parse_cat_file_batch(mut output: &[u8], expected: usize) -> Result<Vec<Vec<u8>>, CatFileError> {
    let mut blobs = Vec::with_capacity(expected);
    while !output.is_empty() {
        let header_end = output
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(CatFileError::TruncatedHeader)?;
        let header = std::str::from_utf8(&output[..header_end]).map_err(|_| CatFileError::HeaderNotUtf8)?;
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CatFileError::NoSize {
                header: header.to_owned(),
            })?;
        let start = header_end + 1;
        let end = start + size;
        if output.len() < end + 1 {
            return Err(CatFileError::TruncatedContents);
        }
        blobs.push(output[start..end].to_vec());
        output = &output[end + 1..];
    }
    if blobs.len() == expected {
        Ok(blobs)
    } else {
        Err(CatFileError::Count {
            expected,
            got: blobs.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_output_is_read_or_refused_naming_the_record() {
        let listed =
            parse_ls_tree(b"100644 blob abc 12\tapps/a.yaml\x00040000 tree def -\tapps\0").expect("reads");
        assert_eq!(
            listed
                .iter()
                .map(|e| (e.kind.as_str(), e.path.as_str(), e.size))
                .collect::<Vec<_>>(),
            [("blob", "apps/a.yaml", 12), ("tree", "apps", 0)]
        );
        let refused = |output: &[u8]| parse_ls_tree(output).err().map(|err| err.to_string());
        assert_eq!(
            refused(b"100644 blob abc 12 a.yaml\0").as_deref(),
            Some(r#"no tab in "100644 blob abc 12 a.yaml""#)
        );
        assert_eq!(
            refused(b"100644 blob\ta.yaml\0").as_deref(),
            Some(r#"malformed entry "100644 blob\ta.yaml""#)
        );

        let objects = parse_cat_file_batch(b"abc blob 5\nhello\ndef blob 0\n\n", 2).expect("reads");
        assert_eq!(objects, [b"hello".to_vec(), Vec::new()]);
        let refused =
            |output: &[u8], expected| parse_cat_file_batch(output, expected).map_err(|err| err.to_string());
        assert_eq!(
            refused(b"abc blob 50\nsecret\n", 1),
            Err("truncated contents".to_owned()),
            "the contents are never quoted"
        );
        assert_eq!(
            refused(b"abc blob 5\nhello\n", 2),
            Err("expected 2 objects, got 1".to_owned())
        );
        assert_eq!(
            refused(b"abc blob\nx\n", 1),
            Err(r#"no size in header "abc blob""#.to_owned())
        );
    }
}
