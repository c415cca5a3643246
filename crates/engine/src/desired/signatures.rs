//! Refusing commits whose signatures the application does not trust, before anything of them is
//! rendered. The trusted keys are read on every check (a rotated key file takes effect at the
//! next reconcile); a verdict is kept per repository, commits and keys, so an unchanged commit
//! costs no git process.

use std::collections::HashMap;
use std::sync::Mutex;

use driftless_core::application::{Application, RepositoryKey, SecretSource, Verification, VerifyMode};
use driftless_git::{CommitId, SignaturePolicy, VerifyError};
use driftless_store::{EventKind, EventRecord};

use super::Desired;
use crate::clock::now_millis;
use crate::context::Context;
use crate::error::{Failure, TrustedKeysError};
use crate::locks::lock;

/// Past this many verdicts the cache starts over (one per application and commit is needed).
const VERDICT_CACHE_LIMIT: usize = 1_024;

/// Repository URL, the last synced commit (`None`: only the head is checked), the head, and the
/// hash of the mode and trusted keys.
type VerdictKey = (String, Option<CommitId>, CommitId, String);

/// A commit that was not trusted, and why.
#[derive(Clone)]
struct Refusal {
    commit: CommitId,
    reason: String,
}

#[derive(Default)]
pub(crate) struct VerdictCache {
    verdicts: Mutex<HashMap<VerdictKey, Result<(), Refusal>>>,
}

/// The trusted keys as read now: the texts and their hash. Parsing waits for a cache miss.
struct LoadedKeys {
    ssh: Option<(String, String)>,
    pgp: Option<(String, String)>,
    hash: String,
}

/// Reads one key source; errors name the file or variable (the text is public keys, but an
/// operator may point at the wrong file, so no contents either way).
fn read_source(source: &SecretSource) -> Result<(String, String), TrustedKeysError> {
    match source {
        SecretSource::File(path) => {
            let name = format!("file {}", path.display());
            std::fs::read_to_string(path)
                .map(|text| (name, text))
                .map_err(|source| TrustedKeysError::Read {
                    path: path.clone(),
                    source,
                })
        }
        SecretSource::Env(variable) => {
            let name = format!("environment variable {variable}");
            std::env::var(variable)
                .map(|text| (name, text))
                .map_err(|_| TrustedKeysError::Unset(variable.clone()))
        }
    }
}

fn load_keys(verification: &Verification) -> Result<LoadedKeys, TrustedKeysError> {
    use sha2::{Digest as _, Sha256};
    let ssh = verification.ssh.as_ref().map(read_source).transpose()?;
    let pgp = verification.pgp.as_ref().map(read_source).transpose()?;
    let mut hasher = Sha256::new();
    hasher.update(format!("{:?}", verification.mode));
    for (label, keys) in [("ssh", &ssh), ("pgp", &pgp)] {
        if let Some((_, text)) = keys {
            hasher.update(format!("{label}:{}:", text.len()));
            hasher.update(text);
        }
    }
    Ok(LoadedKeys {
        ssh,
        pgp,
        hash: format!("{:x}", hasher.finalize()),
    })
}

fn parse_policy(keys: &LoadedKeys) -> Result<SignaturePolicy, TrustedKeysError> {
    let mut policy = SignaturePolicy::default();
    if let Some((name, text)) = &keys.ssh {
        policy = policy
            .with_allowed_signers(text)
            .map_err(|source| TrustedKeysError::AllowedSigners {
                name: name.clone(),
                source,
            })?;
    }
    if let Some((name, text)) = &keys.pgp {
        policy = policy
            .with_pgp_keys(text)
            .map_err(|source| TrustedKeysError::PgpKeys {
                name: name.clone(),
                source,
            })?;
    }
    if policy.is_empty() {
        return Err(TrustedKeysError::NoKey);
    }
    Ok(policy)
}

impl Desired {
    /// The application's own verification, else that of the most specific `repositories[]`
    /// entry naming its repository, however either URL is spelled ([`RepositoryKey`]: case,
    /// user-info, port, trailing `/` or `.git`, transport) — so an application declared in Git
    /// cannot escape its repository's. A URL without a key (`..` segments) is refused when any
    /// entry asks for verification.
    fn verification<'a>(
        cx: Context<'a>,
        app: &'a Application,
    ) -> Result<Option<&'a Verification>, TrustedKeysError> {
        if let Some(own) = &app.verify {
            return Ok(Some(own));
        }
        let entries = &cx.catalog.config().repository_verifications;
        if entries.is_empty() {
            return Ok(None);
        }
        let key = RepositoryKey::parse(&app.source.repo_url)?;
        Ok(entries
            .iter()
            .filter_map(|entry| {
                let prefix = RepositoryKey::prefix(&entry.url_prefix).ok()?;
                key.identity_within(&prefix)
                    .then_some((prefix.depth(), &entry.verify))
            })
            .max_by_key(|(depth, _)| *depth)
            .map(|(_, verify)| verify))
    }

    /// Fails unless `commit` (and, in mode all-since-last-synced, every commit since the one
    /// last synced) is signed by a key the application trusts.
    pub(super) async fn check_signatures(
        &self,
        cx: Context<'_>,
        app: &Application,
        commit: &CommitId,
    ) -> Result<(), Failure> {
        let Some(verification) = Self::verification(cx, app)? else {
            return Ok(());
        };
        let keys = load_keys(verification)?;
        let since = match verification.mode {
            VerifyMode::Head => None,
            VerifyMode::AllSinceLastSynced => cx
                .store
                .last_synced_revision(&app.name)?
                .and_then(|revision| CommitId::parse(&revision))
                .filter(|synced| synced != commit),
        };
        let url = &app.source.repo_url;
        let key = (url.clone(), since, commit.clone(), keys.hash.clone());
        let known = lock(&self.verdicts.verdicts).get(&key).cloned();
        let verdict = if let Some(verdict) = known {
            verdict
        } else {
            let policy = parse_policy(&keys)?;
            let verdict = self.verify(app, key.1.as_ref(), commit, &policy).await?;
            if let Err(refusal) = &verdict {
                record_refusal(cx, app, refusal);
            }
            let mut verdicts = lock(&self.verdicts.verdicts);
            if verdicts.len() >= VERDICT_CACHE_LIMIT {
                verdicts.clear();
            }
            verdicts.insert(key, verdict.clone());
            verdict
        };
        verdict.map_err(|refusal| Failure::Untrusted {
            commit: refusal.commit.short().to_owned(),
            reason: refusal.reason,
        })
    }

    /// Verifies the commits from `since` to `commit`, and `commit` itself when it is not among
    /// them (a rollback to an ancestor of `since`). A git failure is an error, not a verdict.
    async fn verify(
        &self,
        app: &Application,
        since: Option<&CommitId>,
        commit: &CommitId,
        policy: &SignaturePolicy,
    ) -> Result<Result<(), Refusal>, Failure> {
        let url = &app.source.repo_url;
        let mut verified = self.mirrors.verify_commits(url, since, commit, policy).await;
        if since.is_some()
            && verified
                .as_ref()
                .is_ok_and(|commits| !commits.iter().any(|(id, _)| id == commit))
        {
            verified = self.mirrors.verify_commits(url, None, commit, policy).await;
        }
        match verified {
            Ok(_) => Ok(Ok(())),
            Err(VerifyError::Commit { commit, reason }) => Ok(Err(Refusal {
                commit,
                reason: reason.to_string(),
            })),
            Err(VerifyError::Git(source)) => Err(source.into()),
        }
    }
}

/// Kept with the application's events; once per verdict, not per reconcile. A store failure
/// only loses the event: the refusal itself still fails the application.
fn record_refusal(cx: Context<'_>, app: &Application, refusal: &Refusal) {
    let event = EventRecord {
        time: now_millis(),
        kind: EventKind::SignatureRefused,
        message: format!(
            "commit {} is not trusted: {}",
            refusal.commit.short(),
            refusal.reason
        ),
    };
    tracing::warn!(application = %app.name, message = %event.message, "commit refused");
    if let Err(err) = cx.store.record_event(&app.name, &event) {
        tracing::warn!(application = %app.name, error = %err, "cannot record an event");
    }
}
