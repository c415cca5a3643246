//! TLS for the TCP listener (`serve --listen --tls-cert --tls-key`), with rustls and the process's
//! one crypto provider (aws-lc-rs), and the rule that decides when plain HTTP is allowed: only on
//! loopback, or when the operator says so (`--insecure-http`, behind a TLS-terminating proxy).
//! Bearer tokens must not cross a network in clear.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::ServerError;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 256;

/// Refuses, before anything is bound, to serve tokens over plain HTTP on an address other hosts
/// can reach: `tls` says whether a certificate was given, `insecure_http` whether plain HTTP was
/// asked for explicitly.
pub fn check_listen(address: SocketAddr, tls: bool, insecure_http: bool) -> Result<(), ServerError> {
    if tls || insecure_http || address.ip().is_loopback() {
        Ok(())
    } else {
        Err(ServerError::PlainHttp(address.to_string()))
    }
}

/// A certificate chain and its private key, ready to serve.
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (the server's certificate first) and its PEM private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, ServerError> {
        let refused = |path: &Path, message: String| ServerError::Tls {
            path: path.display().to_string(),
            message,
        };
        let cert_pem = std::fs::read(cert).map_err(|err| refused(cert, err.to_string()))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| refused(cert, format!("not a PEM certificate chain: {err}")))?;
        if chain.is_empty() {
            return Err(refused(cert, "no certificate in it".to_owned()));
        }
        let key_pem =
            zeroize::Zeroizing::new(std::fs::read(key).map_err(|err| refused(key, err.to_string()))?);
        // The parser's message never quotes the key.
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|err| refused(key, format!("not a PEM private key: {err}")))?;
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| refused(cert, err.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, private_key)
            .map_err(|err| refused(cert, format!("does not go with the key {}: {err}", key.display())))?;
        // The server speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self(Arc::new(config)))
    }
}

/// Connections that completed their TLS handshake. Handshakes run concurrently, each bounded in
/// time, so a client that connects and stays silent holds up no one.
pub(crate) struct TlsListener {
    accepted: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: &TlsConfig) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.0));
        let (send, accepted) = tokio::sync::mpsc::channel(16);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, mostly: wait rather than spin.
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, send) = (acceptor.clone(), send.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = send.send((tls, peer)).await;
                        }
                        Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            accepted,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
