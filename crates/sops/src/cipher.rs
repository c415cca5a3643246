//! One encrypted leaf: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM with the data key,
//! a 32-byte nonce, and the leaf's key path as additional data (so a value cannot be moved to
//! another key without failing).

use aes_gcm::AesGcm;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::consts::U32;
use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};

/// Go's `base64.StdEncoding`, which accepts non-zero trailing bits.
const GO_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The 32-byte data key of one file. Wiped when dropped.
pub(crate) struct DataKey(pub(crate) [u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A decrypted leaf, typed as the `type:` field says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plain {
    Str(Vec<u8>),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// Why a leaf does not decrypt. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LeafError {
    #[error("not a sops-encrypted value (expected ENC[AES256_GCM,…])")]
    NotEncrypted,
    #[error("malformed encrypted value: {0}")]
    Malformed(&'static str),
    #[error("does not decrypt (tampered ciphertext, a value moved to another key, or another file's key)")]
    Authentication,
    #[error("decrypted value is not a valid {0}")]
    BadPlaintext(&'static str),
    #[error("unknown value type {0:?}")]
    UnknownType(String),
}

fn field<'a>(body: &'a str, name: &str) -> Result<&'a str, LeafError> {
    body.split(',')
        .find_map(|part| part.strip_prefix(name)?.strip_prefix(':'))
        .ok_or(LeafError::Malformed("a field is missing"))
}

/// Decrypts one leaf with `aad` (the key path, `a:b:c:`).
pub(crate) fn decrypt(text: &str, key: &DataKey, aad: &str) -> Result<Plain, LeafError> {
    let body = text
        .strip_prefix("ENC[AES256_GCM,")
        .ok_or(LeafError::NotEncrypted)?;
    let body = body
        .find(']')
        .map(|end| &body[..end])
        .ok_or(LeafError::Malformed("no closing ]"))?;
    let decode = |name: &str| {
        GO_STANDARD
            .decode(field(body, name)?)
            .map_err(|_| LeafError::Malformed("a field is not base64"))
    };
    let data = decode("data")?;
    let iv = decode("iv")?;
    let tag = decode("tag")?;
    let kind = field(body, "type")?;
    // sops writes 32-byte nonces; anything else was not written by sops.
    if iv.len() != 32 {
        return Err(LeafError::Malformed("the iv is not 32 bytes"));
    }
    if tag.len() != 16 {
        return Err(LeafError::Malformed("the tag is not 16 bytes"));
    }
    let cipher = AesGcm::<Aes256, U32>::new(GenericArray::from_slice(&key.0));
    let mut sealed = data;
    sealed.extend_from_slice(&tag);
    let plain = cipher
        .decrypt(
            GenericArray::from_slice(&iv),
            Payload {
                msg: &sealed,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| LeafError::Authentication)?;
    typed(plain, kind)
}

fn typed(plain: Vec<u8>, kind: &str) -> Result<Plain, LeafError> {
    let text = || String::from_utf8(plain.clone()).map_err(|_| LeafError::BadPlaintext("text"));
    Ok(match kind {
        "str" | "bytes" | "comment" => Plain::Str(plain),
        "int" | "int64" => Plain::Int(text()?.parse().map_err(|_| LeafError::BadPlaintext("integer"))?),
        "float" => Plain::Float(parse_go_float(&text()?).ok_or(LeafError::BadPlaintext("number"))?),
        "bool" => Plain::Bool(match text()?.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(LeafError::BadPlaintext("boolean")),
        }),
        other => return Err(LeafError::UnknownType(other.to_owned())),
    })
}

fn parse_go_float(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that round-trip, never an
/// exponent. Rust's `Display` for f64 is exactly that, apart from the names of the non-finite.
pub(crate) fn format_go_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i).expect("small");
        }
        DataKey(bytes)
    }

    // Vectors from docs/research/sops-format.md (computed with Python `cryptography`).
    #[test]
    fn decrypts_the_reference_vectors() {
        let hello = "ENC[AES256_GCM,data:OzyXKhU=,iv:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=,tag:XdqyM5vNs8mrmDMCuMT5Gw==,type:str]";
        assert_eq!(decrypt(hello, &key(), "a:b:"), Ok(Plain::Str(b"hello".to_vec())));
        let flag = "ENC[AES256_GCM,data:SyOKAA==,iv:q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=,tag:EdczjgJysrG01eFpJE2aIw==,type:bool]";
        assert_eq!(decrypt(flag, &key(), "a:flag:"), Ok(Plain::Bool(true)));
        let port = "ENC[AES256_GCM,data:qYxLyw==,iv:rKysrKysrKysrKysrKysrKysrKysrKysrKysrKysrKw=,tag:KYjkMQJG2YZHqpsVlteljw==,type:int]";
        assert_eq!(decrypt(port, &key(), "a:ports:"), Ok(Plain::Int(8080)));
    }

    #[test]
    fn a_value_moved_to_another_key_or_tampered_does_not_decrypt() {
        let hello = "ENC[AES256_GCM,data:OzyXKhU=,iv:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo=,tag:XdqyM5vNs8mrmDMCuMT5Gw==,type:str]";
        assert_eq!(decrypt(hello, &key(), "a:c:"), Err(LeafError::Authentication));
        let tampered = hello.replace("OzyXKhU=", "PzyXKhU=");
        assert_eq!(decrypt(&tampered, &key(), "a:b:"), Err(LeafError::Authentication));
        assert_eq!(decrypt("plain", &key(), "a:"), Err(LeafError::NotEncrypted));
        assert!(matches!(
            decrypt("ENC[AES256_GCM,data:!!,iv:x,tag:y,type:str]", &key(), "a:"),
            Err(LeafError::Malformed(_))
        ));
    }

    #[test]
    fn floats_format_as_go_does() {
        assert_eq!(format_go_float(1.5), "1.5");
        assert_eq!(format_go_float(1000.0), "1000");
        assert_eq!(format_go_float(1e21), "1000000000000000000000");
        assert_eq!(format_go_float(0.000_001), "0.000001");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
    }
}
