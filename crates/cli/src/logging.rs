use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::cli::LogFormat;

/// Logs go to stderr so stdout stays machine-readable. `DRIFTLESS_LOG` (or `RUST_LOG`) takes
/// `tracing` filter directives (`debug`, `driftless=trace,kube=info`). With
/// `DRIFTLESS_LOG_SPANS=1` every span that closes logs how long it took (where time goes).
pub fn init(format: LogFormat, verbose: u8) {
    let filter = ["DRIFTLESS_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|variable| EnvFilter::try_from_env(variable).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter(verbose)));
    let spans = if std::env::var_os("DRIFTLESS_LOG_SPANS").is_some() {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(spans)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Without `-v` only driftless's own crates log (every target of ours starts with `driftless`):
/// a library's view of a failure (`tower_http … on_failure … 500`, `kube_client … failed with
/// status 500`, a control plane answering 500 while it starts) is something driftless already
/// turns into the one message the user reads, so by default it would only say it again, worse.
fn default_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "off,driftless=info",
        1 => "warn,driftless=info",
        2 => "info",
        _ => "debug",
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::EnvFilter;

    use super::default_filter;

    #[test]
    fn every_default_filter_parses() {
        for verbose in 0..=3 {
            EnvFilter::try_new(default_filter(verbose)).expect("a valid filter");
        }
    }
}
