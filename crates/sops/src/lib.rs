//! SOPS decryption in-process, without the sops binary: YAML (multi-document), JSON, dotenv and
//! binary files; age (X25519 and SSH) and OpenPGP keys; one key group or Shamir-shared groups;
//! `encrypted_regex`, `unencrypted_regex`, `encrypted_suffix`, `unencrypted_suffix` and
//! `mac_only_encrypted`; the MAC always verified.
//!
//! Our own code because no Rust SOPS implementation decrypts PGP and verifies the MAC as sops
//! 3.11 does (DEVELOPMENT.md); the file format is in docs/research/sops-format.md. Interoperability
//! is tested against the real sops CLI (tests/interop.rs).
//!
//! Plaintext lives only in the returned values; nothing is written anywhere, and the data key is
//! wiped when a call returns. Errors never carry a value, plain or encrypted.

mod cipher;
mod keys;
mod metadata;
mod tree;

use serde_json::Value;
use sha2::{Digest as _, Sha512};
use zeroize::Zeroizing;

use cipher::{DataKey, LeafError, Plain};
pub use keys::{KeyError, Keys, OpenError};
use metadata::Metadata;
pub use metadata::ShamirError;
use tree::{DotenvLine, Node};
pub use tree::{MetadataKeyError, ParseError};

/// A file's format, as sops picks it from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    /// Any other file: the whole file is one encrypted value (stored as JSON).
    Binary,
}

impl Format {
    #[must_use]
    #[allow(
        clippy::case_sensitive_file_extension_comparisons,
        reason = "sops compares the suffix case-sensitively: secret.YAML is a binary file to it"
    )]
    pub fn from_path(path: &str) -> Self {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Format::Yaml
        } else if path.ends_with(".json") {
            Format::Json
        } else if path.ends_with(".env") {
            Format::Dotenv
        } else {
            Format::Binary
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json | Format::Binary => "JSON",
            Format::Dotenv => "dotenv",
        }
    }
}

/// Whether `contents` may be a SOPS file (cheap: looks for sops' markers). [`decrypt`] decides.
#[must_use]
pub fn looks_encrypted(contents: &[u8], format: Format) -> bool {
    let has = |needle: &[u8]| contents.windows(needle.len()).any(|w| w == needle);
    match format {
        Format::Yaml => has(b"ENC[AES256_GCM,") && has(b"sops:"),
        Format::Json | Format::Binary => has(b"ENC[AES256_GCM,") && has(b"\"sops\""),
        Format::Dotenv => has(b"sops_mac=ENC[AES256_GCM,"),
    }
}

/// Returned by [`decrypt`]. Names fields and key paths, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("not valid {format}: {reason}")]
    Parse {
        format: &'static str,
        #[source]
        reason: ParseError,
    },
    #[error("no sops metadata: not a SOPS-encrypted file")]
    NotEncrypted,
    #[error("sops metadata, field {field}: {message}")]
    Metadata { field: String, message: String },
    /// A dotenv file's `sops_*` lines do not make metadata.
    #[error("sops metadata, field sops_*: {source}")]
    DotenvMetadata {
        #[source]
        source: MetadataKeyError,
    },
    /// The key groups' shares opened but do not combine.
    #[error("sops metadata, field sops.key_groups: {source}")]
    Shamir {
        #[source]
        source: ShamirError,
    },
    #[error(
        "no configured key opens the data key. The file is encrypted for: {recipients}. Configured: {configured}. Tried: {failures}"
    )]
    NoKey {
        recipients: String,
        configured: String,
        failures: KeyFailures,
    },
    #[error("value at key {path}: {reason}")]
    Value { path: String, reason: String },
    #[error(
        "MAC mismatch: the file was changed after it was encrypted (tampered with, or edited without sops)"
    )]
    MacMismatch,
    #[error("{0} is not supported")]
    Unsupported(String),
}

/// One master key of a file that did not open, and why (in [`DecryptError::NoKey`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{master_key}: {reason}")]
pub struct KeyFailure {
    /// As the file names it: `age recipient age1…`, `PGP key 1A2B…`.
    pub master_key: String,
    #[source]
    pub reason: OpenError,
}

/// Every master key tried, in the file's order; shown joined by `; `.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFailures(pub Vec<KeyFailure>);

impl std::fmt::Display for KeyFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, failure) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// A decrypted file. Holds plaintext: keep it no longer than the apply needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Plaintext {
    /// YAML (each document) or JSON (one document), without the `sops` metadata.
    Documents(Vec<Value>),
    /// KEY=VALUE pairs in file order, without `sops_*` lines and comments.
    Dotenv(Vec<(String, String)>),
    /// The file's exact bytes.
    Binary(Vec<u8>),
}

/// Decrypts a SOPS file: finds the data key with `keys`, decrypts every encrypted leaf and
/// verifies the MAC over all of them. Any failure fails the whole file: no partial plaintext.
pub fn decrypt(contents: &[u8], format: Format, keys: &Keys) -> Result<Plaintext, DecryptError> {
    decrypt_with_leaves(contents, format, keys).map(|(plaintext, _)| plaintext)
}

/// [`decrypt`], also giving each encrypted value's ciphertext and plaintext.
pub fn decrypt_with_leaves(
    contents: &[u8],
    format: Format,
    keys: &Keys,
) -> Result<(Plaintext, Leaves), DecryptError> {
    let parse_error = |reason| DecryptError::Parse {
        format: format.name(),
        reason,
    };
    let text = std::str::from_utf8(contents).map_err(|_| parse_error(ParseError::NotUtf8))?;
    match format {
        Format::Yaml => {
            let mut documents = tree::parse_yaml(text, 10_000).map_err(parse_error)?;
            let metadata = match documents.first_mut().and_then(|first| first.remove("sops")) {
                Some(node @ Node::Map(_)) => node,
                Some(_) => return Err(metadata_error("sops", "is not a mapping")),
                None => return Err(DecryptError::NotEncrypted),
            };
            for document in &mut documents[1..] {
                document.remove("sops");
            }
            decrypt_documents(documents, metadata, keys, false)
        }
        Format::Json => {
            let mut document = tree::parse_json(text).map_err(parse_error)?;
            let metadata = document.remove("sops").ok_or(DecryptError::NotEncrypted)?;
            decrypt_documents(vec![document], metadata, keys, true)
        }
        Format::Dotenv => decrypt_dotenv(text, keys),
        Format::Binary => {
            let mut document = tree::parse_json(text).map_err(parse_error)?;
            let metadata = Metadata::parse(document.remove("sops").ok_or(DecryptError::NotEncrypted)?)?;
            let Some(Node::Str(data)) = document.get("data") else {
                return Err(metadata_error(
                    "data",
                    "a binary SOPS file needs a string field data",
                ));
            };
            let key = metadata.data_key(keys)?;
            let ciphertext = data.clone();
            let bytes = match cipher::decrypt(data, &key, "data:") {
                Ok(Plain::Str(bytes)) => bytes,
                Ok(_) => return Err(value_error("data", "is not a string")),
                Err(err) => return Err(value_error("data", &err.to_string())),
            };
            let mut mac = MacHasher::new(metadata.mac_only_encrypted);
            mac.add(&bytes);
            mac.verify(&metadata, &key)?;
            let leaves = String::from_utf8(bytes.clone())
                .map(|text| Leaves::from([(ciphertext, Value::String(text))]))
                .unwrap_or_default();
            Ok((Plaintext::Binary(bytes), leaves))
        }
    }
}

fn metadata_error(field: &str, message: &str) -> DecryptError {
    DecryptError::Metadata {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

fn value_error(path: &str, reason: &str) -> DecryptError {
    DecryptError::Value {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// SHA-512 over every leaf's typed value in document order (sops hashes values, not keys; the
/// keys are bound by each value's additional data).
struct MacHasher {
    hash: Sha512,
    only_encrypted: bool,
}

impl MacHasher {
    fn new(only_encrypted: bool) -> Self {
        let mut hash = Sha512::new();
        if only_encrypted {
            // sops' MACOnlyEncryptedInitialization: sha256("sops").
            hash.update(sha2::Sha256::digest(b"sops"));
        }
        Self { hash, only_encrypted }
    }

    fn add(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
    }

    fn verify(self, metadata: &Metadata, key: &DataKey) -> Result<(), DecryptError> {
        let computed = keys::hex_upper(&self.hash.finalize());
        let stored = match cipher::decrypt(&metadata.mac, key, &metadata.last_modified) {
            Ok(Plain::Str(bytes)) => bytes,
            Ok(_) => return Err(metadata_error("sops.mac", "is not a string")),
            Err(LeafError::Authentication) => return Err(DecryptError::MacMismatch),
            Err(err) => return Err(metadata_error("sops.mac", &err.to_string())),
        };
        if stored.as_slice() == computed.as_bytes() {
            Ok(())
        } else {
            Err(DecryptError::MacMismatch)
        }
    }
}

fn plain_bytes(plain: &Plain) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match plain {
        Plain::Str(bytes) => bytes.clone(),
        Plain::Int(v) => v.to_string().into_bytes(),
        Plain::Float(v) => cipher::format_go_float(*v).into_bytes(),
        Plain::Bool(v) => if *v { "True" } else { "False" }.as_bytes().to_vec(),
    })
}

struct Walk<'a> {
    key: &'a DataKey,
    metadata: &'a Metadata,
    mac: MacHasher,
    /// sops 3.11 reads every JSON number as a float64, and hashes it so.
    json_numbers: bool,
    /// Each encrypted leaf's ciphertext and plaintext.
    leaves: Leaves,
}

/// Each encrypted value of a file (its exact `ENC[…]` text) and what it decrypts to. A
/// ciphertext carries a random 32-byte nonce, so it stands for one value of one file: a tool that
/// copied ciphertexts elsewhere (Kustomize) can have them replaced by their plaintext.
pub type Leaves = std::collections::HashMap<String, Value>;

impl<'a> Walk<'a> {
    fn new(key: &'a DataKey, metadata: &'a Metadata, json_numbers: bool) -> Self {
        Self {
            key,
            metadata,
            mac: MacHasher::new(metadata.mac_only_encrypted),
            json_numbers,
            leaves: Leaves::new(),
        }
    }

    fn node(&mut self, node: &mut Node, path: &mut Vec<String>) -> Result<(), DecryptError> {
        match node {
            Node::Map(entries) => {
                for (key, value) in entries {
                    path.push(key.clone());
                    self.node(value, path)?;
                    path.pop();
                }
            }
            // List indices are not part of the path (nor of the additional data).
            Node::Seq(items) => {
                for item in items {
                    self.node(item, path)?;
                }
            }
            Node::Null => {}
            leaf => self.leaf(leaf, path)?,
        }
        Ok(())
    }

    fn leaf(&mut self, leaf: &mut Node, path: &[String]) -> Result<(), DecryptError> {
        let aad = format!("{}:", path.join(":"));
        let shown = path.join(".");
        let encrypted = self.metadata.selection.encrypts(path);
        if encrypted {
            let Node::Str(text) = leaf else {
                return Err(value_error(
                    &shown,
                    "is not encrypted, though the file's rules say it must be",
                ));
            };
            if text.is_empty() {
                return Ok(());
            }
            let plain =
                cipher::decrypt(text, self.key, &aad).map_err(|err| value_error(&shown, &err.to_string()))?;
            self.mac.add(&plain_bytes(&plain));
            let ciphertext = std::mem::take(text);
            *leaf = match plain {
                Plain::Str(bytes) => Node::Str(
                    String::from_utf8(bytes)
                        .map_err(|_| value_error(&shown, "decrypts to text that is not UTF-8"))?,
                ),
                Plain::Int(v) => Node::Int(v),
                Plain::Float(v) => Node::Float(v),
                Plain::Bool(v) => Node::Bool(v),
            };
            self.leaves.insert(ciphertext, leaf.clone().into_json());
        } else if !self.mac.only_encrypted {
            let bytes = match leaf {
                Node::Str(s) => s.clone().into_bytes(),
                Node::Bool(v) => if *v { "True" } else { "False" }.as_bytes().to_vec(),
                #[allow(clippy::cast_precision_loss)]
                Node::Int(v) if self.json_numbers => cipher::format_go_float(*v as f64).into_bytes(),
                Node::Int(v) => v.to_string().into_bytes(),
                Node::Float(v) => cipher::format_go_float(*v).into_bytes(),
                Node::Null | Node::Seq(_) | Node::Map(_) => Vec::new(),
            };
            self.mac.add(&bytes);
        }
        Ok(())
    }
}

fn decrypt_documents(
    mut documents: Vec<Node>,
    metadata: Node,
    keys: &Keys,
    json_numbers: bool,
) -> Result<(Plaintext, Leaves), DecryptError> {
    let metadata = Metadata::parse(metadata)?;
    let key = metadata.data_key(keys)?;
    let mut walk = Walk::new(&key, &metadata, json_numbers);
    for document in &mut documents {
        if !matches!(document, Node::Map(_) | Node::Null) {
            return Err(DecryptError::Parse {
                format: if json_numbers { "JSON" } else { "YAML" },
                reason: ParseError::NotAMapping,
            });
        }
        walk.node(document, &mut Vec::new())?;
    }
    walk.mac.verify(&metadata, &key)?;
    let plaintext = Plaintext::Documents(
        documents
            .into_iter()
            .filter(|document| !matches!(document, Node::Null))
            .map(Node::into_json)
            .collect(),
    );
    Ok((plaintext, walk.leaves))
}

fn decrypt_dotenv(text: &str, keys: &Keys) -> Result<(Plaintext, Leaves), DecryptError> {
    let lines = tree::parse_dotenv(text).map_err(|reason| DecryptError::Parse {
        format: "dotenv",
        reason,
    })?;
    let (mut data, mut metadata) = (Vec::new(), Vec::new());
    for line in lines {
        if let DotenvLine::Pair(key, value) = line {
            match key.strip_prefix("sops_") {
                Some(field) => metadata.push((field.to_owned(), value)),
                None => data.push((key, value)),
            }
        }
    }
    if metadata.is_empty() {
        return Err(DecryptError::NotEncrypted);
    }
    let metadata = tree::unflatten(&metadata).map_err(|source| DecryptError::DotenvMetadata { source })?;
    let metadata = Metadata::parse(metadata)?;
    let key = metadata.data_key(keys)?;
    let mut walk = Walk::new(&key, &metadata, false);
    let mut plain = Vec::with_capacity(data.len());
    for (name, value) in data {
        let mut leaf = Node::Str(value);
        walk.leaf(&mut leaf, std::slice::from_ref(&name))?;
        let Node::Str(value) = leaf else {
            return Err(value_error(&name, "decrypts to a value that is not text"));
        };
        plain.push((name, value));
    }
    walk.mac.verify(&metadata, &key)?;
    Ok((Plaintext::Dotenv(plain), walk.leaves))
}

impl Plaintext {
    /// The plaintext as a file of its own format would hold it (YAML or JSON re-serialised, dotenv
    /// as KEY=VALUE lines, binary as is): what a Kustomize generator would have read.
    pub fn to_bytes(&self, format: Format) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let unserialisable = |reason| DecryptError::Parse {
            format: format.name(),
            reason,
        };
        Ok(Zeroizing::new(match self {
            Plaintext::Binary(bytes) => bytes.clone(),
            Plaintext::Dotenv(pairs) => {
                let mut text = String::new();
                for (key, value) in pairs {
                    text.push_str(&format!("{key}={}\n", value.replace('\n', "\\n")));
                }
                text.into_bytes()
            }
            Plaintext::Documents(documents) if format == Format::Json => {
                let document = documents.first().cloned().unwrap_or(Value::Null);
                serde_json::to_vec_pretty(&document).map_err(|err| {
                    unserialisable(ParseError::Serialise {
                        message: err.to_string(),
                    })
                })?
            }
            Plaintext::Documents(documents) => {
                let nodes: Vec<Node> = documents.iter().cloned().map(Node::from_json).collect();
                tree::to_yaml(&nodes).map_err(unserialisable)?.into_bytes()
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(dotenv: &str) -> String {
        decrypt(dotenv.as_bytes(), Format::Dotenv, &Keys::new())
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn refusals_name_the_line_the_key_and_every_master_key_tried() {
        assert_eq!(refused("A=1\nB\n"), "not valid dotenv: line 2: not KEY=VALUE");
        assert_eq!(
            refused("A=1\nsops_age__list_x__map_enc=e\n"),
            "sops metadata, field sops_*: metadata key sops_age__list_x__map_enc: bad list index"
        );
        let metadata = "sops_lastmodified=2025-01-01T00:00:00Z\nsops_mac=ENC[x]\n\
                        sops_age__list_0__map_recipient=age1x\nsops_age__list_0__map_enc=e\n\
                        sops_pgp__list_0__map_fp=1A2B\nsops_pgp__list_0__map_enc=e\n";
        assert_eq!(
            refused(&format!("A=secret\n{metadata}")),
            "no configured key opens the data key. The file is encrypted for: age recipient age1x, \
             PGP key 1A2B. Configured: no keys are configured. Tried: age recipient age1x: no age or SSH \
             key is configured; PGP key 1A2B: no OpenPGP key is configured"
        );
    }
}
