//! Requests counted by kube-apiserver itself (`apiserver_request_total`), so a benchmark cannot
//! under-report what the tool under test sends.

use std::ops::Sub;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::measure::time_command;

/// Requests on the workloads' kinds (ConfigMaps, Deployments, Services). Subresources such as
/// `status`, which kube-controller-manager writes, are left out; so are dry-runs, which change
/// nothing, and WATCHes, which are long-lived streams rather than per-object work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// POST/PUT/PATCH/DELETE (and APPLY, as 1.20 names server-side apply).
    pub writes: u64,
    /// GET and LIST.
    pub reads: u64,
}

impl Sub for Requests {
    type Output = Self;

    fn sub(self, before: Self) -> Self {
        Self {
            writes: self.writes.saturating_sub(before.writes),
            reads: self.reads.saturating_sub(before.reads),
        }
    }
}

pub async fn requests(client: &kube::Client) -> anyhow::Result<Requests> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(count(&text))
}

/// How long some work took, with the requests made meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Timed {
    pub elapsed: Duration,
    pub requests: Requests,
}

/// Runs a command to completion: how long it took and the requests made meanwhile.
pub async fn timed_command(client: &kube::Client, command: &mut Command) -> anyhow::Result<Timed> {
    let before = requests(client).await?;
    let elapsed = time_command(command)?;
    Ok(Timed {
        elapsed,
        requests: requests(client).await? - before,
    })
}

/// Waits until no request has been counted for `quiet`; returns when the last one was seen. For
/// work nobody reports the end of, such as kube-controller-manager reacting to new namespaces.
pub async fn settle(client: &kube::Client, quiet: Duration) -> anyhow::Result<Instant> {
    // Each scrape is a large response; polling faster would load the API server being measured.
    const POLL: Duration = Duration::from_millis(250);
    let mut last = requests(client).await?;
    let mut changed = Instant::now();
    while changed.elapsed() < quiet {
        tokio::time::sleep(POLL).await;
        let now = requests(client).await?;
        if now != last {
            (last, changed) = (now, Instant::now());
        }
    }
    Ok(changed)
}

fn count(text: &str) -> Requests {
    let (mut writes, mut reads) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| {
                    pair.trim_start_matches("apiserver_request_total{")
                        .strip_prefix(&format!("{name}=\""))
                })
                .map(|v| v.trim_end_matches('}').trim_end_matches('"'))
        };
        let kind = matches!(label("resource"), Some("configmaps" | "deployments" | "services"));
        let dry_run = label("dry_run").is_some_and(|v| !v.is_empty());
        let subresource = label("subresource").is_some_and(|v| !v.is_empty());
        if !kind || dry_run || subresource {
            continue;
        }
        let value = value.parse::<f64>().unwrap_or(0.0);
        match label("verb") {
            Some("POST" | "PUT" | "PATCH" | "DELETE" | "APPLY") => writes += value,
            Some("GET" | "LIST") => reads += value,
            _ => {}
        }
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Requests {
        writes: writes as u64,
        reads: reads as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::Requests;

    #[test]
    fn counts_only_real_requests_on_the_workload_kinds() {
        let text = r#"apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="PATCH",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="All",group="",resource="configmaps",scope="namespace",subresource="",verb="PATCH",version="v1"} 100
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="status",verb="PUT",version="v1"} 50
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="",verb="GET",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="WATCH",version="v1"} 30
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="namespace",subresource="",verb="LIST",version="v1"} 12
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="",verb="DELETE",version="v1"} 2
"#;
        assert_eq!(super::count(text), Requests { writes: 9, reads: 13 });
    }
}
