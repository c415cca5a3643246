use std::env;
use std::path::{Path, PathBuf};

/// The Kubernetes version `scripts/testenv` builds from Debian's `kubernetes` source package.
pub const K8S_VERSION: &str = "v1.20.2";

/// The command that installs every binary the control plane needs.
pub const INSTALL_COMMAND: &str = "scripts/testenv";

/// Where the control-plane binaries are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

/// Returned by [`Binaries::locate`] when a binary is missing.
#[derive(Debug, thiserror::Error)]
#[error(
    "{binary} not found at {}; install the local control plane with `{INSTALL_COMMAND}` \
     (or point {BIN_DIR_VAR} at a directory holding kube-apiserver and kube-controller-manager)",
    path.display()
)]
pub struct BinariesError {
    pub binary: &'static str,
    pub path: PathBuf,
}

/// Overrides the directory of kube-apiserver and kube-controller-manager.
const BIN_DIR_VAR: &str = "DRIFTLESS_K8S_BIN_DIR";

impl Binaries {
    /// Finds the binaries: kube-apiserver and kube-controller-manager in `$DRIFTLESS_K8S_BIN_DIR`
    /// or the cache `scripts/testenv` fills, etcd on `PATH` (Debian's `etcd-server`).
    pub fn locate() -> Result<Self, BinariesError> {
        let k8s_dir = env::var_os(BIN_DIR_VAR).map_or_else(default_k8s_dir, PathBuf::from);
        Self::locate_in(&k8s_dir)
    }

    /// Like [`Self::locate`], with kube-apiserver and kube-controller-manager in `k8s_dir`.
    pub fn locate_in(k8s_dir: &Path) -> Result<Self, BinariesError> {
        let etcd = find_on_path("etcd").unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"));
        let binaries = Self {
            kube_apiserver: k8s_dir.join("kube-apiserver"),
            kube_controller_manager: k8s_dir.join("kube-controller-manager"),
            etcd,
        };
        for (binary, path) in [
            ("etcd", &binaries.etcd),
            ("kube-apiserver", &binaries.kube_apiserver),
            ("kube-controller-manager", &binaries.kube_controller_manager),
        ] {
            if !is_executable(path) {
                return Err(BinariesError {
                    binary,
                    path: path.clone(),
                });
            }
        }
        Ok(binaries)
    }
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/driftless/k8s-v1.20.2`, as in `scripts/testenv`.
fn default_k8s_dir() -> PathBuf {
    let cache = env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    cache.join("driftless").join(format!("k8s-{K8S_VERSION}"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_install_command() {
        let empty = env::temp_dir().join(format!("driftless-no-binaries-{}", std::process::id()));
        let err = Binaries::locate_in(&empty).expect_err("nothing is installed there");
        let message = err.to_string();
        assert!(message.contains("scripts/testenv"), "{message}");
        assert!(message.contains(&empty.display().to_string()), "{message}");
    }
}
