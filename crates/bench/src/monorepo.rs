//! Scenario 4: a commit that changes one application of a repository shared by the whole fleet,
//! followed by a refresh of every application (what a webhook for the push asks for). Only the
//! changed application should be rendered and written; kubectl, which has no idea what changed,
//! re-applies everything.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;

use crate::fleet::{Fleet, PassReport, work_rows};
use crate::measure::Row;
use crate::metrics::Timed;
use crate::workload;

const VALUE: &str = "monorepo";

/// Polls the changed ConfigMap until it holds the committed value.
async fn applied(
    fleet: &Fleet,
    application: &str,
    started: Instant,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(fleet.client.clone(), application);
    let name = format!("{application}-config");
    loop {
        let live = api.get(&name).await?;
        if live.data.and_then(|data| data.get("setting").cloned()).as_deref() == Some(VALUE) {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{name} did not get the committed value within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn run(fleet: &Fleet) -> anyhow::Result<Vec<Row>> {
    let count = fleet.names.len();
    let application = &fleet.names[count / 2];
    fleet.settle().await?;
    fleet.repo.write(
        &format!("apps/{application}/config.yaml"),
        &workload::config_map(&format!("{application}-config"), VALUE),
    );
    fleet.repo.commit("change one application");
    // From the push, which is when a webhook would fire.
    let started = Instant::now();
    let (pass, applied) = tokio::join!(
        fleet.pass(),
        applied(fleet, application, started, fleet.time_limit())
    );
    let (PassReport { pass, requests, work }, applied) = (pass?, applied?);
    let peer = fleet.kubectl_apply().await?;

    let [applied, writes] = Row::against_kubectl(
        [
            "monorepo: commit → that app's change applied",
            "monorepo: write requests",
        ],
        Timed {
            elapsed: applied,
            requests,
        },
        peer,
        "kubectl apply --server-side -R, all apps",
        (Duration::from_secs(2), "webhook p50"),
        1,
    );
    let [renders, fetches] = work_rows(
        &format!("monorepo: a commit changing 1 of {count} apps, all refreshed"),
        work,
        (
            1,
            &format!("Argo CD: {count} (a commit invalidates every app's manifests, derived)"),
        ),
        (1, "Flux: 1 per repository per interval (A17)"),
    );
    Ok(vec![
        renders,
        fetches,
        applied,
        Row::figure(
            &format!("monorepo: commit → all {count} apps reconciled"),
            pass.describe(),
            "",
            None,
        ),
        writes,
    ])
}
