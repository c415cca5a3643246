//! A real headless browser for the web UI's tests: Debian's Chromium, driven by playwright-core
//! (npm), both installed by scripts/testenv. A test writes its flow as a Node.js script and runs
//! it with [`run_script`]; the script fails (exits non-zero) when a check fails.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where scripts/testenv installs playwright-core (`node_modules` inside).
#[must_use]
pub fn node_tools() -> PathBuf {
    crate::sops::tools_bin()
        .parent()
        .and_then(Path::parent)
        .expect("the tools directory sits in the cache")
        .join("node-tools")
}

/// Fails, naming the fix, unless Chromium, Node.js and playwright-core are installed.
pub fn assert_installed() {
    let playwright = node_tools().join("node_modules/playwright-core/package.json");
    for (what, present) in [
        ("Debian's chromium", Path::new(CHROMIUM).is_file()),
        (
            "node",
            Command::new("node")
                .arg("--version")
                .output()
                .is_ok_and(|out| out.status.success()),
        ),
        ("playwright-core", playwright.is_file()),
    ] {
        assert!(
            present,
            "{what} is not installed: run scripts/testenv (installs apt chromium, nodejs and npm playwright-core under {})",
            node_tools().display()
        );
    }
}

/// Runs the Node.js `script` with playwright-core resolvable and `env` set; panics with its
/// output unless it exits successfully.
pub fn run_script(script: &Path, env: &[(&str, &str)]) -> String {
    assert_installed();
    let output = Command::new("node")
        .arg(script)
        .env("NODE_PATH", node_tools().join("node_modules"))
        .env("CHROMIUM", CHROMIUM)
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
