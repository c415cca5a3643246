//! `scripts/bench`: starts the local control plane, generates the workloads, runs driftless and
//! the peer (kubectl, plain git) in the same run and prints each figure with its ratio as a
//! Markdown table for BENCHMARKS.md. Figures, not pass/fail tests: a missed target is reported,
//! and the run still succeeds.

mod git_source;
mod measure;
mod metrics;
mod single_app;
mod workload;

use std::path::PathBuf;

use anyhow::Context as _;

const USAGE: &str =
    "usage: driftless-bench --driftless PATH [--objects N] [--applications N] [git] [single-app]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut driftless = None;
    let mut objects = 1000;
    let mut applications = 1000;
    let mut scenarios = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--driftless" => driftless = args.next().map(PathBuf::from),
            "--objects" => objects = args.next().context(USAGE)?.parse()?,
            "--applications" => applications = args.next().context(USAGE)?.parse()?,
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            scenario => scenarios.push(scenario.to_owned()),
        }
    }
    if scenarios.is_empty() {
        scenarios = vec!["git".into(), "single-app".into()];
    }
    let driftless = driftless.context(USAGE)?;
    let mut rows = Vec::new();
    for scenario in &scenarios {
        eprintln!("bench: {scenario}");
        match scenario.as_str() {
            "git" => rows.extend(git_source::run(applications).await?),
            "single-app" => {
                let control_plane = driftless_testenv::ControlPlane::start().await?;
                rows.extend(single_app::run(&control_plane, &driftless, objects).await?);
            }
            other => anyhow::bail!("unknown scenario {other:?}; {USAGE}"),
        }
    }
    println!("{}", measure::render(&rows));
    Ok(())
}
