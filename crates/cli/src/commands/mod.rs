mod completions;
mod quickstart;

use std::process::ExitCode;

use crate::cli::Command;

/// Exit status for an error, as `kubectl diff` does: 0 success, 1 "differences found" (later
/// commands), 2 and above for errors.
pub const EXIT_ERROR: u8 = 2;

#[expect(
    clippy::needless_pass_by_value,
    reason = "commands will own their arguments as they grow"
)]
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Completions { shell } => Ok(completions::run(shell)),
        Command::Quickstart { exit } => runtime()?.block_on(quickstart::run(exit)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
