//! Loopback HTTP servers for the unit tests: real sockets, so errors are what reqwest reports.

/// A server answering every request with `status` and `body`; its base URL.
pub(crate) async fn answering(status: u16, body: &'static str) -> String {
    let status = axum::http::StatusCode::from_u16(status).expect("a valid status");
    let app = axum::Router::new().fallback(move || async move { (status, body) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A server that accepts every connection and closes it unanswered; its base URL. Kept bound,
/// so no other process can take the port and answer instead.
pub(crate) async fn hanging_up() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            drop(connection);
        }
    });
    base
}
