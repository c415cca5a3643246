mod applications;
mod completions;
pub mod import;
mod output;
mod plan;
mod quickstart;
mod tokens;

use std::process::ExitCode;

use crate::cli::{Command, Common};

/// Exit statuses, as `kubectl diff` uses them: 0 success (or in sync), 1 differences found, 2 and
/// above for errors, including a failed sync.
pub const EXIT_DIFFERENCES: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

pub fn run(common: &Common, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Completions { shell } => Ok(completions::run(shell)),
        Command::Quickstart { exit, examples } => runtime()?.block_on(quickstart::run(exit, &examples)),
        Command::Plan { args } => runtime()?.block_on(plan::run(common, &args)),
        Command::Import { args } => runtime()?.block_on(import::run(common, &args)),
        other => runtime()?.block_on(applications::run(common, other)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
