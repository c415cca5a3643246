//! A real, local Kubernetes control plane: etcd, kube-apiserver and kube-controller-manager started
//! as processes on free loopback ports. `driftless quickstart` runs one for the user; the tests'
//! `driftless-testenv` shares one per test binary.
//!
//! [`ControlPlane`] starts and owns one control plane. Dropping it stops every process and removes
//! its directory. Its processes also stop by themselves when the process that started them dies,
//! however it dies (panic, abort, SIGKILL): see `supervised.rs`.
//!
//! The binaries come from `scripts/testenv`, which builds kube-apiserver and
//! kube-controller-manager from Debian's `kubernetes` source package and caches them. When they are
//! missing, [`ControlPlane::start`] fails with a message that names that command.
//!
//! There is no scheduler and no kubelet: Pods never run.

mod binaries;
pub mod certs;
mod control_plane;
mod supervised;

pub use binaries::{Binaries, BinariesError, INSTALL_COMMAND, K8S_VERSION};
pub use control_plane::{ControlPlane, StartError};
