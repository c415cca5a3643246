//! SOPS-encrypted files in a render, decrypted in memory only.
//!
//! Plain directories: an encrypted manifest file is decrypted (MAC verified) before it is parsed.
//! Kustomize: the repository is given to kustomize still encrypted (no plaintext ever reaches the
//! disk), and its output is decrypted afterwards:
//! - a resource from an encrypted file still carries its `sops` metadata and ciphertexts; the
//!   file it came from is found by its MAC, decrypted whole (MAC verified), and each ciphertext
//!   in the output replaced by its plaintext (a ciphertext's random nonce makes it unique);
//! - a Secret generated from an encrypted env file (`secretGenerator.envs`) holds the file's
//!   `sops_*` lines as keys: the file is found by its MAC and its values replace the ciphertexts;
//! - a Secret value that is a whole encrypted file (`secretGenerator.files`) is decrypted as the
//!   format its key's extension names.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use driftless_files::{Entry, FileTree};
use driftless_sops::{DecryptError, Format, Keys, Leaves};
use serde_json::Value;

use crate::RenderError;

fn error(file: &str, source: &DecryptError, keys: &Keys) -> RenderError {
    let message = if keys.is_empty() && matches!(source, DecryptError::NoKey { .. }) {
        "SOPS-encrypted, but the application has no decryption keys (spec.decryption.keys)".to_owned()
    } else {
        format!("cannot decrypt (SOPS): {source}")
    };
    RenderError::Decrypt {
        file: file.to_owned(),
        message,
    }
}

/// Decrypts one manifest file of a directory; `None` when it is not SOPS-encrypted.
pub(crate) fn manifest_file(
    file: &str,
    contents: &[u8],
    keys: &Keys,
) -> Result<Option<Vec<Value>>, RenderError> {
    let format = Format::from_path(file);
    if !matches!(format, Format::Yaml | Format::Json) || !driftless_sops::looks_encrypted(contents, format) {
        return Ok(None);
    }
    match driftless_sops::decrypt(contents, format, keys) {
        Ok(driftless_sops::Plaintext::Documents(documents)) => Ok(Some(documents)),
        Ok(_) | Err(DecryptError::NotEncrypted) => Ok(None),
        Err(err) => Err(error(file, &err, keys)),
    }
}

/// Decrypts what kustomize copied from encrypted files into `manifests`; returns whether any
/// manifest held decrypted values.
pub(crate) fn kustomize_output(
    manifests: &mut [Value],
    tree: &FileTree,
    keys: &Keys,
) -> Result<bool, RenderError> {
    let mut decrypted = false;
    let mut opened = Opened::default();
    for manifest in manifests {
        if let Some(mac) = manifest
            .pointer("/sops/mac")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            let (file, leaves) = opened.by_mac(tree, &mac, Marker::Document, keys)?;
            replace_ciphertexts(manifest, leaves, file)?;
            if let Value::Object(object) = manifest {
                object.remove("sops");
            }
            decrypted = true;
        }
        if manifest["apiVersion"] == "v1" && manifest["kind"] == "Secret" {
            decrypted |= generated_secret(manifest, tree, keys, &mut opened)?;
        }
    }
    Ok(decrypted)
}

/// How a file's MAC appears in it, by format.
#[derive(Clone, Copy)]
enum Marker {
    Document,
    Dotenv,
}

/// The encrypted files one render decrypted, by MAC: the documents of a multi-document file and
/// the Secrets generated from one file all carry its MAC, and it is decrypted once.
#[derive(Default)]
struct Opened(std::collections::HashMap<String, (String, Leaves)>);

impl Opened {
    fn by_mac(
        &mut self,
        tree: &FileTree,
        mac: &str,
        marker: Marker,
        keys: &Keys,
    ) -> Result<(&String, &Leaves), RenderError> {
        if !self.0.contains_key(mac) {
            let source = source_by_mac(tree, mac, marker, keys)?;
            self.0.insert(mac.to_owned(), source);
        }
        let (file, leaves) = &self.0[mac];
        Ok((file, leaves))
    }
}

/// The encrypted file of the repository whose MAC is `mac`, decrypted.
fn source_by_mac(
    tree: &FileTree,
    mac: &str,
    marker: Marker,
    keys: &Keys,
) -> Result<(String, Leaves), RenderError> {
    let needle = mac.as_bytes();
    for (path, entry) in &tree.entries {
        let Entry::File { contents, .. } = entry else {
            continue;
        };
        let format = Format::from_path(path);
        let candidate = match marker {
            Marker::Document => matches!(format, Format::Yaml | Format::Json),
            Marker::Dotenv => format == Format::Dotenv || format == Format::Binary,
        };
        if !candidate || !contents.windows(needle.len()).any(|window| window == needle) {
            continue;
        }
        let format = match marker {
            Marker::Dotenv => Format::Dotenv,
            Marker::Document => format,
        };
        return match driftless_sops::decrypt_with_leaves(contents, format, keys) {
            Ok((_, leaves)) => Ok((path.clone(), leaves)),
            Err(err) => Err(error(path, &err, keys)),
        };
    }
    Err(RenderError::Decrypt {
        file: "kustomize output".to_owned(),
        message: "holds SOPS-encrypted values whose file is not in the repository".to_owned(),
    })
}

fn replace_ciphertexts(value: &mut Value, leaves: &Leaves, file: &str) -> Result<(), RenderError> {
    match value {
        Value::String(text) if text.starts_with("ENC[AES256_GCM,") => {
            let plain = leaves.get(text.as_str()).ok_or_else(|| RenderError::Decrypt {
                file: file.to_owned(),
                message: "kustomize output holds an encrypted value that is not in this file".to_owned(),
            })?;
            *value = plain.clone();
        }
        Value::Array(items) => {
            for item in items {
                replace_ciphertexts(item, leaves, file)?;
            }
        }
        Value::Object(object) => {
            for (key, item) in object.iter_mut() {
                if key != "sops" {
                    replace_ciphertexts(item, leaves, file)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A Secret data value; kustomize folds long base64 over several lines.
fn decode(value: &Value) -> Option<Vec<u8>> {
    let text: String = value
        .as_str()?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(text).ok()
}

/// A Secret kustomize generated from encrypted files: decrypts its data in place.
fn generated_secret(
    secret: &mut Value,
    tree: &FileTree,
    keys: &Keys,
    opened: &mut Opened,
) -> Result<bool, RenderError> {
    let Some(Value::Object(data)) = secret.get_mut("data") else {
        return Ok(false);
    };
    let mut decrypted = false;
    if let Some(mac) = data.get("sops_mac").and_then(decode) {
        let mac = String::from_utf8_lossy(&mac).into_owned();
        let (file, leaves) = opened.by_mac(tree, &format!("sops_mac={mac}"), Marker::Dotenv, keys)?;
        data.retain(|key, _| !key.starts_with("sops_"));
        for value in data.values_mut() {
            let Some(bytes) = decode(value) else { continue };
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if text.starts_with("ENC[AES256_GCM,") {
                let plain = leaves
                    .get(text)
                    .and_then(Value::as_str)
                    .ok_or_else(|| RenderError::Decrypt {
                        file: file.clone(),
                        message: "the generated Secret holds an encrypted value that is not in this file"
                            .to_owned(),
                    })?;
                *value = Value::String(STANDARD.encode(plain));
            }
        }
        decrypted = true;
    }
    for (key, value) in data.iter_mut() {
        let Some(bytes) = decode(value) else { continue };
        // The format its key's extension names (as Flux does), else whichever sops' markers show.
        let named = Format::from_path(key);
        let Some(format) = [named, Format::Yaml, Format::Json, Format::Dotenv]
            .into_iter()
            .find(|format| driftless_sops::looks_encrypted(&bytes, *format))
        else {
            continue;
        };
        let shown = format!("Secret data key {key}");
        let plain = driftless_sops::decrypt(&bytes, format, keys)
            .and_then(|plain| plain.to_bytes(format))
            .map_err(|err| error(&shown, &err, keys))?;
        *value = Value::String(STANDARD.encode(plain.as_slice()));
        decrypted = true;
    }
    Ok(decrypted)
}
