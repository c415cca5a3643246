//! The `driftless` command. Parsing, logging set-up and exit codes live here; every command's work
//! lives in `commands/`.

mod cli;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // One TLS crypto provider for the whole process (kube and, later, reqwest would otherwise race to
    // pick one and rustls panics when both are compiled in).
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    // AWS-LC seeds its random generator from CPU jitter the first time it is used (~50 ms of CPU
    // on our 2-core machine). The first TLS handshake to the API server would wait for it; seeding
    // now, while configuration is read and Git fetched, takes it off every command's path.
    let random = provider.secure_random;
    std::thread::spawn(move || random.fill(&mut [0_u8; 16]));
    let _ = provider.install_default();
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(commands::EXIT_ERROR)
        }
    }
}
