//! Scenario 6: the web UI's overview at fleet scale, in real headless Chromium (ui/overview.cjs):
//! the page loaded with every application, a search and a filter applied, a status change seen
//! live. The peer is Argo CD's UI, from its users' report of about 8,000 applications loading in
//! 35 s (argoproj/argo-cd#9575), scaled to the fleet's size (derived: no controlled figure exists).

use std::path::Path;
use std::time::Duration;

use crate::fleet::Fleet;
use crate::measure::Row;

const ARGO_LOAD_PER_APPLICATION: Duration = Duration::from_micros(35_000_000 / 8_000);
/// Under this a change feels instant (the usual 100 ms rule of thumb for direct manipulation).
const INSTANT: Duration = Duration::from_millis(100);

fn millis(timings: &serde_json::Value, key: &str) -> anyhow::Result<Duration> {
    let value = timings[key]
        .as_f64()
        .ok_or_else(|| anyhow::anyhow!("no {key} in {timings}"))?;
    Ok(Duration::from_secs_f64(value / 1000.0))
}

pub async fn run(fleet: &Fleet) -> anyhow::Result<Vec<Row>> {
    fleet.settle().await?;
    let count = fleet.names.len();
    let token = fleet.serve.create_token("bench-ui")?;
    let live: Vec<&String> = (0..5).map(|i| &fleet.names[(i * 7919) % count]).collect();
    let env = [
        (
            "DRIFTLESS_URL".to_owned(),
            format!("http://{}", fleet.serve.listen),
        ),
        ("DRIFTLESS_TOKEN".to_owned(), token),
        ("APPLICATIONS".to_owned(), count.to_string()),
        ("LIVE_APPLICATIONS".to_owned(), serde_json::to_string(&live)?),
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/overview.cjs");
    let output = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        driftless_testenv::browser::run_script(&script, &env)
    })
    .await?;
    let timings: serde_json::Value = serde_json::from_str(
        output
            .lines()
            .last()
            .ok_or_else(|| anyhow::anyhow!("overview.cjs printed nothing"))?,
    )?;
    let argo_load = ARGO_LOAD_PER_APPLICATION * u32::try_from(count)?;
    let (search, filter, live) = (
        millis(&timings, "search")?,
        millis(&timings, "filter")?,
        millis(&timings, "live")?,
    );
    Ok(vec![
        Row::timing_within(
            &format!("ui: overview loaded with all {count} applications, median of 5"),
            millis(&timings, "load")?,
            argo_load,
            "Argo CD UI, argo-cd#9575 scaled, derived",
            Duration::from_secs(1),
            "1 s",
        ),
        Row::figure(
            "ui: search typed → table filtered and painted, median of 10",
            crate::measure::format_duration(search),
            &format!("≤ {} ms", INSTANT.as_millis()),
            Some(search <= INSTANT),
        ),
        Row::figure(
            "ui: sync filter changed → filtered and painted, median of 5",
            crate::measure::format_duration(filter),
            &format!("≤ {} ms", INSTANT.as_millis()),
            Some(filter <= INSTANT),
        ),
        Row::figure(
            "ui: suspended through the API → row updated live, median of 5",
            crate::measure::format_duration(live),
            "≤ 1000 ms",
            Some(live <= Duration::from_secs(1)),
        ),
    ])
}
