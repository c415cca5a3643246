//! Delivers the controller's notices (`StatusUpdate::notices`) to the targets their
//! subscriptions name: Slack-compatible incoming webhooks (`{"text": …}`); JSON webhooks,
//! signed like driftless's generic receiver when a secret is set (`X-Driftless-Timestamp`,
//! `X-Driftless-Signature: sha256=HMAC(secret, "timestamp.body")`); email over SMTP, always with
//! STARTTLS (a server that does not offer it gets nothing); and commit statuses on GitHub and
//! GitLab for the synced commit (pending, success, failure), as their REST APIs document. Each
//! delivery is retried with backoff; a target that stays down costs only its own deliveries.
//! Errors name the target, never its URL (a Slack URL is a secret) or credentials.

use std::sync::Arc;
use std::time::Duration;

use driftless_core::notifications::{
    CommitState, CommitStatusTarget, EmailTarget, Notice, Target, TargetKind, repository_path,
};
use driftless_engine::Controller;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use tokio::sync::broadcast::error::RecvError;

/// Attempts per delivery, and the wait before the first retry (doubling after).
const ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(500);

fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use std::fmt::Write as _;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.trim().as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::from("sha256="), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Whether the repository at `repo_url` lives on the forge whose API is `api_url`: the same host,
/// or the API's `api.` subdomain of it (`github.com` and `api.github.com`). A repository URL
/// without a host (a local path) has no forge to tell apart, and is taken as the configured one.
fn same_forge(repo_url: &str, api_url: &str) -> bool {
    let host = |url: &str| {
        let key = driftless_core::application::repository_key(url);
        key.split('/').next().unwrap_or_default().to_owned()
    };
    let (repository, api) = (host(repo_url), host(api_url));
    repository.is_empty() || api == repository || api.strip_prefix("api.") == Some(repository.as_str())
}

/// Why one notice did not reach one target ([`send`]); logged beside the target's name. No
/// variant holds a URL (a Slack URL is a secret), a token or a password, nor an error that could
/// (reqwest's name the URL).
#[derive(Debug, thiserror::Error)]
enum DeliveryError {
    /// The target's URL, token, password or signing secret.
    #[error("{0}")]
    Secret(#[from] driftless_secrets::ReadSecretError),
    /// A commit status for an application no longer configured.
    #[error("the application is gone")]
    ApplicationGone,
    #[error("the repository URL names no owner and repository")]
    NoRepository,
    #[error("{address:?} is not a mail address")]
    Address { address: String },
    #[error("cannot build the message: {0}")]
    Message(#[source] lettre::error::Error),
    /// The email target's `caFile`.
    #[error("cannot read {}: {source}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a PEM certificate: {source}", path.display())]
    NotPem {
        path: std::path::PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    #[error("SMTP: {0}")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("timed out")]
    TimedOut,
    #[error("unreachable")]
    Unreachable,
    /// A status other than 2xx.
    #[error("answered {status}")]
    Status { status: u16 },
}

fn read(
    source: &driftless_core::application::SecretSource,
) -> Result<zeroize::Zeroizing<String>, driftless_secrets::ReadSecretError> {
    driftless_secrets::read_secret(source, "notification secret").map(zeroize::Zeroizing::new)
}

/// Mail with STARTTLS required: lettre refuses to go on in the clear when the server does not
/// offer it, so neither the credentials nor the message are ever sent unencrypted.
async fn send_email(email: &EmailTarget, notice: &Notice, text: &str) -> Result<(), DeliveryError> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
    let address = |text: &str| {
        text.parse::<lettre::message::Mailbox>()
            .map_err(|_| DeliveryError::Address {
                address: text.to_owned(),
            })
    };
    let mut message = Message::builder().from(address(&email.from)?).subject(format!(
        "driftless: {} {}",
        notice.application,
        notice.kind.as_str()
    ));
    for to in &email.to {
        message = message.to(address(to)?);
    }
    let message = message
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .map_err(DeliveryError::Message)?;
    let mut tls = TlsParameters::builder(email.host.clone());
    if let Some(ca_file) = &email.ca_file {
        let pem = std::fs::read(ca_file).map_err(|source| DeliveryError::CaFile {
            path: ca_file.clone(),
            source,
        })?;
        let ca = Certificate::from_pem(&pem).map_err(|source| DeliveryError::NotPem {
            path: ca_file.clone(),
            source,
        })?;
        tls = tls
            .certificate_store(CertificateStore::None)
            .add_root_certificate(ca);
    }
    let tls = tls.build().map_err(DeliveryError::Tls)?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&email.host)
        .port(email.port)
        .tls(Tls::Required(tls))
        .timeout(Some(Duration::from_secs(10)));
    if let (Some(username), Some(password)) = (&email.username, &email.password) {
        transport = transport.credentials(Credentials::new(
            username.clone(),
            read(password)?.trim().to_owned(),
        ));
    }
    transport
        .build()
        .send(message)
        .await
        .map(drop)
        .map_err(DeliveryError::Smtp)
}

/// The request that sets the synced commit's status; `None` when the notice is not about a sync
/// of a known commit.
fn commit_status(
    http: &reqwest::Client,
    target: &CommitStatusTarget,
    github: bool,
    notice: &Notice,
    repo_url: &str,
) -> Result<Option<reqwest::RequestBuilder>, DeliveryError> {
    let (Some(state), Some(revision)) = (CommitState::of(notice.kind), notice.revision.as_deref()) else {
        return Ok(None);
    };
    if revision.len() != 40 || !revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    if !same_forge(repo_url, &target.api_url) {
        // Not this forge's repository: its name and messages are none of its business.
        return Ok(None);
    }
    let path = repository_path(repo_url).ok_or(DeliveryError::NoRepository)?;
    let context = target.context.replace("{application}", &notice.application);
    let forge = crate::forge::Forge {
        github,
        api_url: target.api_url.clone(),
        token: read(&target.token)?,
    };
    Ok(Some(forge.status(
        http,
        &path,
        revision,
        state,
        &context,
        &notice.message,
    )))
}

async fn send(
    http: &reqwest::Client,
    target: &Target,
    notice: &Notice,
    text: &str,
    repo_url: Option<&str>,
) -> Result<(), DeliveryError> {
    let request = match &target.kind {
        TargetKind::Email(email) => return send_email(email, notice, text).await,
        TargetKind::GithubStatus(status) | TargetKind::GitlabStatus(status) => {
            let github = matches!(target.kind, TargetKind::GithubStatus(_));
            let repo_url = repo_url.ok_or(DeliveryError::ApplicationGone)?;
            match commit_status(http, status, github, notice, repo_url)? {
                Some(request) => request,
                None => return Ok(()),
            }
        }
        TargetKind::Slack { url } => http
            .post(read(url)?.trim())
            .json(&serde_json::json!({ "text": text })),
        TargetKind::Webhook { url, secret } => {
            let body = serde_json::to_vec(&serde_json::json!({
                "application": notice.application,
                "event": notice.kind.as_str(),
                "revision": notice.revision,
                "message": notice.message,
                "text": text,
            }))
            .unwrap_or_default();
            let mut request = http
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json");
            if let Some(secret) = secret {
                let timestamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
                request = request
                    .header("x-driftless-timestamp", timestamp.to_string())
                    .header(
                        "x-driftless-signature",
                        signature(&read(secret)?, timestamp, &body),
                    );
            }
            request.body(body)
        }
    };
    let response = request
        .send()
        .await
        // reqwest names the URL in its errors; a Slack URL is a secret.
        .map_err(|err| {
            if err.is_timeout() {
                DeliveryError::TimedOut
            } else {
                DeliveryError::Unreachable
            }
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Status {
            status: response.status().as_u16(),
        })
    }
}

async fn deliver(
    http: reqwest::Client,
    target: Target,
    notice: Notice,
    text: String,
    repo_url: Option<String>,
) {
    let mut wait = FIRST_RETRY;
    // A "pending" retried late could land after the sync's result and hide it: told once only.
    let attempts = if notice.kind == driftless_core::notifications::NoticeKind::SyncStarted {
        1
    } else {
        ATTEMPTS
    };
    for attempt in 1..=attempts {
        match send(&http, &target, &notice, &text, repo_url.as_deref()).await {
            Ok(()) => return,
            Err(why) if attempt < attempts => {
                tracing::debug!(target = %target.name, attempt, reason = %why, "notification not delivered; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(why) => {
                tracing::warn!(target = %target.name, application = %notice.application, event = notice.kind.as_str(), reason = %why, "notification not delivered");
            }
        }
    }
}

/// Delivers notices until the controller is dropped. Call once per process.
pub fn spawn(controller: &Arc<Controller>) -> tokio::task::JoinHandle<()> {
    let mut updates = controller.updates();
    let notifications = controller.engine().config().notifications.clone();
    let engine = controller.shared_engine();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    tokio::spawn(async move {
        loop {
            let update = match updates.recv().await {
                Ok(update) => update,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "notifications fell behind; some were not sent");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            for notice in update.notices {
                let repo_url = engine
                    .application(&notice.application)
                    .ok()
                    .map(|app| app.source.repo_url.clone());
                for (target, text) in notifications.route(&notice) {
                    let delivery = deliver(
                        http.clone(),
                        target.clone(),
                        notice.clone(),
                        text,
                        repo_url.clone(),
                    );
                    tokio::spawn(delivery);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{DeliveryError, same_forge, send};
    use crate::testing::{answering, hanging_up};
    use driftless_core::application::SecretSource;
    use driftless_core::notifications::{
        CommitStatusTarget, EmailTarget, Notice, NoticeKind, Target, TargetKind,
    };

    fn notice() -> Notice {
        Notice {
            application: "web".to_owned(),
            kind: NoticeKind::SyncFailed,
            revision: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
            message: "apply failed".to_owned(),
        }
    }

    async fn send_to(kind: TargetKind, repo_url: Option<&str>) -> DeliveryError {
        let target = Target {
            name: "t".to_owned(),
            kind,
        };
        let http = reqwest::Client::new();
        send(&http, &target, &notice(), "web: sync-failed", repo_url)
            .await
            .expect_err("not delivered")
    }

    fn email(from: &str, ca_file: Option<std::path::PathBuf>) -> TargetKind {
        TargetKind::Email(EmailTarget {
            host: "127.0.0.1".to_owned(),
            port: 1,
            from: from.to_owned(),
            to: vec!["ops@example.com".to_owned()],
            username: None,
            password: None,
            ca_file,
        })
    }

    /// What the log says when a delivery fails, and that it never says the URL (whose path holds
    /// the token of a Slack or webhook URL).
    #[tokio::test]
    async fn failed_deliveries_say_why_without_the_url() {
        let dir = tempfile::tempdir().expect("dir");
        let refusing = format!("{}/hooks/T0KEN", answering(500, "no").await);
        let slack_url = dir.path().join("slack-url");
        std::fs::write(&slack_url, &refusing).expect("slack url");
        let webhook = |url: String| TargetKind::Webhook { url, secret: None };
        let cases = [
            (
                send_to(
                    TargetKind::Slack {
                        url: SecretSource::File(slack_url),
                    },
                    None,
                )
                .await,
                "answered 500".to_owned(),
            ),
            (
                send_to(webhook(refusing.clone()), None).await,
                "answered 500".to_owned(),
            ),
            (
                send_to(webhook(format!("{}/hooks/T0KEN", hanging_up().await)), None).await,
                "unreachable".to_owned(),
            ),
            (
                send_to(
                    TargetKind::Slack {
                        url: SecretSource::File(dir.path().join("missing")),
                    },
                    None,
                )
                .await,
                format!(
                    "cannot read notification secret from file {}",
                    dir.path().join("missing").display()
                ),
            ),
            (
                send_to(
                    TargetKind::GithubStatus(CommitStatusTarget {
                        api_url: "https://api.github.com".to_owned(),
                        token: SecretSource::Env("DRIFTLESS_TEST_UNSET_TOKEN".to_owned()),
                        context: "driftless/{application}".to_owned(),
                    }),
                    None,
                )
                .await,
                "the application is gone".to_owned(),
            ),
            (
                send_to(email("nobody", None), None).await,
                "\"nobody\" is not a mail address".to_owned(),
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected, "{error:?}");
            assert!(!format!("{error:?}").contains("T0KEN"), "{error:?}");
        }
        let ca_file = dir.path().join("ca.pem");
        let unreadable = send_to(email("cd@example.com", Some(ca_file.clone())), None).await;
        assert!(
            matches!(&unreadable, DeliveryError::CaFile { path, .. } if *path == ca_file),
            "{unreadable:?}"
        );
        assert!(
            unreadable
                .to_string()
                .starts_with(&format!("cannot read {}: ", ca_file.display())),
            "{unreadable}"
        );
    }

    #[test]
    fn statuses_go_only_to_the_forge_that_hosts_the_repository() {
        assert!(same_forge(
            "https://github.com/acme/shop.git",
            "https://api.github.com"
        ));
        assert!(same_forge(
            "git@github.com:acme/shop.git",
            "https://api.github.com"
        ));
        assert!(same_forge(
            "https://ghe.example/acme/shop",
            "https://ghe.example/api/v3"
        ));
        assert!(same_forge(
            "https://gitlab.example/g/p",
            "https://gitlab.example/api/v4"
        ));
        assert!(!same_forge(
            "https://git.internal/acme/secret",
            "https://api.github.com"
        ));
        assert!(!same_forge(
            "https://gitlab.com/acme/shop",
            "https://api.github.com"
        ));
    }
}
