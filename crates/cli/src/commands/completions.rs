use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(shell: Shell) -> ExitCode {
    clap_complete::generate(shell, &mut Cli::command(), "driftless", &mut std::io::stdout());
    ExitCode::SUCCESS
}
