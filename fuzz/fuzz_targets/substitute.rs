//! Flux's post-build expressions (`driftless_render::substitute::eval`, text from Git) never
//! panic, hang or grow without bound, strict or not, with or without variables.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut variables = driftless_render::Variables::new();
    let _ = variables.extend(
        "fuzz",
        [("a".to_owned(), "Hello/World"), ("empty".to_owned(), ""), ("n".to_owned(), "3")],
    );
    for strict in [true, false] {
        let _ = driftless_render::substitute::eval(text, &variables, strict, 1 << 20);
    }
});
