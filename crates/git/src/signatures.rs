//! Verifying Git commit signatures in-process, against a policy we were given.
//!
//! `git verify-commit` would need `gpg` with a keyring or `ssh-keygen` with files on disk, and its
//! verdict depends on the user's configuration and gpg's trust database. Here the trusted keys are
//! exactly those of the [`SignaturePolicy`] (an OpenSSH `allowed_signers` text and/or armored
//! OpenPGP public keys), and the bytes verified are exactly those git signs: the raw commit object
//! without its signature header (git's `parse_buffer_signed_by_header`). Nothing here does I/O.

use std::fmt;

use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails as _, VerifyingKey};
use ssh_key::{HashAlg, PublicKey, SshSig};

/// The namespace git signs commits in (`ssh-keygen -Y sign -n git`); a signature made for another
/// namespace (a file, an e-mail) must not be replayable as a commit signature.
const SSH_NAMESPACE: &str = "git";

/// Key types an `allowed_signers` line may have. FIDO (`sk-*`) keys, DSA and certificates are
/// refused rather than half-supported.
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
];

/// A commit object split into what was signed and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCommit {
    /// The commit object without its `gpgsig` / `gpgsig-sha256` headers, byte for byte.
    pub payload: Vec<u8>,
    /// The `gpgsig` header's value, continuation lines unindented (armored, newline-terminated).
    pub signature: Vec<u8>,
}

impl SignedCommit {
    /// Splits a raw commit object (as `git cat-file commit` prints it); `None` when it carries no
    /// signature. Only the SHA-1 header (`gpgsig`) is taken as the signature, as git does in a
    /// SHA-1 repository; a `gpgsig-sha256` header (a SHA-256 compatibility signature) is removed
    /// from the payload but not verified.
    #[must_use]
    pub fn split(raw: &[u8]) -> Option<Self> {
        const HEADER: &[u8] = b"gpgsig ";
        const ANY_SIGNATURE_HEADER: &[u8] = b"gpgsig";
        let mut payload = Vec::with_capacity(raw.len());
        let mut signature = Vec::new();
        let (mut in_signature, mut in_other_signature, mut signed) = (false, false, false);
        let mut rest = raw;
        while let Some(&first) = rest.first() {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let line = &rest[..end];
            let signature_part = if in_signature && first == b' ' {
                Some(&line[1..])
            } else if let Some(value) = line.strip_prefix(HEADER) {
                in_other_signature = false;
                Some(value)
            } else {
                if line.starts_with(ANY_SIGNATURE_HEADER) {
                    in_other_signature = true;
                } else if in_other_signature && first != b' ' {
                    in_other_signature = false;
                }
                None
            };
            if let Some(part) = signature_part {
                signature.extend_from_slice(part);
                signed = true;
                in_signature = true;
            } else {
                if first == b'\n' {
                    // The blank line ends the headers; the message is signed verbatim.
                    payload.extend_from_slice(rest);
                    break;
                }
                if !in_other_signature {
                    payload.extend_from_slice(line);
                }
                in_signature = false;
            }
            rest = &rest[end..];
        }
        signed.then_some(Self { payload, signature })
    }
}

/// The committer timestamp (Unix seconds) of a raw commit object: the time git checks an SSH
/// signer's `valid-after`/`valid-before` against.
#[must_use]
pub fn committer_time(raw: &[u8]) -> Option<i64> {
    let line = raw
        .split(|&b| b == b'\n')
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix(b"committer "))?;
    // "Name <mail> 1700000000 +0100": the name may contain anything but '>' ends the e-mail.
    let after_mail = &line[line.iter().rposition(|&b| b == b'>')? + 1..];
    let digits: &[u8] = after_mail.trim_ascii_start().split(|&b| b == b' ').next()?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Which keys may sign commits. The default trusts no key.
#[derive(Debug, Clone, Default)]
pub struct SignaturePolicy {
    allowed_signers: Vec<AllowedSigner>,
    pgp_keys: Vec<TrustedPgpKey>,
}

#[derive(Debug, Clone)]
struct AllowedSigner {
    line: usize,
    /// The principals pattern list as written, without quotes: what `git verify-commit` reports.
    principals: String,
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    key: PublicKey,
}

impl AllowedSigner {
    /// Why this line does not allow signing commits made at `committed`, if it does not.
    fn refusal(&self, committed: i64) -> Option<String> {
        if let Some(namespaces) = &self.namespaces
            && !matches_pattern_list(namespaces, SSH_NAMESPACE)
        {
            return Some(format!(
                "allowed_signers line {}: namespaces=\"{namespaces}\" does not include \"git\"",
                self.line
            ));
        }
        if let Some(after) = self.valid_after
            && committed < after
        {
            return Some(format!(
                "allowed_signers line {}: valid only from {}",
                self.line,
                format_utc(after)
            ));
        }
        if let Some(before) = self.valid_before
            && committed > before
        {
            return Some(format!(
                "allowed_signers line {}: valid only until {}",
                self.line,
                format_utc(before)
            ));
        }
        None
    }
}

#[derive(Debug, Clone)]
struct TrustedPgpKey {
    key: SignedPublicKey,
    fingerprint: String,
    user_id: Option<String>,
    /// Indexes into `key.public_subkeys` of the subkeys bound for signing and not revoked.
    signing_subkeys: Vec<usize>,
}

/// Why an `allowed_signers` text was refused. `line` counts from 1.
#[derive(Debug, thiserror::Error)]
pub enum AllowedSignersError {
    #[error("line {line}: expected `principals [options] key-type base64-key [comment]`")]
    Malformed { line: usize },
    #[error("line {line}: a double quote is not closed")]
    UnclosedQuote { line: usize },
    #[error(
        "line {line}: key type {key_type:?} is not supported (use ssh-ed25519, ssh-rsa, \
         ecdsa-sha2-nistp256 or ecdsa-sha2-nistp384)"
    )]
    UnsupportedKeyType { line: usize, key_type: String },
    #[error("line {line}: invalid {key_type} public key: {reason}")]
    InvalidKey {
        line: usize,
        key_type: String,
        reason: String,
    },
    #[error("line {line}: cert-authority is not supported: list each signer's own key")]
    CertAuthority { line: usize },
    #[error("line {line}: unknown option {option:?} (supported: namespaces, valid-after, valid-before)")]
    UnknownOption { line: usize, option: String },
    #[error("line {line}: option {option}: {problem}")]
    InvalidOption {
        line: usize,
        option: &'static str,
        problem: String,
    },
}

/// Why armored OpenPGP public keys were refused.
#[derive(Debug, thiserror::Error)]
pub enum PgpKeysError {
    #[error("not armored OpenPGP public keys (as `gpg --export --armor` writes them): {reason}")]
    Parse { reason: String },
    #[error("no OpenPGP public key in the text")]
    NoKeys,
    #[error("OpenPGP key {fingerprint}: its self-signatures or subkey bindings do not verify: {reason}")]
    InvalidBindings { fingerprint: String, reason: String },
    #[error("OpenPGP key {fingerprint} is revoked")]
    Revoked { fingerprint: String },
}

impl SignaturePolicy {
    /// Adds the signers of an OpenSSH `allowed_signers` text (ssh-keygen(1) "ALLOWED SIGNERS").
    /// Validity times are read as UTC, with or without a `Z` suffix; ssh-keygen reads those
    /// without one in local time.
    pub fn with_allowed_signers(mut self, text: &str) -> Result<Self, AllowedSignersError> {
        for (index, line) in text.lines().enumerate() {
            if let Some(signer) = parse_allowed_signer(index + 1, line)? {
                self.allowed_signers.push(signer);
            }
        }
        Ok(self)
    }

    /// Adds armored OpenPGP public keys (`gpg --export --armor`, one or several keys, one or
    /// several blocks). Each key's self-signatures and subkey bindings must verify; third-party
    /// certifications are ignored, as we have no keys to check them with.
    pub fn with_pgp_keys(mut self, armored: &str) -> Result<Self, PgpKeysError> {
        let parse_error = |err: pgp::errors::Error| PgpKeysError::Parse {
            reason: err.to_string(),
        };
        let mut found = false;
        for block in armor_blocks(armored) {
            let (keys, _headers) = SignedPublicKey::from_string_many(block).map_err(parse_error)?;
            for key in keys {
                self.pgp_keys.push(trusted_pgp_key(key.map_err(parse_error)?)?);
                found = true;
            }
        }
        if found {
            Ok(self)
        } else {
            Err(PgpKeysError::NoKeys)
        }
    }

    /// True when no key may sign.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.allowed_signers.is_empty() && self.pgp_keys.is_empty()
    }
}

/// Who signed a commit, as far as the policy knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    Ssh {
        /// The principals of every `allowed_signers` line that allowed the key.
        principals: Vec<String>,
        /// `SHA256:…`, as `ssh-keygen -l` shows it.
        fingerprint: String,
    },
    Pgp {
        /// The primary key's fingerprint (upper-case hex), as `gpg --list-keys` shows it.
        fingerprint: String,
        /// The signing subkey's fingerprint, when a subkey signed.
        subkey_fingerprint: Option<String>,
        /// The primary user id, e.g. `Alice <alice@example.com>`.
        user_id: Option<String>,
    },
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ssh {
                principals,
                fingerprint,
            } => write!(f, "SSH key {fingerprint} ({})", principals.join(", ")),
            Self::Pgp {
                fingerprint, user_id, ..
            } => match user_id {
                Some(user_id) => write!(f, "OpenPGP key {fingerprint} ({user_id})"),
                None => write!(f, "OpenPGP key {fingerprint}"),
            },
        }
    }
}

/// Why a commit's signature was not accepted. Messages leave out the commit: the caller, who
/// knows it, prefixes them (`commit 1a2b3c4: not signed`).
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("not signed")]
    NotSigned,
    #[error("signed in an unsupported format ({format})")]
    UnsupportedFormat { format: String },
    #[error("malformed {format} signature: {reason}")]
    Malformed { format: &'static str, reason: String },
    #[error("malformed commit object: {reason}")]
    MalformedCommit { reason: &'static str },
    #[error("the SSH signature was made for namespace {namespace:?}, not \"git\"")]
    WrongNamespace { namespace: String },
    #[error("signed by SSH key {fingerprint}, which is not an allowed signer")]
    UntrustedSshKey { fingerprint: String },
    #[error("signed by SSH key {fingerprint}, which may not sign a commit made at {committed}: {reason}")]
    SshSignerNotValid {
        fingerprint: String,
        /// The committer time, as UTC.
        committed: String,
        reason: String,
    },
    #[error("signed by OpenPGP key {issuer}, which is not a trusted signing key")]
    UntrustedPgpKey { issuer: String },
    #[error(
        "the signature by {key} does not verify: the commit was changed after it was signed \
         (a forgery)"
    )]
    DoesNotVerify { key: String },
}

/// Verifies the signature of a raw commit object (`git cat-file commit`) against `policy`.
pub fn verify_commit(raw: &[u8], policy: &SignaturePolicy) -> Result<Signer, SignatureError> {
    let commit = SignedCommit::split(raw).ok_or(SignatureError::NotSigned)?;
    let signature = commit.signature.as_slice();
    if signature.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
        let committed = committer_time(raw).ok_or(SignatureError::MalformedCommit {
            reason: "no valid committer line",
        })?;
        verify_ssh(&commit.payload, signature, committed, &policy.allowed_signers)
    } else if signature.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
        verify_pgp(&commit.payload, signature, &policy.pgp_keys)
    } else {
        // git itself knows one more: gpgsm's X.509 signatures.
        let format = if signature.starts_with(b"-----BEGIN SIGNED MESSAGE-----") {
            "X.509"
        } else {
            "unknown"
        };
        Err(SignatureError::UnsupportedFormat {
            format: format.to_owned(),
        })
    }
}

fn verify_ssh(
    payload: &[u8],
    armored: &[u8],
    committed: i64,
    allowed: &[AllowedSigner],
) -> Result<Signer, SignatureError> {
    let signature = SshSig::from_pem(armored).map_err(|err| SignatureError::Malformed {
        format: "SSH",
        reason: err.to_string(),
    })?;
    if signature.namespace() != SSH_NAMESPACE {
        return Err(SignatureError::WrongNamespace {
            namespace: signature.namespace().to_owned(),
        });
    }
    let fingerprint = signature.public_key().fingerprint(HashAlg::Sha256).to_string();
    let lines: Vec<&AllowedSigner> = allowed
        .iter()
        .filter(|signer| signer.key.key_data() == signature.public_key())
        .collect();
    let Some(first) = lines.first() else {
        return Err(SignatureError::UntrustedSshKey { fingerprint });
    };
    // Before the validity checks: a forgery must be reported as one, whatever its dates say.
    first
        .key
        .verify(SSH_NAMESPACE, payload, &signature)
        .map_err(|err| match err {
            ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
                SignatureError::UnsupportedFormat {
                    format: format!("SSH {}", signature.algorithm()),
                }
            }
            _ => SignatureError::DoesNotVerify {
                key: format!("SSH key {fingerprint}"),
            },
        })?;
    let principals: Vec<String> = lines
        .iter()
        .filter(|signer| signer.refusal(committed).is_none())
        .map(|signer| signer.principals.clone())
        .collect();
    if principals.is_empty() {
        return Err(SignatureError::SshSignerNotValid {
            fingerprint,
            committed: format_utc(committed),
            reason: first.refusal(committed).unwrap_or_default(),
        });
    }
    Ok(Signer::Ssh {
        principals,
        fingerprint,
    })
}

fn verify_pgp(payload: &[u8], armored: &[u8], keys: &[TrustedPgpKey]) -> Result<Signer, SignatureError> {
    let malformed = |reason: String| SignatureError::Malformed {
        format: "OpenPGP",
        reason,
    };
    let text = std::str::from_utf8(armored).map_err(|_| malformed("not ASCII armor".to_owned()))?;
    let (signatures, _headers) =
        DetachedSignature::from_string_many(text).map_err(|err| malformed(err.to_string()))?;
    let signatures = signatures
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| malformed(err.to_string()))?;
    let [signature] = signatures.as_slice() else {
        return Err(malformed(format!(
            "expected one signature, found {}",
            signatures.len()
        )));
    };
    let signature = &signature.signature;
    match signature.typ() {
        Some(SignatureType::Binary) => {}
        // Text signatures hash line endings normalised, so they would not cover every byte.
        Some(SignatureType::Text) => {
            return Err(SignatureError::UnsupportedFormat {
                format: "OpenPGP text-mode signature".to_owned(),
            });
        }
        other => return Err(malformed(format!("not a data signature ({other:?})"))),
    }
    // The first key that was named as the issuer but did not verify, with why.
    let mut first_failure: Option<(pgp::errors::Error, String)> = None;
    for key in keys {
        let primary = &key.key.primary_key;
        let subkeys = key.signing_subkeys.iter().map(|&i| &key.key.public_subkeys[i]);
        let attempts = issued_by(signature, primary)
            .then(|| (signature.verify(primary, payload), None))
            .into_iter()
            .chain(
                subkeys
                    .filter(|subkey| issued_by(signature, &subkey.key))
                    .map(|subkey| {
                        (
                            signature.verify(&subkey.key, payload),
                            Some(pgp_fingerprint(subkey)),
                        )
                    }),
            );
        for (verified, subkey_fingerprint) in attempts {
            match verified {
                Ok(()) => {
                    return Ok(Signer::Pgp {
                        fingerprint: key.fingerprint.clone(),
                        subkey_fingerprint,
                        user_id: key.user_id.clone(),
                    });
                }
                Err(err) => {
                    first_failure.get_or_insert_with(|| {
                        (err, subkey_fingerprint.unwrap_or_else(|| key.fingerprint.clone()))
                    });
                }
            }
        }
    }
    match first_failure {
        Some((pgp::errors::Error::Unsupported { message, .. }, _)) => {
            Err(SignatureError::UnsupportedFormat {
                format: format!("OpenPGP: {message}"),
            })
        }
        Some((_, key)) => Err(SignatureError::DoesNotVerify {
            key: format!("OpenPGP key {key}"),
        }),
        None => Err(SignatureError::UntrustedPgpKey {
            issuer: issuer_of(signature),
        }),
    }
}

/// Whether `signature` names `key` as its issuer. A signature naming no issuer could be anyone's,
/// so it is tried with every key (as rPGP's own check does).
fn issued_by(signature: &Signature, key: &impl VerifyingKey) -> bool {
    let fingerprints = signature.issuer_fingerprint();
    let key_ids = signature.issuer_key_id();
    (fingerprints.is_empty() && key_ids.is_empty())
        || fingerprints
            .iter()
            .any(|&fingerprint| *fingerprint == key.fingerprint())
        || key_ids.iter().any(|&key_id| *key_id == key.legacy_key_id())
}

fn issuer_of(signature: &Signature) -> String {
    if let Some(fingerprint) = signature.issuer_fingerprint().first() {
        format!("{fingerprint:X}")
    } else if let Some(key_id) = signature.issuer_key_id().first() {
        format!("with key id {}", key_id.to_string().to_uppercase())
    } else {
        "(no issuer named)".to_owned()
    }
}

fn pgp_fingerprint(subkey: &SignedPublicSubKey) -> String {
    format!("{:X}", subkey.key.fingerprint())
}

fn trusted_pgp_key(mut key: SignedPublicKey) -> Result<TrustedPgpKey, PgpKeysError> {
    let fingerprint = format!("{:X}", key.primary_key.fingerprint());
    // rPGP's verify_bindings checks every signature against the primary key, so a certification
    // by someone else (common in exported keys) would make a good key look broken.
    let by_self = |signature: &Signature| issued_by(signature, &key.primary_key);
    let mut details = key.details.clone();
    for user in &mut details.users {
        user.signatures.retain(by_self);
    }
    details.users.retain(|user| !user.signatures.is_empty());
    for attribute in &mut details.user_attributes {
        attribute.signatures.retain(by_self);
    }
    details
        .user_attributes
        .retain(|attribute| !attribute.signatures.is_empty());
    details.revocation_signatures.retain(by_self);
    details.direct_signatures.retain(by_self);
    key.details = details;
    key.verify_bindings()
        .map_err(|err| PgpKeysError::InvalidBindings {
            fingerprint: fingerprint.clone(),
            reason: err.to_string(),
        })?;
    if !key.details.revocation_signatures.is_empty() {
        return Err(PgpKeysError::Revoked { fingerprint });
    }
    let user_id = key
        .details
        .users
        .iter()
        .find(|user| user.is_primary())
        .or_else(|| key.details.users.first())
        .map(|user| String::from_utf8_lossy(user.id.id()).into_owned());
    let signing_subkeys = key
        .public_subkeys
        .iter()
        .enumerate()
        .filter(|(_, subkey)| {
            let revoked = subkey
                .signatures
                .iter()
                .any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation));
            let signs = subkey
                .signatures
                .iter()
                .any(|sig| sig.typ() == Some(SignatureType::SubkeyBinding) && sig.key_flags().sign());
            signs && !revoked
        })
        .map(|(index, _)| index)
        .collect();
    Ok(TrustedPgpKey {
        key,
        fingerprint,
        user_id,
        signing_subkeys,
    })
}

/// The armor blocks of a text, each from its BEGIN line: rPGP reads one block per call, and
/// exports are often concatenated.
fn armor_blocks(text: &str) -> impl Iterator<Item = &str> {
    const BEGIN: &str = "-----BEGIN PGP ";
    let starts: Vec<usize> = text.match_indices(BEGIN).map(|(at, _)| at).collect();
    let ends = starts.iter().skip(1).copied().chain(std::iter::once(text.len()));
    let blocks: Vec<&str> = starts
        .iter()
        .zip(ends)
        .map(|(&start, end)| &text[start..end])
        .collect();
    // A text without any armor is still handed over once, so rPGP says what is wrong with it.
    if blocks.is_empty() && !text.trim().is_empty() {
        vec![text].into_iter()
    } else {
        blocks.into_iter()
    }
}

/// One line of `allowed_signers`: `principals [options] key-type base64-key [comment]`.
fn parse_allowed_signer(line: usize, text: &str) -> Result<Option<AllowedSigner>, AllowedSignersError> {
    let text = text.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let fields =
        split_outside_quotes(text, char::is_whitespace).ok_or(AllowedSignersError::UnclosedQuote { line })?;
    let looks_like_key_type = |field: &str| {
        field.starts_with("ssh-")
            || field.starts_with("ecdsa-")
            || field.starts_with("sk-")
            || field.contains("@openssh.com")
    };
    let (options, key_type, key) = match fields.as_slice() {
        [_, key_type, key, ..] if looks_like_key_type(key_type) => (None, *key_type, *key),
        [_, options, key_type, key, ..] => (Some(*options), *key_type, *key),
        _ => return Err(AllowedSignersError::Malformed { line }),
    };
    if !SSH_KEY_TYPES.contains(&key_type) {
        return Err(AllowedSignersError::UnsupportedKeyType {
            line,
            key_type: key_type.to_owned(),
        });
    }
    let invalid_key = |reason: String| AllowedSignersError::InvalidKey {
        line,
        key_type: key_type.to_owned(),
        reason,
    };
    let key =
        PublicKey::from_openssh(&format!("{key_type} {key}")).map_err(|err| invalid_key(err.to_string()))?;
    // The type named and the type encoded in the key must agree, or the line says something else
    // than it means.
    if key.algorithm().as_str() != key_type {
        return Err(invalid_key(format!("the key is a {}", key.algorithm())));
    }
    let mut signer = AllowedSigner {
        line,
        principals: unquote(fields[0]).to_owned(),
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key,
    };
    if signer.principals.is_empty() {
        return Err(AllowedSignersError::Malformed { line });
    }
    let options = match options {
        Some(options) => {
            split_outside_quotes(options, |c| c == ',').ok_or(AllowedSignersError::UnclosedQuote { line })?
        }
        None => Vec::new(),
    };
    for option in options {
        let (name, value) = option
            .split_once('=')
            .map_or((option, None), |(name, value)| (name, Some(unquote(value))));
        let invalid = |option, problem: &str| AllowedSignersError::InvalidOption {
            line,
            option,
            problem: problem.to_owned(),
        };
        let time = |option| {
            let value = value.ok_or_else(|| invalid(option, "needs a value, e.g. \"20250101\""))?;
            parse_ssh_time(value)
                .ok_or_else(|| invalid(option, &format!("{value:?} is not YYYYMMDD[HHMM[SS]][Z]")))
        };
        match name.to_ascii_lowercase().as_str() {
            "cert-authority" => return Err(AllowedSignersError::CertAuthority { line }),
            "namespaces" => match value {
                Some(value) if !value.is_empty() => signer.namespaces = Some(value.to_owned()),
                _ => return Err(invalid("namespaces", "needs a list, e.g. namespaces=\"git\"")),
            },
            "valid-after" => signer.valid_after = Some(time("valid-after")?),
            "valid-before" => signer.valid_before = Some(time("valid-before")?),
            _ => {
                return Err(AllowedSignersError::UnknownOption {
                    line,
                    option: name.to_owned(),
                });
            }
        }
    }
    // As ssh-keygen: an empty window is a mistake in the file, not a key that never signs.
    if let (Some(after), Some(before)) = (signer.valid_after, signer.valid_before)
        && before <= after
    {
        return Err(AllowedSignersError::InvalidOption {
            line,
            option: "valid-before",
            problem: "must be later than valid-after".to_owned(),
        });
    }
    Ok(Some(signer))
}

/// Splits at `separator` except inside double quotes, dropping empty pieces; `None` when a quote
/// is left open.
fn split_outside_quotes(text: &str, separator: impl Fn(char) -> bool) -> Option<Vec<&str>> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (at, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && separator(c) {
            if start < at {
                pieces.push(&text[start..at]);
            }
            start = at + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    Some(pieces)
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text)
}

/// An OpenSSH pattern list (`a*,b?c,!d`): true when some pattern matches and no negated one does.
fn matches_pattern_list(list: &str, candidate: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if matches_pattern(negated, candidate) => return false,
            Some(_) => {}
            None => matched |= matches_pattern(pattern, candidate),
        }
    }
    matched
}

/// `*` is any run of characters, `?` any one character; everything else matches itself.
fn matches_pattern(pattern: &str, candidate: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let candidate: Vec<char> = candidate.chars().collect();
    let (mut p, mut c) = (0, 0);
    // Where the last `*` was, and how much of the candidate it has taken: backtracking only to the
    // last star keeps this linear-ish rather than exponential on hostile patterns.
    let mut last_star: Option<(usize, usize)> = None;
    while c < candidate.len() {
        match pattern.get(p) {
            Some('*') => {
                last_star = Some((p, c));
                p += 1;
            }
            Some(&expected) if expected == '?' || expected == candidate[c] => {
                p += 1;
                c += 1;
            }
            _ => match last_star {
                Some((star, taken)) => {
                    p = star + 1;
                    c = taken + 1;
                    last_star = Some((star, taken + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&rest| rest == '*')
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally with a `Z`, as Unix seconds (UTC).
fn parse_ssh_time(text: &str) -> Option<i64> {
    let digits = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| digits.get(range).map_or(Some(0), |d| d.parse::<i64>().ok());
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (Hinnant's `civil_from_days`).
fn format_utc(seconds: i64) -> String {
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        time / 3_600,
        time % 3_600 / 60,
        time % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A merge of the PGP-signed tag `v1` (so with a `mergetag` header), with an ISO-8859-1
    /// message ending a line in CRLF, SSH-signed by ALICE_KEY at 1796150932 (2026-12-01 18:48:52).
    const SIGNED_MERGE: &[u8] = include_bytes!("testdata/signed-merge-latin1.commit");
    /// A commit signed by the ed25519 key of `TEST_PGP_KEY` (Test <test@example.com>).
    const SIGNED_PGP: &[u8] = include_bytes!("testdata/signed-pgp.commit");
    const TEST_PGP_KEY: &str = include_str!("testdata/test-pgp-key.asc");
    const TEST_PGP_FINGERPRINT: &str = "19BEA55C74BA32DED685A18999BC8E84B89D63BA";
    const ALICE_KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIImuTgEvuKNl0k+1Sx4d9C4SxVMZ3COg07qhY2JZ9st8";
    const ALICE_FINGERPRINT: &str = "SHA256:eBbjriPZaapYrQxBUvM+2e2QWd/PkyIb3pOMIO4zxCc";
    const P256_KEY: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLvKsAd1bNlBMe0bY24AyBuKjXAw84zb4eIw5t40fq3Xt2xq+4lrCbniFZlvBsWQML4zs7ka85PJSnPWkXde77Y=";
    const P384_KEY: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBCI2nO4RIw9IxnmzGvOwxXHgeycwLTPyBGEyNTKOEaCnJHUdgvp/82Dyy0+cTf0TZVj3pk0CNhdO8jL4+B75xKasA5VCrB2+U4/E6MmX7M9UQyJyjCJdr37biLDdzEwtcg==";
    const RSA_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDot+dv8A90fjMzqyT73hgXSGRYqWJ0X8a8ZvPBziQSdyMoR3/UpDO3gz9okPoVfw5q6V9/KfmQ5AALH4F9CXQzPKkrUS8wLE4u+cd5vBkEP9SVl3glg17x2969iNsULO+mTexIgv07SU8Rs9LXx0Ocoas0zVqWWKg3fHgVOVkg1erQSaY2auniZfa5PMDikdwa/1THQttHaycJmjVgQnmvmZFEtEpfxYb7rRhKFpd8YO5ihHqV7fjagdtIwPC/4uyC9O4RU23IGgBrd04glNUUAqkXT9vaRg2dwptCWSQrwVSAdMXgvK4+JHws6bWmZg9BIVsmIz/EBQi9Zdz1fwoN";

    fn allowed(text: &str) -> SignaturePolicy {
        SignaturePolicy::default()
            .with_allowed_signers(text)
            .unwrap_or_else(|err| panic!("allowed_signers {text:?}: {err}"))
    }

    fn refused(text: &str) -> String {
        match SignaturePolicy::default().with_allowed_signers(text) {
            Ok(_) => panic!("allowed_signers {text:?} was accepted"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn split_keeps_a_mergetag_and_a_non_utf8_message_byte_for_byte() {
        let commit = SignedCommit::split(SIGNED_MERGE).expect("the merge is signed");
        let start = SIGNED_MERGE
            .windows(7)
            .position(|w| w == b"gpgsig ")
            .expect("a gpgsig header");
        let end_marker = b" -----END SSH SIGNATURE-----\n";
        let end = start
            + SIGNED_MERGE[start..]
                .windows(end_marker.len())
                .position(|w| w == end_marker)
                .expect("the end of the signature")
            + end_marker.len();
        let mut expected = SIGNED_MERGE[..start].to_vec();
        expected.extend_from_slice(&SIGNED_MERGE[end..]);
        assert_eq!(commit.payload, expected);
        assert!(commit.payload.windows(9).any(|w| w == b"mergetag "));
        assert!(
            commit
                .payload
                .windows(28)
                .any(|w| w == b" -----BEGIN PGP SIGNATURE---")
        );
        assert!(
            commit
                .payload
                .ends_with(b"\n\nMerge v1 \xe9t\xe9\r\n\nca marche \xe0 la mode\n")
        );
        assert!(
            commit
                .signature
                .starts_with(b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH")
        );
        assert!(commit.signature.ends_with(b"\n-----END SSH SIGNATURE-----\n"));
        assert!(
            !commit.signature.windows(2).any(|w| w == b"\n "),
            "continuation spaces are removed"
        );
    }

    #[test]
    fn split_finds_nothing_in_an_unsigned_commit_even_if_its_message_mentions_gpgsig() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
                    author A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\ngpgsig in the message\n";
        assert_eq!(SignedCommit::split(raw), None);
    }

    #[test]
    fn split_removes_the_sha256_signature_without_taking_it() {
        let raw = b"tree t\ncommitter A <a@x> 1 +0000\ngpgsig-sha256 -----BEGIN X-----\n two\n \
                    -----END X-----\ngpgsig -----BEGIN Y-----\n y\n -----END Y-----\n\nmsg\n";
        let commit = SignedCommit::split(raw).expect("signed");
        assert_eq!(commit.payload, b"tree t\ncommitter A <a@x> 1 +0000\n\nmsg\n");
        assert_eq!(commit.signature, b"-----BEGIN Y-----\ny\n-----END Y-----\n");
        let only_sha256 = b"tree t\ngpgsig-sha256 -----BEGIN X-----\n -----END X-----\n\nmsg\n";
        assert_eq!(SignedCommit::split(only_sha256), None);
    }

    #[test]
    fn split_handles_a_commit_without_a_message_or_final_newline() {
        let commit = SignedCommit::split(b"tree t\ngpgsig sig\n more").expect("signed");
        assert_eq!(commit.payload, b"tree t\n");
        assert_eq!(commit.signature, b"sig\nmore");
    }

    #[test]
    fn committer_time_reads_the_committer_header_only() {
        assert_eq!(committer_time(SIGNED_MERGE), Some(1_796_150_932));
        let raw = b"tree t\nauthor A <a@x> 5 +0000\ncommitter Odd Name <odd@x> 1700000000 -0130\n\n\
                    committer X <x@x> 9 +0000\n";
        assert_eq!(committer_time(raw), Some(1_700_000_000));
        assert_eq!(
            committer_time(b"tree t\nauthor A <a@x> 5 +0000\n\ncommitter X <x@x> 9 +0000\n"),
            None
        );
        assert_eq!(committer_time(b"tree t\ncommitter A <a@x> soon +0000\n\n"), None);
    }

    #[test]
    fn parses_principals_options_quotes_and_comments() {
        let text = format!(
            "# team keys\n\n  alice@example.com {ALICE_KEY} alice's laptop\n\
             \"bob@example.com,*@ops.example.com\" NAMESPACES=\"git,file\",valid-after=\"20240101\",\
             Valid-Before=20251231235959Z {P256_KEY}\ncarol {P384_KEY}\ndave {RSA_KEY}\n"
        );
        let policy = allowed(&text);
        let signers = &policy.allowed_signers;
        assert_eq!(signers.len(), 4);
        assert_eq!(
            (signers[0].line, signers[0].principals.as_str()),
            (3, "alice@example.com")
        );
        assert_eq!(signers[0].namespaces, None);
        assert_eq!(signers[1].line, 4);
        assert_eq!(signers[1].principals, "bob@example.com,*@ops.example.com");
        assert_eq!(signers[1].namespaces.as_deref(), Some("git,file"));
        assert_eq!(signers[1].valid_after, Some(1_704_067_200));
        assert_eq!(signers[1].valid_before, Some(1_767_225_599));
        assert_eq!(signers[2].key.algorithm().as_str(), "ecdsa-sha2-nistp384");
        assert_eq!(signers[3].key.algorithm().as_str(), "ssh-rsa");
    }

    #[test]
    fn refuses_what_it_cannot_honour_naming_the_line() {
        let cases = [
            (
                format!("# c\ncert-authority-user cert-authority {ALICE_KEY}"),
                "line 2: cert-authority is not supported",
            ),
            (
                format!("a {ALICE_KEY}\n\na no-touch-required {ALICE_KEY}"),
                "line 3: unknown option \"no-touch-required\"",
            ),
            (
                format!("a valid-after=\"2024\" {ALICE_KEY}"),
                "line 1: option valid-after: \"2024\" is not YYYYMMDD",
            ),
            (
                format!("a valid-before=20240230 {ALICE_KEY}"),
                "line 1: option valid-before: \"20240230\"",
            ),
            (
                format!("a valid-after {ALICE_KEY}"),
                "line 1: option valid-after: needs a value",
            ),
            (
                format!("a valid-after=\"20240101\",valid-before=\"20240101\" {ALICE_KEY}"),
                "line 1: option valid-before: must be later than valid-after",
            ),
            (
                format!("a namespaces=\"\" {ALICE_KEY}"),
                "line 1: option namespaces: needs a list",
            ),
            (
                "a ssh-dss AAAAB3NzaC1kc3M=".to_owned(),
                "line 1: key type \"ssh-dss\" is not supported",
            ),
            (
                "a sk-ssh-ed25519@openssh.com AAAA".to_owned(),
                "line 1: key type \"sk-ssh-ed25519@openssh.com\"",
            ),
            (
                "a ssh-ed25519 AAAA!!!".to_owned(),
                "line 1: invalid ssh-ed25519 public key",
            ),
            (
                format!("a {}", ALICE_KEY.replace("ssh-ed25519", "ssh-rsa")),
                "line 1: invalid ssh-rsa public key",
            ),
            (
                "alice@example.com".to_owned(),
                "line 1: expected `principals [options] key-type base64-key",
            ),
            (
                format!("\"alice {ALICE_KEY}"),
                "line 1: a double quote is not closed",
            ),
            (format!("\"\" {ALICE_KEY}"), "line 1: expected"),
        ];
        for (text, expected) in cases {
            let message = refused(&text);
            assert!(
                message.starts_with(expected),
                "{text:?}: {message:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn patterns_match_as_openssh_does() {
        assert!(matches_pattern("*", ""));
        assert!(matches_pattern("*@example.com", "alice@example.com"));
        assert!(!matches_pattern("*@example.com", "alice@example.org"));
        assert!(matches_pattern("al?ce", "alice"));
        assert!(!matches_pattern("al?ce", "allice"));
        assert!(matches_pattern("a*b*c", "aXbYbZc"));
        assert!(!matches_pattern("a*b*c", "aXbYbZ"));
        assert!(matches_pattern("ü?", "üß"));
        assert!(!matches_pattern("git", "Git"));
        assert!(!matches_pattern(&"*a".repeat(30), &"a".repeat(29)));
        assert!(matches_pattern_list("file,git", "git"));
        assert!(matches_pattern_list("g*", "git"));
        assert!(!matches_pattern_list("*,!git", "git"));
        assert!(
            !matches_pattern_list("!file", "git"),
            "a negation alone matches nothing"
        );
        assert!(!matches_pattern_list("file", "git"));
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(parse_ssh_time("19700101"), Some(0));
        assert_eq!(parse_ssh_time("20240229"), Some(1_709_164_800));
        assert_eq!(parse_ssh_time("202402291230"), Some(1_709_164_800 + 45_000));
        assert_eq!(parse_ssh_time("20240229123059Z"), Some(1_709_164_800 + 45_059));
        for bad in [
            "20230229",
            "20241301",
            "20240100",
            "2024010124",
            "202401012360",
            "2024-01-01",
            "20240101 ",
        ] {
            assert_eq!(parse_ssh_time(bad), None, "{bad}");
        }
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_709_164_800 + 45_059), "2024-02-29 12:30:59 UTC");
        assert_eq!(format_utc(1_796_150_928), "2026-12-01 18:48:48 UTC");
    }

    #[test]
    fn an_allowed_ssh_signer_verifies_and_is_named() {
        let policy = allowed(&format!(
            "alice@example.com {ALICE_KEY}\n\"*@example.com\" {ALICE_KEY}\nbob {RSA_KEY}"
        ));
        let signer = verify_commit(SIGNED_MERGE, &policy).expect("alice signed it");
        assert_eq!(
            signer,
            Signer::Ssh {
                principals: vec!["alice@example.com".to_owned(), "*@example.com".to_owned()],
                fingerprint: ALICE_FINGERPRINT.to_owned(),
            }
        );
        assert_eq!(
            signer.to_string(),
            format!("SSH key {ALICE_FINGERPRINT} (alice@example.com, *@example.com)")
        );
    }

    #[test]
    fn ssh_validity_is_checked_at_the_committer_time_inclusively() {
        // Committed 2026-12-01 18:48:52 UTC.
        let at =
            |options: &str| verify_commit(SIGNED_MERGE, &allowed(&format!("alice {options} {ALICE_KEY}")));
        at("valid-after=\"20261201184852\"").expect("from its first second");
        at("valid-before=\"20261201184852Z\"").expect("until its last second");
        at("namespaces=\"file,g?t\"").expect("git among the namespaces");
        for (options, reason) in [
            (
                "valid-after=\"20261201184853\"",
                "allowed_signers line 1: valid only from 2026-12-01 18:48:53 UTC",
            ),
            (
                "valid-before=\"20261201\"",
                "allowed_signers line 1: valid only until 2026-12-01 00:00:00 UTC",
            ),
            (
                "namespaces=\"file\"",
                "allowed_signers line 1: namespaces=\"file\" does not include \"git\"",
            ),
        ] {
            match at(options) {
                Err(err @ SignatureError::SshSignerNotValid { .. }) => assert_eq!(
                    err.to_string(),
                    format!(
                        "signed by SSH key {ALICE_FINGERPRINT}, which may not sign a commit made at \
                         2026-12-01 18:48:52 UTC: {reason}"
                    )
                ),
                other => panic!("{options}: expected SshSignerNotValid, got {other:?}"),
            }
        }
    }

    #[test]
    fn ssh_refusals_say_why() {
        let alice = allowed(&format!("alice {ALICE_KEY}"));
        let untrusted = verify_commit(SIGNED_MERGE, &allowed(&format!("bob {RSA_KEY}")));
        assert!(
            matches!(&untrusted, Err(SignatureError::UntrustedSshKey { fingerprint }) if fingerprint == ALICE_FINGERPRINT),
            "{untrusted:?}"
        );
        let mut forged = SIGNED_MERGE.to_vec();
        let last = forged.len() - 2;
        forged[last] = b'E';
        match verify_commit(&forged, &alice) {
            Err(err @ SignatureError::DoesNotVerify { .. }) => assert_eq!(
                err.to_string(),
                format!(
                    "the signature by SSH key {ALICE_FINGERPRINT} does not verify: the commit was changed \
                     after it was signed (a forgery)"
                )
            ),
            other => panic!("expected DoesNotVerify, got {other:?}"),
        }
        let unsigned = b"tree t\ncommitter A <a@x> 1 +0000\n\nmsg\n";
        assert_eq!(
            verify_commit(unsigned, &alice).map_err(|e| e.to_string()),
            Err("not signed".to_owned())
        );
        let x509 = b"tree t\ncommitter A <a@x> 1 +0000\ngpgsig -----BEGIN SIGNED MESSAGE-----\n x\n\nmsg\n";
        assert_eq!(
            verify_commit(x509, &alice).map_err(|e| e.to_string()),
            Err("signed in an unsupported format (X.509)".to_owned())
        );
        let garbled = b"tree t\ncommitter A <a@x> 1 +0000\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAA\n \
                        -----END SSH SIGNATURE-----\n\nmsg\n";
        assert!(matches!(
            verify_commit(garbled, &alice),
            Err(SignatureError::Malformed { format: "SSH", .. })
        ));
    }

    #[test]
    fn a_configured_pgp_key_verifies_and_is_named() {
        let policy = SignaturePolicy::default()
            .with_pgp_keys(TEST_PGP_KEY)
            .expect("the exported key");
        let signer = verify_commit(SIGNED_PGP, &policy).expect("the test key signed it");
        assert_eq!(
            signer,
            Signer::Pgp {
                fingerprint: TEST_PGP_FINGERPRINT.to_owned(),
                subkey_fingerprint: None,
                user_id: Some("Test <test@example.com>".to_owned()),
            }
        );
        assert_eq!(
            signer.to_string(),
            format!("OpenPGP key {TEST_PGP_FINGERPRINT} (Test <test@example.com>)")
        );
    }

    #[test]
    fn pgp_refusals_say_why() {
        let policy = SignaturePolicy::default()
            .with_pgp_keys(TEST_PGP_KEY)
            .expect("the exported key");
        let forged = String::from_utf8(SIGNED_PGP.to_vec())
            .expect("ASCII")
            .replace("\n\npgp", "\n\npgq");
        assert!(
            matches!(verify_commit(forged.as_bytes(), &policy), Err(SignatureError::DoesNotVerify { key })
                if key == format!("OpenPGP key {TEST_PGP_FINGERPRINT}")),
        );
        let untrusted = verify_commit(SIGNED_PGP, &allowed(&format!("alice {ALICE_KEY}")));
        assert!(
            matches!(&untrusted, Err(SignatureError::UntrustedPgpKey { issuer }) if issuer == TEST_PGP_FINGERPRINT),
            "{untrusted:?}"
        );
        // An SSH key does not vouch for a PGP signature, nor the other way round.
        assert!(matches!(
            verify_commit(SIGNED_MERGE, &policy),
            Err(SignatureError::UntrustedSshKey { .. })
        ));
    }

    #[test]
    fn pgp_key_texts_are_checked_when_loaded() {
        let twice = format!("{TEST_PGP_KEY}\n{TEST_PGP_KEY}");
        let policy = SignaturePolicy::default()
            .with_pgp_keys(&twice)
            .expect("two blocks");
        assert_eq!(policy.pgp_keys.len(), 2);
        assert!(matches!(
            SignaturePolicy::default().with_pgp_keys("  \n"),
            Err(PgpKeysError::NoKeys)
        ));
        assert!(matches!(
            SignaturePolicy::default().with_pgp_keys("not a key"),
            Err(PgpKeysError::Parse { .. })
        ));
        let secret = TEST_PGP_KEY.replace("PUBLIC KEY", "PRIVATE KEY");
        assert!(matches!(
            SignaturePolicy::default().with_pgp_keys(&secret),
            Err(PgpKeysError::Parse { .. })
        ));
    }
}
