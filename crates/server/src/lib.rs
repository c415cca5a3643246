//! driftless's API, served by `driftless serve` and used by the CLI.
//!
//! Today it listens on a Unix socket in the data directory (`driftless.sock`, mode 0600): only the
//! user that runs driftless can reach it, so it needs no tokens. The TCP API with tokens and roles
//! comes with the web UI.
//!
//! - `GET  /api/v1/applications`: every application's last reconcile status.
//! - `GET  /api/v1/applications/{name}/diff`: a fresh comparison (dry-run diff).
//! - `POST /api/v1/applications/{name}/sync`: a sync now (body: [`SyncRequest`]), serialised with
//!   the controller's reconciles of that application.
//! - `POST /api/v1/applications/{name}/refresh`: a reconcile now.
//! - `POST /api/v1/refresh` (body: [`RefreshRequest`]): a reconcile now of every application of a
//!   repository (or of all), sharing one fetch — what a push webhook asks for.

mod client;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use driftless_engine::{AppStatus, Controller, EngineError, SyncOptions};
use serde::{Deserialize, Serialize};

pub use client::{ClientError, LocalClient};

/// The socket's file name in the data directory.
pub const SOCKET_NAME: &str = "driftless.sock";

#[must_use]
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// What `driftless sync` asks the server for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[expect(clippy::struct_excessive_bools, reason = "the flags of `driftless sync`")]
pub struct SyncRequest {
    pub prune: bool,
    pub dry_run: bool,
    pub force: bool,
    pub adopt: bool,
}

/// An error answer: `{"error": "..."}`.
#[derive(Debug, Serialize, Deserialize)]
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
}

struct ApiError(EngineError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0 {
            EngineError::UnknownApplication(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        (
            status,
            Json(ErrorBody {
                error: self.0.to_string(),
            }),
        )
            .into_response()
    }
}

fn router(controller: Arc<Controller>) -> Router {
    Router::new()
        .route("/api/v1/applications", get(list))
        .route("/api/v1/applications/{name}/diff", get(diff))
        .route("/api/v1/applications/{name}/sync", post(sync))
        .route("/api/v1/applications/{name}/refresh", post(refresh))
        .route("/api/v1/refresh", post(refresh_repository))
        .route("/api/v1/stats", get(stats))
        .with_state(controller)
}

async fn list(State(controller): State<Arc<Controller>>) -> Json<BTreeMap<String, AppStatus>> {
    let statuses = controller.statuses().await;
    let all = controller
        .engine()
        .application_names()
        .into_iter()
        .map(|name| {
            let status = statuses.get(&name).cloned().unwrap_or_default();
            (name, status)
        })
        .collect();
    Json(all)
}

async fn stats(State(controller): State<Arc<Controller>>) -> Json<driftless_engine::EngineStats> {
    Json(controller.engine().stats().await)
}

async fn diff(
    State(controller): State<Arc<Controller>>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    let comparison = controller.engine().compare(&name).await.map_err(ApiError)?;
    Ok(Json(comparison).into_response())
}

async fn sync(
    State(controller): State<Arc<Controller>>,
    UrlPath(name): UrlPath<String>,
    Json(request): Json<SyncRequest>,
) -> Result<Response, ApiError> {
    let options = SyncOptions {
        prune: request.prune,
        dry_run: request.dry_run,
        force: request.force,
        adopt: request.adopt,
        ..SyncOptions::default()
    };
    let report = controller.sync_now(&name, options).await.map_err(ApiError)?;
    Ok(Json(report).into_response())
}

async fn refresh(
    State(controller): State<Arc<Controller>>,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    controller
        .engine()
        .find_application(&name)
        .await
        .map_err(ApiError)?;
    controller.refresh(&name);
    Ok(StatusCode::ACCEPTED)
}

/// Which applications `POST /api/v1/refresh` reconciles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    /// Only the applications whose source is this repository (exactly as configured); all when
    /// absent.
    #[serde(default)]
    pub repo_url: Option<String>,
}

/// The applications a refresh asked to reconcile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshResponse {
    pub applications: Vec<String>,
}

async fn refresh_repository(
    State(controller): State<Arc<Controller>>,
    Json(request): Json<RefreshRequest>,
) -> Json<RefreshResponse> {
    Json(RefreshResponse {
        applications: controller.refresh_repository(request.repo_url.as_deref()),
    })
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
