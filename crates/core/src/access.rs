//! Who may do what through the API: a token's role and the applications it is scoped to. Pure;
//! the server asks [`decide`] before every request touches an application.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a token may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read applications, diffs, history and events.
    Viewer,
    /// Also refresh, sync, roll back, pin and unpin, suspend and resume.
    Operator,
    /// Also everything that is not one application's (all repositories' refresh, tokens).
    Admin,
}

impl Role {
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token's grant: its role, over the applications whose names match one of `applications`
/// (globs, `*` any run of characters, `?` one; any name when empty) and that carry every label
/// of `labels` (any application when empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub role: Role,
    pub applications: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The answer to "may this grant do that?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// The role does not allow the action (answered 403, whatever the application).
    Forbidden,
    /// The application is outside the grant: answered exactly as for an application that does not
    /// exist, so a scoped token cannot learn which others exist.
    Hidden,
}

fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative wildcard matching with one backtrack point (linear in practice, no recursion).
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(at) = star {
            p = at + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

impl Grant {
    /// Whether the grant's name patterns cover the application named `application`.
    #[must_use]
    pub fn covers_name(&self, application: &str) -> bool {
        self.applications.is_empty() || self.applications.iter().any(|pattern| glob(pattern, application))
    }

    /// Whether the grant covers the application named `application` with `labels`.
    #[must_use]
    pub fn covers(&self, application: &str, labels: &BTreeMap<String, String>) -> bool {
        self.covers_name(application)
            && self
                .labels
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    }

    /// Whether the grant is limited to some applications.
    #[must_use]
    pub fn is_scoped(&self) -> bool {
        !self.applications.is_empty() || !self.labels.is_empty()
    }

    /// Whether the grant may do what `needs` on `application` (its name and labels; `None`: not
    /// one application's). The role is checked first, so a forbidden action says nothing about
    /// the application.
    #[must_use]
    pub fn decide(&self, needs: Role, application: Option<(&str, &BTreeMap<String, String>)>) -> Decision {
        if self.role < needs {
            return Decision::Forbidden;
        }
        match application {
            Some((name, labels)) if !self.covers(name, labels) => Decision::Hidden,
            // What is not one application's needs an unscoped grant.
            None if self.is_scoped() => Decision::Forbidden,
            _ => Decision::Allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(role: Role, applications: &[&str]) -> Grant {
        Grant {
            labels: BTreeMap::new(),
            role,
            applications: applications.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        let operator = grant(Role::Operator, &[]);
        assert_eq!(
            operator.decide(Role::Viewer, Some(("web", &BTreeMap::new()))),
            Decision::Allowed
        );
        assert_eq!(
            operator.decide(Role::Operator, Some(("web", &BTreeMap::new()))),
            Decision::Allowed
        );
        assert_eq!(operator.decide(Role::Admin, None), Decision::Forbidden);
        assert_eq!(
            grant(Role::Viewer, &[]).decide(Role::Operator, Some(("web", &BTreeMap::new()))),
            Decision::Forbidden
        );
        assert_eq!(
            grant(Role::Admin, &[]).decide(Role::Admin, None),
            Decision::Allowed
        );
    }

    #[test]
    fn a_scoped_grant_hides_other_applications_and_forbids_global_actions() {
        let team = grant(Role::Admin, &["shop-*", "billing"]);
        assert_eq!(
            team.decide(Role::Operator, Some(("shop-web", &BTreeMap::new()))),
            Decision::Allowed
        );
        assert_eq!(
            team.decide(Role::Viewer, Some(("billing", &BTreeMap::new()))),
            Decision::Allowed
        );
        assert_eq!(
            team.decide(Role::Viewer, Some(("billing-db", &BTreeMap::new()))),
            Decision::Hidden
        );
        assert_eq!(
            team.decide(Role::Viewer, Some(("payments", &BTreeMap::new()))),
            Decision::Hidden
        );
        assert_eq!(team.decide(Role::Admin, None), Decision::Forbidden);
        // The role is checked before the scope: a viewer learns nothing from a sync's answer.
        let viewer = grant(Role::Viewer, &["shop-*"]);
        assert_eq!(
            viewer.decide(Role::Operator, Some(("payments", &BTreeMap::new()))),
            Decision::Forbidden
        );
        assert_eq!(
            viewer.decide(Role::Operator, Some(("shop-web", &BTreeMap::new()))),
            Decision::Forbidden
        );
    }

    #[test]
    fn globs_match_whole_names() {
        for (pattern, name, expected) in [
            ("*", "anything", true),
            ("shop-*", "shop-", true),
            ("shop-*", "shop", false),
            ("*-prod", "web-prod", true),
            ("*-prod", "web-prod-2", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "aXbYbZc", true),
            ("web", "web2", false),
        ] {
            assert_eq!(glob(pattern, name), expected, "{pattern} {name}");
        }
    }

    #[test]
    fn a_label_scope_covers_only_applications_with_every_label() {
        let team = Grant {
            role: Role::Operator,
            applications: vec![],
            labels: BTreeMap::from([("team".to_owned(), "shop".to_owned())]),
        };
        let shop = BTreeMap::from([
            ("team".to_owned(), "shop".to_owned()),
            ("tier".to_owned(), "web".to_owned()),
        ]);
        let other = BTreeMap::from([("team".to_owned(), "billing".to_owned())]);
        assert_eq!(
            team.decide(Role::Operator, Some(("web", &shop))),
            Decision::Allowed
        );
        assert_eq!(
            team.decide(Role::Viewer, Some(("ledger", &other))),
            Decision::Hidden
        );
        assert_eq!(
            team.decide(Role::Viewer, Some(("bare", &BTreeMap::new()))),
            Decision::Hidden
        );
        assert_eq!(
            team.decide(Role::Operator, None),
            Decision::Forbidden,
            "not unscoped"
        );
        let both = Grant {
            applications: vec!["shop-*".into()],
            ..team
        };
        assert!(
            both.covers("shop-web", &shop) && !both.covers("web", &shop),
            "name and labels"
        );
    }
}
