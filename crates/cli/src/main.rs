//! The `driftless` command. Parsing, logging set-up and exit codes live here; every command's work
//! lives in `commands/`.

mod cli;
mod commands;
mod logging;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // Everything driftless writes — the data directory, Git mirrors (git inherits this), kept
    // chart archives, renderers' private copies — is for its own user only: the mirrors hold
    // other teams' repositories and the store their history.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
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
    logging::init(cli.log_format, cli.verbose);
    match commands::run(&cli.common, cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::from(commands::EXIT_ERROR)
        }
    }
}

/// The error and its causes, each cause only if the message so far does not already say it: our
/// errors' messages include their source's, so anyhow's `{:#}` said everything two or three times.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;

    /// Like our errors: the message includes the source's, which is also its `source()`.
    #[derive(Debug, thiserror::Error)]
    #[error("deployments in namespace web: request failed: {0}")]
    struct Failed(#[source] std::io::Error);

    #[test]
    fn each_cause_is_said_once() {
        let err = anyhow::Error::new(Failed(std::io::Error::other("connection reset"))).context("big");
        assert_eq!(
            describe(&err),
            "big: deployments in namespace web: request failed: connection reset"
        );
        let bare = anyhow::Error::new(std::io::Error::other("permission denied")).context("reading x.yaml");
        assert_eq!(describe(&bare), "reading x.yaml: permission denied");
    }
}
