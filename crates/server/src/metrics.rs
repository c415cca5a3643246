//! The API's own metrics: every request counted by method and status code, in the engine's
//! registry (`driftless_engine::metrics::Metrics::extension`) so `/metrics` is one OpenMetrics
//! text. No label takes text a request chose: the path is never one, and a made-up method counts
//! as `OTHER`.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use driftless_engine::Engine;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub code: String,
}

/// The request counter of one engine's servers (the socket's and the TCP listener's share it).
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
}

impl HttpMetrics {
    /// `engine`'s, registered in its registry the first time a server asks.
    pub(crate) fn of(engine: &Engine) -> Self {
        engine.metrics().extension(|registry| {
            let requests = Family::<RequestLabels, Counter>::default();
            registry.register(
                "api_requests",
                "Requests to the API by method and status code",
                requests.clone(),
            );
            Self { requests }
        })
    }
}

/// The method as a metric label: any other than the standard ones is `OTHER`, so a client
/// cannot add series (each one memory, forever) by making methods up.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// Middleware counting every request by method and status code.
pub(crate) async fn count_request(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let method = method_label(request.method()).to_owned();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        code: response.status().as_u16().to_string(),
    };
    metrics.requests.get_or_create(&labels).inc();
    response
}
