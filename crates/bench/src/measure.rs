//! Timing, statistics and the report table.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::metrics::Timed;

/// Server-side apply, as in driftless, under a field manager of its own.
pub const KUBECTL_APPLY: [&str; 4] = [
    "apply",
    "--server-side",
    "--field-manager=kubectl-bench",
    "--recursive",
];

/// The peer: kubectl against the control plane, in `namespace`.
pub fn kubectl(kubeconfig: &Path, namespace: &str) -> Command {
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--namespace", namespace]);
    command
}

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

/// The `p`th percentile (0–100) by nearest rank, so p99 of 50 samples is the largest one: with
/// few samples, interpolating would report a latency nobody saw.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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

    /// A timing compared with the peer's, against a ceiling (`why` it is that) rather than a
    /// speed-up.
    pub fn timing_within(
        figure: &str,
        ours: Duration,
        peer: Duration,
        peer_name: &str,
        ceiling: Duration,
        why: &str,
    ) -> Self {
        Self {
            target: format!("≤ {} ({why})", format_duration(ceiling)),
            met: Some(ours <= ceiling),
            ..Self::timing(figure, ours, peer, peer_name, None)
        }
    }

    /// driftless against kubectl on the same work: the time under `ceiling` (with why it is
    /// that), and the write requests, at most `max_writes`.
    pub fn against_kubectl(
        [figure, writes_figure]: [&str; 2],
        ours: Timed,
        peer: Timed,
        peer_name: &str,
        (ceiling, why): (Duration, &str),
        max_writes: u64,
    ) -> [Self; 2] {
        [
            Self::timing_within(figure, ours.elapsed, peer.elapsed, peer_name, ceiling, why),
            Self::writes(
                writes_figure,
                ours.requests.writes,
                peer.requests.writes,
                max_writes,
            ),
        ]
    }

    /// A figure compared with a peer's published one (not measured here); `ratio` as for timings.
    pub fn published(
        figure: &str,
        ours: String,
        peer: &str,
        ratio: Option<f64>,
        target: &str,
        met: Option<bool>,
    ) -> Self {
        Self {
            peer: peer.to_owned(),
            ratio,
            ..Self::figure(figure, ours, target, met)
        }
    }

    /// Write requests, ours and the peer's, against a ceiling.
    pub fn writes(figure: &str, ours: u64, peer: u64, target: u64) -> Self {
        Self::figure(
            figure,
            format!("{ours} (kubectl: {peer})"),
            &target.to_string(),
            Some(ours <= target),
        )
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
    } else if duration < Duration::from_mins(2) {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{:.1} min", duration.as_secs_f64() / 60.0)
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

/// Creates namespaces a few at a time: all at once would run into the API server's in-flight
/// limit, which kube-rs does not retry.
pub async fn create_namespaces(
    client: &kube::Client,
    names: impl IntoIterator<Item = String>,
) -> anyhow::Result<()> {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let api = api.clone();
        tasks.spawn(async move {
            let namespace = k8s_openapi::api::core::v1::Namespace {
                metadata: kube::api::ObjectMeta {
                    name: Some(name),
                    ..Default::default()
                },
                ..Default::default()
            };
            api.create(&kube::api::PostParams::default(), &namespace).await?;
            anyhow::Ok(())
        });
        if tasks.len() >= 16 {
            tasks.join_next().await.expect("a task was spawned")??;
        }
    }
    while let Some(task) = tasks.join_next().await {
        task??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_sample() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(median(samples), Duration::from_millis(51));
    }

    #[test]
    fn percentiles_are_samples_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=50).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(25));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(50));
        assert_eq!(percentile(&samples, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&samples[..1], 99.0), Duration::from_millis(50));
    }
}
