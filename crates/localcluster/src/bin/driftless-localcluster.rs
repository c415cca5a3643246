//! Starts a local control plane by hand, for debugging:
//!
//!   driftless-localcluster                 start it, print its kubeconfig path, wait for Ctrl-C
//!   driftless-localcluster -- CMD ARGS...  start it, run CMD with KUBECONFIG set, stop it, exit as CMD did
//!
//! On start it prints one line, `kubeconfig=<path> dir=<dir>`, to stdout.

use std::process::ExitCode;

use driftless_localcluster::ControlPlane;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let command: Vec<String> = std::env::args().skip_while(|arg| arg != "--").skip(1).collect();
    let control_plane = match ControlPlane::start().await {
        Ok(control_plane) => control_plane,
        Err(err) => {
            eprintln!("driftless-localcluster: {err}");
            return ExitCode::from(2);
        }
    };
    println!(
        "kubeconfig={} dir={}",
        control_plane.kubeconfig_path().display(),
        control_plane.dir().display()
    );
    let Some((program, args)) = command.split_first() else {
        eprintln!(
            "driftless-localcluster: control plane at {}; Ctrl-C stops it",
            control_plane.server_url()
        );
        let _ = tokio::signal::ctrl_c().await;
        return ExitCode::SUCCESS;
    };
    let status = tokio::process::Command::new(program)
        .args(args)
        .env("KUBECONFIG", control_plane.kubeconfig_path())
        .status()
        .await;
    match status {
        Ok(status) => ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)),
        Err(err) => {
            eprintln!("driftless-localcluster: failed to run {program}: {err}");
            ExitCode::from(2)
        }
    }
}
