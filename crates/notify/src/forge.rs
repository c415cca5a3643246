//! GitHub's and GitLab's REST APIs as driftless uses them: commit statuses (for syncs and plans)
//! and one comment per pull/merge request (for plans), each request as their documentation
//! gives it (GitHub: `Authorization: Bearer`, `application/vnd.github+json`, API version
//! 2022-11-28; GitLab: `PRIVATE-TOKEN`, the project's path URL-encoded as its id).

use driftless_core::notifications::CommitState;
use serde::Deserialize;

/// One forge's API, with the token to call it.
pub struct Forge {
    pub github: bool,
    /// `https://api.github.com`, `https://gitlab.example.com/api/v4`, without a trailing slash.
    pub api_url: String,
    pub token: zeroize::Zeroizing<String>,
}

/// A path segment as RFC 3986 allows it unescaped; everything else percent-encoded.
pub(crate) fn encode_segment(text: &str) -> String {
    use std::fmt::Write as _;
    text.bytes().fold(String::new(), |mut encoded, byte| {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
        encoded
    })
}

/// An account as both APIs name it (GitHub `login`, GitLab `username`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Account {
    #[serde(default, alias = "username")]
    pub login: String,
}

/// A comment as both APIs list it (GitHub `user`, GitLab `author`).
#[derive(Debug, Deserialize)]
pub(crate) struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    #[serde(default, alias = "author")]
    pub user: Account,
}

/// Why a call to a forge's API failed (listing comments, asking who the token is, writing a
/// comment, setting a commit status); the source of [`crate::PostError::Refused`]. It never says
/// the URL nor carries reqwest's error as its source: reqwest names the URL, and a URL may carry
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// No HTTP client could be built (the system's TLS roots, for one).
    #[error("no HTTP client")]
    NoClient,
    #[error("timed out")]
    TimedOut,
    #[error("unreachable")]
    Unreachable,
    #[error("answered something that is not the documented JSON")]
    NotJson,
    /// A status other than 2xx.
    #[error("answered {status}")]
    Status { status: u16 },
}

impl ForgeError {
    /// What went wrong in reqwest's `err`, without the URL it names.
    fn of(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::TimedOut
        } else if err.is_decode() {
            Self::NotJson
        } else {
            Self::Unreachable
        }
    }
}

/// Who GitHub Actions' own `GITHUB_TOKEN` comments as (it may not read `/user`).
const ACTIONS_BOT: &str = "github-actions[bot]";

impl Forge {
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.github {
            request
                .bearer_auth(self.token.trim())
                .header(reqwest::header::ACCEPT, "application/vnd.github+json")
                .header("x-github-api-version", "2022-11-28")
                .header(reqwest::header::USER_AGENT, "driftless")
        } else {
            request.header("private-token", self.token.trim())
        }
    }

    /// `owner/repo` (GitHub) or `projects/<encoded path or id>` (GitLab) under the API URL.
    fn project_url(&self, project: &str) -> String {
        if self.github {
            format!("{}/repos/{project}", self.api_url)
        } else {
            format!("{}/projects/{}", self.api_url, encode_segment(project))
        }
    }

    /// Sets the status called `context` on `sha` (GitHub cuts descriptions at 140 characters).
    pub(crate) fn status(
        &self,
        http: &reqwest::Client,
        project: &str,
        sha: &str,
        state: CommitState,
        context: &str,
        description: &str,
    ) -> reqwest::RequestBuilder {
        let description: String = description.chars().take(140).collect();
        let url = format!("{}/statuses/{sha}", self.project_url(project));
        let body = if self.github {
            serde_json::json!({ "state": state.github(), "context": context, "description": description })
        } else {
            serde_json::json!({ "state": state.gitlab(), "name": context, "description": description })
        };
        self.authorized(http.post(url)).json(&body)
    }

    fn comments_url(&self, project: &str, number: u64) -> String {
        if self.github {
            format!("{}/issues/{number}/comments", self.project_url(project))
        } else {
            format!("{}/merge_requests/{number}/notes", self.project_url(project))
        }
    }

    /// Every comment of pull/merge request `number`, page by page (at most 50 pages of 100).
    pub(crate) async fn comments(
        &self,
        http: &reqwest::Client,
        project: &str,
        number: u64,
    ) -> Result<Vec<Comment>, ForgeError> {
        let mut all = Vec::new();
        for page in 1..=50 {
            let url = format!("{}?per_page=100&page={page}", self.comments_url(project, number));
            let response = self
                .authorized(http.get(url))
                .send()
                .await
                .map_err(|err| ForgeError::of(&err))?;
            let found: Vec<Comment> = checked(response)?
                .json()
                .await
                .map_err(|err| ForgeError::of(&err))?;
            let done = found.len() < 100;
            all.extend(found);
            if done {
                break;
            }
        }
        Ok(all)
    }

    /// The account the token acts as.
    pub(crate) async fn me(&self, http: &reqwest::Client) -> Result<String, ForgeError> {
        let response = self
            .authorized(http.get(format!("{}/user", self.api_url)))
            .send()
            .await
            .map_err(|err| ForgeError::of(&err))?;
        if self.github && response.status() == reqwest::StatusCode::FORBIDDEN {
            return Ok(ACTIONS_BOT.to_owned());
        }
        let account: Account = checked(response)?
            .json()
            .await
            .map_err(|err| ForgeError::of(&err))?;
        Ok(account.login)
    }

    /// Creates a comment, or replaces comment `existing`.
    pub(crate) async fn put_comment(
        &self,
        http: &reqwest::Client,
        project: &str,
        number: u64,
        existing: Option<u64>,
        body: &str,
    ) -> Result<(), ForgeError> {
        let payload = serde_json::json!({ "body": body });
        let request = match existing {
            None => http.post(self.comments_url(project, number)),
            Some(id) if self.github => {
                http.patch(format!("{}/issues/comments/{id}", self.project_url(project)))
            }
            Some(id) => http.put(format!("{}/{id}", self.comments_url(project, number))),
        };
        checked(
            self.authorized(request)
                .json(&payload)
                .send()
                .await
                .map_err(|err| ForgeError::of(&err))?,
        )?;
        Ok(())
    }
}

pub(crate) fn checked(response: reqwest::Response) -> Result<reqwest::Response, ForgeError> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(ForgeError::Status {
            status: response.status().as_u16(),
        })
    }
}
