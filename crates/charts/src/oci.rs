//! Charts in OCI registries (`oci://host/path`, the chart name appended, the version as tag), as
//! `helm push` stores them: a manifest whose config is Helm's and whose one chart layer is the
//! archive. The `oci-client` crate speaks the distribution protocol (token auth included).

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use driftless_core::application::RepositoryCredentials;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::version::Constraint;
use crate::{ChartError, ChartLimits, ChartRef, Location, Resolved, lock};

/// `helm push`'s media types (helm.sh/helm/v4/pkg/registry/constants.go).
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_CHART_LAYERS: &[&str] = &[
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    "application/tar+gzip",
];

pub(crate) struct Registries {
    https: Client,
    http: Client,
    tags: Mutex<std::collections::HashMap<String, (Instant, Vec<String>)>>,
    tags_lifetime: std::time::Duration,
}

pub(crate) fn auth(credentials: Option<&RepositoryCredentials>) -> Result<RegistryAuth, ChartError> {
    match credentials {
        Some(credentials) => match &credentials.password {
            Some(password) => Ok(RegistryAuth::Basic(
                credentials.username.clone().unwrap_or_default(),
                driftless_secrets::read_secret(password, "registry password")?,
            )),
            None => Ok(RegistryAuth::Anonymous),
        },
        None => Ok(RegistryAuth::Anonymous),
    }
}

fn oci_error(reference: &str, err: impl std::fmt::Display) -> ChartError {
    ChartError::Oci {
        reference: reference.to_owned(),
        message: driftless_secrets::scrub_url(&err.to_string()),
    }
}

/// `host/path/name` of a chart reference.
fn repository_of(chart: &ChartRef) -> Result<String, ChartError> {
    let base = chart
        .repository
        .strip_prefix("oci://")
        .unwrap_or(&chart.repository)
        .trim_end_matches('/');
    if base.contains('@') || chart.name.contains(['/', ':', '@']) {
        return Err(ChartError::Reference {
            chart: chart.to_string(),
            message: "an OCI repository is oci://host[:port]/path and the chart a bare name".to_owned(),
        });
    }
    Ok(format!("{base}/{}", chart.name))
}

/// Helm stores `+` of a version as `_` in a tag, which may not hold `+`.
fn tag_of(version: &str) -> String {
    version.replace('+', "_")
}

fn parse_reference(reference: &str) -> Result<Reference, ChartError> {
    reference.parse().map_err(|err| oci_error(reference, err))
}

/// A layer write target that refuses more than `limit` bytes.
struct Bounded {
    bytes: Vec<u8>,
    limit: u64,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if (this.bytes.len() + buf.len()) as u64 > this.limit {
            return Poll::Ready(Err(std::io::Error::other(format!(
                "larger than the limit of {} bytes",
                this.limit
            ))));
        }
        this.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Registries {
    pub(crate) fn new(limits: &ChartLimits) -> Self {
        let config = |protocol| ClientConfig {
            protocol,
            read_timeout: Some(limits.timeout),
            connect_timeout: Some(limits.timeout),
            user_agent: concat!("driftless/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Self {
            https: Client::new(config(ClientProtocol::Https)),
            http: Client::new(config(ClientProtocol::Http)),
            tags: Mutex::default(),
            tags_lifetime: limits.index_lifetime,
        }
    }

    fn client(&self, chart: &ChartRef) -> &Client {
        if chart.plain_http { &self.http } else { &self.https }
    }

    pub(crate) async fn resolve(
        &self,
        chart: &ChartRef,
        constraint: &Constraint,
        exact: bool,
        auth: &RegistryAuth,
    ) -> Result<Resolved, ChartError> {
        let repository = repository_of(chart)?;
        if exact {
            let version = chart.version.trim().to_owned();
            return Ok(Resolved {
                location: Location::Oci {
                    reference: format!("{repository}:{}", tag_of(&version)),
                },
                version,
            });
        }
        let tags = self.tags(chart, &repository, auth).await?;
        let versions: Vec<String> = tags.iter().map(|tag| tag.replace('_', "+")).collect();
        let (version, written) = constraint
            .best(versions.iter().map(|v| (v.as_str(), v.as_str())))
            .ok_or_else(|| ChartError::NoMatchingVersion {
                repository: driftless_secrets::scrub_url(&chart.repository),
                name: chart.name.clone(),
                constraint: chart.version.clone(),
                available: crate::http::available(versions.iter().map(String::as_str)),
            })?;
        Ok(Resolved {
            version: version.to_string(),
            location: Location::Oci {
                reference: format!("{repository}:{}", tag_of(written)),
            },
        })
    }

    async fn tags(
        &self,
        chart: &ChartRef,
        repository: &str,
        auth: &RegistryAuth,
    ) -> Result<Vec<String>, ChartError> {
        if let Some((fetched, tags)) = lock(&self.tags).get(repository)
            && fetched.elapsed() < self.tags_lifetime
        {
            return Ok(tags.clone());
        }
        let reference = parse_reference(&format!("{repository}:latest"))?;
        let response = self
            .client(chart)
            .list_tags(&reference, auth, None, None)
            .await
            .map_err(|err| oci_error(repository, err))?;
        lock(&self.tags).insert(repository.to_owned(), (Instant::now(), response.tags.clone()));
        Ok(response.tags)
    }

    /// The manifest's chart layer, after checking that the manifest is a Helm chart's.
    pub(crate) async fn chart_layer(
        &self,
        chart: &ChartRef,
        reference: &str,
        auth: &RegistryAuth,
    ) -> Result<OciDescriptor, ChartError> {
        let parsed = parse_reference(reference)?;
        let (manifest, _) = self
            .client(chart)
            .pull_image_manifest(&parsed, auth)
            .await
            .map_err(|err| oci_error(reference, err))?;
        if manifest.config.media_type != HELM_CONFIG {
            return Err(oci_error(
                reference,
                format!("not a Helm chart (its config is {})", manifest.config.media_type),
            ));
        }
        manifest
            .layers
            .into_iter()
            .find(|layer| HELM_CHART_LAYERS.contains(&layer.media_type.as_str()))
            .ok_or_else(|| oci_error(reference, "the manifest has no chart layer"))
    }

    pub(crate) async fn pull_layer(
        &self,
        chart: &ChartRef,
        reference: &str,
        layer: &OciDescriptor,
        limits: &ChartLimits,
    ) -> Result<Vec<u8>, ChartError> {
        if u64::try_from(layer.size).unwrap_or(u64::MAX) > limits.max_archive_bytes {
            return Err(ChartError::TooLarge {
                url: reference.to_owned(),
                limit: limits.max_archive_bytes,
            });
        }
        tracing::info!(chart = %chart, "pulling chart");
        let parsed = parse_reference(reference)?;
        let mut out = Bounded {
            bytes: Vec::new(),
            limit: limits.max_archive_bytes,
        };
        // The client checks the blob against the layer's digest as it streams.
        self.client(chart)
            .pull_blob(&parsed, layer, &mut out)
            .await
            .map_err(|err| oci_error(reference, err))?;
        Ok(out.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_join_repository_name_and_tag() {
        let chart = ChartRef {
            repository: "oci://127.0.0.1:5000/charts/".into(),
            name: "web".into(),
            version: "1.0.0+build.1".into(),
            plain_http: true,
        };
        assert_eq!(repository_of(&chart).expect("ok"), "127.0.0.1:5000/charts/web");
        assert_eq!(tag_of(&chart.version), "1.0.0_build.1");
        let hostile = ChartRef {
            name: "../web:evil".into(),
            ..chart
        };
        assert!(repository_of(&hostile).is_err());
    }
}
