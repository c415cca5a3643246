//! SOPS parsing and decryption never panic on any file, in any format, with a key loaded (so
//! inputs that reach the age stanza and the leaves are exercised too).
#![no_main]

use driftless_sops::{Format, Keys, decrypt};
use libfuzzer_sys::fuzz_target;

/// A published test identity (rops' fixtures), not a secret.
const IDENTITY: &str = "AGE-SECRET-KEY-1EQUCGFZH8UZKSZ0Z5N5T234YRNDT4U9H7QNYXWRRNJYDDVXE6FWSCPGNJ7";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, contents)) = data.split_first() else {
        return;
    };
    let format = match selector % 4 {
        0 => Format::Yaml,
        1 => Format::Json,
        2 => Format::Dotenv,
        _ => Format::Binary,
    };
    let mut keys = Keys::new();
    keys.add(IDENTITY.as_bytes(), "fuzz identity")
        .expect("the fixed identity loads");
    let _ = decrypt(contents, format, &keys);
});
