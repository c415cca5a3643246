//! `driftless plan`: what a change does to every application, for a terminal, a pull-request
//! comment (`--markdown`) or a program (`-o json`).

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Context as _;
use driftless_core::preview::{ApplicationPlan, LiveComparison, ObjectChange, Severity};
use driftless_engine::PlanOptions;

use super::{EXIT_DIFFERENCES, EXIT_ERROR};
use crate::cli::{Common, Forge, OutputFormat, PlanArgs};

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

fn print_changes(changes: &[ObjectChange], indent: &str) {
    for change in changes {
        match change {
            ObjectChange::Added { object, .. } => println!("{indent}+ {object}"),
            ObjectChange::Changed { object, unified, .. } => {
                println!("{indent}~ {object}");
                super::output::print_diff(unified);
            }
            ObjectChange::Removed { object } => println!("{indent}- {object} (would be pruned)"),
        }
    }
}

/// For a terminal: a line per application, problem and object, diffs coloured as
/// `driftless diff` does.
fn print_text(plans: &[ApplicationPlan]) {
    let mut any = false;
    for plan in plans.iter().filter(|plan| plan.is_worth_telling()) {
        any = true;
        if let Some(error) = &plan.error {
            println!("{}: cannot be planned: {error}", plan.application);
        } else {
            let (added, changed, removed) = plan.counts();
            println!(
                "{}: {added} to add, {changed} to change, {removed} to remove",
                plan.application
            );
        }
        for problem in &plan.problems {
            let severity = match problem.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let place = problem.place();
            println!(
                "  {severity} [{}] {}: {place}: {}",
                problem.check, problem.object, problem.message
            );
        }
        print_changes(&plan.changes, "  ");
        match &plan.live {
            Some(LiveComparison::Compared { cluster, changes }) => {
                let (added, changed, removed) = driftless_core::preview::counts(changes);
                println!(
                    "  against the live cluster {cluster}: {added} to create, {changed} to change, {removed} to prune"
                );
                print_changes(changes, "    ");
            }
            Some(LiveComparison::NotCompared { cluster, reason }) => {
                println!("  not compared with the live cluster {cluster}: {reason}");
            }
            None => {}
        }
    }
    if !any {
        println!("No changes.");
    }
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
    pull_request: &driftless_notify::PullRequest,
    github: bool,
    comment: &str,
    plans: &[ApplicationPlan],
) -> anyhow::Result<()> {
    use driftless_core::notifications::CommitState;
    let failed = plans.iter().filter(|plan| plan.fails()).count();
    let changed = plans.iter().filter(|plan| plan.changes_anything()).count();
    let (state, description) = if failed > 0 {
        (
            CommitState::Failure,
            format!("{failed} application(s) fail: errors or denying policies"),
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

/// The schemas --schemas names.
fn schemas(path: &Path) -> anyhow::Result<driftless_core::schema::Schemas> {
    let text = std::fs::read(path).with_context(|| format!("--schemas {}: cannot read", path.display()))?;
    let document: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("--schemas {}: not JSON", path.display()))?;
    let version = document["info"]["version"]
        .as_str()
        .unwrap_or("of --schemas")
        .to_owned();
    driftless_core::schema::Schemas::from_openapi_v2(document, &version)
        .with_context(|| format!("--schemas {}", path.display()))
}

pub async fn run(common: &Common, args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let engine = super::applications::open(common)?;
    let repo = args.repo.as_deref();
    let checkout = repo.map(checkout).transpose()?;
    let schemas = args.schemas.as_deref().map(schemas).transpose()?;
    // Before the work: a missing setting should not cost a whole plan.
    let pull_request = args
        .post
        .map(|forge| {
            let head = head_commit(&args.head, repo)?;
            let github = forge == Forge::Github;
            let found =
                driftless_notify::PullRequest::from_env(github, &head, |name| std::env::var(name).ok())?;
            anyhow::Ok((found, github))
        })
        .transpose()?;
    let options = PlanOptions {
        checkout: checkout
            .as_ref()
            .map(|(url, copies)| (url.as_str(), copies.as_slice())),
        offline: args.offline,
        schemas,
    };
    if let Some((_, copies)) = &checkout
        && !engine.serves_checkout(options.checkout)
    {
        // A CI job pointed at the wrong clone would otherwise report "no changes" forever.
        anyhow::bail!(
            "--repo: no application's source is this clone ({}); check its origin against the repoURLs in {}",
            copies.join(", "),
            common.config.display()
        );
    }
    let plans = engine.plan(&args.base, &args.head, options).await;
    let comment = driftless_core::preview::markdown(&plans, COMMENT_LIMIT);
    if args.markdown {
        print!("{comment}");
    } else if common.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&plans)?);
    } else {
        print_text(&plans);
    }
    if let Some((pull_request, github)) = &pull_request {
        post(pull_request, *github, &comment, &plans).await?;
    }
    Ok(if plans.iter().any(ApplicationPlan::fails) {
        ExitCode::from(EXIT_ERROR)
    } else if plans.iter().any(ApplicationPlan::changes_anything) {
        ExitCode::from(EXIT_DIFFERENCES)
    } else {
        ExitCode::SUCCESS
    })
}
