//! `driftless plan`: what a change does to every application, for a terminal, a pull-request
//! comment (`--markdown`) or a program (`-o json`).

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context as _;
use driftless_core::preview::{ApplicationPlan, ObjectChange};

use super::{EXIT_DIFFERENCES, EXIT_ERROR};
use crate::cli::{Common, OutputFormat};

/// GitHub's limit for a comment body.
const COMMENT_LIMIT: usize = 65_536;

/// The URL to read for `--repo PATH`, and the URLs that clone stands for.
fn checkout(path: &Path) -> anyhow::Result<(String, Vec<String>)> {
    let path = path
        .canonicalize()
        .with_context(|| format!("--repo {}: no such directory", path.display()))?;
    let url = format!("file://{}", path.display());
    let origin = Command::new("git")
        .arg("-C")
        .arg(&path)
        .args(["config", "--get", "remote.origin.url"])
        .output()
        .context("failed to run git (install it with `apt-get install git`)")?;
    let mut copies = vec![url.clone()];
    let origin = String::from_utf8_lossy(&origin.stdout).trim().to_owned();
    if !origin.is_empty() {
        copies.push(origin);
    }
    Ok((url, copies))
}

/// For a terminal: a line per application and object, diffs coloured as `driftless diff` does.
fn print_text(plans: &[ApplicationPlan]) {
    let mut any = false;
    for plan in plans {
        if let Some(error) = &plan.error {
            println!("{}: cannot be planned: {error}", plan.application);
            any = true;
            continue;
        }
        if plan.changes.is_empty() {
            continue;
        }
        any = true;
        let (added, changed, removed) = plan.counts();
        println!(
            "{}: {added} to add, {changed} to change, {removed} to remove",
            plan.application
        );
        for change in &plan.changes {
            match change {
                ObjectChange::Added { object, .. } => println!("  + {object}"),
                ObjectChange::Changed { object, unified, .. } => {
                    println!("  ~ {object}");
                    super::output::print_diff(unified);
                }
                ObjectChange::Removed { object } => println!("  - {object} (would be pruned)"),
            }
        }
    }
    if !any {
        println!("No changes.");
    }
}

pub async fn run(
    common: &Common,
    base: &str,
    head: &str,
    repo: Option<&Path>,
    markdown: bool,
) -> anyhow::Result<ExitCode> {
    let engine = super::applications::open(common)?;
    let checkout = repo.map(checkout).transpose()?;
    let plans = engine
        .plan(
            base,
            head,
            checkout
                .as_ref()
                .map(|(url, copies)| (url.as_str(), copies.as_slice())),
        )
        .await;
    if markdown {
        print!("{}", driftless_core::preview::markdown(&plans, COMMENT_LIMIT));
    } else if common.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        print_text(&plans);
    }
    Ok(if plans.iter().any(|plan| plan.error.is_some()) {
        ExitCode::from(EXIT_ERROR)
    } else if plans.iter().any(|plan| !plan.changes.is_empty()) {
        ExitCode::from(EXIT_DIFFERENCES)
    } else {
        ExitCode::SUCCESS
    })
}
