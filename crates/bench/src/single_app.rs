//! Scenario 1: one application of many objects — first apply, no-op re-sync and diff by driftless
//! against `kubectl apply --server-side` / `kubectl diff --server-side` of the same manifests, and
//! the write requests each makes (counted by the API server itself); then the plan of a proposed
//! change against the live cluster (`driftless plan`) against what a CI job without driftless
//! runs (`kubectl diff --server-side` of the branch's manifests).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use driftless_localcluster::ControlPlane;
use driftless_testenv::git::TestRepo;

use crate::measure::{KUBECTL_APPLY, Row, create_namespaces, kubectl, median};
use crate::{metrics, workload};

const OURS: &str = "bench-driftless";
const PEER: &str = "bench-kubectl";

/// The two tools pointed at the same manifests, in two namespaces of one control plane.
struct Contenders {
    kubeconfig: PathBuf,
    manifests: PathBuf,
    driftless: PathBuf,
    config: PathBuf,
    client: kube::Client,
}

impl Contenders {
    fn kubectl(&self, args: &[&str]) -> Command {
        let mut command = kubectl(&self.kubeconfig, PEER);
        command.args(args).arg("-f").arg(&self.manifests);
        command
    }

    fn driftless(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.driftless);
        command.args(args).arg("--config").arg(&self.config);
        command
    }

    /// Runs the peer then driftless; their times and write requests.
    async fn both(&self, peer: &[&str], ours: &[&str]) -> anyhow::Result<[(Duration, u64); 2]> {
        let peer = metrics::timed_command(&self.client, &mut self.kubectl(peer)).await?;
        let ours = metrics::timed_command(&self.client, &mut self.driftless(ours)).await?;
        Ok([peer, ours].map(|timed| (timed.elapsed, timed.requests.writes)))
    }

    /// The median time of each over `runs`, and the write requests of the last run.
    async fn repeated(
        &self,
        runs: usize,
        peer: &[&str],
        ours: &[&str],
    ) -> anyhow::Result<[(Duration, u64); 2]> {
        let (mut peer_times, mut ours_times, mut writes) = (Vec::new(), Vec::new(), (0, 0));
        for _ in 0..runs {
            let [(peer_time, peer_writes), (ours_time, ours_writes)] = self.both(peer, ours).await?;
            peer_times.push(peer_time);
            ours_times.push(ours_time);
            writes = (peer_writes, ours_writes);
        }
        Ok([(median(peer_times), writes.0), (median(ours_times), writes.1)])
    }
}

pub async fn run(control_plane: &ControlPlane, driftless: &Path, objects: usize) -> anyhow::Result<Vec<Row>> {
    let client = control_plane.client().await?;
    create_namespaces(&client, [OURS, PEER].map(String::from)).await?;
    let repo = TestRepo::new();
    workload::write_large_application(&repo, "big", objects, "1");
    repo.commit("workload");
    let scratch = tempfile::tempdir()?;
    let config = scratch.path().join("driftless.yaml");
    std::fs::write(
        &config,
        workload::config(
            control_plane.kubeconfig_path(),
            &scratch.path().join("state"),
            &[("big".into(), repo.file_url(), "big".into(), OURS.into())],
            None,
        ),
    )?;
    let contenders = Contenders {
        kubeconfig: control_plane.kubeconfig_path().to_path_buf(),
        manifests: repo.work_tree().join("big"),
        driftless: driftless.to_path_buf(),
        config,
        client,
    };
    let sync = ["sync", "big"];
    let mut rows = Vec::new();

    let [(peer, _), (ours, _)] = contenders.both(&KUBECTL_APPLY, &sync).await?;
    rows.push(Row::timing(
        &format!("one application of {objects} objects: first apply"),
        ours,
        peer,
        "kubectl apply --server-side",
        Some(3.0),
    ));

    let [(peer, peer_writes), (ours, ours_writes)] = contenders.repeated(3, &KUBECTL_APPLY, &sync).await?;
    rows.push(Row::timing(
        "no-op re-sync (median of 3)",
        ours,
        peer,
        "kubectl apply --server-side",
        Some(20.0),
    ));
    rows.push(Row::writes(
        "write requests of a no-op re-sync",
        ours_writes,
        peer_writes,
        0,
    ));

    let [(peer, _), (ours, _)] = contenders
        .repeated(3, &["diff", "--server-side", "--recursive"], &["diff", "big"])
        .await?;
    rows.push(Row::timing(
        "diff with nothing changed (median of 3)",
        ours,
        peer,
        "kubectl diff --server-side",
        Some(10.0),
    ));

    // A real change to every ConfigMap (half the objects): only those should be written.
    let changed = objects.div_ceil(2);
    workload::write_large_application(&repo, "big", objects, "2");
    repo.commit("change a setting");
    let [(peer, peer_writes), (ours, ours_writes)] = contenders.both(&KUBECTL_APPLY, &sync).await?;
    rows.push(Row::timing(
        &format!("sync of a commit changing {changed} ConfigMaps"),
        ours,
        peer,
        "kubectl apply --server-side",
        None,
    ));
    rows.push(Row::writes(
        "write requests of that sync",
        ours_writes,
        peer_writes,
        changed as u64,
    ));
    rows.extend(plan_rows(&contenders, &repo, objects).await?);
    Ok(rows)
}

/// A pull request changing every ConfigMap again, planned against the live cluster (validated,
/// policy-checked, dry-run) and offline, against `kubectl diff --server-side` of its manifests.
async fn plan_rows(contenders: &Contenders, repo: &TestRepo, objects: usize) -> anyhow::Result<Vec<Row>> {
    repo.checkout("proposal");
    workload::write_large_application(repo, "big", objects, "3");
    repo.commit("a proposed change");
    let plan = ["plan", "--base", "main", "--head", "proposal", "-o", "json"];
    let [(peer, peer_writes), (ours, ours_writes)] = contenders
        .repeated(
            3,
            &[
                "diff",
                "--server-side",
                "--field-manager=kubectl-bench",
                "--force-conflicts",
                "--recursive",
            ],
            &plan,
        )
        .await?;
    anyhow::ensure!(
        ours_writes == 0,
        "a plan wrote {ours_writes} time(s) to the cluster"
    );
    let mut rows = vec![Row::timing(
        &format!(
            "plan of a pull request changing {} of {objects} objects, against the live cluster (median of 3)",
            objects.div_ceil(2)
        ),
        ours,
        peer,
        "kubectl diff --server-side of the branch",
        None,
    )];
    rows.push(Row::writes(
        "write requests of that plan",
        ours_writes,
        peer_writes,
        0,
    ));
    let offline = [
        "plan",
        "--base",
        "main",
        "--head",
        "proposal",
        "--offline",
        "-o",
        "json",
    ];
    let samples = (0..3)
        .map(|_| crate::measure::time_command(&mut contenders.driftless(&offline)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    rows.push(Row::figure(
        "the same plan offline (render, validate, policy; median of 3)",
        crate::measure::format_duration(median(samples)),
        "",
        None,
    ));
    Ok(rows)
}
