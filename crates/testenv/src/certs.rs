//! Certificates for a test's own TLS servers.

/// A CA and a serving certificate for `127.0.0.1` and `localhost` signed by it, for a test's own
/// TLS servers (a mail relay): `(ca, certificate, key)`, PEM text.
///
/// # Panics
/// When key generation fails.
#[must_use]
pub fn loopback_server() -> (String, String, String) {
    let certs = driftless_localcluster::certs::generate().expect("certificates");
    (certs.ca, certs.serving_cert, certs.serving_key)
}
