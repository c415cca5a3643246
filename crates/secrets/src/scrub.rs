/// Removes credentials (`user:password@`) from every URL in `text`, so errors and logs can quote
/// git's output and our URLs without leaking secrets (CVE-2023-25163 class).
#[must_use]
pub fn scrub_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (before, after) = rest.split_at(scheme_end + 3);
        out.push_str(before);
        // The authority ends at the first '/', whitespace or quote; userinfo is what precedes an '@' in it.
        let authority_len = after
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::scrub_url;

    #[test]
    fn credentials_are_removed_wherever_they_appear() {
        assert_eq!(
            scrub_url("https://user:s3cret@git.example.com/org/repo.git"),
            "https://***@git.example.com/org/repo.git"
        );
        assert_eq!(
            scrub_url("fatal: unable to access 'https://tok@h/r/': 403\nretry https://a:b@c/d"),
            "fatal: unable to access 'https://***@h/r/': 403\nretry https://***@c/d"
        );
        assert_eq!(scrub_url("file:///srv/git/repo"), "file:///srv/git/repo");
        assert_eq!(scrub_url("no urls here"), "no urls here");
    }
}
