//! The CLI's side of the API: a local `driftless serve` over its Unix socket, or a remote one over
//! HTTPS (plain HTTP only on loopback, so a token never crosses a network in clear) with a bearer
//! token.

use std::path::{Path, PathBuf};

use driftless_secrets::is_loopback;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ErrorBody;

/// Returned by [`ApiClient`] calls.
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
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
}

/// A client for the API of a `driftless serve`.
#[derive(Clone)]
pub struct ApiClient {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Socket(PathBuf),
    Remote {
        base: String,
        token: String,
        http: reqwest::Client,
    },
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.transport {
            Transport::Socket(path) => write!(f, "ApiClient({})", path.display()),
            // Never the token.
            Transport::Remote { base, .. } => write!(f, "ApiClient({base})"),
        }
    }
}

impl ApiClient {
    /// `Some` when a server answers on the socket in `data_dir`.
    pub async fn connect(data_dir: &Path) -> Option<Self> {
        let socket = crate::socket_path(data_dir);
        tokio::net::UnixStream::connect(&socket).await.ok().map(|_| Self {
            transport: Transport::Socket(socket),
        })
    }

    /// A remote server at `url` (`https://…`, or `http://` on a loopback address), with `token`.
    pub fn remote(url: &str, token: &str) -> Result<Self, ClientError> {
        Self::remote_with_ca(url, token, None)
    }

    /// As [`ApiClient::remote`], also trusting the PEM certificate authority `ca` (a server
    /// whose certificate a private CA signed).
    pub fn remote_with_ca(url: &str, token: &str, ca: Option<&[u8]>) -> Result<Self, ClientError> {
        let refused = |reason: &str| ClientError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|err| refused(&err.to_string()))?;
        let host = parsed.host_str().unwrap_or_default();
        match parsed.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(refused(
                    "use https:// (the token would cross the network in clear)",
                ));
            }
            _ => return Err(refused("must be an https:// URL")),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(refused(
                "credentials do not belong in the URL; set DRIFTLESS_TOKEN",
            ));
        }
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = ca {
            let ca = reqwest::Certificate::from_pem(ca)
                .map_err(|err| refused(&format!("the certificate authority is not PEM: {err}")))?;
            http = http.add_root_certificate(ca);
        }
        let http = http.build().map_err(|err| ClientError::Http(err.to_string()))?;
        Ok(Self {
            transport: Transport::Remote {
                base: url.trim_end_matches('/').to_owned(),
                token: token.to_owned(),
                http,
            },
        })
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
        let (status, bytes) = match &self.transport {
            Transport::Socket(socket) => Self::over_socket(socket, method, path, body).await?,
            Transport::Remote { base, token, http } => {
                let response = http
                    .request(method, format!("{base}{path}"))
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|err| ClientError::Http(driftless_secrets::scrub_url(&err.to_string())))?;
                let status =
                    StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|err| ClientError::Http(err.to_string()))?;
                (status, bytes)
            }
        };
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

    async fn over_socket(
        socket: &Path,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let stream =
            tokio::net::UnixStream::connect(socket)
                .await
                .map_err(|source| ClientError::Connect {
                    path: socket.display().to_string(),
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
        Ok((status, bytes))
    }
}
