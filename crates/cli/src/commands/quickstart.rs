//! `driftless quickstart`: a real control plane on this machine and driftless talking to it.
//! Grows into the full GitOps quickstart as the engine lands.

use std::process::ExitCode;

use anyhow::Context as _;
use driftless_testenv::ControlPlane;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};

const DEMO_NAMESPACE: &str = "default";
const DEMO_CONFIG_MAP: &str = "driftless-quickstart";

pub async fn run(exit_when_done: bool) -> anyhow::Result<ExitCode> {
    println!("Starting a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)...");
    let control_plane = ControlPlane::start()
        .await
        .context("failed to start the local control plane")?;
    println!("  API server:  {}", control_plane.server_url());
    println!("  kubeconfig:  {}", control_plane.kubeconfig_path().display());

    let client = control_plane.client().await.context("failed to connect")?;
    let version = client
        .apiserver_version()
        .await
        .context("failed to read the server version")?;
    println!(
        "Connected: Kubernetes {} ({})",
        version.git_version, version.platform
    );

    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let names: Vec<_> = namespaces
        .items
        .iter()
        .filter_map(|ns| ns.metadata.name.as_deref())
        .collect();
    println!("Namespaces: {}", names.join(", "));

    println!(
        "Server-side applying ConfigMap {DEMO_NAMESPACE}/{DEMO_CONFIG_MAP} as field manager \"driftless\"..."
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(client, DEMO_NAMESPACE);
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": DEMO_CONFIG_MAP, "labels": { "app.kubernetes.io/managed-by": "driftless" } },
        "data": { "message": "hello from driftless" }
    });
    let applied = config_maps
        .patch(
            DEMO_CONFIG_MAP,
            &PatchParams::apply("driftless"),
            &Patch::Apply(&manifest),
        )
        .await
        .context("server-side apply failed")?;
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|entry| {
            Some(format!(
                "{} ({})",
                entry.manager?,
                entry.operation.unwrap_or_default()
            ))
        })
        .collect();
    println!("  applied; field managers: {}", managers.join(", "));

    if exit_when_done {
        println!("Stopping the control plane.");
    } else {
        println!(
            "Try: KUBECONFIG={} kubectl get configmaps",
            control_plane.kubeconfig_path().display()
        );
        println!("The control plane runs until you press Ctrl-C.");
        tokio::signal::ctrl_c()
            .await
            .context("failed to wait for Ctrl-C")?;
        println!("Stopping the control plane.");
    }
    drop(control_plane);
    Ok(ExitCode::SUCCESS)
}
