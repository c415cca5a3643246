//! Chart versions as Helm reads them (Masterminds semver): an exact version, or a range such as
//! `1.2.x`, `~1.2`, `^1`, `>=1.0 <2.0`, `1.0 - 1.4`, `!=1.3.0`, alternatives joined by `||`.
//! The `semver` crate does the comparing; this module translates Helm's syntax into it, because
//! the two differ where it matters: a bare `1.2.3` is exactly that version for Helm but
//! `^1.2.3` for Cargo.

use semver::{Version, VersionReq};

/// Returned by [`Constraint::parse`]: a `version:` Helm would not read as a version or range.
#[derive(Debug, thiserror::Error)]
pub enum ConstraintError {
    #[error("{token:?} has no version")]
    NoVersion { token: String },
    #[error("unknown operator {operator:?} in {token:?}")]
    UnknownOperator { operator: String, token: String },
    /// A hyphen range missing a side (`1.0 -`).
    #[error("incomplete range in {text:?}")]
    IncompleteRange { text: String },
    #[error("{version:?} is not a version")]
    NotAVersion { version: String },
    /// What the translation gave the semver crate, which refused it.
    #[error("{text:?}: {source}")]
    Range {
        text: String,
        #[source]
        source: semver::Error,
    },
}

/// A parsed `version:` of a chart reference.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Constraint {
    alternatives: Vec<Alternative>,
}

#[derive(Debug, Clone, PartialEq)]
struct Alternative {
    required: VersionReq,
    excluded: Vec<Version>,
}

/// Helm's lenient version parsing: `v1.2` is `1.2.0`.
pub(crate) fn parse_version(text: &str) -> Option<Version> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    if let Ok(version) = Version::parse(text) {
        return Some(version);
    }
    let (core, rest) = text.find(['-', '+']).map_or((text, ""), |at| text.split_at(at));
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty()
        || parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let padded: Vec<&str> = parts
        .iter()
        .copied()
        .chain(std::iter::repeat("0"))
        .take(3)
        .collect();
    Version::parse(&format!("{}{rest}", padded.join("."))).ok()
}

fn is_operator(token: &str) -> bool {
    matches!(token, "=" | "!=" | ">" | "<" | ">=" | "<=" | "~" | "^" | "~>")
}

/// One comparison (`>=1.2`, `1.2.x`, `1.2.3`) as the semver crate writes it.
fn comparator(token: &str) -> Result<String, ConstraintError> {
    let split = token
        .find(|c: char| c.is_ascii_alphanumeric() || c == '*')
        .unwrap_or(token.len());
    let (operator, version) = token.split_at(split);
    let version = version.strip_prefix('v').unwrap_or(version);
    let version = version.replace(['x', 'X'], "*");
    if version.is_empty() {
        return Err(ConstraintError::NoVersion {
            token: token.to_owned(),
        });
    }
    let operator = match operator {
        // Exactly this version (with missing parts as wildcards), unlike Cargo's caret default.
        "" | "=" => "=",
        "~>" => "~",
        known @ (">" | "<" | ">=" | "<=" | "~" | "^") => known,
        other => {
            return Err(ConstraintError::UnknownOperator {
                operator: other.to_owned(),
                token: token.to_owned(),
            });
        }
    };
    if version.starts_with('*') {
        return Ok("*".to_owned());
    }
    Ok(format!("{operator}{version}"))
}

fn alternative(text: &str) -> Result<Alternative, ConstraintError> {
    // Tokens are separated by commas or spaces; an operator may stand apart from its version.
    let raw: Vec<&str> = text
        .split([',', ' ', '\t'])
        .filter(|token| !token.is_empty())
        .collect();
    let mut tokens: Vec<String> = Vec::new();
    let mut index = 0;
    while index < raw.len() {
        let token = raw[index];
        if token == "-" {
            // A hyphen range: `1.0 - 1.4` is `>=1.0, <=1.4`.
            let (Some(low), Some(high)) = (tokens.pop(), raw.get(index + 1)) else {
                return Err(ConstraintError::IncompleteRange {
                    text: text.to_owned(),
                });
            };
            tokens.push(format!(">={low}"));
            tokens.push(format!("<={high}"));
            index += 2;
        } else if is_operator(token) {
            let version = raw.get(index + 1).ok_or_else(|| ConstraintError::NoVersion {
                token: token.to_owned(),
            })?;
            tokens.push(format!("{token}{version}"));
            index += 2;
        } else {
            tokens.push(token.to_owned());
            index += 1;
        }
    }
    let mut required = Vec::new();
    let mut excluded = Vec::new();
    for token in &tokens {
        if let Some(version) = token.strip_prefix("!=") {
            excluded.push(
                parse_version(version).ok_or_else(|| ConstraintError::NotAVersion {
                    version: version.to_owned(),
                })?,
            );
        } else {
            required.push(comparator(token)?);
        }
    }
    let required = if required.is_empty() {
        VersionReq::STAR
    } else {
        VersionReq::parse(&required.join(", ")).map_err(|source| ConstraintError::Range {
            text: text.to_owned(),
            source,
        })?
    };
    Ok(Alternative { required, excluded })
}

impl Constraint {
    pub(crate) fn parse(text: &str) -> Result<Self, ConstraintError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self {
                alternatives: vec![Alternative {
                    required: VersionReq::STAR,
                    excluded: Vec::new(),
                }],
            });
        }
        let alternatives = text.split("||").map(alternative).collect::<Result<_, _>>()?;
        Ok(Self { alternatives })
    }

    pub(crate) fn matches(&self, version: &Version) -> bool {
        self.alternatives.iter().any(|alternative| {
            alternative.required.matches(version) && !alternative.excluded.contains(version)
        })
    }

    /// The highest of `candidates` (as written, with their parsed versions) that matches.
    pub(crate) fn best<'a, T>(
        &self,
        candidates: impl IntoIterator<Item = (&'a str, T)>,
    ) -> Option<(Version, T)> {
        candidates
            .into_iter()
            .filter_map(|(text, item)| Some((parse_version(text)?, item)))
            .filter(|(version, _)| self.matches(version))
            .max_by(|a, b| a.0.cmp(&b.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSIONS: &[&str] = &["1.0.0", "1.2.0", "1.2.7", "1.3.0", "1.3.1-rc.1", "2.0.0", "v2.1"];

    fn best(constraint: &str) -> Option<String> {
        Constraint::parse(constraint)
            .expect(constraint)
            .best(VERSIONS.iter().map(|v| (*v, ())))
            .map(|(version, ())| version.to_string())
    }

    #[test]
    fn helm_ranges_pick_the_highest_matching_version() {
        let cases = [
            ("1.2.0", Some("1.2.0")),
            ("=1.2.0", Some("1.2.0")),
            ("1.2.x", Some("1.2.7")),
            ("1.2", Some("1.2.7")),
            ("~1.2", Some("1.2.7")),
            ("~1.2.0", Some("1.2.7")),
            ("^1.2", Some("1.3.0")),
            ("^1", Some("1.3.0")),
            (">=1.0 <2.0", Some("1.3.0")),
            (">= 1.0, < 1.3", Some("1.2.7")),
            ("1.0 - 1.2.0", Some("1.2.0")),
            ("^1 != 1.3.0", Some("1.2.7")),
            ("1.0.x || 2.x", Some("2.1.0")),
            ("*", Some("2.1.0")),
            ("", Some("2.1.0")),
            ("x", Some("2.1.0")),
            ("3.x", None),
            ("1.2.3", None),
        ];
        for (constraint, expected) in cases {
            assert_eq!(best(constraint).as_deref(), expected, "{constraint}");
        }
    }

    #[test]
    fn prereleases_need_a_prerelease_constraint() {
        assert_eq!(best(">=1.3.1-rc.0 <1.3.2").as_deref(), Some("1.3.1-rc.1"));
        assert_eq!(best("~1.3").as_deref(), Some("1.3.0"));
    }

    #[test]
    fn nonsense_is_an_error() {
        for bad in ["abc", ">=", "1.0 -", "%1.0"] {
            assert!(Constraint::parse(bad).is_err(), "{bad}");
        }
        for (bad, said) in [
            (">=", r#"">=" has no version"#),
            ("1.0 -", r#"incomplete range in "1.0 -""#),
            ("%1.0", r#"unknown operator "%" in "%1.0""#),
            ("^1 !=x", r#""x" is not a version"#),
        ] {
            let err = Constraint::parse(bad).expect_err(bad);
            assert_eq!(err.to_string(), said);
        }
    }
}
