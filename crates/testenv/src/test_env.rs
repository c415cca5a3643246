use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use driftless_localcluster::ControlPlane;

/// Label on every namespace a test creates, naming the test.
pub const TEST_LABEL: &str = "driftless.dev/test";

/// What one test gets: the shared control plane of its test binary, a namespace of its own and a
/// client made in the test's own runtime.
///
/// The control plane starts on first use and lives as long as the test binary; its processes stop
/// when the binary exits, also after a panic or a kill (see the crate docs). Tests must not depend
/// on each other's objects: use [`TestEnv::namespace`] for namespaced objects, and give cluster-scoped
/// objects names derived from it.
pub struct TestEnv {
    pub client: kube::Client,
    /// Created for this test; unique within the test binary.
    pub namespace: String,
    control_plane: &'static ControlPlane,
}

impl TestEnv {
    /// Starts the shared control plane if this is the first test, then creates this test's
    /// namespace.
    ///
    /// # Panics
    /// When the control plane cannot start, with the reason (for missing binaries: the command that
    /// installs them). A test cannot go on without a cluster, and failing loudly is the point.
    pub async fn new(test_name: &str) -> Self {
        let control_plane = shared_control_plane();
        let client = control_plane
            .client()
            .await
            .expect("client for the local control plane");
        let namespace = namespace_name(test_name);
        let object = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some([(TEST_LABEL.to_owned(), label_value(test_name))].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|err| panic!("failed to create test namespace {namespace}: {err}"));
        Self {
            client,
            namespace,
            control_plane,
        }
    }

    #[must_use]
    pub fn control_plane(&self) -> &'static ControlPlane {
        self.control_plane
    }

    /// A kubeconfig for the control plane, for code under test that reads one (or for kubectl).
    #[must_use]
    pub fn kubeconfig_path(&self) -> &Path {
        self.control_plane.kubeconfig_path()
    }

    /// A namespaced API in this test's namespace.
    #[must_use]
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// Starts the control plane once per process, on a thread of its own with its own runtime, so the
/// test that happens to come first does not own it and no test's runtime is blocked inside an
/// async context.
fn shared_control_plane() -> &'static ControlPlane {
    static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    let started = SHARED.get_or_init(|| {
        std::thread::spawn(|| {
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| format!("failed to build a runtime: {err}"))?;
            runtime
                .block_on(ControlPlane::start())
                .map_err(|err| error_chain(&err))
        })
        .join()
        .unwrap_or_else(|_| Err("the control plane start-up thread panicked".to_owned()))
    });
    match started {
        Ok(control_plane) => control_plane,
        Err(reason) => panic!("the local Kubernetes control plane did not start: {reason}"),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `<test name as a DNS label>-<n>`, at most 63 characters.
fn namespace_name(test_name: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let suffix = format!("-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let mut base = label_value(test_name)
        .to_ascii_lowercase()
        .replace(['_', '.'], "-");
    base.truncate(63 - suffix.len());
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() { "test" } else { base };
    format!("{base}{suffix}")
}

/// The characters a label value may hold, at most 63 of them, starting and ending alphanumeric.
fn label_value(text: &str) -> String {
    let mut value: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    value.truncate(63);
    value
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        let long = "a::very_long::test_name_that_goes_on_and_on_and_on_well_past_sixty_three_characters";
        for name in ["simple", "module::Case_With.Dots", long, "::", "-x-"] {
            let namespace = namespace_name(name);
            assert!(namespace.len() <= 63, "{namespace}");
            assert!(
                namespace
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{namespace}"
            );
            assert!(
                namespace.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{namespace}"
            );
        }
        assert_ne!(namespace_name("same"), namespace_name("same"));
    }
}
