//! Git push webhooks: `POST /api/webhooks/{github,gitlab,gitea,bitbucket,generic}`. Each is
//! answered only when its secret is configured (`webhooks:`), and only after the request proves
//! it knows it — an HMAC-SHA256 of the body (GitHub, Gitea/Forgejo, Bitbucket, ours, ours over a
//! timestamp too, refused outside a five-minute window) or GitLab's token, compared in constant
//! time. Then every application whose repository, branch and (for plain directories) path the
//! push touched is refreshed at once. A payload that is not a push is acknowledged and ignored; a
//! malformed one gets 400. Bodies over 2 MiB are refused before they are read whole.
//!
//! A signed delivery seen before is answered 200 `{"duplicate": true}` and refreshes nothing:
//! recognised by its provider's delivery identifier (which retries and redeliveries keep) or by
//! its signed content (the body; for the generic receiver, timestamp and body), since the
//! identifier headers are not covered by any provider's signature and a captured delivery could
//! otherwise be replayed under a new one. Push bodies name their commits, so two different
//! pushes never share one. `Deliveries` remembers at most 20,000 of these for a day.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use driftless_core::application::{Application, Renderer, SecretSource, repository_key};
use driftless_core::webhooks::{Provider, Push};
use driftless_engine::Controller;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::ErrorBody;

/// The largest webhook body read.
pub(crate) const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How far a generic webhook's timestamp may be from now.
const REPLAY_WINDOW_SECONDS: i64 = 300;

/// How many delivery keys (identifiers and contents) are remembered, and for how long: a replay
/// after that is refreshed again, which costs one fetch.
const REMEMBERED_KEYS: usize = 20_000;
const REMEMBERED_FOR: Duration = Duration::from_hours(24);

/// Deliveries seen recently: SHA-256 keys, oldest first, bounded in number and age.
#[derive(Default)]
pub(crate) struct Deliveries {
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<([u8; 32], Instant)>,
}

impl Deliveries {
    /// Remembers `keys`; whether any of them was seen already.
    fn seen_before(&self, keys: &[[u8; 32]], now: Instant) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((key, at)) = seen.order.front().copied() {
            if seen.order.len() < REMEMBERED_KEYS && now.duration_since(at) < REMEMBERED_FOR {
                break;
            }
            seen.order.pop_front();
            seen.keys.remove(&key);
        }
        let before = keys.iter().any(|key| seen.keys.contains(key));
        for key in keys {
            if seen.keys.insert(*key) {
                seen.order.push_back((*key, now));
            }
        }
        before
    }
}

/// The delivery identifier a provider sends, kept across its retries and redeliveries (never
/// Bitbucket's `X-Hook-UUID`: that names the webhook, the same for all its deliveries).
fn delivery_id(provider: Provider, headers: &HeaderMap) -> Option<&str> {
    let names: &[&str] = match provider {
        Provider::GitHub => &["x-github-delivery"],
        // `Idempotency-Key` (GitLab 17.4) stays the same when a delivery is retried.
        Provider::GitLab => &["idempotency-key", "x-gitlab-event-uuid"],
        Provider::Gitea => &["x-gitea-delivery", "x-forgejo-delivery", "x-gogs-delivery"],
        // Cloud, then Data Center.
        Provider::Bitbucket => &["x-request-uuid", "x-request-id"],
        // Its timestamp and signature make every delivery distinct already.
        Provider::Generic => &[],
    };
    names
        .iter()
        .find_map(|name| header(headers, name))
        .filter(|id| !id.is_empty())
}

/// What identifies a verified delivery: its identifier, if it has one, and its signed content.
fn delivery_keys(provider: Provider, headers: &HeaderMap, body: &[u8]) -> Vec<[u8; 32]> {
    let key = |kind: &[u8], parts: &[&[u8]]| -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(format!("{provider:?}").as_bytes());
        hash.update(kind);
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        hash.finalize().into()
    };
    let mut keys = Vec::with_capacity(2);
    if let Some(id) = delivery_id(provider, headers) {
        keys.push(key(b"id", &[id.as_bytes()]));
    }
    let timestamp = match provider {
        Provider::Generic => header(headers, "x-driftless-timestamp").unwrap_or_default(),
        _ => "",
    };
    keys.push(key(b"content", &[timestamp.as_bytes(), body]));
    keys
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn hmac_matches(secret: &[u8], message: &[u8], hex_signature: &str) -> bool {
    let Ok(expected) = decode_hex(hex_signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(message);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Result<Vec<u8>, ()> {
    if !text.len().is_multiple_of(2) {
        return Err(());
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

/// Whether the request proves it knows the secret; `Err` says why not (never the secret).
fn verify(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), &'static str> {
    let key = secret.trim().as_bytes();
    let signed = |name: &str, prefix: &str| {
        header(headers, name)
            .and_then(|value| value.strip_prefix(prefix))
            .is_some_and(|signature| hmac_matches(key, body, signature))
    };
    let valid = match provider {
        Provider::GitHub => signed("x-hub-signature-256", "sha256="),
        Provider::Bitbucket => signed("x-hub-signature", "sha256="),
        Provider::Gitea => signed("x-gitea-signature", "") || signed("x-forgejo-signature", ""),
        Provider::GitLab => {
            header(headers, "x-gitlab-token").is_some_and(|token| bool::from(token.as_bytes().ct_eq(key)))
        }
        Provider::Generic => {
            let Some(timestamp) =
                header(headers, "x-driftless-timestamp").and_then(|t| t.parse::<i64>().ok())
            else {
                return Err("missing X-Driftless-Timestamp");
            };
            if (now - timestamp).abs() > REPLAY_WINDOW_SECONDS {
                return Err("the timestamp is outside the replay window");
            }
            let mut message = format!("{timestamp}.").into_bytes();
            message.extend_from_slice(body);
            header(headers, "x-driftless-signature")
                .and_then(|value| value.strip_prefix("sha256="))
                .is_some_and(|signature| hmac_matches(key, &message, signature))
        }
    };
    if valid {
        Ok(())
    } else {
        Err("the signature does not match")
    }
}

/// The push a verified request describes: the event from the provider's header, the rest from
/// the body (`driftless_core::webhooks`).
fn parse_push(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Push>, driftless_core::webhooks::PushError> {
    let event = match provider {
        Provider::GitHub => header(headers, "x-github-event"),
        Provider::GitLab => header(headers, "x-gitlab-event"),
        Provider::Gitea => header(headers, "x-gitea-event").or_else(|| header(headers, "x-forgejo-event")),
        Provider::Bitbucket => header(headers, "x-event-key"),
        Provider::Generic => None,
    };
    driftless_core::webhooks::parse_push(provider, event, body)
}

/// Whether the push may change what `app` deploys.
pub(crate) fn push_matches(app: &Application, push: &Push) -> bool {
    let key = repository_key(&app.source.repo_url);
    if !push.urls.iter().any(|url| repository_key(url) == key) {
        return false;
    }
    let revision = app.source.revision.as_str();
    let follows = revision == "HEAD" || push.reference.as_deref().is_none_or(|pushed| pushed == revision);
    if !follows {
        return false;
    }
    // Only a plain directory is known to read nothing outside its path; Kustomize bases, Helm
    // values files and Jsonnet libraries may live anywhere in the repository.
    let Some(paths) = &push.paths else {
        return true;
    };
    if !matches!(&app.source.renderer, Renderer::Directory(options) if options.jsonnet.is_empty()) {
        return true;
    }
    let own = app.source.path.trim_matches('/');
    own.is_empty()
        || paths.iter().any(|path| {
            path.strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

fn answer(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            error: error.to_owned(),
        }),
    )
        .into_response()
}

fn configured(controller: &Controller, provider: Provider) -> Option<SecretSource> {
    let secrets = &controller.engine().config().webhooks;
    match provider {
        Provider::GitHub => secrets.github.clone(),
        Provider::GitLab => secrets.gitlab.clone(),
        Provider::Gitea => secrets.gitea.clone(),
        Provider::Bitbucket => secrets.bitbucket.clone(),
        Provider::Generic => secrets.generic.clone(),
    }
}

async fn receive(
    State(controller): State<Arc<Controller>>,
    Extension(deliveries): Extension<Arc<Deliveries>>,
    UrlPath(provider): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((provider, source)) =
        Provider::parse(&provider).and_then(|provider| Some((provider, configured(&controller, provider)?)))
    else {
        return answer(StatusCode::NOT_FOUND, "no such webhook receiver is configured");
    };
    let secret = match driftless_secrets::read_secret(&source, "webhook secret") {
        Ok(secret) => zeroize::Zeroizing::new(secret),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read a webhook secret");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "the webhook secret cannot be read",
            );
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_secs()).unwrap_or(i64::MAX));
    if let Err(why) = verify(provider, &headers, &body, &secret, now) {
        tracing::warn!(?provider, reason = why, "webhook refused");
        return answer(StatusCode::UNAUTHORIZED, why);
    }
    // Only after the signature: an unsigned request must not make a real delivery look seen.
    if deliveries.seen_before(&delivery_keys(provider, &headers, &body), Instant::now()) {
        tracing::info!(?provider, "duplicate webhook delivery ignored");
        return (
            StatusCode::OK,
            Json(serde_json::json!({ "refreshed": 0, "duplicate": true })),
        )
            .into_response();
    }
    let push = match parse_push(provider, &headers, &body) {
        Ok(Some(push)) => push,
        Ok(None) => return (StatusCode::OK, Json(serde_json::json!({ "refreshed": 0 }))).into_response(),
        Err(err) => return answer(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let engine = controller.engine();
    let mut refreshed = 0_usize;
    // The names come from the registry, so a lookup there is all that is needed.
    for name in engine.application_names() {
        if let Ok(app) = engine.application(&name)
            && push_matches(&app, &push)
        {
            controller.refresh(&name);
            refreshed += 1;
        }
    }
    tracing::info!(?provider, refreshed, reference = ?push.reference, "push webhook");
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "refreshed": refreshed })),
    )
        .into_response()
}

pub(crate) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/api/webhooks/{provider}", post(receive))
        .layer(Extension(Arc::new(Deliveries::default())))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("header value"));
        }
        map
    }

    #[test]
    fn githubs_documented_signature_verifies() {
        // docs.github.com "Validating webhook deliveries": this secret, payload and signature.
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let good = headers(&[("x-hub-signature-256", signature)]);
        assert_eq!(
            verify(
                Provider::GitHub,
                &good,
                b"Hello, World!",
                "It's a Secret to Everybody",
                0
            ),
            Ok(())
        );
        assert!(
            verify(
                Provider::GitHub,
                &good,
                b"Hello, World?",
                "It's a Secret to Everybody",
                0
            )
            .is_err()
        );
        assert!(verify(Provider::GitHub, &good, b"Hello, World!", "another secret", 0).is_err());
        assert!(
            verify(
                Provider::GitHub,
                &HeaderMap::new(),
                b"Hello, World!",
                "It's a Secret to Everybody",
                0
            )
            .is_err()
        );
        let truncated = headers(&[("x-hub-signature-256", &signature[..20])]);
        assert!(
            verify(
                Provider::GitHub,
                &truncated,
                b"Hello, World!",
                "It's a Secret to Everybody",
                0
            )
            .is_err()
        );
    }

    #[test]
    fn gitlab_tokens_and_generic_timestamps_are_checked() {
        let token = headers(&[("x-gitlab-token", "s3cret")]);
        assert_eq!(verify(Provider::GitLab, &token, b"{}", "s3cret", 0), Ok(()));
        assert!(verify(Provider::GitLab, &token, b"{}", "s3cret2", 0).is_err());

        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").expect("key");
        mac.update(b"1000.{}");
        let hex = mac
            .finalize()
            .into_bytes()
            .iter()
            .fold(String::new(), |mut hex, byte| {
                use std::fmt::Write as _;
                let _ = write!(hex, "{byte:02x}");
                hex
            });
        let generic = headers(&[
            ("x-driftless-timestamp", "1000"),
            ("x-driftless-signature", &format!("sha256={hex}")),
        ]);
        assert_eq!(verify(Provider::Generic, &generic, b"{}", "k", 1_100), Ok(()));
        assert_eq!(
            verify(Provider::Generic, &generic, b"{}", "k", 2_000),
            Err("the timestamp is outside the replay window"),
            "a replayed request"
        );
    }

    #[test]
    fn repository_urls_compare_across_their_forms() {
        let key = repository_key("https://github.com/Org/apps.git");
        for same in [
            "git@github.com:Org/apps.git",
            "ssh://git@github.com:22/Org/apps",
            "https://token@github.com/Org/apps/",
            "https://GitHub.com/Org/apps",
        ] {
            assert_eq!(repository_key(same), key, "{same}");
        }
        assert_ne!(repository_key("https://github.com/Org/apps-2"), key);
        assert_ne!(repository_key("https://github.com.evil/Org/apps"), key);
    }

    #[test]
    fn pushes_parse_per_provider_and_other_events_are_ignored() {
        let github = br#"{"ref":"refs/heads/main","repository":{"clone_url":"https://github.com/o/r.git","ssh_url":"git@github.com:o/r.git","html_url":"https://github.com/o/r"},"commits":[{"added":["a/x.yaml"],"modified":[],"removed":["b/y.yaml"]}]}"#;
        let push = parse_push(Provider::GitHub, &headers(&[("x-github-event", "push")]), github)
            .expect("parses")
            .expect("a push");
        assert_eq!(push.reference.as_deref(), Some("main"));
        assert_eq!(
            push.paths,
            Some(vec!["a/x.yaml".to_owned(), "b/y.yaml".to_owned()])
        );
        assert_eq!(
            parse_push(Provider::GitHub, &headers(&[("x-github-event", "ping")]), b"{}"),
            Ok(None)
        );
        assert!(
            parse_push(
                Provider::GitHub,
                &headers(&[("x-github-event", "push")]),
                b"{not json"
            )
            .is_err()
        );
        assert!(parse_push(Provider::GitHub, &headers(&[("x-github-event", "push")]), b"{}").is_err());
        let gitlab = br#"{"ref":"refs/heads/dev","project":{"git_http_url":"https://gitlab.com/o/r.git"},"commits":[]}"#;
        let push = parse_push(
            Provider::GitLab,
            &headers(&[("x-gitlab-event", "Push Hook")]),
            gitlab,
        )
        .expect("parses")
        .expect("a push");
        assert_eq!((push.reference.as_deref(), push.paths), (Some("dev"), None));
        let bitbucket = br#"{"repository":{"links":{"html":{"href":"https://bitbucket.org/o/r"}}},"push":{"changes":[{"new":{"name":"main"}}]}}"#;
        let push = parse_push(
            Provider::Bitbucket,
            &headers(&[("x-event-key", "repo:push")]),
            bitbucket,
        )
        .expect("parses")
        .expect("a push");
        assert_eq!(push.reference.as_deref(), Some("main"));
    }
}
