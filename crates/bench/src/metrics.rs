//! Write requests counted by kube-apiserver itself (`apiserver_request_total`), so a benchmark
//! cannot under-report what the tool under test sends.

/// Non-dry-run POST/PUT/PATCH/DELETE requests on ConfigMaps and Deployments (the workloads'
/// kinds; subresources such as `status`, which kube-controller-manager writes, are left out).
pub async fn writes(client: &kube::Client) -> anyhow::Result<u64> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    Ok(count_writes(&text))
}

fn count_writes(text: &str) -> u64 {
    let mut total = 0.0;
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
        let write = matches!(label("verb"), Some("POST" | "PUT" | "PATCH" | "DELETE" | "APPLY"));
        let kind = matches!(label("resource"), Some("configmaps" | "deployments"));
        let dry_run = label("dry_run").is_some_and(|v| !v.is_empty());
        let subresource = label("subresource").is_some_and(|v| !v.is_empty());
        if write && kind && !dry_run && !subresource {
            total += value.parse::<f64>().unwrap_or(0.0);
        }
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let total = total as u64;
    total
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_only_real_writes_of_the_workload_kinds() {
        let text = r#"apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="PATCH",version="v1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="All",group="",resource="configmaps",scope="namespace",subresource="",verb="PATCH",version="v1"} 100
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="status",verb="PUT",version="v1"} 50
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="",verb="GET",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="namespace",subresource="",verb="DELETE",version="v1"} 2
"#;
        assert_eq!(super::count_writes(text), 9);
    }
}
