//! A real, local Kubernetes control plane for tests and the quickstart: etcd, kube-apiserver and
//! kube-controller-manager started as processes on free loopback ports.
//!
//! - [`ControlPlane`] starts and owns one control plane. Dropping it stops every process and removes
//!   its directory. Its processes also stop by themselves when the process that started them dies,
//!   however it dies (panic, abort, SIGKILL): see `supervised.rs`.
//! - [`TestEnv`] is what a test uses: one shared control plane per test binary, a fresh namespace
//!   per test and a ready `kube::Client`.
//!
//! The binaries come from `scripts/testenv`, which builds kube-apiserver and
//! kube-controller-manager from Debian's `kubernetes` source package and caches them. When they are
//! missing, [`ControlPlane::start`] fails with a message that names that command.
//!
//! There is no scheduler and no kubelet: Pods never run. Tests that need a healthy workload patch
//! Pod status the way a kubelet would, and the real controller-manager does the rest.

mod binaries;
pub mod browser;
pub mod certs;
pub mod charts;
mod control_plane;
pub mod git;
pub mod helm;
pub mod sops;
mod supervised;
mod test_env;

pub use binaries::{Binaries, BinariesError, INSTALL_COMMAND, K8S_VERSION};
pub use control_plane::{ControlPlane, StartError};
pub use test_env::TestEnv;
