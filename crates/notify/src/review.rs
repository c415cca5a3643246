//! `driftless plan --post github|gitlab`: the plan as one comment on the pull/merge request,
//! found again by its hidden marker so that every run edits it instead of adding another, and a
//! commit status `driftless/plan` on the head commit. Everything comes from the CI job's
//! environment; the token is sent only to the forge's API, in its auth header.

use driftless_core::notifications::CommitState;
use driftless_core::preview::COMMENT_MARKER;

use crate::forge::{Forge, ForgeError};

/// The status's name on the head commit.
pub const STATUS_CONTEXT: &str = "driftless/plan";

/// Returned by [`PullRequest::from_env`] and [`PullRequest::post`].
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0} is not set; {1}")]
    Missing(&'static str, &'static str),
    #[error("{variable} is {value:?}: {why}")]
    Invalid {
        variable: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("the {forge} API refused to {action}: {source}")]
    Refused {
        forge: &'static str,
        action: &'static str,
        #[source]
        source: ForgeError,
    },
}

/// The pull/merge request a plan is for.
pub struct PullRequest {
    forge: Forge,
    /// `owner/repo` on GitHub; the project's id or full path on GitLab.
    project: String,
    number: u64,
    head_sha: String,
}

impl PullRequest {
    /// From GitHub Actions' variables (`GITHUB_TOKEN`, `GITHUB_REPOSITORY`, `GITHUB_API_URL`, the
    /// number from `GITHUB_REF` = `refs/pull/N/merge` or `DRIFTLESS_PULL_REQUEST`) or GitLab CI's
    /// (`GITLAB_TOKEN` — a token with the `api` scope; `CI_JOB_TOKEN` cannot comment —,
    /// `CI_API_V4_URL`, `CI_PROJECT_ID`, `CI_MERGE_REQUEST_IID`). `head_sha` is the commit
    /// planned (the status goes on it).
    pub fn from_env(
        github: bool,
        head_sha: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, PostError> {
        let need = |name: &'static str, hint: &'static str| {
            var(name)
                .filter(|value| !value.is_empty())
                .ok_or(PostError::Missing(name, hint))
        };
        if head_sha.len() != 40 || !head_sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PostError::Invalid {
                variable: "the head commit",
                value: head_sha.to_owned(),
                why: "not a full commit id",
            });
        }
        let (api_url, token, project, number) = if github {
            let number = match var("DRIFTLESS_PULL_REQUEST") {
                Some(number) => number,
                None => need(
                    "GITHUB_REF",
                    "run on a pull_request event or set DRIFTLESS_PULL_REQUEST",
                )?
                .strip_prefix("refs/pull/")
                .and_then(|rest| rest.split('/').next())
                .unwrap_or_default()
                .to_owned(),
            };
            (
                var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".to_owned()),
                need(
                    "GITHUB_TOKEN",
                    "give the job `pull-requests: write` and `statuses: write`",
                )?,
                need("GITHUB_REPOSITORY", "it is set by GitHub Actions (owner/repo)")?,
                number,
            )
        } else {
            (
                need("CI_API_V4_URL", "it is set by GitLab CI")?,
                need("GITLAB_TOKEN", "a project access token with the api scope")?,
                need("CI_PROJECT_ID", "it is set by GitLab CI")?,
                need("CI_MERGE_REQUEST_IID", "run in a merge request pipeline")?,
            )
        };
        let number = number.parse().map_err(|_| PostError::Invalid {
            variable: if github {
                "the pull request number"
            } else {
                "CI_MERGE_REQUEST_IID"
            },
            value: number.clone(),
            why: "not a number",
        })?;
        let safe = reqwest::Url::parse(&api_url).is_ok_and(|url| {
            url.scheme() == "https"
                || url.scheme() == "http"
                    && driftless_secrets::is_loopback(url.host_str().unwrap_or_default())
        });
        if !safe {
            return Err(PostError::Invalid {
                variable: if github { "GITHUB_API_URL" } else { "CI_API_V4_URL" },
                value: api_url,
                why: "the token goes only to an https:// API (or plain http on loopback)",
            });
        }
        Ok(Self {
            forge: Forge {
                github,
                api_url: api_url.trim_end_matches('/').to_owned(),
                token: zeroize::Zeroizing::new(token),
            },
            project,
            number,
            head_sha: head_sha.to_owned(),
        })
    }

    fn refused(&self, action: &'static str) -> impl Fn(ForgeError) -> PostError + '_ {
        move |source| PostError::Refused {
            forge: if self.forge.github { "GitHub" } else { "GitLab" },
            action,
            source,
        }
    }

    /// Puts `comment` (which starts with [`COMMENT_MARKER`]) on the pull request, editing
    /// driftless's earlier comment if there is one, and sets the head commit's status. Returns
    /// whether the comment is new.
    pub async fn post(
        &self,
        comment: &str,
        state: CommitState,
        description: &str,
    ) -> Result<bool, PostError> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| (self.refused("connect"))(ForgeError::NoClient))?;
        // Only a comment of ours is edited: anyone can write the marker.
        let me = self
            .forge
            .me(&http)
            .await
            .map_err(self.refused("say who the token is"))?;
        let existing = self
            .forge
            .comments(&http, &self.project, self.number)
            .await
            .map_err(self.refused("list the comments"))?
            .into_iter()
            .find(|found| found.body.starts_with(COMMENT_MARKER) && found.user.login == me)
            .map(|found| found.id);
        self.forge
            .put_comment(&http, &self.project, self.number, existing, comment)
            .await
            .map_err(self.refused("write the comment"))?;
        let response = self
            .forge
            .status(
                &http,
                &self.project,
                &self.head_sha,
                state,
                STATUS_CONTEXT,
                description,
            )
            .send()
            .await
            .map_err(|_| (self.refused("set the commit status"))(ForgeError::Unreachable))?;
        crate::forge::checked(response).map_err(self.refused("set the commit status"))?;
        Ok(existing.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn github_actions_and_gitlab_ci_variables_name_the_pull_request() {
        let github = PullRequest::from_env(
            true,
            SHA,
            env(&[
                ("GITHUB_TOKEN", "t"),
                ("GITHUB_REPOSITORY", "acme/shop"),
                ("GITHUB_REF", "refs/pull/42/merge"),
            ]),
        )
        .expect("github");
        assert_eq!((github.project.as_str(), github.number), ("acme/shop", 42));
        assert_eq!(github.forge.api_url, "https://api.github.com");
        let gitlab = PullRequest::from_env(
            false,
            SHA,
            env(&[
                ("GITLAB_TOKEN", "t"),
                ("CI_API_V4_URL", "https://gitlab.example/api/v4/"),
                ("CI_PROJECT_ID", "7"),
                ("CI_MERGE_REQUEST_IID", "3"),
            ]),
        )
        .expect("gitlab");
        assert_eq!(
            (gitlab.forge.api_url.as_str(), gitlab.number),
            ("https://gitlab.example/api/v4", 3)
        );
    }

    /// `plan --post` against an API at `api_url`: the error it ends with.
    async fn post_to(api_url: &str) -> PostError {
        let pairs = [
            ("GITHUB_TOKEN", "t"),
            ("GITHUB_REPOSITORY", "a/b"),
            ("DRIFTLESS_PULL_REQUEST", "1"),
            ("GITHUB_API_URL", api_url),
        ];
        let pull_request = PullRequest::from_env(true, SHA, env(&pairs)).expect("pull request");
        pull_request
            .post("<!-- driftless -->", CommitState::Success, "planned")
            .await
            .expect_err("refused")
    }

    /// What `plan --post` prints when the forge refuses, with the forge's error as its source.
    #[tokio::test]
    async fn a_refusing_forge_is_named_with_what_it_answered() {
        let unavailable = post_to(&crate::testing::answering(503, "").await).await;
        assert_eq!(
            unavailable.to_string(),
            "the GitHub API refused to say who the token is: answered 503"
        );
        let source = std::error::Error::source(&unavailable).and_then(|source| source.downcast_ref());
        assert!(
            matches!(source, Some(ForgeError::Status { status: 503 })),
            "{unavailable:?}"
        );
        assert_eq!(
            post_to(&crate::testing::answering(200, "<html>").await)
                .await
                .to_string(),
            "the GitHub API refused to say who the token is: answered something that is not the documented JSON"
        );
        assert_eq!(
            post_to(&crate::testing::hanging_up().await).await.to_string(),
            "the GitHub API refused to say who the token is: unreachable"
        );
    }

    #[test]
    fn missing_or_unsafe_settings_are_named() {
        let missing = PullRequest::from_env(
            true,
            SHA,
            env(&[("GITHUB_REPOSITORY", "a/b"), ("GITHUB_REF", "refs/pull/1/merge")]),
        );
        assert!(matches!(missing, Err(PostError::Missing("GITHUB_TOKEN", _))));
        let push = PullRequest::from_env(
            true,
            SHA,
            env(&[
                ("GITHUB_TOKEN", "t"),
                ("GITHUB_REPOSITORY", "a/b"),
                ("GITHUB_REF", "refs/heads/main"),
            ]),
        );
        assert!(matches!(push, Err(PostError::Invalid { value, .. }) if value.is_empty()));
        let with_api = |url: &str| {
            let pairs = [
                ("GITHUB_TOKEN", "t"),
                ("GITHUB_REPOSITORY", "a/b"),
                ("DRIFTLESS_PULL_REQUEST", "1"),
                ("GITHUB_API_URL", url),
            ];
            PullRequest::from_env(true, SHA, env(&pairs)).err()
        };
        assert!(matches!(
            with_api("http://github.example"),
            Some(PostError::Invalid {
                variable: "GITHUB_API_URL",
                ..
            })
        ));
        let lookalike = with_api("http://localhost.evil.example");
        assert!(with_api("http://127.0.0.1:8080").is_none(), "loopback is fine");
        assert!(lookalike.is_some(), "not loopback");
        assert!(
            PullRequest::from_env(true, "main", env(&[])).is_err(),
            "a full commit id"
        );
    }
}
