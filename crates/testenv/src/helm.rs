//! Real Helm for tests: the helm shim that scripts/testenv installs (scripts/helm-shim.py over
//! PyPI `helm-python-sdk`, whose libhelm_c is Helm 4.2's own Go SDK). It implements
//! `helm version --short` and `helm template` with the flags driftless uses.

use std::path::{Path, PathBuf};

/// The helm shim that scripts/testenv installs. Panics, naming scripts/testenv, when it is missing.
#[must_use]
pub fn helm_binary() -> PathBuf {
    let helm = crate::sops::tools_bin().join("helm");
    assert!(
        helm.is_file(),
        "the helm shim is not installed at {}: run scripts/testenv (installs PyPI helm-python-sdk and scripts/helm-shim.py)",
        helm.display()
    );
    helm
}

/// Fails, naming the fix, unless `helm` on PATH is the shim: driftless finds helm on PATH, and
/// tests cannot change their own environment (`unsafe` is forbidden), so scripts/test puts the
/// tools directory first on PATH.
pub fn assert_helm_on_path() {
    let shim = helm_binary();
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("helm"))
        .find(|candidate| candidate.is_file());
    assert_eq!(
        found.as_deref(),
        Some(shim.as_path()),
        "helm on PATH must be the shim: run the tests with scripts/test, or with PATH={}:$PATH",
        shim.parent()
            .map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default()
    );
}
