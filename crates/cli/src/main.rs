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
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
