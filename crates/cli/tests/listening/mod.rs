//! Where a `driftless serve --listen 127.0.0.1:0` started by a test is listening: the port is the
//! server's own choice, never one a test found free and released (another process could take it
//! in between).

use std::path::Path;
use std::time::{Duration, Instant};

/// The `http(s)://address` serve printed on its standard output, which the test sent to `log`;
/// waits up to a minute for it, and fails with the log if serve exits or never says.
pub fn api_url(log: &Path, serve: &mut std::process::Child) -> String {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text
            .lines()
            .find_map(|line| line.strip_prefix("API listening on "))
        {
            return url.trim().to_owned();
        }
        if let Some(status) = serve.try_wait().expect("serve's status") {
            panic!("serve exited ({status}) before listening:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "serve did not say where it listens within a minute:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
