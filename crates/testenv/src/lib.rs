//! Test fixtures: a real local Kubernetes control plane per test binary, real Git servers, a real
//! browser, SOPS files, charts and Helm.
//!
//! - [`TestEnv`] is what a test uses: one shared control plane per test binary (a
//!   [`driftless_localcluster::ControlPlane`]), a fresh namespace per test and a ready
//!   `kube::Client`. The control plane's processes stop when the test binary exits, however it
//!   exits.
//!
//! There is no scheduler and no kubelet: Pods never run. Tests that need a healthy workload patch
//! Pod status the way a kubelet would, and the real controller-manager does the rest.

pub mod browser;
pub mod certs;
pub mod charts;
pub mod git;
pub mod helm;
mod inetd;
pub mod leaks;
pub mod sops;
mod test_env;

pub use driftless_localcluster::{ControlPlane, K8S_VERSION};
pub use test_env::TestEnv;
