//! What the CLI tests share: running the binary against a configuration.

use std::path::Path;
use std::process::{Command, Output};

/// `driftless ARGS --config CONFIG`, without colour.
#[allow(
    dead_code,
    reason = "tests that run commands as README.md writes them spell --config themselves"
)]
pub fn driftless(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("NO_COLOR", "1")
        .output()
        .expect("run driftless")
}

/// Standard output then standard error, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `dir/driftless.yaml`: one cluster `local` (the test environment's kubeconfig) and one
/// application `name` reading `path` at `main` of `repo_url` into `namespace`; `spec_extra` is
/// appended to its spec (six-space indented YAML lines, e.g. a `syncPolicy`).
#[allow(dead_code, reason = "not every test binary writes its configuration this way")]
pub fn write_config(
    dir: &Path,
    kubeconfig: &Path,
    (name, repo_url, path): (&str, &str, &str),
    namespace: &str,
    spec_extra: &str,
) -> std::path::PathBuf {
    let config = dir.join("driftless.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: state\nclusters:\n  - name: local\n    kubeconfig: {}\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{repo_url}', revision: main, path: {path} }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n{spec_extra}",
            kubeconfig.display(),
        ),
    )
    .expect("write config");
    config
}
