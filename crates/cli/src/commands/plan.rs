//! `driftless plan`: what a change does to every application, for a terminal, a pull-request
//! comment (`--markdown`) or a program (`-o json`).

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context as _;
use driftless_core::preview::{ApplicationPlan, ObjectChange};

use super::{EXIT_DIFFERENCES, EXIT_ERROR};
use crate::cli::{Common, Forge, OutputFormat};

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

/// The two sides of a plan.
pub struct Refs<'a> {
    pub base: &'a str,
    pub head: &'a str,
}

/// The commit the plan's status goes on: `DRIFTLESS_HEAD_SHA`, else `head` resolved in the
/// checkout.
fn head_commit(head: &str, repo: Option<&Path>) -> anyhow::Result<String> {
    if let Ok(sha) = std::env::var("DRIFTLESS_HEAD_SHA") {
        return Ok(sha);
    }
    let repo = repo.context("--post needs the head commit: set DRIFTLESS_HEAD_SHA or pass --repo")?;
    let output = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "rev-parse",
            "--verify",
            "--end-of-options",
            &format!("{head}^{{commit}}"),
        ])
        .output()
        .context("failed to run git (install it with `apt-get install git`)")?;
    anyhow::ensure!(
        output.status.success(),
        "{head} is not a commit in {}",
        repo.display()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

async fn post(
    pull_request: &driftless_server::review::PullRequest,
    github: bool,
    comment: &str,
    plans: &[ApplicationPlan],
) -> anyhow::Result<()> {
    use driftless_core::notifications::CommitState;
    let failed = plans.iter().filter(|plan| plan.error.is_some()).count();
    let changed = plans.iter().filter(|plan| !plan.changes.is_empty()).count();
    let (state, description) = if failed > 0 {
        (
            CommitState::Failure,
            format!("{failed} application(s) cannot be planned"),
        )
    } else if changed > 0 {
        (CommitState::Success, format!("{changed} application(s) change"))
    } else {
        (CommitState::Success, "no changes".to_owned())
    };
    let created = pull_request.post(comment, state, &description).await?;
    let posted = if created { "posted" } else { "updated" };
    let on = if github { "pull request" } else { "merge request" };
    eprintln!("plan {posted} on the {on}");
    Ok(())
}

pub async fn run(
    common: &Common,
    refs: Refs<'_>,
    repo: Option<&Path>,
    markdown: bool,
    forge: Option<Forge>,
) -> anyhow::Result<ExitCode> {
    let engine = super::applications::open(common)?;
    let checkout = repo.map(checkout).transpose()?;
    // Before the work: a missing setting should not cost a whole plan.
    let pull_request = forge
        .map(|forge| {
            let head = head_commit(refs.head, repo)?;
            let github = forge == Forge::Github;
            let found = driftless_server::review::PullRequest::from_env(github, &head, |name| {
                std::env::var(name).ok()
            })?;
            anyhow::Ok((found, github))
        })
        .transpose()?;
    let plans = engine
        .plan(
            refs.base,
            refs.head,
            checkout
                .as_ref()
                .map(|(url, copies)| (url.as_str(), copies.as_slice())),
        )
        .await;
    if let Some((_, copies)) = &checkout
        && plans.is_empty()
    {
        // A CI job pointed at the wrong clone would otherwise report "no changes" forever.
        anyhow::bail!(
            "--repo: no application's source is this clone ({}); check its origin against the repoURLs in {}",
            copies.join(", "),
            common.config.display()
        );
    }
    let comment = driftless_core::preview::markdown(&plans, COMMENT_LIMIT);
    if markdown {
        print!("{comment}");
    } else if common.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        print_text(&plans);
    }
    if let Some((pull_request, github)) = &pull_request {
        post(pull_request, *github, &comment, &plans).await?;
    }
    Ok(if plans.iter().any(|plan| plan.error.is_some()) {
        ExitCode::from(EXIT_ERROR)
    } else if plans.iter().any(|plan| !plan.changes.is_empty()) {
        ExitCode::from(EXIT_DIFFERENCES)
    } else {
        ExitCode::SUCCESS
    })
}
