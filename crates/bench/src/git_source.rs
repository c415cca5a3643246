//! The Git source: driftless's mirror + in-memory reads against what a clone-and-checkout peer
//! (Argo CD's repo-server, Flux's source-controller) does for the same repository, over `git daemon`.

use std::process::Command;
use std::time::Instant;

use driftless_git::Mirrors;
use driftless_testenv::git::{GitDaemon, TestRepo, git};

use crate::measure::{Row, format_duration, median, time_command};
use crate::workload;

pub async fn run(applications: usize) -> anyhow::Result<Vec<Row>> {
    let repo = TestRepo::new();
    workload::write_applications(&repo, applications);
    let commit = repo.commit("workload");
    let daemon = GitDaemon::start(repo.root());
    let url = daemon.url("origin.git");
    let scratch = tempfile::tempdir()?;
    let mut rows = Vec::new();

    let mirrors = Mirrors::new(scratch.path().join("mirrors"), Vec::new());
    let started = Instant::now();
    let resolved = mirrors.fetch_and_resolve(&url, "main").await?;
    let ours_cold = started.elapsed();
    anyhow::ensure!(
        resolved.as_str() == commit,
        "resolved {resolved} instead of {commit}"
    );
    let clone = scratch.path().join("clone");
    let peer_cold = time_command(Command::new("git").args(["clone", "--quiet", &url]).arg(&clone))?;
    rows.push(Row::timing(
        &format!("git: first fetch of a {applications}-application repository"),
        ours_cold,
        peer_cold,
        "git clone with checkout",
        None,
    ));

    let mut ours = Vec::new();
    let mut peer = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        mirrors.fetch_and_resolve(&url, "main").await?;
        ours.push(started.elapsed());
        let started = Instant::now();
        git(&clone, &["fetch", "--quiet", "origin"]);
        git(&clone, &["checkout", "--quiet", "--force", "FETCH_HEAD"]);
        peer.push(started.elapsed());
    }
    rows.push(Row::timing(
        "git: fetch with nothing new (median of 5)",
        median(ours),
        median(peer),
        "git fetch + checkout",
        None,
    ));

    let middle = format!("apps/{}", workload::application_name(applications / 2));
    let mut ours = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let tree = mirrors.read_tree(&url, &resolved, &middle).await?;
        anyhow::ensure!(tree.paths_under("").count() > 0, "nothing read under {middle}");
        ours.push(started.elapsed());
    }
    rows.push(Row::figure(
        "git: read one application's path at a commit (no work tree; median of 5)",
        format_duration(median(ours)),
        "",
        None,
    ));
    let started = Instant::now();
    for index in 0..applications {
        let path = format!("apps/{}", workload::application_name(index));
        mirrors.read_tree(&url, &resolved, &path).await?;
    }
    rows.push(Row::figure(
        &format!("git: read all {applications} application paths, one after another"),
        format_duration(started.elapsed()),
        "",
        None,
    ));
    Ok(rows)
}
