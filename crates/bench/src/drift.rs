//! Scenario 3: someone edits objects driftless manages (`kubectl edit`-style merge patches under
//! another field manager), one at a time on different applications of the fleet: how long until
//! driftless notices (OutOfSync) and until the object is back as Git has it (self-heal). The
//! edits change fields Git sets: a field Git does not mention belongs to whoever added it and is
//! not drift, so adding a key would never be healed, by design.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::fleet::Fleet;
use crate::measure::{Row, format_duration, percentile};
use crate::serve::now_ms;

const EDITS: usize = 50;
/// Per edit; what is not healed by then is counted as a miss (slower than any target).
const LIMIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);
/// Stands for "not within LIMIT" among the samples, so it sorts after every real one.
const MISSED: Duration = Duration::MAX;
/// Flux notices drift on the Kustomization interval only, 10 min by default (performance.md A17):
/// uniform over the interval.
const FLUX_P50: Duration = Duration::from_mins(5);
const FLUX_P99: Duration = Duration::from_secs(594);

/// One manual edit: a field Git sets, changed to something else.
struct Edit {
    application: String,
    resource: ApiResource,
    name: String,
    pointer: &'static str,
    git: Value,
    edited: Value,
}

impl Edit {
    /// Scales a Deployment, or changes one of two ConfigMaps' keys, in turn.
    fn nth(index: usize, application: &str) -> Self {
        let (resource, name, pointer, git) = match index % 3 {
            0 => (
                ApiResource::erase::<Deployment>(&()),
                application.to_owned(),
                "/spec/replicas",
                json!(1),
            ),
            1 => (
                ApiResource::erase::<ConfigMap>(&()),
                format!("{application}-settings"),
                "/data/setting",
                json!("1"),
            ),
            _ => (
                ApiResource::erase::<ConfigMap>(&()),
                format!("{application}-flags"),
                "/data/other",
                json!("constant"),
            ),
        };
        let edited = if git.is_number() {
            json!(3)
        } else {
            json!("edited")
        };
        Self {
            application: application.to_owned(),
            resource,
            name,
            pointer,
            git,
            edited,
        }
    }

    fn api(&self, client: &kube::Client) -> kube::Api<DynamicObject> {
        // Each application has the namespace of its name (see fleet).
        kube::Api::namespaced_with(client.clone(), &self.application, &self.resource)
    }

    async fn make(&self, client: &kube::Client) -> anyhow::Result<()> {
        let body = self
            .pointer
            .rsplit('/')
            .filter(|segment| !segment.is_empty())
            .fold(self.edited.clone(), |inner, segment| json!({ segment: inner }));
        let params = PatchParams {
            field_manager: Some("kubectl-edit".into()),
            ..PatchParams::default()
        };
        let patched = self
            .api(client)
            .patch(&self.name, &params, &Patch::Merge(&body))
            .await?;
        anyhow::ensure!(
            serde_json::to_value(&patched)?.pointer(self.pointer) == Some(&self.edited),
            "the edit of {} did not take",
            self.name
        );
        Ok(())
    }

    async fn healed(&self, client: &kube::Client) -> anyhow::Result<bool> {
        let live = self.api(client).get(&self.name).await?;
        Ok(serde_json::to_value(&live)?.pointer(self.pointer) == Some(&self.git))
    }
}

/// How long until driftless reported the drift and until the object was healed.
struct Sample {
    out_of_sync: Option<Duration>,
    healed: Option<Duration>,
}

/// Makes the edit and watches both clocks. With `drift_detected_at` the engine's own timestamp
/// gives the detection latency; without it, an OutOfSync status is looked for at every poll,
/// which an engine that heals within one reconcile may never show.
async fn measure(fleet: &Fleet, edit: &Edit, by_timestamp: bool) -> anyhow::Result<Sample> {
    let client = &fleet.client;
    let (t0_ms, t0) = (now_ms(), Instant::now());
    edit.make(client).await?;
    let (mut out_of_sync, mut healed) = (None, None);
    while healed.is_none() && t0.elapsed() < LIMIT {
        if edit.healed(client).await? {
            healed = Some(t0.elapsed());
        } else if !by_timestamp
            && out_of_sync.is_none()
            && fleet
                .serve
                .statuses()
                .await?
                .get(&edit.application)
                .and_then(|s| s.sync.as_deref())
                == Some("OutOfSync")
        {
            out_of_sync = Some(t0.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    if by_timestamp {
        // The status is written when the reconcile ends, a moment after the healing apply.
        let deadline = Instant::now() + Duration::from_secs(2);
        while out_of_sync.is_none() && Instant::now() < deadline {
            let detected = fleet
                .serve
                .statuses()
                .await?
                .get(&edit.application)
                .and_then(|status| status.drift_detected_at)
                .filter(|at| *at > t0_ms);
            out_of_sync = detected.map(|at| Duration::from_millis(u64::try_from(at - t0_ms).unwrap_or(0)));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(Sample { out_of_sync, healed })
}

/// Edits that outlived [`LIMIT`] would be healed in the middle of later measurements; a refresh
/// heals them now.
async fn heal_leftovers(fleet: &Fleet, leftovers: &[Edit]) -> anyhow::Result<()> {
    for edit in leftovers {
        fleet.serve.refresh(&edit.application).await?;
    }
    let deadline = Instant::now() + Duration::from_mins(2);
    for edit in leftovers {
        while !edit.healed(&fleet.client).await? {
            if Instant::now() > deadline {
                eprintln!(
                    "bench: drift: {} {} still not healed after a refresh",
                    edit.application, edit.name
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn format_latency(latency: Duration) -> String {
    if latency == MISSED {
        format!("> {}", format_duration(LIMIT))
    } else {
        format_duration(latency)
    }
}

/// One percentile of one latency, against Flux's published interval and Argo CD's watch.
fn latency_row(
    what: &str,
    samples: &[Duration],
    p: f64,
    flux: Duration,
    argo: &str,
    target: Option<Duration>,
) -> Row {
    let missed = samples.iter().filter(|&&s| s == MISSED).count();
    let figure = format!(
        "drift: manual edit → {what}, p{p} of {} ({missed} not within {})",
        samples.len(),
        format_duration(LIMIT)
    );
    let peer = format!(
        "Flux {} (derived: 10 min interval); Argo CD {argo}",
        format_duration(flux)
    );
    let target_text = target.map_or_else(String::new, |t| format!("≤ {} s", t.as_secs_f64()));
    let ours = percentile(samples, p);
    Row::published(
        &figure,
        format_latency(ours),
        &peer,
        (ours != MISSED).then(|| flux.as_secs_f64() / ours.as_secs_f64().max(1e-9)),
        &target_text,
        target.map(|t| ours <= t),
    )
}

pub async fn run(fleet: &Fleet) -> anyhow::Result<Vec<Row>> {
    let by_timestamp = fleet.serve.reports("drift_detected_at").await?;
    let count = fleet.names.len();
    let (mut detected, mut healed, mut leftovers) = (Vec::new(), Vec::new(), Vec::new());
    for index in 0..EDITS {
        // Spread over the fleet, one edit per application while there are enough of them.
        let application = &fleet.names[if count >= EDITS {
            index * count / EDITS
        } else {
            index % count
        }];
        let edit = Edit::nth(index, application);
        let sample = measure(fleet, &edit, by_timestamp).await?;
        detected.push(sample.out_of_sync.unwrap_or(MISSED));
        healed.push(sample.healed.unwrap_or(MISSED));
        if sample.healed.is_none() {
            leftovers.push(edit);
        }
    }
    heal_leftovers(fleet, &leftovers).await?;
    let argo_detect = "seconds: watch + one reconcile (derived)";
    let argo_heal = "seconds + 2–5 s self-heal delay (derived)";
    let detected_what = if by_timestamp {
        "OutOfSync (drift_detected_at)"
    } else {
        // An engine that detects and heals in one reconcile never shows this: then every sample
        // is a miss.
        "OutOfSync (no drift_detected_at: status polled)"
    };
    Ok(vec![
        latency_row(detected_what, &detected, 50.0, FLUX_P50, argo_detect, None),
        latency_row(
            detected_what,
            &detected,
            99.0,
            FLUX_P99,
            argo_detect,
            Some(Duration::from_secs(1)),
        ),
        latency_row("healed", &healed, 50.0, FLUX_P50, argo_heal, None),
        latency_row(
            "healed",
            &healed,
            99.0,
            FLUX_P99,
            argo_heal,
            Some(Duration::from_secs(3)),
        ),
    ])
}
