use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Logs go to stderr so stdout stays machine-readable. `DRIFTLESS_LOG` takes `tracing` filter
/// directives (`debug`, `driftless=trace,kube=info`); the default is `info`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("DRIFTLESS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
