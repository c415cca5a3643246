//! `driftless quickstart`: a real control plane on this machine, the examples in a local Git
//! repository, and driftless syncing and then serving them.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use driftless_engine::{Controller, Engine, EngineOptions, SyncOptions};
use driftless_localcluster::ControlPlane;

use super::applications::{print_report, print_status};
use crate::cli::OutputFormat;

/// The applications the quickstart serves: (name, path in the examples, namespace).
const APPLICATIONS: &[(&str, &str, &str)] = &[
    ("guestbook", "guestbook/plain", "guestbook"),
    (
        "guestbook-dev",
        "guestbook/kustomize/overlays/dev",
        "guestbook-dev",
    ),
    (
        "guestbook-prod",
        "guestbook/kustomize/overlays/prod",
        "guestbook-prod",
    ),
];

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "driftless quickstart")
        .env("GIT_AUTHOR_EMAIL", "quickstart@driftless.invalid")
        .env("GIT_COMMITTER_NAME", "driftless quickstart")
        .env("GIT_COMMITTER_EMAIL", "quickstart@driftless.invalid")
        .status()
        .context("failed to run git (install it with `apt-get install git`)")?;
    if !status.success() {
        bail!("git {args:?} failed with {status}");
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn config_yaml(kubeconfig: &Path, repo_url: &str, data_dir: &Path) -> String {
    let mut yaml = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\ndataDir: {}\nclusters:\n  - name: local\n    kubeconfig: {}\napplications:\n",
        data_dir.display(),
        kubeconfig.display()
    );
    for (name, path, namespace) in APPLICATIONS {
        yaml.push_str(&format!(
            "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{repo_url}', revision: main, path: {path} }}\n      destination: {{ cluster: local, namespace: {namespace} }}\n      syncPolicy:\n        automated: {{ prune: true, selfHeal: true }}\n        interval: 30s\n        syncOptions: [CreateNamespace=true]\n"
        ));
    }
    yaml
}

/// Serves the API and the web UI on loopback (port 8080 when free) with a fresh admin token,
/// and says where to open it (opening it when there is a desktop to open it on).
async fn open_ui(controller: &Arc<Controller>, engine: &Engine) -> anyhow::Result<()> {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:8080").await {
        Ok(listener) => listener,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let url = format!("http://{}/ui/", listener.local_addr()?);
    let grant = driftless_core::access::Grant {
        role: driftless_core::access::Role::Admin,
        applications: Vec::new(),
        labels: std::collections::BTreeMap::new(),
    };
    let now = super::tokens::now_millis();
    let name = format!("quickstart-{now}");
    let token = engine.store().create_token(&name, &grant, now)?;
    tokio::spawn(driftless_server::serve_tcp(
        Arc::clone(controller),
        listener,
        std::future::pending(),
    ));
    println!("\nOpen the web UI at {url} and sign in with this admin token (shown once):\n  {token}");
    if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        // Best effort: without a desktop browser the URL above is the way in.
        let _ = Command::new("xdg-open")
            .arg(&url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    Ok(())
}

pub async fn run(exit_when_done: bool, examples: &Path) -> anyhow::Result<ExitCode> {
    if !examples.join("guestbook").is_dir() {
        bail!(
            "{} holds no guestbook example; run from the repository root or pass --examples DIR",
            examples.display()
        );
    }
    println!("Starting a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)...");
    let control_plane = ControlPlane::start()
        .await
        .context("failed to start the local control plane")?;
    println!("  API server:  {}", control_plane.server_url());
    println!("  kubeconfig:  {}", control_plane.kubeconfig_path().display());

    // Everything lives in the control plane's private directory and goes with it.
    let workspace = control_plane.dir().join("quickstart");
    let repo = workspace.join("repo");
    copy_tree(examples, &repo).context("failed to copy the examples")?;
    git(&repo, &["init", "--quiet", "--initial-branch=main"])?;
    git(&repo, &["add", "--all"])?;
    git(&repo, &["commit", "--quiet", "-m", "Examples"])?;
    let repo_url = format!("file://{}", repo.display());
    println!(
        "Serving {} from a local Git repository: {repo_url}",
        examples.display()
    );

    let config_path = workspace.join("driftless.yaml");
    std::fs::write(
        &config_path,
        config_yaml(
            control_plane.kubeconfig_path(),
            &repo_url,
            &workspace.join("state"),
        ),
    )?;
    let config = driftless_config::load(&config_path)?;
    let engine = Arc::new(Engine::new(
        config,
        EngineOptions {
            data_dir: workspace.join("state"),
            ..EngineOptions::default()
        },
    )?);

    for (name, _, _) in APPLICATIONS {
        println!("\n$ driftless sync {name} --prune");
        let report = engine
            .sync(
                name,
                SyncOptions {
                    prune: true,
                    ..SyncOptions::default()
                },
            )
            .await?;
        print_report(OutputFormat::Text, &report)?;
    }
    println!("\n$ driftless status");
    print_status(
        &engine,
        APPLICATIONS
            .iter()
            .map(|(name, _, _)| (*name).to_owned())
            .collect(),
        OutputFormat::Text,
    )
    .await?;
    println!(
        "\nThis control plane has no scheduler and no kubelet, so Pods never run: Deployments stay \
         Progressing here; on a real cluster they become Healthy."
    );
    if exit_when_done {
        println!("Stopping the control plane.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\ndriftless now serves these applications (every 30 s, and it reverts drift). Try, in another shell:"
    );
    println!(
        "  KUBECONFIG={} kubectl -n guestbook-prod get all",
        control_plane.kubeconfig_path().display()
    );
    println!(
        "  driftless --config {} status   (or: diff guestbook-prod, history guestbook-prod)",
        config_path.display()
    );
    println!("  commit a change in {} and watch it arrive", repo.display());
    let controller = Controller::new(Arc::clone(&engine), 4);
    open_ui(&controller, &engine).await?;
    println!("Ctrl-C stops driftless and the control plane.");
    controller
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    println!("Stopping the control plane.");
    Ok(ExitCode::SUCCESS)
}
