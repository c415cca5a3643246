//! HTTP chart repositories: the `index.yaml` and the archives it names, fetched with bounded
//! bodies, credentials only where configured, and redirects only within one origin.

use std::collections::BTreeMap;

use driftless_core::application::RepositoryCredentials;
use driftless_secrets::scrub_url;
use serde::Deserialize;

use crate::version::Constraint;
use crate::{ChartError, ChartLimits, ChartRef, Location, Resolved};

/// Redirects followed before a fetch fails.
const MAX_REDIRECTS: usize = 5;

/// `scheme://host:port` of a URL (lower-cased, without userinfo); the URL itself when it has none.
pub(crate) fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

pub(crate) fn client(limits: &ChartLimits) -> reqwest::Client {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt.previous().last().map(|url| origin(url.as_str()));
        let to = origin(attempt.url().as_str());
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if from.is_some_and(|from| from != to) {
            // Another origin could be anything the index's author chose, an internal address
            // included; and it must not receive this repository's credentials.
            attempt.error(format!(
                "redirected to another origin ({to}), which is not followed"
            ))
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(limits.timeout)
        .no_proxy()
        .user_agent(concat!("driftless/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

fn unreachable(url: &str, err: &reqwest::Error) -> ChartError {
    use std::error::Error as _;
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    ChartError::Unreachable {
        url: scrub_url(url),
        message: scrub_url(&message),
    }
}

/// GETs `url` with the credentials configured for it, refusing a body over `limit` bytes.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    credentials: Option<&RepositoryCredentials>,
    limit: u64,
) -> Result<Vec<u8>, ChartError> {
    let mut request = client.get(url);
    if let Some(credentials) = credentials
        && let Some(password) = &credentials.password
    {
        let password = zeroize::Zeroizing::new(driftless_secrets::read_secret(
            password,
            "chart repository password",
        )?);
        request = request.basic_auth(
            credentials.username.as_deref().unwrap_or_default(),
            Some(password.as_str()),
        );
    }
    let mut response = request.send().await.map_err(|err| unreachable(url, &err))?;
    if !response.status().is_success() {
        return Err(ChartError::Status {
            url: scrub_url(url),
            status: response.status().as_u16(),
        });
    }
    let too_large = || ChartError::TooLarge {
        url: scrub_url(url),
        limit,
    };
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| unreachable(url, &err))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    entries: BTreeMap<String, Vec<RawEntry>>,
}

#[derive(Deserialize)]
struct RawEntry {
    version: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// What driftless keeps of an index: per chart, each version's archive URL and digest.
pub(crate) struct Index {
    repository: String,
    entries: BTreeMap<String, Vec<RawEntry>>,
}

impl Index {
    pub(crate) fn parse(url: &str, repository: &str, body: &[u8]) -> Result<Self, ChartError> {
        let invalid = |message: String| ChartError::Index {
            url: scrub_url(url),
            message,
        };
        let text = std::str::from_utf8(body).map_err(|_| invalid("not UTF-8 text".to_owned()))?;
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_aliases: 10_000,
                max_anchors: 10_000,
                max_depth: 64,
                max_documents: 1,
            },
        };
        let raw: RawIndex = serde_saphyr::from_str_with_options(text, options)
            .map_err(|err| invalid(err.to_string().lines().next().unwrap_or_default().to_owned()))?;
        Ok(Self {
            repository: repository.to_owned(),
            entries: raw.entries,
        })
    }

    /// The best version of the chart and where its archive is (a relative URL is relative to
    /// the repository, as Helm reads it); `allowed` vets an archive URL (with its digest, if the
    /// index gives one) before it is used.
    pub(crate) fn resolve(
        &self,
        chart: &ChartRef,
        constraint: &Constraint,
        allowed: impl Fn(&str, Option<&str>) -> Result<(), ChartError>,
    ) -> Result<Resolved, ChartError> {
        let versions = self
            .entries
            .get(&chart.name)
            .ok_or_else(|| ChartError::NoSuchChart {
                repository: scrub_url(&chart.repository),
                name: chart.name.clone(),
            })?;
        let (version, entry) = constraint
            .best(versions.iter().map(|entry| (entry.version.as_str(), entry)))
            .ok_or_else(|| ChartError::NoMatchingVersion {
                repository: scrub_url(&chart.repository),
                name: chart.name.clone(),
                constraint: chart.version.clone(),
                available: available(versions.iter().map(|entry| entry.version.as_str())),
            })?;
        let first = entry.urls.first().ok_or_else(|| ChartError::Index {
            url: scrub_url(&self.repository),
            message: format!("{} {} has no urls", chart.name, entry.version),
        })?;
        let url = if first.contains("://") {
            first.clone()
        } else {
            format!("{}/{}", self.repository, first.trim_start_matches("./"))
        };
        let digest = entry
            .digest
            .as_deref()
            .map(|digest| digest.trim_start_matches("sha256:").to_ascii_lowercase())
            .filter(|digest| !digest.is_empty());
        allowed(&url, digest.as_deref())?;
        Ok(Resolved {
            version: version.to_string(),
            location: Location::Http { url, digest },
        })
    }
}

/// A few of the versions a repository has, for an error message.
pub(crate) fn available<'a>(versions: impl Iterator<Item = &'a str>) -> String {
    let mut versions: Vec<&str> = versions.collect();
    versions.sort_by_key(|version| crate::version::parse_version(version));
    if versions.is_empty() {
        return "no versions".to_owned();
    }
    let shown: Vec<&str> = versions.iter().copied().take(10).collect();
    let more = versions.len().saturating_sub(shown.len());
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "apiVersion: v1\nentries:\n  web:\n  - version: 1.0.0\n    urls: [web-1.0.0.tgz]\n    digest: abc\n  - version: 1.1.0\n    urls: ['https://other.example/web-1.1.0.tgz']\n";

    fn chart(version: &str) -> ChartRef {
        ChartRef {
            repository: "https://charts.example/stable".into(),
            name: "web".into(),
            version: version.into(),
            plain_http: false,
        }
    }

    #[test]
    fn origins_ignore_paths_and_credentials() {
        assert_eq!(
            origin("https://u:p@Charts.Example:8443/a/b?x"),
            "https://charts.example:8443"
        );
        assert_ne!(
            origin("https://charts.example"),
            origin("https://charts.example.evil")
        );
    }

    #[test]
    fn an_index_resolves_relative_urls_and_checks_absolute_ones() {
        let index = Index::parse("u", "https://charts.example/stable", INDEX.as_bytes()).expect("parses");
        let resolved = index
            .resolve(
                &chart("1.0.0"),
                &Constraint::parse("1.0.0").expect("c"),
                |_, _| Ok(()),
            )
            .expect("resolves");
        assert!(matches!(
            resolved.location,
            Location::Http { ref url, ref digest }
                if url == "https://charts.example/stable/web-1.0.0.tgz" && digest.as_deref() == Some("abc")
        ));
        let refused = index.resolve(&chart("^1"), &Constraint::parse("^1").expect("c"), |url, _| {
            Err(ChartError::Refused {
                url: url.into(),
                reason: "elsewhere".into(),
            })
        });
        assert!(matches!(refused, Err(ChartError::Refused { ref url, .. }) if url.contains("other.example")));
        let missing = index
            .resolve(
                &chart("2.x"),
                &Constraint::parse("2.x").expect("c"),
                |_, _| Ok(()),
            )
            .expect_err("none");
        assert_eq!(
            missing.to_string(),
            "no version of chart web in https://charts.example/stable matches \"2.x\" (it has 1.0.0, 1.1.0)"
        );
    }

    #[test]
    fn a_broken_index_names_its_url() {
        let err = Index::parse("https://c.example/index.yaml", "r", b"entries: [unclosed")
            .err()
            .expect("broken");
        assert!(
            err.to_string()
                .starts_with("https://c.example/index.yaml: not a chart repository index"),
            "{err}"
        );
    }
}
