//! Where a secret may travel without TLS.

/// Whether `host` (a URL's host; an IPv6 address with or without brackets) is this machine:
/// the only place a token may be sent over plain HTTP, since it never crosses a network.
/// `localhost` and loopback addresses only — not names that merely start with them.
#[must_use]
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_machine_is_loopback() {
        for host in ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "example.com",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
