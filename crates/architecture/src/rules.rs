//! The dependency rules ARCHITECTURE.md states: each crate's section (a heading
//! ``### `crates/<dir>` — …``) holds one line
//!
//! ```text
//! **Must not depend on**: `kube`, `tokio`, `driftless-git`.
//! ```
//!
//! listing package names in backticks, separated by commas, with an optional final full stop. The
//! line may wrap onto the following lines of its paragraph; nothing else may stand in it, so a
//! line the parser cannot read fails instead of being half understood.

use std::collections::BTreeMap;

/// The rules line's name, as it starts the line (followed by a colon).
pub const RULES_NAME: &str = "**Must not depend on**";

/// The rules of one crate's section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateRules {
    /// Package names as written (hyphens and underscores are the same name to Cargo's registry;
    /// compare with [`same_package`]).
    pub forbidden: Vec<String>,
    /// Where the rules line starts in ARCHITECTURE.md (1-based).
    pub line: usize,
}

/// A crate's section: its rules line when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading's line (1-based).
    pub line: usize,
    pub rules: Option<CrateRules>,
}

/// Returned by [`parse`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RulesError {
    #[error(
        "ARCHITECTURE.md:{line}: cannot read the {RULES_NAME} line of {crate_dir}: {reason} \
         (write `name`, `name`, … with each package name in backticks)"
    )]
    Unreadable {
        crate_dir: String,
        line: usize,
        reason: String,
    },
    #[error("ARCHITECTURE.md:{line}: {crate_dir} has a second {RULES_NAME} line")]
    Repeated { crate_dir: String, line: usize },
    #[error("ARCHITECTURE.md:{line}: a second section for {crate_dir}")]
    RepeatedSection { crate_dir: String, line: usize },
}

/// The sections of ARCHITECTURE.md by crate directory (`crates/core`).
pub fn parse(markdown: &str) -> Result<BTreeMap<String, Section>, RulesError> {
    let mut sections = BTreeMap::new();
    let lines: Vec<&str> = markdown.lines().collect();
    let mut current: Option<String> = None;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let number = index + 1;
        if line.starts_with("## ") || line.starts_with("### ") {
            current = crate_heading(line);
            if let Some(crate_dir) = &current {
                let section = Section {
                    line: number,
                    rules: None,
                };
                if sections.insert(crate_dir.clone(), section).is_some() {
                    return Err(RulesError::RepeatedSection {
                        crate_dir: crate_dir.clone(),
                        line: number,
                    });
                }
            }
        } else if let (Some(rest), Some(crate_dir)) = (
            line.strip_prefix(RULES_NAME)
                .and_then(|rest| rest.strip_prefix(':')),
            &current,
        ) {
            // The paragraph goes on until a blank line or the next heading.
            let mut text = rest.to_owned();
            while let Some(next) = lines.get(index + 1) {
                if next.trim().is_empty() || next.starts_with('#') {
                    break;
                }
                text.push(' ');
                text.push_str(next);
                index += 1;
            }
            let forbidden = parse_names(&text).map_err(|reason| RulesError::Unreadable {
                crate_dir: crate_dir.clone(),
                line: number,
                reason,
            })?;
            let section = sections.get_mut(crate_dir).expect("inserted at its heading");
            if section.rules.is_some() {
                return Err(RulesError::Repeated {
                    crate_dir: crate_dir.clone(),
                    line: number,
                });
            }
            section.rules = Some(CrateRules {
                forbidden,
                line: number,
            });
        }
        index += 1;
    }
    Ok(sections)
}

/// `` ### `crates/core` — `driftless-core` `` → `crates/core`.
fn crate_heading(line: &str) -> Option<String> {
    let rest = line.strip_prefix("### `")?;
    let (path, _) = rest.split_once('`')?;
    path.starts_with("crates/")
        .then(|| path.trim_end_matches('/').to_owned())
}

/// `` `a`, `b`, `c`. `` → `[a, b, c]`.
fn parse_names(text: &str) -> Result<Vec<String>, String> {
    let text = text.trim();
    let text = text.strip_suffix('.').unwrap_or(text).trim_end();
    if text.is_empty() {
        return Err("it names no package".to_owned());
    }
    let mut names = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let name = item
            .strip_prefix('`')
            .and_then(|item| item.strip_suffix('`'))
            .ok_or_else(|| format!("`{item}` is not a package name in backticks"))?;
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(format!("`{name}` is not a package name"));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Cargo's registry treats `-` and `_` in package names as the same name.
pub fn same_package(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (matches!(x, b'-' | b'_') && matches!(y, b'-' | b'_')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Architecture

## Code map

### `crates/core` — `driftless-core`
The domain.

**Must never**: do I/O.

**Must not depend on**: `kube`, `k8s-openapi`,
`tokio`.

### `crates/store` — `driftless-store`
SQLite.

### `fuzz/` — fuzz targets (its own workspace)
**Must not depend on**: `nothing-here`.

## Invariants across crates
**Must not depend on**: `ignored`
";

    #[test]
    fn reads_each_crate_section_and_its_wrapped_rules_line() {
        let sections = parse(DOC).expect("valid");
        assert_eq!(
            sections.keys().collect::<Vec<_>>(),
            ["crates/core", "crates/store"]
        );
        let core = &sections["crates/core"];
        assert_eq!(core.line, 5);
        assert_eq!(
            core.rules,
            Some(CrateRules {
                forbidden: vec!["kube".into(), "k8s-openapi".into(), "tokio".into()],
                line: 10,
            })
        );
        assert_eq!(sections["crates/store"].rules, None);
    }

    #[test]
    fn a_line_it_cannot_read_is_an_error_not_a_shorter_list() {
        for line in [
            "**Must not depend on**: `kube`, tokio.",
            "**Must not depend on**: `kube` and `tokio`.",
            "**Must not depend on**: .",
            "**Must not depend on**: `kube`, `to kio`.",
        ] {
            let doc = format!("### `crates/core` — `driftless-core`\n{line}\n");
            let err = parse(&doc).expect_err(line);
            assert!(
                matches!(&err, RulesError::Unreadable { crate_dir, line: 2, .. } if crate_dir == "crates/core"),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn a_second_rules_line_or_section_is_an_error() {
        let doc = "### `crates/core` — x\n**Must not depend on**: `a`.\n\n**Must not depend on**: `b`.\n";
        assert_eq!(
            parse(doc),
            Err(RulesError::Repeated {
                crate_dir: "crates/core".into(),
                line: 4
            })
        );
        let doc = "### `crates/core` — x\n\n### `crates/core` — y\n";
        assert_eq!(
            parse(doc),
            Err(RulesError::RepeatedSection {
                crate_dir: "crates/core".into(),
                line: 3
            })
        );
    }

    #[test]
    fn hyphens_and_underscores_name_the_same_package() {
        assert!(same_package("k8s-openapi", "k8s_openapi"));
        assert!(!same_package("k8s-openapi", "k8s-openapi2"));
        assert!(!same_package("kube", "kube-core"));
    }
}
