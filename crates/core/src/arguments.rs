//! Grammars of the Application values that reach another program's command line (helm's).
//!
//! Checked when the configuration (or an Application found in Git) is loaded, and again by the
//! Helm renderer right before it builds helm's arguments, so a value can never become an option:
//! each grammar leaves no way to start with `-`, and none admits what helm would split on (`,`
//! in `--api-versions`, `,` and `=` in a `--set` name). Each function returns why not, as an
//! [`ArgumentError`] without the field's name (the caller knows it).

/// Why a value cannot reach helm's command line, returned by the grammars of this module. Names
/// the value, except a `--set` value (which may be a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    #[error(
        "{name:?} is not a Helm release name (lowercase letters, digits, '-' and '.', at most {} characters)",
        MAX_RELEASE_NAME
    )]
    ReleaseName { name: String },
    #[error("{namespace:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63)")]
    Namespace { namespace: String },
    #[error("{version:?} is not a Kubernetes version such as 1.29.0 or v1.29.0")]
    KubeVersion { version: String },
    #[error("{api:?} is not an API version such as v1, apps/v1 or apps/v1/Deployment")]
    ApiVersion { api: String },
    #[error(
        "{name:?} is not a value name such as image.tag, hosts[0].name or annotations.example\\.com/team \
         (letters, digits, '_', '-' and '/'; '.' between keys, '\\.' for a dot in a key, [N] for a list item)"
    )]
    ParameterName { name: String },
    /// The value itself is left out: `--set` values may be secrets.
    #[error("must not contain a NUL character")]
    NulInValue,
}

/// RFC 1123 label of at most `max` characters: lowercase letters, digits and `-`, starting and
/// ending with a letter or digit.
fn is_label(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// RFC 1123 label: what Kubernetes accepts for namespaces, and what driftless accepts for names.
#[must_use]
pub fn is_dns_label(name: &str) -> bool {
    is_label(name, 63)
}

/// Helm's own limit on release names (it names objects after them, with suffixes).
pub const MAX_RELEASE_NAME: usize = 53;

/// `helm template RELEASE`: what helm's own `ValidateReleaseName` accepts — DNS-1123 labels
/// joined by `.`, at most 53 characters.
///
/// # Errors
/// Why `name` is not a release name.
pub fn release_name(name: &str) -> Result<(), ArgumentError> {
    if name.len() <= MAX_RELEASE_NAME && name.split('.').all(|label| is_label(label, 63)) {
        Ok(())
    } else {
        Err(ArgumentError::ReleaseName {
            name: name.to_owned(),
        })
    }
}

/// `--namespace`: a DNS-1123 label.
///
/// # Errors
/// Why `namespace` is not a namespace name.
pub fn namespace(namespace: &str) -> Result<(), ArgumentError> {
    if is_label(namespace, 63) {
        Ok(())
    } else {
        Err(ArgumentError::Namespace {
            namespace: namespace.to_owned(),
        })
    }
}

/// Dot-separated identifiers of a semantic version's pre-release or build part.
fn is_identifiers(text: &str) -> bool {
    text.split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// `--kube-version`: what helm parses as a version — `MAJOR[.MINOR[.PATCH]]` with an optional
/// `v`, pre-release and build (`v1.27.3-gke.100`, `v1.20.15+k3s1`).
///
/// # Errors
/// Why `version` is not a Kubernetes version.
pub fn kube_version(version: &str) -> Result<(), ArgumentError> {
    let invalid = || {
        Err(ArgumentError::KubeVersion {
            version: version.to_owned(),
        })
    };
    let text = version.strip_prefix('v').unwrap_or(version);
    let (text, build) = text.split_once('+').map_or((text, None), |(t, b)| (t, Some(b)));
    let (core, pre) = text.split_once('-').map_or((text, None), |(c, p)| (c, Some(p)));
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = numbers
        .iter()
        .all(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()));
    if version.len() > 64
        || numbers.len() > 3
        || !numeric
        || !pre.is_none_or(is_identifiers)
        || !build.is_none_or(is_identifiers)
    {
        return invalid();
    }
    Ok(())
}

/// `--api-versions`: `version`, `version/Kind` (the core group), `group/version` or
/// `group/version/Kind`, as helm documents it.
///
/// # Errors
/// Why `api` is not an API version.
pub fn api_version(api: &str) -> Result<(), ArgumentError> {
    // A DNS-1035 label, as Kubernetes requires of a custom resource's versions.
    let version = |v: &str| v.starts_with(|c: char| c.is_ascii_lowercase()) && is_label(v, 63);
    let group = |g: &str| g.len() <= 253 && g.split('.').all(|label| is_label(label, 63));
    let kind = |k: &str| {
        k.starts_with(|c: char| c.is_ascii_alphabetic())
            && k.len() <= 63
            && k.bytes().all(|b| b.is_ascii_alphanumeric())
    };
    let parts: Vec<&str> = api.split('/').collect();
    let valid = match parts.as_slice() {
        [v] => version(v),
        [g, v] => (group(g) && version(v)) || (version(g) && kind(v)),
        [g, v, k] => group(g) && version(v) && kind(k),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(ArgumentError::ApiVersion { api: api.to_owned() })
    }
}

/// A `--set` name: keys separated by `.`, each of letters, digits, `_`, `-`, `/` and `\.` (a dot
/// inside a key, as in `annotations.example\.com/team`), each optionally followed by list indexes
/// `[N]`; not starting with `-`. Nothing else: `,` would start another assignment, `=` would end
/// the name early, and other escapes are helm syntax we do not need.
///
/// # Errors
/// Why `name` is not a value name.
pub fn parameter_name(name: &str) -> Result<(), ArgumentError> {
    let invalid = || {
        Err(ArgumentError::ParameterName {
            name: name.to_owned(),
        })
    };
    if name.is_empty() || name.len() > 1024 || name.starts_with('-') {
        return invalid();
    }
    let bytes = name.as_bytes();
    let mut index = 0;
    // Per key: its characters, then any `[N]`, then `.` or the end.
    loop {
        let start = index;
        while index < bytes.len() {
            match bytes[index] {
                b'\\' if bytes.get(index + 1) == Some(&b'.') => index += 2,
                b if b.is_ascii_alphanumeric() || b"_-/".contains(&b) => index += 1,
                _ => break,
            }
        }
        if index == start {
            return invalid();
        }
        while bytes.get(index) == Some(&b'[') {
            let digits = bytes[index + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || digits > 9 || bytes.get(index + 1 + digits) != Some(&b']') {
                return invalid();
            }
            index += digits + 2;
        }
        match bytes.get(index) {
            None => return Ok(()),
            Some(b'.') => index += 1,
            Some(_) => return invalid(),
        }
    }
}

/// A `--set` value: any text but NUL (which no command-line argument can carry). It reaches helm
/// inside the single argument `--set=NAME=VALUE`, after a name that cannot start with `-`, and the
/// renderer escapes what helm's `--set` parser would read as syntax (see [`escape_value`]).
///
/// # Errors
/// Why `value` cannot be passed.
pub fn parameter_value(value: &str) -> Result<(), ArgumentError> {
    if value.contains('\0') {
        Err(ArgumentError::NulInValue)
    } else {
        Ok(())
    }
}

/// `value` as helm's `--set` parser (strvals) must see it so that it reads back exactly what an
/// Argo CD user means, and never a second assignment:
/// - `{a,b}` (braces around text without braces or backslashes) is a list, passed as written, as
///   Argo CD passes it: inside a list a `,` only separates items, and with no `}` before the end
///   nothing can follow the list;
/// - otherwise `\,` means a literal `,` (what Argo CD's users write), and the value is escaped: a
///   `\` before every `\` and `,` (which would start another assignment) and before a leading `{`.
///
/// Argo CD leaves an already-escaped `\,` alone, so its `a\\,b=c` sets `b`; here it cannot.
/// `--set` still types the text as helm does (`true`, `3`, `null`); `--set-string` keeps it a
/// string.
#[must_use]
pub fn escape_value(value: &str) -> String {
    let is_list = value.len() >= 2
        && value.starts_with('{')
        && value.ends_with('}')
        && !value[1..value.len() - 1].contains(['{', '}', '\\']);
    if is_list {
        return value.to_owned();
    }
    let value = value.replace("\\,", ",");
    let mut escaped = String::with_capacity(value.len() + 2);
    for (index, c) in value.char_indices() {
        if c == '\\' || c == ',' || (index == 0 && c == '{') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammars_accept_what_helm_documents_and_nothing_that_starts_an_option() {
        for good in ["web", "a", &"a".repeat(53), "a.b", "web-1.prod"] {
            assert_eq!(release_name(good), Ok(()), "{good}");
        }
        for bad in [
            "-h",
            "--post-renderer=/bin/sh",
            &"a".repeat(54),
            "Web",
            "a..b",
            ".a",
            "a.",
            "",
        ] {
            assert!(release_name(bad).is_err(), "{bad}");
        }
        for good in [
            "1.29.0",
            "v1.29.0",
            "1.20",
            "v1",
            "v1.27.3-gke.100",
            "v1.20.15+k3s1",
        ] {
            assert_eq!(kube_version(good), Ok(()), "{good}");
        }
        for bad in [
            "--help",
            "--kube-version=--help",
            "v",
            "1..2",
            "1.2.3.4",
            "1.2-",
            "1,2",
            "",
        ] {
            assert!(kube_version(bad).is_err(), "{bad}");
        }
        for good in [
            "v1",
            "apps/v1",
            "monitoring.coreos.com/v1",
            "apps/v1/Deployment",
            "example.com/v1-beta",
            "v1/Service",
        ] {
            assert_eq!(api_version(good), Ok(()), "{good}");
        }
        for bad in [
            "-h",
            "--set-file=x=/etc/hostname",
            "apps/v1,batch/v1",
            "a/b/C/d",
            "/v1",
            "Apps/v1",
            "apps/1v",
            "apps/v1-",
            "v1/-Service",
        ] {
            assert!(api_version(bad).is_err(), "{bad}");
        }
        for good in [
            "image.tag",
            "hosts[0].name",
            r"annotations.example\.com/team",
            "a_b-c",
            "list[1][2]",
        ] {
            assert_eq!(parameter_name(good), Ok(()), "{good}");
        }
        for bad in [
            "-h",
            "--set-file=x",
            "a,b",
            "a=b",
            "a..b",
            ".a",
            "a.",
            "a[]",
            "a[x]",
            r"a\,b",
            "a b",
            "",
        ] {
            assert!(parameter_name(bad).is_err(), "{bad}");
        }
        assert!(parameter_value("x\0y").is_err());
        assert_eq!(parameter_value("-1,b=c"), Ok(()));
    }

    /// What users read in configuration errors and refused renders.
    #[test]
    fn refusals_name_the_value_and_the_grammar_but_never_a_set_value() {
        let cases = [
            (
                release_name("-h"),
                "\"-h\" is not a Helm release name (lowercase letters, digits, '-' and '.', at most 53 characters)",
            ),
            (
                namespace("A"),
                "\"A\" is not a valid namespace name (lowercase letters, digits and '-', at most 63)",
            ),
            (
                kube_version("--help"),
                "\"--help\" is not a Kubernetes version such as 1.29.0 or v1.29.0",
            ),
            (
                api_version("a,b"),
                "\"a,b\" is not an API version such as v1, apps/v1 or apps/v1/Deployment",
            ),
            (
                parameter_name("a=b"),
                "\"a=b\" is not a value name such as image.tag, hosts[0].name or annotations.example\\.com/team \
                 (letters, digits, '_', '-' and '/'; '.' between keys, '\\.' for a dot in a key, [N] for a list item)",
            ),
            (parameter_value("s3cret\0"), "must not contain a NUL character"),
        ];
        for (result, said) in cases {
            assert_eq!(result.expect_err(said).to_string(), said);
        }
    }

    #[test]
    fn escaped_values_hold_no_helm_syntax() {
        assert_eq!(escape_value("2,replicas=7"), r"2\,replicas=7");
        assert_eq!(escape_value(r"{a,b}\,c"), r"\{a\,b}\,c");
        assert_eq!(escape_value("plain-{x}"), "plain-{x}");
        assert_eq!(escape_value("{a,b}"), "{a,b}", "a list, as Argo CD passes it");
        assert_eq!(escape_value("{a},b={c}"), r"\{a}\,b={c}", "not one list: escaped");
        assert_eq!(escape_value(r"{a\},b=c}"), r"\{a\\}\,b=c}");
        assert_eq!(escape_value(r"x\,y"), r"x\,y", "an escaped comma stays one comma");
        assert_eq!(escape_value(r"x\\,b=c"), r"x\\\,b=c", "no second assignment");
    }
}
