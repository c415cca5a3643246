//! Counting the HTTP requests a client sends, below everything that builds them: what is counted
//! is what went to the API server, however an operation was written (a handle built and never
//! used counts nothing, an operation that sends two requests counts two).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use kube::client::Body;

/// A client that sends through `client` and adds one to `requests` for every HTTP request, as it
/// is handed over. A request kube's client retries by itself (429, 503, 504) counts once.
///
/// # Panics
/// Outside a Tokio runtime: the new client's request buffer is a task spawned there.
pub(crate) fn counted(client: &kube::Client, requests: Arc<AtomicU64>) -> kube::Client {
    let service = tower::ServiceBuilder::new()
        .layer(CountRequests { requests })
        .service(Sender(client.clone()));
    kube::Client::new(service, client.default_namespace())
}

/// Counts every request that passes through it.
#[derive(Clone)]
struct CountRequests {
    requests: Arc<AtomicU64>,
}

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Counted {
            inner,
            requests: Arc::clone(&self.requests),
        }
    }
}

#[derive(Clone)]
struct Counted<S> {
    inner: S,
    requests: Arc<AtomicU64>,
}

impl<S, R> tower::Service<R> for Counted<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

/// A kube client as a service, so layers can go on top of one that is already built (with its
/// connection pool, authentication and retries).
#[derive(Clone)]
struct Sender(kube::Client);

impl tower::Service<http::Request<Body>> for Sender {
    type Response = http::Response<Body>;
    // kube's own error type: the client on top unwraps it again, so errors look as they would
    // without the layer.
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let client = self.0.clone();
        Box::pin(async move { client.send(request).await })
    }
}
