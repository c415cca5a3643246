//! Delivers the controller's notices (`StatusUpdate::notices`) to the targets their
//! subscriptions name: Slack-compatible incoming webhooks (`{"text": …}`) and JSON webhooks,
//! signed like driftless's generic receiver when a secret is set (`X-Driftless-Timestamp`,
//! `X-Driftless-Signature: sha256=HMAC(secret, "timestamp.body")`). Each delivery is retried
//! with backoff; a target that stays down costs only its own deliveries. Errors name the target,
//! never its URL (a Slack URL is a secret).

use std::sync::Arc;
use std::time::Duration;

use driftless_core::notifications::{Notice, Target, TargetKind};
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

async fn send(http: &reqwest::Client, target: &Target, notice: &Notice, text: &str) -> Result<(), String> {
    let read = |source| {
        driftless_git::read_secret(source, "notification secret")
            .map(zeroize::Zeroizing::new)
            .map_err(|err| err.to_string())
    };
    let request = match &target.kind {
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
                "timed out".to_owned()
            } else {
                "unreachable".to_owned()
            }
        })?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status().as_u16()))
    }
}

async fn deliver(http: reqwest::Client, target: Target, notice: Notice, text: String) {
    let mut wait = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        match send(&http, &target, &notice, &text).await {
            Ok(()) => return,
            Err(why) if attempt < ATTEMPTS => {
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
                for (target, text) in notifications.route(&notice) {
                    tokio::spawn(deliver(http.clone(), target.clone(), notice.clone(), text));
                }
            }
        }
    })
}
