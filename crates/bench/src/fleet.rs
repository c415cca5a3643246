//! Scenario 2: a fleet of small applications (4 objects each) in one Git repository, served by
//! `driftless serve`. Every application gets a namespace of its own, named like it (as a team's
//! service would); kubectl applies the same manifests into one namespace, `fleet-kubectl`, where
//! the generated names do not collide. The fleet set up here is shared with the drift and
//! monorepo scenarios.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use driftless_localcluster::ControlPlane;
use driftless_testenv::git::TestRepo;

use crate::measure::{KUBECTL_APPLY, Row, create_namespaces, kubectl};
use crate::metrics::{self, Requests, Timed};
use crate::serve::{Memory, Pass, Serve, Stats, Status};
use crate::workload;

const PEER: &str = "fleet-kubectl";
/// Flux's default Kustomization interval. Drift is to be seen without it (by watching), and the
/// passes are asked for explicitly; a shorter one would mix routine reconciles (1,000 apps every
/// minute is 16 a second) into every figure.
const SYNC_POLICY: &str = "{ automated: { prune: true, selfHeal: true }, interval: 10m }";
pub const OBJECTS_PER_APPLICATION: usize = 4;
/// From performance.md §3, goal 1.
const BASELINE_TARGET_MIB: f64 = 50.0;
const GROWTH_TARGET_MIB: f64 = 64.0;
const PEAK_TARGET: f64 = 1.3;

/// A pass over the whole fleet and what it cost.
pub struct PassReport {
    pub pass: Pass,
    pub requests: Requests,
    /// What the engine did, when it says (`/api/v1/stats`).
    pub work: Option<Stats>,
}

/// The renders and Git fetches of a pass against how many it should need, each with the peer's
/// figure.
pub fn work_rows(what: &str, work: Option<Stats>, renders: (u64, &str), fetches: (u64, &str)) -> [Row; 2] {
    let row = |figure: String, done: Option<u64>, (target, peer): (u64, &str)| {
        Row::published(
            &figure,
            done.map_or_else(|| "n/a (no /api/v1/stats)".into(), |done| done.to_string()),
            peer,
            None,
            &target.to_string(),
            done.map(|done| done <= target),
        )
    };
    [
        row(format!("{what}: renders"), work.map(|w| w.renders), renders),
        row(format!("{what}: git fetches"), work.map(|w| w.fetches), fetches),
    ]
}

/// The fleet, running: driftless serving every application, kubectl's copy applied alongside.
pub struct Fleet {
    /// Declared before the control plane so that, dropped on an error, it goes first.
    pub serve: Serve,
    pub repo: TestRepo,
    pub client: kube::Client,
    pub names: Vec<String>,
    /// Holds serve's configuration and data directory.
    _scratch: tempfile::TempDir,
    /// kubectl's first apply of everything, then driftless from start to all Synced.
    first_apply: [Timed; 2],
    /// RSS of a serve with one application.
    baseline: Memory,
    control_plane: ControlPlane,
}

async fn kubectl_apply(client: &kube::Client, kubeconfig: &Path, repo: &TestRepo) -> anyhow::Result<Timed> {
    metrics::timed_command(
        client,
        kubectl(kubeconfig, PEER)
            .args(KUBECTL_APPLY)
            .arg("-f")
            .arg(repo.work_tree().join("apps")),
    )
    .await
}

/// A driftless configuration of `names`, each from `apps/<path>` into its own namespace.
fn write_config(
    dir: &Path,
    kubeconfig: &Path,
    repo: &TestRepo,
    apps: &[(String, String)],
) -> anyhow::Result<PathBuf> {
    let config = dir.join("driftless.yaml");
    let applications: Vec<_> = apps
        .iter()
        .map(|(name, path)| {
            (
                name.clone(),
                repo.file_url(),
                format!("apps/{path}"),
                name.clone(),
            )
        })
        .collect();
    std::fs::write(
        &config,
        workload::config(kubeconfig, &dir.join("state"), &applications, Some(SYNC_POLICY)),
    )?;
    Ok(config)
}

/// RSS of a serve with one application of the same repository, once it is Synced. Measured before
/// the fleet is synced: serve watches every object any driftless application labelled, so a
/// cluster full of the fleet's objects would be counted in the baseline.
async fn baseline_memory(
    client: &kube::Client,
    kubeconfig: &Path,
    repo: &TestRepo,
    driftless: &Path,
    dir: &Path,
) -> anyhow::Result<Memory> {
    const NAME: &str = "fleet-baseline";
    create_namespaces(client, [NAME.to_owned()]).await?;
    std::fs::create_dir_all(dir)?;
    let config = write_config(
        dir,
        kubeconfig,
        repo,
        &[(NAME.to_owned(), workload::application_name(0))],
    )?;
    let serve = Serve::start(driftless, &config, &dir.join("state")).await?;
    serve
        .wait_for(
            "the baseline application to be Synced",
            Duration::from_mins(2),
            Duration::from_millis(100),
            |statuses| statuses.get(NAME).is_some_and(Status::synced),
        )
        .await?;
    // Past the first sync's allocations, as the fleet's figure is.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let memory = serve.memory()?;
    serve.stop().await?;
    Ok(memory)
}

impl Fleet {
    /// Generates `applications` applications, lets kubectl apply them, then starts driftless serve
    /// on them and waits until every one is Synced.
    pub async fn start(driftless: &Path, applications: usize) -> anyhow::Result<Self> {
        let control_plane = ControlPlane::start().await?;
        let client = control_plane.client().await?;
        let repo = TestRepo::new();
        workload::write_applications(&repo, applications);
        repo.commit("fleet");
        let names: Vec<String> = (0..applications).map(workload::application_name).collect();
        create_namespaces(&client, names.iter().cloned().chain([PEER.to_owned()])).await?;
        // kube-controller-manager writes a ConfigMap (kube-root-ca.crt) into every new namespace;
        // those writes must not be counted as either tool's.
        metrics::settle(&client, Duration::from_secs(2)).await?;

        // kubectl first, on a quiet API server, as driftless gets it below.
        let peer = kubectl_apply(&client, control_plane.kubeconfig_path(), &repo).await?;

        let scratch = tempfile::tempdir()?;
        let baseline = baseline_memory(
            &client,
            control_plane.kubeconfig_path(),
            &repo,
            driftless,
            &scratch.path().join("baseline"),
        )
        .await?;
        let apps: Vec<(String, String)> = names.iter().map(|name| (name.clone(), name.clone())).collect();
        let config = write_config(scratch.path(), control_plane.kubeconfig_path(), &repo, &apps)?;
        let before = metrics::requests(&client).await?;
        let started = Instant::now();
        let serve = Serve::start(driftless, &config, &scratch.path().join("state")).await?;
        serve
            .wait_for(
                "every application to be Synced",
                time_limit(applications),
                Duration::from_millis(100),
                |statuses| {
                    names
                        .iter()
                        .all(|name| statuses.get(name).is_some_and(Status::synced))
                },
            )
            .await?;
        let ours = Timed {
            elapsed: started.elapsed(),
            requests: metrics::requests(&client).await? - before,
        };
        Ok(Self {
            serve,
            repo,
            client,
            names,
            _scratch: scratch,
            first_apply: [peer, ours],
            baseline,
            control_plane,
        })
    }

    /// `kubectl apply --server-side` of every application's manifests, as they are in Git now.
    pub async fn kubectl_apply(&self) -> anyhow::Result<Timed> {
        kubectl_apply(&self.client, self.control_plane.kubeconfig_path(), &self.repo).await
    }

    /// Waits until serve has nothing left to do (see [`Serve::settle`]): before a [`Fleet::pass`]
    /// and whatever leads to it.
    pub async fn settle(&self) -> anyhow::Result<()> {
        self.serve.settle(&self.client).await
    }

    /// Asks every application for a reconcile and waits until all are done.
    pub async fn pass(&self) -> anyhow::Result<PassReport> {
        let (requests, work) = (metrics::requests(&self.client).await?, self.serve.stats().await?);
        let pass = self
            .serve
            .pass(&self.names, &self.client, self.time_limit())
            .await?;
        Ok(PassReport {
            pass,
            requests: metrics::requests(&self.client).await? - requests,
            work: work
                .zip(self.serve.stats().await?)
                .map(|(before, after)| after - before),
        })
    }

    /// How long anything over the whole fleet may take before the bench gives up: far beyond
    /// every target, so only a stuck engine hits it.
    pub fn time_limit(&self) -> Duration {
        time_limit(self.names.len())
    }

    /// Stops serve with SIGTERM, then the control plane.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.serve.stop().await?;
        drop(self.control_plane);
        Ok(())
    }
}

fn time_limit(applications: usize) -> Duration {
    Duration::from_mins(2) + Duration::from_millis(500) * u32::try_from(applications).unwrap_or(u32::MAX)
}

#[allow(clippy::cast_precision_loss)]
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub async fn run(fleet: &Fleet) -> anyhow::Result<Vec<Row>> {
    let count = fleet.names.len();
    #[allow(clippy::cast_precision_loss)]
    let thousands = count as f64 / 1000.0;
    let objects = (count * OBJECTS_PER_APPLICATION) as u64;
    let mut rows = Vec::new();

    let [peer, ours] = fleet.first_apply;
    rows.extend(Row::against_kubectl(
        [
            &format!("fleet: {count} apps × {OBJECTS_PER_APPLICATION} objects, serve start to all Synced"),
            "fleet: write requests of the first sync",
        ],
        ours,
        peer,
        "kubectl apply --server-side -R, all objects",
        (Duration::from_mins(1).mul_f64(thousands), "60 s per 1,000 apps"),
        objects,
    ));

    fleet.settle().await?;
    let PassReport { pass, requests, work } = fleet.pass().await?;
    let peer = fleet.kubectl_apply().await?;
    let [mut time, writes] = Row::against_kubectl(
        [
            &format!("fleet: no-change pass over {count} apps (refresh all, until each reconciled)"),
            "fleet: write requests of that pass",
        ],
        Timed {
            elapsed: pass.elapsed,
            requests,
        },
        peer,
        "kubectl no-op apply --server-side -R",
        (Duration::from_secs(6).mul_f64(thousands), "10k apps in 60 s"),
        0,
    );
    time.driftless = pass.describe();
    rows.extend([time, writes]);
    rows.extend(work_rows(
        "fleet: that pass",
        work,
        (0, ""),
        (1, "Flux: 1 per repository per interval (A17)"),
    ));
    #[allow(clippy::cast_precision_loss)]
    let per_app = requests.reads as f64 / count as f64;
    rows.push(Row::figure(
        "fleet: read requests (GET/LIST, no WATCH) of that pass",
        format!(
            "{} ({per_app:.1} per app; kubectl: {})",
            requests.reads, peer.requests.reads
        ),
        "0 (no requests per unchanged object)",
        Some(requests.reads == 0),
    ));

    // Steady state: after the first sync and a full pass, nothing left to do.
    let steady = fleet.serve.memory()?;
    let baseline = fleet.baseline;
    rows.push(Row::published(
        "fleet: RSS of serve with 1 application (baseline)",
        format!("{:.1} MiB", mib(baseline.rss_kib)),
        "0.4–0.8 GiB Argo CD controller, small install (published)",
        Some(400.0 / mib(baseline.rss_kib)),
        &format!("< {BASELINE_TARGET_MIB} MiB"),
        Some(mib(baseline.rss_kib) < BASELINE_TARGET_MIB),
    ));
    let growth = (mib(steady.rss_kib) - mib(baseline.rss_kib)) / thousands;
    // Below 1,000 applications a MiB of allocator noise is multiplied: say so.
    let scaled = if count < 1000 { ", scaled up" } else { "" };
    rows.push(Row::published(
        &format!(
            "fleet: RSS growth per 1,000 apps ({count} apps: {:.1} MiB steady{scaled})",
            mib(steady.rss_kib)
        ),
        format!("{growth:.1} MiB"),
        "Flux kustomize-controller 175–223 MiB, Argo CD ≈340 MiB per shard (published)",
        (growth > 0.0).then(|| 175.0 / growth),
        &format!("≤ {GROWTH_TARGET_MIB} MiB"),
        Some(growth <= GROWTH_TARGET_MIB),
    ));
    let peak = mib(steady.peak_kib) / mib(steady.rss_kib);
    rows.push(Row::figure(
        "fleet: peak / steady RSS",
        format!("{peak:.2}× ({:.1} MiB peak)", mib(steady.peak_kib)),
        &format!("≤ {PEAK_TARGET}×"),
        Some(peak <= PEAK_TARGET),
    ));
    Ok(rows)
}
