//! Generated manifests: many small applications in one repository, or one large application.

use std::fmt::Write as _;

use driftless_testenv::git::TestRepo;

pub fn application_name(index: usize) -> String {
    format!("app-{index:04}")
}

/// The file beside the data directory holding the generic webhook's secret.
pub const WEBHOOK_SECRET_FILE: &str = "webhook-secret";
pub const WEBHOOK_SECRET: &str = "bench webhook secret";

pub fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels: {{tier: bench}}\ndata:\n  setting: \"{value}\"\n  other: \"constant\"\n"
    )
}

pub fn deployment(name: &str, image_tag: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{tier: bench}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: main\n          image: registry.invalid/bench:{image_tag}\n          ports: [{{containerPort: 8080, protocol: TCP}}]\n"
    )
}

/// `apps/app-NNNN/` with four objects each (three ConfigMaps — config, settings, flags — and a
/// Deployment).
pub fn write_applications(repo: &TestRepo, count: usize) {
    for index in 0..count {
        let name = application_name(index);
        repo.write(
            &format!("apps/{name}/config.yaml"),
            &config_map(&format!("{name}-config"), "1"),
        )
        .write(
            &format!("apps/{name}/settings.yaml"),
            &config_map(&format!("{name}-settings"), "1"),
        )
        .write(
            &format!("apps/{name}/flags.yaml"),
            &config_map(&format!("{name}-flags"), "1"),
        )
        .write(&format!("apps/{name}/deployment.yaml"), &deployment(&name, "1"));
    }
}

/// One application of `objects` objects under `path`, half ConfigMaps and half Deployments, in
/// one multi-document file per hundred objects.
pub fn write_large_application(repo: &TestRepo, path: &str, objects: usize, value: &str) {
    let mut file = String::new();
    for index in 0..objects {
        let name = format!("object-{index:05}");
        if index % 2 == 0 {
            file.push_str(&config_map(&name, value));
        } else {
            file.push_str(&deployment(&name, "1"));
        }
        file.push_str("---\n");
        if index % 100 == 99 || index + 1 == objects {
            repo.write(&format!("{path}/part-{:03}.yaml", index / 100), &file);
            file.clear();
        }
    }
}

/// The configuration file for `driftless` with one cluster and the given applications (name, repo
/// URL, path, namespace), all with `sync_policy` when given (a YAML flow mapping).
pub fn config(
    kubeconfig: &std::path::Path,
    data_dir: &std::path::Path,
    applications: &[(String, String, String, String)],
    sync_policy: Option<&str>,
) -> String {
    // The generic push webhook's secret sits beside the data directory (the push scenario).
    let mut out = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: {}\nclusters:\n  - name: local\n    kubeconfig: {}\nwebhooks:\n  generic: {{ file: '{}' }}\napplications:\n",
        data_dir.display(),
        kubeconfig.display(),
        data_dir.with_file_name(WEBHOOK_SECRET_FILE).display()
    );
    for (name, url, path, namespace) in applications {
        let _ = write!(
            out,
            "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{url}', path: {path} }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n"
        );
        if let Some(policy) = sync_policy {
            let _ = writeln!(out, "      syncPolicy: {policy}");
        }
    }
    out
}
