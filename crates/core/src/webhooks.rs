//! What a Git forge's push webhook says: the repository, the branch or tag, the changed paths.
//! Only parsing, over bytes already verified by the server's receiver (`driftless-server`); which
//! applications a push refreshes is the server's matching.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// A forge whose push webhooks driftless receives.
pub enum Provider {
    GitHub,
    GitLab,
    Gitea,
    Bitbucket,
    Generic,
}

impl Provider {
    /// The provider a receiver's path names (`/api/webhooks/{provider}`).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "github" => Self::GitHub,
            "gitlab" => Self::GitLab,
            "gitea" | "forgejo" => Self::Gitea,
            "bitbucket" => Self::Bitbucket,
            "generic" => Self::Generic,
            _ => return None,
        })
    }

    /// The event name a push carries in this provider's event header.
    #[must_use]
    pub fn push_event(self) -> &'static str {
        match self {
            Self::GitHub | Self::Gitea | Self::Generic => "push",
            Self::GitLab => "Push Hook",
            Self::Bitbucket => "repo:push",
        }
    }
}

/// What a push changed, as far as the payload tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The repository's URLs (clone, ssh, web), any of which an application may name.
    pub urls: Vec<String>,
    /// The branch or tag name pushed (without `refs/heads/` or `refs/tags/`).
    pub reference: Option<String>,
    /// Changed paths; `None` when the payload does not list them (all may have changed).
    pub paths: Option<Vec<String>>,
}

fn strings(values: &[&Value]) -> Vec<String> {
    values
        .iter()
        .filter_map(|value| value.as_str())
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Paths touched by the commits of a GitHub/Gitea/GitLab payload; `None` when it may not list
/// them all (GitHub lists at most 20 commits; a forced or large push may list none).
fn commit_paths(payload: &Value) -> Option<Vec<String>> {
    let commits = payload["commits"].as_array()?;
    if commits.is_empty() || commits.len() >= 20 {
        return None;
    }
    let mut paths = Vec::new();
    for commit in commits {
        for kind in ["added", "modified", "removed"] {
            paths.extend(
                commit[kind]
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
    }
    Some(paths)
}

fn reference_name(reference: &str) -> Option<String> {
    reference
        .strip_prefix("refs/heads/")
        .or_else(|| reference.strip_prefix("refs/tags/"))
        .map(str::to_owned)
}

/// Returned by [`parse_push`]: a push payload that cannot be read. Says what is wrong with the
/// payload, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The JSON parser's message: a position and what it expected (it quotes no input).
    #[error("the body is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("the payload names no repository URL")]
    NoRepositoryUrl,
}

/// The push a payload describes, given the event its provider's header named; `Ok(None)` for
/// another event (a ping, an issue). Pure, so it can be fuzzed: the server parses only what
/// passed its signature check, but that is anyone who has the secret.
///
/// # Errors
/// The body is not JSON, or a push that names no repository URL.
pub fn parse_push(provider: Provider, event: Option<&str>, body: &[u8]) -> Result<Option<Push>, PushError> {
    let payload: Value = serde_json::from_slice(body).map_err(|err| PushError::NotJson {
        reason: err.to_string(),
    })?;
    let event = if provider == Provider::Generic {
        Some("push")
    } else {
        event
    };
    let is_push = matches!(event, Some("push" | "Push Hook" | "Tag Push Hook" | "repo:push"));
    if !is_push {
        return Ok(None);
    }
    let push = match provider {
        Provider::GitHub | Provider::Gitea => Push {
            urls: strings(&[
                &payload["repository"]["clone_url"],
                &payload["repository"]["ssh_url"],
                &payload["repository"]["html_url"],
            ]),
            reference: payload["ref"].as_str().and_then(reference_name),
            paths: commit_paths(&payload),
        },
        Provider::GitLab => Push {
            urls: strings(&[
                &payload["project"]["git_http_url"],
                &payload["project"]["git_ssh_url"],
                &payload["project"]["web_url"],
            ]),
            reference: payload["ref"].as_str().and_then(reference_name),
            paths: commit_paths(&payload),
        },
        Provider::Bitbucket => Push {
            urls: strings(&[&payload["repository"]["links"]["html"]["href"]]),
            reference: payload["push"]["changes"][0]["new"]["name"]
                .as_str()
                .map(str::to_owned),
            // Bitbucket does not list changed files.
            paths: None,
        },
        Provider::Generic => Push {
            urls: strings(&[&payload["repoURL"]]),
            reference: payload["revision"].as_str().map(str::to_owned),
            paths: payload["paths"].as_array().map(|paths| {
                paths
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }),
        },
    };
    if push.urls.is_empty() {
        return Err(PushError::NoRepositoryUrl);
    }
    Ok(Some(push))
}
