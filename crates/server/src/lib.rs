//! driftless's API, served by `driftless serve` and used by the CLI.
//!
//! It listens on a Unix socket in the data directory (`driftless.sock`, mode 0600): only the
//! user that runs driftless can reach it, so it needs no tokens and may do anything. With
//! `--listen`, the same API is also served over TCP, where every request needs a bearer token
//! (`driftless token create`): its role (viewer, operator, admin) says what it may do, its
//! application patterns which applications it sees (`driftless_core::access`). An application
//! outside a token's scope is answered exactly as one that does not exist; a forbidden action is
//! answered 403 before the application is looked at. Tokens travel in the `Authorization`
//! header, never in a cookie, so a browser cannot be made to send one (no CSRF).
//!
//! - `GET  /api/v1/applications`: every application's last reconcile status.
//! - `GET  /api/v1/applications/{name}/diff`: a fresh comparison (dry-run diff).
//! - `GET  /api/v1/applications/{name}/tree`: the ReplicaSets and Pods made from its workloads.
//! - `POST /api/v1/applications/{name}/sync`: a sync now (body: [`SyncRequest`]), serialised with
//!   the controller's reconciles of that application.
//! - `POST /api/v1/applications/{name}/refresh`: a reconcile now.
//! - `POST /api/v1/refresh` (body: [`RefreshRequest`]): a reconcile now of every application of a
//!   repository (or of all), sharing one fetch — what a push webhook asks for.
//! - `GET /api/v1/applications/{name}`: where it comes from and goes to, and its status.
//! - `GET /api/v1/applications/{name}/history?limit=N`, `…/events?limit=N`: newest first.
//! - `POST /api/v1/applications/{name}/rollback` (body: [`RollbackRequest`]), `…/pin`, `…/unpin`.
//! - `GET /api/v1/stream`: server-sent events, one per status change of the token's applications.
//! - `GET /api/v1/whoami`: the token's role and scope.
//! - `/ui/`: the web UI (`ui`), TCP only.

mod client;
mod metrics;
mod tls;
mod ui;
pub mod webhooks;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Extension, Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use driftless_core::access::{Decision, Grant, Role};
use driftless_engine::{AppStatus, Classified, Controller, ErrorClass, SyncOptions};
use serde::{Deserialize, Serialize};

pub use client::{ApiClient, ClientError};
pub use tls::{TlsConfig, check_listen};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "driftless.sock";

#[must_use]
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// What `driftless sync` asks the server for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
#[expect(clippy::struct_excessive_bools, reason = "the flags of `driftless sync`")]
pub struct SyncRequest {
    pub prune: bool,
    pub dry_run: bool,
    pub force: bool,
    pub adopt: bool,
}

/// An error answer: `{"error": "..."}`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// Returned by [`serve_local`].
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("another driftless serve is already listening on {0}")]
    AlreadyRunning(String),
    #[error("failed to listen on {path}")]
    Listen {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to serve the API on {0} over plain HTTP: bearer tokens would cross the network in clear; give --tls-cert and --tls-key (PEM files), or --insecure-http when a TLS-terminating proxy is the only way in"
    )]
    PlainHttp(String),
    #[error("TLS: {path}: {message}")]
    Tls { path: String, message: String },
}

enum ApiError {
    /// An operation of the engine (or the store) failed: its class decides the status.
    Failed {
        class: ErrorClass,
        message: String,
    },
    /// No token, or one that is unknown or revoked.
    Unauthorized,
    Forbidden(Role),
}

impl<E: Classified> From<E> for ApiError {
    fn from(err: E) -> Self {
        Self::Failed {
            class: err.class(),
            message: err.to_string(),
        }
    }
}

impl ApiError {
    /// An application that does not exist, or that the token may not know of: the same words.
    fn not_found(application: &str) -> Self {
        Self::Failed {
            class: ErrorClass::NotFound,
            message: format!("no application named {application:?} in the configuration"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            Self::Failed { class, message } => {
                let status = match class {
                    ErrorClass::NotFound => StatusCode::NOT_FOUND,
                    // What driftless could not reach (a cluster, a Git server) is not the
                    // request's fault.
                    ErrorClass::Unavailable => StatusCode::BAD_GATEWAY,
                    ErrorClass::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorClass::Refused => StatusCode::UNPROCESSABLE_ENTITY,
                };
                (status, message)
            }
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (driftless token create)".to_owned(),
            ),
            Self::Forbidden(needs) => (StatusCode::FORBIDDEN, format!("this needs the {needs} role")),
        };
        let mut response = (status, Json(ErrorBody { error })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// An application's labels; none for one that does not exist (which a label scope then hides,
/// exactly as one outside it).
fn labels_of(engine: &driftless_engine::Engine, application: &str) -> BTreeMap<String, String> {
    engine
        .application(application)
        .map(|app| app.labels.clone())
        .unwrap_or_default()
}

/// Whether `grant` covers the application by name and labels.
fn covers(engine: &driftless_engine::Engine, grant: &Grant, application: &str) -> bool {
    grant.covers(application, &labels_of(engine, application))
}

/// Refuses what `grant` may not do; an application outside its scope is "not found", exactly as
/// one that does not exist.
fn authorize(
    controller: &Controller,
    grant: &Grant,
    needs: Role,
    application: Option<&str>,
) -> Result<(), ApiError> {
    let labels = application
        .map(|name| labels_of(controller.engine(), name))
        .unwrap_or_default();
    match grant.decide(needs, application.map(|name| (name, &labels))) {
        Decision::Allowed => Ok(()),
        Decision::Forbidden => Err(ApiError::Forbidden(needs)),
        Decision::Hidden => Err(ApiError::not_found(application.unwrap_or_default())),
    }
}

/// The API's routes and, from the same registrations, its OpenAPI document.
fn api() -> (Router<Arc<Controller>>, utoipa::openapi::OpenApi) {
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, mut document) = OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(detail))
        .routes(routes!(diff))
        .routes(routes!(tree))
        .routes(routes!(history))
        .routes(routes!(events))
        .routes(routes!(sync))
        .routes(routes!(refresh))
        .routes(routes!(rollback))
        .routes(routes!(pin))
        .routes(routes!(unpin))
        .routes(routes!(suspend))
        .routes(routes!(resume))
        .routes(routes!(refresh_repository))
        .routes(routes!(stats))
        .routes(routes!(stream))
        .routes(routes!(whoami))
        .split_for_parts();
    "driftless".clone_into(&mut document.info.title);
    env!("CARGO_PKG_VERSION").clone_into(&mut document.info.version);
    document.info.description = Some(
        "The API of driftless serve. Over TCP every request needs `Authorization: Bearer <token>` \
         (driftless token create); an application outside the token's scope is answered as one \
         that does not exist."
            .to_owned(),
    );
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        utoipa::openapi::security::SecurityScheme::Http(utoipa::openapi::security::Http::new(
            utoipa::openapi::security::HttpAuthScheme::Bearer,
        )),
    );
    (router, document)
}

fn api_routes() -> Router<Arc<Controller>> {
    api().0
}

/// The OpenAPI document of the API, as `/api/openapi.json` serves it.
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// The socket's router: its one user owns driftless, and may do anything.
fn router(controller: Arc<Controller>) -> Router {
    let owner = Grant {
        role: Role::Admin,
        applications: Vec::new(),
        labels: BTreeMap::new(),
    };
    api_routes().layer(Extension(owner)).with_state(controller)
}

/// The TCP router: every request needs a bearer token, whose grant the handlers check.
fn token_router(controller: Arc<Controller>) -> Router {
    api_routes()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&controller),
            authenticate,
        ))
        // Webhooks prove themselves with their provider's signature, not a token.
        .merge(webhooks::routes())
        // Static files without data; the page signs its API requests with the user's token.
        .merge(ui::routes())
        // Aggregates only (no application names), for scrapers and probes without tokens.
        .route("/metrics", get(scrape))
        .route("/api/openapi.json", get(|| async { Json(openapi()) }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .layer(axum::middleware::from_fn_with_state(
            metrics::HttpMetrics::of(controller.engine()),
            metrics::count_request,
        ))
        .with_state(controller)
}

/// An application's sync and health state as the API and metrics name them (`Unknown` before
/// its first reconcile).
fn state_names(status: Option<&AppStatus>) -> (String, String) {
    let sync = status
        .and_then(|s| s.sync)
        .map_or_else(|| "Unknown".to_owned(), |sync| format!("{sync:?}"));
    let health = status
        .and_then(|s| s.health.as_ref())
        .map_or_else(|| "Unknown".to_owned(), |health| format!("{:?}", health.state));
    (sync, health)
}

/// `/metrics`: the engine's counters, the API's requests, and applications by sync and health
/// state as of now.
async fn scrape(State(controller): State<Arc<Controller>>) -> Response {
    let metrics = controller.engine().metrics();
    let statuses = controller.statuses().await;
    metrics.applications.clear();
    for name in controller.engine().application_names() {
        let (sync, health) = state_names(statuses.get(&name));
        let labels = driftless_engine::metrics::StateLabels { sync, health };
        metrics.applications.get_or_create(&labels).inc();
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

/// `/readyz`: ready while the state database answers.
async fn ready(State(controller): State<Arc<Controller>>) -> Response {
    match controller.engine().store().tokens() {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the state database does not answer",
            )
                .into_response()
        }
    }
}

fn now_millis() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

/// The token a TCP request presented, for answers that outlive the request (the event stream
/// checks it is still valid as long as it runs).
#[derive(Clone)]
struct Presented(Arc<zeroize::Zeroizing<String>>);

/// How often an open event stream checks that its token still exists with the same grant: a
/// revoked token (`driftless token revoke`, from any process) ends its streams within this.
const TOKEN_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the token behind `presented` still exists and grants exactly `grant`; a store that
/// cannot answer counts as no (the client reconnects and is checked afresh).
fn still_granted(engine: &driftless_engine::Engine, presented: &Presented, grant: &Grant) -> bool {
    matches!(
        engine.store().token_grant(&presented.0, now_millis()),
        Ok(Some(current)) if current == *grant
    )
}

async fn authenticate(
    State(controller): State<Arc<Controller>>,
    mut request: Request,
    next: Next,
) -> Response {
    let secret = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let Some(secret) = secret else {
        return ApiError::Unauthorized.into_response();
    };
    match controller.engine().store().token_grant(&secret, now_millis()) {
        Ok(Some(grant)) => {
            request.extensions_mut().insert(grant);
            request
                .extensions_mut()
                .insert(Presented(Arc::new(zeroize::Zeroizing::new(secret))));
            next.run(request).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "could not check a token");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(ErrorBody {
                    error: "tokens cannot be checked now".to_owned(),
                }),
            )
                .into_response()
        }
    }
}

/// Filters of `GET /api/v1/applications`; each given one must match.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListFilter {
    /// `Synced`, `OutOfSync` or `Unknown`.
    #[serde(default)]
    pub sync: Option<String>,
    /// `Healthy`, `Progressing`, `Suspended`, `Degraded`, `Missing` or `Unknown`.
    #[serde(default)]
    pub health: Option<String>,
    /// Part of the name, any case.
    #[serde(default)]
    pub search: Option<String>,
}

impl ListFilter {
    fn matches(&self, name: &str, status: &AppStatus) -> bool {
        let (sync, health) = state_names(Some(status));
        self.sync.as_ref().is_none_or(|wanted| *wanted == sync)
            && self.health.as_ref().is_none_or(|wanted| *wanted == health)
            && self
                .search
                .as_ref()
                .is_none_or(|part| name.to_lowercase().contains(&part.to_lowercase()))
    }
}

#[utoipa::path(get, path = "/api/v1/applications", summary = "Every application the token may see (and the filters match), with its last reconcile's status", params(ListFilter), responses((status = 200, description = "application name → status", body = BTreeMap<String, AppStatus>), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody)), security(("bearer" = [])))]
async fn list(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    axum::extract::Query(filter): axum::extract::Query<ListFilter>,
) -> Json<BTreeMap<String, AppStatus>> {
    let statuses = controller.statuses().await;
    let all = controller
        .engine()
        .application_names()
        .into_iter()
        .filter(|name| covers(controller.engine(), &grant, name))
        .map(|name| {
            let status = statuses.get(&name).cloned().unwrap_or_default();
            (name, status)
        })
        .filter(|(name, status)| filter.matches(name, status))
        .collect();
    Json(all)
}

#[utoipa::path(get, path = "/api/v1/stream", summary = "Server-sent events: `status` with {application, status} whenever an application's status changes (only the token's applications); `lagged` when some were missed", security(("bearer" = [])), responses((status = 200, description = "a text/event-stream", content_type = "text/event-stream", body = String), (status = 401, description = "no valid token", body = ErrorBody)))]
async fn stream(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    presented: Option<Extension<Presented>>,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    struct Listening {
        updates: tokio::sync::broadcast::Receiver<driftless_engine::StatusUpdate>,
        grant: Grant,
        engine: Arc<driftless_engine::Engine>,
        /// `None` on the socket, whose user needs no token.
        presented: Option<Presented>,
        recheck: tokio::time::Interval,
    }
    let mut recheck = tokio::time::interval(TOKEN_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let listening = Listening {
        updates: controller.updates(),
        grant,
        engine: controller.shared_engine(),
        presented: presented.map(|Extension(presented)| presented),
        recheck,
    };
    let events = futures::stream::unfold(listening, |mut listening| async move {
        loop {
            let received = tokio::select! {
                received = listening.updates.recv() => received,
                _ = listening.recheck.tick(), if listening.presented.is_some() => {
                    let valid = listening.presented.as_ref().is_some_and(|presented| {
                        still_granted(&listening.engine, presented, &listening.grant)
                    });
                    if !valid {
                        tracing::info!("an event stream's token was revoked or changed: stream ended");
                        return None;
                    }
                    continue;
                }
            };
            match received {
                Ok(update) if covers(&listening.engine, &listening.grant, &update.application) => {
                    let event = Event::default()
                        .event("status")
                        .json_data(&update)
                        .unwrap_or_else(|_| Event::default().event("status"));
                    return Some((Ok(event), listening));
                }
                Ok(_) => {}
                // A listener that fell behind is told, and reloads what it shows.
                Err(RecvError::Lagged(missed)) => {
                    let event = Event::default().event("lagged").data(missed.to_string());
                    return Some((Ok(event), listening));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// What the presented token may do.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Name patterns of the applications it may see; any name when empty.
    pub applications: Vec<String>,
    /// Labels the applications it may see carry; any when empty.
    pub labels: BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/api/v1/whoami", summary = "The presented token's role and scope", responses((status = 200, description = "the grant", body = WhoAmI), (status = 401, description = "no valid token", body = ErrorBody)), security(("bearer" = [])))]
async fn whoami(Extension(grant): Extension<Grant>) -> Json<WhoAmI> {
    Json(WhoAmI {
        role: grant.role.as_str().to_owned(),
        applications: grant.applications,
        labels: grant.labels,
    })
}

#[utoipa::path(get, path = "/api/v1/stats", summary = "Renders, Git fetches and API requests since the server started", responses((status = 200, description = "counters", body = driftless_engine::EngineStats), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody)), security(("bearer" = [])))]
async fn stats(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
) -> Result<Json<driftless_engine::EngineStats>, ApiError> {
    authorize(&controller, &grant, Role::Viewer, None)?;
    Ok(Json(controller.engine().stats().await))
}

/// One application: where it comes from and goes to, and its last reconcile's status.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDetail {
    pub name: String,
    /// Without credentials.
    pub repo_url: String,
    pub revision: String,
    pub path: String,
    pub renderer: String,
    pub cluster: String,
    pub namespace: Option<String>,
    pub automated: bool,
    pub status: AppStatus,
    /// For an application a root declares as an Argo CD or Flux object: each field that only
    /// changes how Argo CD or Flux would behave (`object: field: what differs`); it syncs
    /// regardless. Left out when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conversion_notes: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/applications/{name}", summary = "One application: source, destination, status", params(("name" = String, Path, description = "the application's name")), responses((status = 200, description = "the application", body = ApplicationDetail), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn detail(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<ApplicationDetail>, ApiError> {
    authorize(&controller, &grant, Role::Viewer, Some(&name))?;
    let app = controller.engine().find_application(&name).await?;
    let status = controller.statuses().await.remove(&name).unwrap_or_default();
    let renderer = match &app.source.renderer {
        driftless_core::application::Renderer::Detect => "detect",
        driftless_core::application::Renderer::Directory(_) => "directory",
        driftless_core::application::Renderer::Kustomize => "kustomize",
        driftless_core::application::Renderer::Helm(_) => "helm",
    };
    Ok(Json(ApplicationDetail {
        name: app.name.clone(),
        repo_url: driftless_secrets::scrub_url(&app.source.repo_url),
        revision: app.source.revision.clone(),
        path: app.source.path.clone(),
        renderer: renderer.to_owned(),
        cluster: app.destination.cluster.clone(),
        namespace: app.destination.namespace.clone(),
        automated: app.sync_policy.automated.is_some(),
        status,
        conversion_notes: controller.engine().conversion_notes(&name),
    }))
}

/// `?limit=N` (default 20, at most 500).
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Limit {
    #[serde(default)]
    pub limit: Option<usize>,
}

impl Limit {
    fn get(self) -> usize {
        self.limit.unwrap_or(20).clamp(1, 500)
    }
}

fn store_error(err: driftless_store::StoreError) -> ApiError {
    err.into()
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/history", summary = "The application's syncs, newest first", params(("name" = String, Path, description = "the application's name"), ("limit" = Option<usize>, Query, description = "at most this many, newest first (default 20, at most 500)")), responses((status = 200, description = "syncs", body = Vec<driftless_store::SyncRecord>), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn history(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
    axum::extract::Query(limit): axum::extract::Query<Limit>,
) -> Result<Json<Vec<driftless_store::SyncRecord>>, ApiError> {
    authorize(&controller, &grant, Role::Viewer, Some(&name))?;
    let app = controller.engine().find_application(&name).await?;
    let records = controller
        .engine()
        .store()
        .history(&app.name, limit.get())
        .map_err(store_error)?;
    Ok(Json(records))
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/events", summary = "What the controller noticed (drift, self-heal backoff, refused signatures), newest first", params(("name" = String, Path, description = "the application's name"), ("limit" = Option<usize>, Query, description = "at most this many, newest first (default 20, at most 500)")), responses((status = 200, description = "events", body = Vec<driftless_store::EventRecord>), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn events(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
    axum::extract::Query(limit): axum::extract::Query<Limit>,
) -> Result<Json<Vec<driftless_store::EventRecord>>, ApiError> {
    authorize(&controller, &grant, Role::Viewer, Some(&name))?;
    let app = controller.engine().find_application(&name).await?;
    let events = controller
        .engine()
        .store()
        .events(&app.name, limit.get())
        .map_err(store_error)?;
    Ok(Json(events))
}

/// What `POST …/rollback` asks for: a revision synced successfully before.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct RollbackRequest {
    pub revision: String,
    pub prune: bool,
    pub dry_run: bool,
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/rollback", summary = "Sync a revision synced successfully before and pin the application there", params(("name" = String, Path, description = "the application's name")), request_body = RollbackRequest, responses((status = 200, description = "the sync report", body = driftless_engine::SyncReport), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn rollback(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
    Json(request): Json<RollbackRequest>,
) -> Result<Response, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    let options = SyncOptions {
        prune: request.prune,
        dry_run: request.dry_run,
        ..SyncOptions::default()
    };
    let report = controller.rollback_now(&name, &request.revision, options).await?;
    Ok(Json(report).into_response())
}

/// What `POST …/pin` did.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Pinned {
    /// The commit the application stays at (its last successful sync's).
    pub pinned: String,
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/pin", summary = "Keep the application at the commit it runs: new commits are not deployed until unpinned", params(("name" = String, Path, description = "the application's name")), responses((status = 200, description = "the pinned commit", body = Pinned), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody), (status = 422, description = "never synced: nothing to pin", body = ErrorBody)), security(("bearer" = [])))]
async fn pin(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Pinned>, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    Ok(Json(Pinned {
        pinned: controller.pin_now(&name).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/unpin", summary = "Let a rolled-back application follow its configured revision again", params(("name" = String, Path, description = "the application's name")), responses((status = 200, description = "whether it was pinned", body = Object), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn unpin(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    let unpinned = controller.unpin_now(&name).await?;
    Ok(Json(serde_json::json!({ "unpinned": unpinned })))
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/suspend", summary = "Stop automated syncs (the application is still compared and reported)", params(("name" = String, Path, description = "the application's name")), security(("bearer" = [])), responses((status = 200, description = "whether it was running", body = Object), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)))]
async fn suspend(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    let suspended = controller.suspend_now(&name).await?;
    Ok(Json(serde_json::json!({ "suspended": suspended })))
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/resume", summary = "Let automated syncs run again", params(("name" = String, Path, description = "the application's name")), security(("bearer" = [])), responses((status = 200, description = "whether it was suspended", body = Object), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)))]
async fn resume(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    let resumed = controller.resume_now(&name).await?;
    Ok(Json(serde_json::json!({ "resumed": resumed })))
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/diff", summary = "A fresh comparison with the cluster: per-object diff (redacted) and health, and what would be pruned", params(("name" = String, Path, description = "the application's name")), responses((status = 200, description = "the comparison", body = driftless_engine::AppComparison), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn diff(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    authorize(&controller, &grant, Role::Viewer, Some(&name))?;
    let comparison = controller.engine().compare(&name).await?;
    Ok(Json(comparison).into_response())
}

#[utoipa::path(get, path = "/api/v1/applications/{name}/tree", summary = "What the cluster made from the application's workloads (ReplicaSets, Pods), each with its owner and health", params(("name" = String, Path, description = "the application's name")), responses((status = 200, description = "the children, parents first", body = Vec<driftless_core::tree::ChildObject>), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn tree(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<Vec<driftless_core::tree::ChildObject>>, ApiError> {
    authorize(&controller, &grant, Role::Viewer, Some(&name))?;
    Ok(Json(controller.engine().resource_tree(&name).await?))
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/sync", summary = "Sync now (serialised with the controller's reconciles)", params(("name" = String, Path, description = "the application's name")), request_body = SyncRequest, responses((status = 200, description = "the sync report", body = driftless_engine::SyncReport), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn sync(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
    Json(request): Json<SyncRequest>,
) -> Result<Response, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    let options = SyncOptions {
        prune: request.prune,
        dry_run: request.dry_run,
        force: request.force,
        adopt: request.adopt,
        ..SyncOptions::default()
    };
    let report = controller.sync_now(&name, options).await?;
    Ok(Json(report).into_response())
}

#[utoipa::path(post, path = "/api/v1/applications/{name}/refresh", summary = "Reconcile now", params(("name" = String, Path, description = "the application's name")), responses((status = 202, description = "accepted", body = ()), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody), (status = 404, description = "no such application (or outside the token's scope)", body = ErrorBody)), security(("bearer" = [])))]
async fn refresh(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&controller, &grant, Role::Operator, Some(&name))?;
    controller.engine().find_application(&name).await?;
    controller.refresh(&name);
    Ok(StatusCode::ACCEPTED)
}

/// Which applications `POST /api/v1/refresh` reconciles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// Only the applications whose source is this repository (exactly as configured); all when
    /// absent.
    #[serde(default)]
    pub repo_url: Option<String>,
}

/// The applications a refresh asked to reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RefreshResponse {
    pub applications: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/refresh", summary = "Reconcile now every application of a repository (or all), sharing one fetch; needs an unscoped grant", request_body = RefreshRequest, responses((status = 200, description = "the applications asked to reconcile", body = RefreshResponse), (status = 401, description = "no valid token", body = ErrorBody), (status = 403, description = "the role does not allow it", body = ErrorBody)), security(("bearer" = [])))]
async fn refresh_repository(
    State(controller): State<Arc<Controller>>,
    Extension(grant): Extension<Grant>,
    Json(request): Json<RefreshRequest>,
) -> Result<Json<RefreshResponse>, ApiError> {
    authorize(&controller, &grant, Role::Operator, None)?;
    Ok(Json(RefreshResponse {
        applications: controller.refresh_repository(request.repo_url.as_deref()),
    }))
}

/// Serves the API on the Unix socket at `path` until `shutdown` completes. Refuses to start when
/// another server answers there; removes a stale socket left by a crash.
pub async fn serve_local(
    controller: Arc<Controller>,
    path: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if tokio::net::UnixStream::connect(path).await.is_ok() {
        return Err(ServerError::AlreadyRunning(path.display().to_string()));
    }
    let _ = std::fs::remove_file(path);
    let listen_error = |source| ServerError::Listen {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(listen_error)?;
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(listen_error)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(listen_error)?;
    }
    tracing::info!(socket = %path.display(), "API listening");
    let served = axum::serve(listener, router(controller))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = std::fs::remove_file(path);
    served.map_err(listen_error)
}

/// Serves the API over TCP on `listener` (tokens required) until `shutdown` completes.
pub async fn serve_tcp(
    controller: Arc<Controller>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |address| address.to_string());
    tracing::info!(address = %address, "API listening (bearer tokens required)");
    axum::serve(listener, token_router(controller))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| ServerError::Listen {
            path: address,
            source,
        })
}

/// Serves the API over TLS on `listener` (tokens required) until `shutdown` completes; a client
/// that fails its handshake is dropped without an answer.
pub async fn serve_tls(
    controller: Arc<Controller>,
    listener: tokio::net::TcpListener,
    tls: &TlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |address| address.to_string());
    let listen_error = |source| ServerError::Listen {
        path: address.clone(),
        source,
    };
    let listener = tls::TlsListener::new(listener, tls).map_err(listen_error)?;
    tracing::info!(address = %address, "API listening over TLS (bearer tokens required)");
    axum::serve(listener, token_router(controller))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(listen_error)
}
