//! Configuration parsing and validation never panic on any file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = driftless_config::parse(text, "fuzz.yaml", std::path::Path::new("/nonexistent"));
    }
});
