//! The `sops` metadata of a file: which leaves are encrypted, who can open the data key, and
//! the MAC.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use crate::cipher::DataKey;
use crate::keys::{Keys, OpenError};
use crate::{DecryptError, KeyFailure, KeyFailures, tree::Node};

#[derive(Debug, Deserialize)]
struct RawMetadata {
    #[serde(default)]
    shamir_threshold: Value,
    #[serde(default)]
    key_groups: Option<Vec<RawGroup>>,
    #[serde(flatten)]
    top_level: RawGroup,
    #[serde(default)]
    lastmodified: Option<String>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    unencrypted_suffix: Option<String>,
    #[serde(default)]
    encrypted_suffix: Option<String>,
    #[serde(default)]
    unencrypted_regex: Option<String>,
    #[serde(default)]
    encrypted_regex: Option<String>,
    #[serde(default)]
    unencrypted_comment_regex: Option<String>,
    #[serde(default)]
    encrypted_comment_regex: Option<String>,
    #[serde(default)]
    mac_only_encrypted: Value,
    #[serde(default)]
    version: Value,
}

#[derive(Debug, Default, Deserialize)]
struct RawGroup {
    #[serde(default)]
    age: Option<Vec<AgeEntry>>,
    #[serde(default)]
    pgp: Option<Vec<PgpEntry>>,
    #[serde(default)]
    kms: Option<Vec<Value>>,
    #[serde(default)]
    gcp_kms: Option<Vec<Value>>,
    #[serde(default)]
    azure_kv: Option<Vec<Value>>,
    #[serde(default)]
    hc_vault: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize)]
struct AgeEntry {
    #[serde(default)]
    recipient: String,
    enc: String,
}

#[derive(Debug, Clone, Deserialize)]
struct PgpEntry {
    #[serde(default)]
    fp: String,
    enc: String,
}

/// Which leaves a file encrypts (sops allows at most one rule).
#[derive(Debug)]
pub(crate) enum Selection {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
}

impl Selection {
    /// Whether the leaf at `path` (its mapping keys from the root) is encrypted. A rule matching
    /// any key on the path covers the whole subtree.
    pub(crate) fn encrypts(&self, path: &[String]) -> bool {
        match self {
            Selection::UnencryptedSuffix(suffix) => !path.iter().any(|key| key.ends_with(suffix.as_str())),
            Selection::EncryptedSuffix(suffix) => path.iter().any(|key| key.ends_with(suffix.as_str())),
            Selection::UnencryptedRegex(regex) => !path.iter().any(|key| regex.is_match(key)),
            Selection::EncryptedRegex(regex) => path.iter().any(|key| regex.is_match(key)),
        }
    }
}

/// One master key that may hold (a share of) the data key.
#[derive(Debug, Clone)]
enum MasterKey {
    Age(AgeEntry),
    Pgp(PgpEntry),
    /// A cloud KMS or Vault key: driftless has no credentials for those.
    Other(&'static str),
}

impl MasterKey {
    fn describe(&self) -> String {
        match self {
            MasterKey::Age(entry) => format!("age recipient {}", entry.recipient),
            MasterKey::Pgp(entry) => format!("PGP key {}", entry.fp),
            MasterKey::Other(kind) => format!("{kind} key (not supported by driftless)"),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Metadata {
    groups: Vec<Vec<MasterKey>>,
    threshold: usize,
    pub(crate) last_modified: String,
    pub(crate) mac: String,
    pub(crate) selection: Selection,
    pub(crate) mac_only_encrypted: bool,
}

fn metadata_error(field: &str, message: impl Into<String>) -> DecryptError {
    DecryptError::Metadata {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn group_keys(group: RawGroup) -> Vec<MasterKey> {
    // sops' default decryption order: age, then PGP, then the rest.
    let mut keys: Vec<MasterKey> = Vec::new();
    keys.extend(group.age.unwrap_or_default().into_iter().map(MasterKey::Age));
    keys.extend(group.pgp.unwrap_or_default().into_iter().map(MasterKey::Pgp));
    for (kind, entries) in [
        ("AWS KMS", group.kms),
        ("GCP KMS", group.gcp_kms),
        ("Azure Key Vault", group.azure_kv),
        ("HashiCorp Vault", group.hc_vault),
    ] {
        keys.extend(entries.unwrap_or_default().iter().map(|_| MasterKey::Other(kind)));
    }
    keys
}

fn text_or_number(value: &Value, field: &str) -> Result<Option<usize>, DecryptError> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| metadata_error(field, "must be a whole number")),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|_| metadata_error(field, "must be a whole number")),
        _ => Err(metadata_error(field, "must be a whole number")),
    }
}

impl Metadata {
    pub(crate) fn parse(node: Node) -> Result<Self, DecryptError> {
        let raw: RawMetadata = serde_json::from_value(node.into_json())
            .map_err(|err| metadata_error("sops", err.to_string()))?;
        if raw.version.is_number() {
            return Err(metadata_error(
                "sops.version",
                "a SOPS 1.x file; re-encrypt it with sops 3",
            ));
        }
        let last_modified = raw
            .lastmodified
            .filter(|t| !t.is_empty())
            .ok_or_else(|| metadata_error("sops.lastmodified", "is missing"))?;
        let last_modified = reformat_rfc3339(&last_modified)
            .ok_or_else(|| metadata_error("sops.lastmodified", "is not an RFC 3339 time"))?;
        let mac = raw.mac.filter(|m| !m.is_empty()).ok_or_else(|| {
            metadata_error("sops.mac", "is missing: the file's integrity cannot be checked")
        })?;
        let top = group_keys(raw.top_level);
        let groups = if top.is_empty() {
            raw.key_groups
                .unwrap_or_default()
                .into_iter()
                .map(group_keys)
                .collect()
        } else {
            vec![top]
        };
        if groups.iter().all(Vec::is_empty) {
            return Err(metadata_error("sops", "no keys found in the file"));
        }
        let threshold = text_or_number(&raw.shamir_threshold, "sops.shamir_threshold")?.unwrap_or(0);
        if raw.unencrypted_comment_regex.is_some() || raw.encrypted_comment_regex.is_some() {
            return Err(DecryptError::Unsupported(
                "encrypted_comment_regex and unencrypted_comment_regex".to_owned(),
            ));
        }
        let regex = |field: &str, pattern: String| {
            Regex::new(&pattern)
                .map_err(|err| metadata_error(field, format!("not a valid regular expression: {err}")))
        };
        let mut rules = Vec::new();
        if let Some(s) = raw.unencrypted_suffix.filter(|s| !s.is_empty()) {
            rules.push(Selection::UnencryptedSuffix(s));
        }
        if let Some(s) = raw.encrypted_suffix.filter(|s| !s.is_empty()) {
            rules.push(Selection::EncryptedSuffix(s));
        }
        if let Some(s) = raw.unencrypted_regex.filter(|s| !s.is_empty()) {
            rules.push(Selection::UnencryptedRegex(regex("sops.unencrypted_regex", s)?));
        }
        if let Some(s) = raw.encrypted_regex.filter(|s| !s.is_empty()) {
            rules.push(Selection::EncryptedRegex(regex("sops.encrypted_regex", s)?));
        }
        if rules.len() > 1 {
            return Err(metadata_error(
                "sops",
                "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex",
            ));
        }
        let selection = rules
            .pop()
            .unwrap_or_else(|| Selection::UnencryptedSuffix("_unencrypted".to_owned()));
        let mac_only_encrypted = match &raw.mac_only_encrypted {
            Value::Bool(b) => *b,
            Value::String(s) => s == "true",
            _ => false,
        };
        Ok(Self {
            groups,
            threshold,
            last_modified,
            mac,
            selection,
            mac_only_encrypted,
        })
    }

    /// Opens the data key with `keys`: one group's part is the key; several groups are Shamir
    /// shares of it, of which `shamir_threshold` must open.
    pub(crate) fn data_key(&self, keys: &Keys) -> Result<DataKey, DecryptError> {
        let mut parts = Vec::new();
        let mut failures = Vec::new();
        for group in &self.groups {
            let mut opened = None;
            for master in group {
                let result = match master {
                    MasterKey::Age(entry) => keys.open_age(&entry.enc),
                    MasterKey::Pgp(entry) => keys.open_pgp(&entry.enc),
                    MasterKey::Other(_) => Err(OpenError::NoCredentials),
                };
                match result {
                    Ok(part) => {
                        opened = Some(zeroize::Zeroizing::new(part));
                        break;
                    }
                    Err(reason) => failures.push(KeyFailure {
                        master_key: master.describe(),
                        reason,
                    }),
                }
            }
            parts.extend(opened);
        }
        let no_key = move || DecryptError::NoKey {
            recipients: self
                .groups
                .iter()
                .flatten()
                .map(MasterKey::describe)
                .collect::<Vec<_>>()
                .join(", "),
            configured: keys.describe(),
            failures: KeyFailures(failures),
        };
        let key = if self.groups.len() == 1 {
            parts.pop().ok_or_else(no_key)?
        } else {
            let needed = self.threshold.max(2);
            if parts.len() < needed {
                return Err(no_key());
            }
            zeroize::Zeroizing::new(shamir_combine(&parts).map_err(|source| DecryptError::Shamir { source })?)
        };
        let bytes: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| metadata_error("sops", "the data key is not 32 bytes"))?;
        Ok(DataKey(bytes))
    }
}

/// Go's `time.Parse(RFC3339)` then `Format(RFC3339)`: fractional seconds dropped, a zero offset
/// written `Z`. The MAC's additional data is this text, not the stored one.
fn reformat_rfc3339(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let digits =
        |range: std::ops::Range<usize>| bytes.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'T')
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16)
        && bytes.get(16) == Some(&b':')
        && digits(17..19))
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(after) = rest.strip_prefix('.') {
        let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
        if end == 0 {
            return None;
        }
        rest = &after[end..];
    }
    let zone = match rest {
        "Z" => "Z".to_owned(),
        offset
            if offset.len() == 6
                && (offset.starts_with('+') || offset.starts_with('-'))
                && &offset[3..4] == ":" =>
        {
            if &offset[1..3] == "00" && &offset[4..6] == "00" {
                "Z".to_owned()
            } else {
                offset.to_owned()
            }
        }
        _ => return None,
    };
    Some(format!("{}{zone}", &text[..19]))
}

/// Multiplication in GF(2^8) with the AES polynomial, as HashiCorp's Shamir (which sops uses).
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        let carry = a & 0x80;
        a <<= 1;
        if carry != 0 {
            a ^= 0x1B;
        }
        b >>= 1;
    }
    product
}

fn gf_inverse(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8).
    let mut result = 1;
    for _ in 0..254 {
        result = gf_mul(result, a);
    }
    result
}

/// Why the key groups' shares do not combine into a data key (never a share's bytes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    #[error("Shamir shares of different lengths")]
    Lengths,
    #[error("two Shamir shares for the same point")]
    SamePoint,
}

/// Rebuilds the secret from Shamir shares laid out as sops writes them: y bytes, then x.
fn shamir_combine(parts: &[zeroize::Zeroizing<Vec<u8>>]) -> Result<Vec<u8>, ShamirError> {
    let length = parts[0].len();
    if length < 2 || parts.iter().any(|p| p.len() != length) {
        return Err(ShamirError::Lengths);
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[length - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(ShamirError::SamePoint);
        }
    }
    let mut secret = vec![0u8; length - 1];
    for (byte, out) in secret.iter_mut().enumerate() {
        let mut value = 0;
        for (i, part) in parts.iter().enumerate() {
            let mut basis = 1;
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    basis = gf_mul(basis, gf_mul(*xj, gf_inverse(xs[i] ^ xj)));
                }
            }
            value ^= gf_mul(part[byte], basis);
        }
        *out = value;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_reformat_as_go_does() {
        assert_eq!(
            reformat_rfc3339("2025-01-01T00:00:00Z").as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
        assert_eq!(
            reformat_rfc3339("2025-01-01T00:00:00.123456Z").as_deref(),
            Some("2025-01-01T00:00:00Z")
        );
        assert_eq!(
            reformat_rfc3339("2025-01-01T01:00:00+00:00").as_deref(),
            Some("2025-01-01T01:00:00Z")
        );
        assert_eq!(
            reformat_rfc3339("2025-01-01T01:00:00+01:30").as_deref(),
            Some("2025-01-01T01:00:00+01:30")
        );
        assert_eq!(reformat_rfc3339("yesterday"), None);
    }

    #[test]
    fn shamir_shares_of_a_line_recombine() {
        // f(x) = s + 3x over GF(2^8) for each byte; shares at x = 1 and x = 2.
        let secret = [0x42u8, 0x17];
        let share = |x: u8| {
            let mut part: Vec<u8> = secret.iter().map(|s| s ^ gf_mul(3, x)).collect();
            part.push(x);
            zeroize::Zeroizing::new(part)
        };
        assert_eq!(shamir_combine(&[share(1), share(2)]).expect("combines"), secret);
        assert!(shamir_combine(&[share(1), share(1)]).is_err());
    }

    #[test]
    fn gf_inverse_inverts() {
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inverse(a)), 1, "{a}");
        }
    }
}
