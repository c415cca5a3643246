//! Unpacking a chart archive never panics, and never yields a path that leaves the chart or more
//! than the limits allow, whatever the bytes (gzip, tar headers, paths, sizes).
#![no_main]

use driftless_charts::{ChartLimits, unpack};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ChartLimits {
        max_unpacked_bytes: 1024 * 1024,
        max_files: 64,
        ..ChartLimits::default()
    };
    if let Ok(tree) = unpack("fuzz", data, &limits) {
        assert!(tree.entries.len() <= limits.max_files);
        for path in tree.entries.keys() {
            assert!(!path.starts_with('/'), "{path}");
            assert!(!path.split('/').any(|part| part == ".."), "{path}");
        }
    }
});
