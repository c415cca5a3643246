//! `scripts/bench`: starts the local control plane, generates the workloads, runs driftless and
//! the peer (kubectl, plain git) in the same run and prints each figure with its ratio as a
//! Markdown table for BENCHMARKS.md. Figures, not pass/fail tests: a missed target is reported,
//! and the run still succeeds.

mod drift;
mod fleet;
mod git_source;
mod measure;
mod metrics;
mod monorepo;
mod push;
mod serve;
mod single_app;
mod ui;
mod workload;

use std::path::PathBuf;

use anyhow::Context as _;

const USAGE: &str = "usage: driftless-bench --driftless PATH [--objects N] [--applications N] [git] [single-app] [fleet] [drift] [monorepo] [push] [ui]";

/// Scenarios that run on one fleet of applications served by one `driftless serve`.
const ON_THE_FLEET: [&str; 5] = ["fleet", "drift", "monorepo", "push", "ui"];

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
        scenarios = ["git", "single-app", "fleet", "drift", "monorepo", "push", "ui"]
            .map(String::from)
            .to_vec();
    }
    anyhow::ensure!(applications > 0, "--applications must be at least 1");
    let driftless = driftless.context(USAGE)?;
    let mut rows = Vec::new();
    let mut fleet = None;
    for scenario in &scenarios {
        eprintln!("bench: {scenario}");
        if ON_THE_FLEET.contains(&scenario.as_str()) && fleet.is_none() {
            fleet = Some(fleet::Fleet::start(&driftless, applications).await?);
        }
        match (scenario.as_str(), &fleet) {
            ("git", _) => rows.extend(git_source::run(applications).await?),
            ("single-app", _) => {
                let control_plane = driftless_localcluster::ControlPlane::start().await?;
                rows.extend(single_app::run(&control_plane, &driftless, objects).await?);
            }
            ("fleet", Some(fleet)) => rows.extend(fleet::run(fleet).await?),
            ("drift", Some(fleet)) => rows.extend(drift::run(fleet).await?),
            ("monorepo", Some(fleet)) => rows.extend(monorepo::run(fleet).await?),
            ("push", Some(fleet)) => rows.extend(push::run(fleet).await?),
            ("ui", Some(fleet)) => rows.extend(ui::run(fleet).await?),
            (other, _) => anyhow::bail!("unknown scenario {other:?}; {USAGE}"),
        }
    }
    if let Some(fleet) = fleet {
        fleet.stop().await?;
    }
    println!("{}", measure::render(&rows));
    Ok(())
}
