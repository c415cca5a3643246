use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::cli::LogFormat;

/// Logs go to stderr so stdout stays machine-readable. `DRIFTLESS_LOG` takes `tracing` filter
/// directives (`debug`, `driftless=trace,kube=info`); the default is `info`. With
/// `DRIFTLESS_LOG_SPANS=1` every span that closes logs how long it took (where time goes).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("DRIFTLESS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
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
