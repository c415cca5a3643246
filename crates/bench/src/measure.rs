//! Timing, statistics and the report table.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a command to completion and returns how long it took; fails with its output otherwise.
pub fn time_command(command: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let output = command.output()?;
    let elapsed = started.elapsed();
    // `kubectl diff` and `driftless diff` exit 1 when they find differences; 2+ is an error.
    if output.status.code().is_none_or(|code| code > 1) {
        anyhow::bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(elapsed)
}

/// The median of several runs.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// One line of the report: what driftless did, what the peer did, and the target.
pub struct Row {
    pub figure: String,
    pub driftless: String,
    pub peer: String,
    /// peer / driftless for times (higher is better for driftless).
    pub ratio: Option<f64>,
    pub target: String,
    pub met: Option<bool>,
}

impl Row {
    /// A timing compared with the peer's; `min_ratio` is the target speed-up.
    pub fn timing(
        figure: &str,
        ours: Duration,
        peer: Duration,
        peer_name: &str,
        min_ratio: Option<f64>,
    ) -> Self {
        let ratio = peer.as_secs_f64() / ours.as_secs_f64().max(1e-9);
        Self {
            figure: figure.to_owned(),
            driftless: format_duration(ours),
            peer: format!("{} ({peer_name})", format_duration(peer)),
            ratio: Some(ratio),
            target: min_ratio.map_or_else(String::new, |r| format!("≥ {r}×")),
            met: min_ratio.map(|r| ratio >= r),
        }
    }

    /// A figure of ours alone, with a target check.
    pub fn figure(figure: &str, ours: String, target: &str, met: Option<bool>) -> Self {
        Self {
            figure: figure.to_owned(),
            driftless: ours,
            peer: String::new(),
            ratio: None,
            target: target.to_owned(),
            met,
        }
    }
}

pub fn format_duration(duration: Duration) -> String {
    if duration < Duration::from_millis(10) {
        format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
    } else if duration < Duration::from_secs(10) {
        format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// A Markdown table, pasted as-is into BENCHMARKS.md.
pub fn render(rows: &[Row]) -> String {
    let mut out =
        String::from("| figure | driftless | peer | ratio | target | met |\n|---|---|---|---|---|---|\n");
    for row in rows {
        let ratio = row.ratio.map_or_else(String::new, |r| format!("{r:.1}×"));
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} | {} | {met} |",
            row.figure, row.driftless, row.peer, row.target
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_sample() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(median(samples), Duration::from_millis(51));
    }
}
