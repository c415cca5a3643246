//! Scenario 5: a push and its webhook, as a Git host sends them — one application's file changes,
//! then a signed generic webhook (`POST /api/webhooks/generic`) names the repository, branch and
//! changed path — and the time from the webhook to the change applied, on different applications
//! in turn. The peer is Argo CD without a webhook, which sees a push on its next resync (A1: every
//! 120 s plus up to 60 s of jitter), derived: no published webhook-to-applied figure exists.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac as _};
use k8s_openapi::api::core::v1::ConfigMap;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::fleet::Fleet;
use crate::measure::{Row, percentile};
use crate::workload;

const PUSHES: usize = 20;
/// Per push; slower than every target, so a miss shows as one.
const LIMIT: Duration = Duration::from_secs(30);
/// The next resync after a push, uniform over a period of 120–180 s (A1): derived percentiles.
const ARGO_P50: Duration = Duration::from_secs(75);
const ARGO_P99: Duration = Duration::from_secs(178);

fn signature(timestamp: u64, body: &str) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(workload::WEBHOOK_SECRET.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::from("sha256="), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Sends the webhook over plain HTTP/1.1 and returns the status code.
async fn post_webhook(listen: &str, body: &str) -> anyhow::Result<u16> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let request = format!(
        "POST /api/webhooks/generic HTTP/1.1\r\nHost: {listen}\r\nContent-Type: application/json\r\nX-Driftless-Timestamp: {timestamp}\r\nX-Driftless-Signature: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        signature(timestamp, body),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(listen).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no HTTP status in {answer:?}"))
}

pub async fn run(fleet: &Fleet) -> anyhow::Result<Vec<Row>> {
    fleet.settle().await?;
    let count = fleet.names.len();
    let mut samples = Vec::with_capacity(PUSHES);
    for push in 0..PUSHES {
        let application = &fleet.names[(push * 7919) % count];
        let value = format!("pushed-{push}");
        let path = format!("apps/{application}/config.yaml");
        fleet.repo.write(
            &path,
            &workload::config_map(&format!("{application}-config"), &value),
        );
        fleet.repo.commit(&format!("push {push}"));
        let body =
            serde_json::json!({ "repoURL": fleet.repo.file_url(), "revision": "main", "paths": [path] })
                .to_string();
        let started = Instant::now();
        let status = post_webhook(&fleet.serve.listen, &body).await?;
        anyhow::ensure!(status == 202, "the webhook was answered {status}");
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(fleet.client.clone(), application);
        loop {
            let live = api.get(&format!("{application}-config")).await?;
            if live.data.and_then(|data| data.get("setting").cloned()).as_deref() == Some(value.as_str()) {
                samples.push(started.elapsed());
                break;
            }
            if started.elapsed() > LIMIT {
                samples.push(LIMIT);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let (p50, p99) = (percentile(&samples, 50.0), percentile(&samples, 99.0));
    Ok(vec![
        Row::timing_within(
            &format!("push: webhook → applied, p50 of {PUSHES} pushes ({count} apps)"),
            p50,
            ARGO_P50,
            "Argo CD resync without a webhook, A1, derived",
            Duration::from_secs(2),
            "performance.md target",
        ),
        Row::timing_within(
            &format!("push: webhook → applied, p99 of {PUSHES} pushes"),
            p99,
            ARGO_P99,
            "Argo CD resync without a webhook, A1, derived",
            Duration::from_secs(5),
            "performance.md target",
        ),
    ])
}
