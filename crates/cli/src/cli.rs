use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// GitOps continuous delivery for Kubernetes: keeps clusters equal to what Git declares.
#[derive(Debug, Parser)]
#[command(name = "driftless", version, about, propagate_version = true)]
pub struct Cli {
    /// How log lines on stderr are written.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DRIFTLESS_LOG_FORMAT")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a local Kubernetes control plane and show driftless working against it.
    ///
    /// Needs the control-plane binaries that `scripts/testenv` builds.
    Quickstart {
        /// Stop the control plane and exit when done instead of waiting for Ctrl-C.
        #[arg(long)]
        exit: bool,
    },
    /// Print a shell completion script to stdout.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}
