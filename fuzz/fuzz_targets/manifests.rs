//! Manifest parsing (YAML/JSON streams) never panics, hangs or explodes on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let limits = driftless_render::RenderLimits::default();
        let _ = driftless_render::parse_documents(text, "fuzz.yaml", &limits);
    }
});
