//! The CLI's side of the local API.

use std::path::{Path, PathBuf};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ErrorBody;

/// Returned by [`LocalClient`] calls.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach driftless serve at {path}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("request to driftless serve failed: {0}")]
    Http(String),
    /// The server answered with an error (its message).
    #[error("{message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from driftless serve: {0}")]
    Decode(String),
}

/// A client for the API of a `driftless serve` on this machine.
#[derive(Debug, Clone)]
pub struct LocalClient {
    socket: PathBuf,
}

impl LocalClient {
    /// `Some` when a server answers on the socket in `data_dir`.
    pub async fn connect(data_dir: &Path) -> Option<Self> {
        let socket = crate::socket_path(data_dir);
        tokio::net::UnixStream::connect(&socket)
            .await
            .ok()
            .map(|_| Self { socket })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A POST whose answer has no body (202 Accepted).
    pub async fn post_empty(&self, path: &str) -> Result<(), ClientError> {
        self.request(Method::POST, path, Vec::new()).await.map(drop)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let body = match body {
            Some(body) => serde_json::to_vec(body).map_err(|err| ClientError::Decode(err.to_string()))?,
            None => Vec::new(),
        };
        let bytes = self.request(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|err| ClientError::Decode(err.to_string()))
    }

    async fn request(&self, method: Method, path: &str, body: Vec<u8>) -> Result<Bytes, ClientError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.display().to_string(),
                source,
            })?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|err| ClientError::Http(err.to_string()))?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| ClientError::Http(err.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| ClientError::Http(err.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|err| ClientError::Http(err.to_string()))?
            .to_bytes();
        if status.is_success() {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<ErrorBody>(&bytes).map_or_else(
            |_| String::from_utf8_lossy(&bytes).into_owned(),
            |body| body.error,
        );
        Err(ClientError::Server {
            status: status.as_u16(),
            message: if status == StatusCode::NOT_FOUND && message.is_empty() {
                "not found".into()
            } else {
                message
            },
        })
    }
}
