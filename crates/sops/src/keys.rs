//! The private keys one application may decrypt with: age X25519 identities, SSH keys (age's
//! ssh-ed25519 and ssh-rsa recipients) and OpenPGP secret keys.

use std::io::{BufReader, Read as _};

use age::armor::ArmoredReader;
use pgp::composed::{Deserializable as _, Message, SignedSecretKey};
use pgp::types::{KeyDetails as _, Password};

/// Why a key could not be loaded. Names where it came from, never its contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{source_name}: {message}")]
    Invalid { source_name: String, message: String },
}

fn invalid(source_name: &str, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        source_name: source_name.to_owned(),
        message: message.into(),
    }
}

/// Why one master key of a file did not give its part of the data key (each of
/// [`crate::DecryptError::NoKey`]'s failures). Carries no key material: the age and OpenPGP
/// libraries' messages (`detail`) name formats and packets, never keys or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("no age or SSH key is configured")]
    NoAgeKey,
    #[error("the age stanza is unreadable: {detail}")]
    AgeUnreadable { detail: String },
    #[error("the age stanza is passphrase-encrypted, which sops never writes")]
    AgePassphrase,
    #[error("none of the configured age or SSH keys is a recipient")]
    NotAgeRecipient,
    #[error("age decryption failed: {detail}")]
    AgeFailed { detail: String },
    #[error("age decryption failed: the stanza's payload does not authenticate")]
    AgePayload,
    #[error("no OpenPGP key is configured")]
    NoPgpKey,
    #[error("the PGP message is unreadable: {detail}")]
    PgpUnreadable { detail: String },
    #[error("no configured OpenPGP key decrypts it ({detail})")]
    NotPgpRecipient { detail: String },
    #[error("the PGP message does not decompress: {detail}")]
    PgpDecompress { detail: String },
    #[error("the PGP message's integrity check failed")]
    PgpIntegrity,
    /// A cloud KMS or Vault key.
    #[error("no credentials for it")]
    NoCredentials,
}

/// Decryption keys, and where each came from (for error messages).
#[derive(Default)]
pub struct Keys {
    age: Vec<Box<dyn age::Identity + Send + Sync>>,
    pgp: Vec<SignedSecretKey>,
    descriptions: Vec<String>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("keys", &self.descriptions)
            .finish_non_exhaustive()
    }
}

impl Keys {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.pgp.is_empty()
    }

    /// What is loaded, for messages: "age identity from file keys.txt, PGP key 1A2B…".
    #[must_use]
    pub fn describe(&self) -> String {
        if self.descriptions.is_empty() {
            "no keys are configured".to_owned()
        } else {
            self.descriptions.join(", ")
        }
    }

    /// Adds every key in `contents`, whatever kind it is: age identities (`AGE-SECRET-KEY-1…`
    /// lines, `#` comments allowed), an unencrypted OpenSSH private key, or armored OpenPGP secret
    /// keys (`gpg --export-secret-keys --armor`). `source_name` says where it came from.
    pub fn add(&mut self, contents: &[u8], source_name: &str) -> Result<(), KeyError> {
        let text = std::str::from_utf8(contents).map_err(|_| invalid(source_name, "not a text key file"))?;
        if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            self.add_pgp(text, source_name)
        } else if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----")
            || text.contains("-----BEGIN RSA PRIVATE KEY-----")
        {
            self.add_ssh(contents, source_name)
        } else if text.contains("AGE-SECRET-KEY-") {
            self.add_age(text, source_name)
        } else {
            Err(invalid(
                source_name,
                "holds no age identity, OpenSSH private key or OpenPGP secret key",
            ))
        }
    }

    fn add_age(&mut self, text: &str, source_name: &str) -> Result<(), KeyError> {
        let mut count = 0;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity: age::x25519::Identity = line
                .parse()
                .map_err(|_| invalid(source_name, format!("line {}: not an age identity", number + 1)))?;
            self.age.push(Box::new(identity));
            count += 1;
        }
        self.descriptions.push(format!(
            "{count} age identit{} from {source_name}",
            if count == 1 { "y" } else { "ies" }
        ));
        Ok(())
    }

    fn add_ssh(&mut self, pem: &[u8], source_name: &str) -> Result<(), KeyError> {
        let identity = age::ssh::Identity::from_buffer(BufReader::new(pem), Some(source_name.to_owned()))
            .map_err(|_| invalid(source_name, "not a readable OpenSSH private key"))?;
        match identity {
            age::ssh::Identity::Unencrypted(_) => {}
            age::ssh::Identity::Encrypted(_) => {
                return Err(invalid(
                    source_name,
                    "the SSH key is protected by a passphrase; give driftless a key without one",
                ));
            }
            age::ssh::Identity::Unsupported(_) => {
                return Err(invalid(
                    source_name,
                    "unsupported SSH key type (age decrypts with ssh-ed25519 and ssh-rsa keys)",
                ));
            }
        }
        self.age.push(Box::new(identity));
        self.descriptions.push(format!("SSH key from {source_name}"));
        Ok(())
    }

    fn add_pgp(&mut self, text: &str, source_name: &str) -> Result<(), KeyError> {
        let (keys, _) = SignedSecretKey::from_string_many(text)
            .map_err(|err| invalid(source_name, format!("not readable OpenPGP secret keys: {err}")))?;
        let mut added = Vec::new();
        for key in keys {
            let key =
                key.map_err(|err| invalid(source_name, format!("not a readable OpenPGP secret key: {err}")))?;
            key.verify_bindings().map_err(|err| {
                invalid(
                    source_name,
                    format!("OpenPGP key's self-signatures do not verify: {err}"),
                )
            })?;
            added.push(hex_upper(key.fingerprint().as_bytes()));
            self.pgp.push(key);
        }
        if added.is_empty() {
            return Err(invalid(source_name, "holds no OpenPGP secret key"));
        }
        self.descriptions
            .push(format!("PGP key {} from {source_name}", added.join(", ")));
        Ok(())
    }

    /// The data-key part sealed in an age stanza (`enc` of an `age` entry), if one of our age
    /// keys opens it.
    pub(crate) fn open_age(&self, armored: &str) -> Result<Vec<u8>, OpenError> {
        if self.age.is_empty() {
            return Err(OpenError::NoAgeKey);
        }
        // Go's age writes what rage's strict armor reader wants, but files pass through editors
        // and YAML: restore the exact shape (marker at byte 0, LF endings, final newline).
        let normalised = format!("{}\n", armored.trim().replace("\r\n", "\n"));
        let decryptor =
            age::Decryptor::new_buffered(ArmoredReader::new(normalised.as_bytes())).map_err(|err| {
                OpenError::AgeUnreadable {
                    detail: err.to_string(),
                }
            })?;
        if decryptor.is_scrypt() {
            return Err(OpenError::AgePassphrase);
        }
        let mut reader = decryptor
            .decrypt(
                self.age
                    .iter()
                    .map(|identity| identity.as_ref() as &dyn age::Identity),
            )
            .map_err(|err| match err {
                age::DecryptError::NoMatchingKeys => OpenError::NotAgeRecipient,
                other => OpenError::AgeFailed {
                    detail: other.to_string(),
                },
            })?;
        let mut part = Vec::new();
        reader.read_to_end(&mut part).map_err(|_| OpenError::AgePayload)?;
        Ok(part)
    }

    /// The data-key part sealed in a PGP message (`enc` of a `pgp` entry).
    pub(crate) fn open_pgp(&self, armored: &str) -> Result<Vec<u8>, OpenError> {
        if self.pgp.is_empty() {
            return Err(OpenError::NoPgpKey);
        }
        let (message, _) = Message::from_string(armored).map_err(|err| OpenError::PgpUnreadable {
            detail: err.to_string(),
        })?;
        let empty = Password::empty();
        let passwords = self.pgp.iter().map(|_| &empty).collect();
        let mut message = message
            .decrypt_with_keys(passwords, self.pgp.iter().collect())
            .map_err(|err| OpenError::NotPgpRecipient {
                detail: err.to_string(),
            })?;
        // gpg compresses by default; a signed message may wrap the compressed packet.
        for _ in 0..4 {
            if !message.is_compressed() {
                break;
            }
            message = message.decompress().map_err(|err| OpenError::PgpDecompress {
                detail: err.to_string(),
            })?;
        }
        message.as_data_vec().map_err(|_| OpenError::PgpIntegrity)
    }
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push_str(&format!("{byte:02X}"));
    }
    text
}
