//! Printing results as text tables, JSON or YAML.

use std::io::IsTerminal as _;

use comfy_table::{Table, presets};
use serde::Serialize;

use crate::cli::OutputFormat;

/// Prints `value` as JSON or YAML; `false` when the format is text (the caller prints a table).
pub fn structured<T: Serialize>(format: OutputFormat, value: &T) -> anyhow::Result<bool> {
    match format {
        OutputFormat::Text => Ok(false),
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(value)?);
            Ok(true)
        }
        OutputFormat::Yaml => {
            print!("{}", serde_saphyr::to_string(value)?);
            Ok(true)
        }
    }
}

pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(header.iter().copied());
    table
}

/// Colours unified-diff lines when stdout is a terminal.
pub fn print_diff(text: &str) {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for line in text.lines() {
        let code = match line.as_bytes().first() {
            _ if !colour => None,
            Some(b'+') if !line.starts_with("+++") => Some("32"),
            Some(b'-') if !line.starts_with("---") => Some("31"),
            Some(b'@') => Some("36"),
            _ => None,
        };
        match code {
            Some(code) => println!("\x1b[{code}m{line}\x1b[0m"),
            None => println!("{line}"),
        }
    }
}

pub fn short(revision: &str) -> &str {
    &revision[..revision.len().min(7)]
}

/// Unix milliseconds as an RFC 3339 time (UTC, seconds).
pub fn time(millis: i64) -> String {
    let Ok(millis) = u64::try_from(millis) else {
        return "-".to_owned();
    };
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis))
        .to_string()
}

/// Shows a sync's progress on stderr: a spinner on a terminal, one line per step otherwise
/// (logs, CI). Results still go to stdout.
pub fn progress() -> driftless_engine::ProgressSink {
    use driftless_engine::SyncProgress;
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner().with_finish(indicatif::ProgressFinish::AndClear);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    driftless_engine::ProgressSink(std::sync::Arc::new(move |event| {
        let line = match event {
            // Of the wave, not of what is applied: unchanged objects are counted in the summary.
            SyncProgress::Wave { number, objects } => format!("wave {number}: {objects} object(s)"),
            SyncProgress::Applied { object, action } => format!("{object}: {action:?}"),
            SyncProgress::Waiting { message } => format!("waiting for {message}"),
            SyncProgress::Pruned { object } => format!("{object}: pruned"),
        };
        match &spinner {
            Some(bar) => bar.set_message(line),
            None => eprintln!("{line}"),
        }
    }))
}
