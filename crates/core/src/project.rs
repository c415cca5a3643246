//! Tenancy guards, as Argo CD's AppProject: which repositories an application may deploy from,
//! to which clusters and namespaces, and which kinds of object it may own. A tenant's repository
//! is hostile to every other tenant: without these checks anyone who can push to it could bind
//! themselves `cluster-admin` or write into another team's namespace.
//!
//! Patterns are globs. In repository URLs `*` stops at `/` (so `https://*.example.com/x` cannot
//! match `https://evil.com/a.example.com/x`); `**` crosses it.

use globset::GlobBuilder;
use serde::{Deserialize, Serialize};

use crate::ObjectRef;
use crate::application::RepositoryKey;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub name: String,
    /// URL patterns, `!` before one denies what it matches; `None`: any repository.
    pub source_repos: Option<Vec<String>>,
    /// `None`: any cluster and namespace.
    pub destinations: Option<Vec<ProjectDestination>>,
    /// The only cluster-scoped kinds allowed; none when empty.
    pub cluster_resource_whitelist: Vec<GroupKind>,
    /// Namespaced kinds refused.
    pub namespace_resource_blacklist: Vec<GroupKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDestination {
    /// A cluster's name, or `*` for any.
    pub cluster: String,
    /// A glob over namespace names.
    pub namespace: String,
}

/// Globs over an API group (empty: the core group) and a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

/// Why a project refuses an application or one of its objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("project {project} does not allow the source repository {repo_url}")]
    SourceRepository { project: String, repo_url: String },
    #[error("project {project} does not allow the destination {}", destination(cluster, namespace.as_deref()))]
    Destination {
        project: String,
        cluster: String,
        namespace: Option<String>,
    },
    #[error("project {project} does not allow cluster-scoped kind {kind}")]
    ClusterScopedKind { project: String, kind: String },
    #[error("project {project} does not allow namespaced kind {kind}")]
    NamespacedKind { project: String, kind: String },
}

/// Returned when an Application declared in Git names a project other than its root's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "names project {named}, but its root is in project {root}; an Application declared in Git stays in its root's project"
)]
pub struct ForeignProject {
    pub named: String,
    pub root: String,
}

fn destination(cluster: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("{cluster}/{namespace}"),
        None => format!("cluster {cluster}"),
    }
}

/// `group/Kind`, or `Kind` for the core group.
fn group_kind(object: &ObjectRef) -> String {
    if object.group.is_empty() {
        object.kind.clone()
    } else {
        format!("{}/{}", object.group, object.kind)
    }
}

/// Whether the glob `pattern` matches all of `text`; `None` when it is not a valid glob (the
/// caller decides which way that fails closed).
fn glob_matches(pattern: &str, text: &str, literal_separator: bool) -> Option<bool> {
    let glob = GlobBuilder::new(pattern)
        .literal_separator(literal_separator)
        .backslash_escape(true)
        .build()
        .ok()?;
    Some(glob.compile_matcher().is_match(text))
}

/// Returned by [`check_pattern`]: a project pattern that is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a valid glob: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: globset::ErrorKind,
}

/// Checks that `pattern` is a glob the checks can use (for configuration errors).
pub fn check_pattern(pattern: &str) -> Result<(), PatternError> {
    GlobBuilder::new(pattern)
        .backslash_escape(true)
        .build()
        .map(|_| ())
        .map_err(|err| PatternError {
            pattern: pattern.to_owned(),
            reason: err.kind().clone(),
        })
}

impl GroupKind {
    fn matches(&self, object: &ObjectRef) -> bool {
        glob_matches(&self.group, &object.group, false) == Some(true)
            && glob_matches(&self.kind, &object.kind, false) == Some(true)
    }
}

/// The URL as its patterns see it: without `user:password@`, which must neither let a URL slip
/// past a pattern nor be needed to match one.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Whether the project lets an application deploy from `repo_url`: a pattern without `!` must
/// match it and none with `!` may. Both sides are read as a [`RepositoryKey`] first (scheme and
/// host lower-cased, user-info, default port, trailing `/` and `.git` removed, scp-like URLs as
/// `ssh://`), so `https://GitHub.com:443/team-a/web.git/` is matched as
/// `https://github.com/team-a/web`, and the pattern `https://GitHub.com/team-a/*.git` as
/// `https://github.com/team-a/*`. A URL with `.` or `..` segments has no key and is refused
/// outright, since git resolves them to a path the patterns never saw; so is a pattern with
/// them (never allowing, always denying).
pub fn check_source(project: &Project, repo_url: &str) -> Result<(), Violation> {
    let Some(patterns) = &project.source_repos else {
        return Ok(());
    };
    let refused = || Violation::SourceRepository {
        project: project.name.clone(),
        repo_url: without_userinfo(repo_url),
    };
    let key = RepositoryKey::parse(repo_url).map_err(|_| refused())?.to_string();
    let matches = |pattern: &str| {
        RepositoryKey::pattern(pattern)
            .ok()
            .and_then(|pattern| glob_matches(&pattern, &key, true))
    };
    let allowed = patterns
        .iter()
        .filter(|pattern| !pattern.starts_with('!'))
        .any(|pattern| matches(pattern) == Some(true));
    // An invalid negation denies rather than being skipped.
    let denied = patterns
        .iter()
        .filter_map(|pattern| pattern.strip_prefix('!'))
        .any(|pattern| matches(pattern) != Some(false));
    if allowed && !denied {
        Ok(())
    } else {
        Err(refused())
    }
}

/// Whether the project lets an application deploy to `cluster` (and `namespace`, when it names
/// one; its objects' namespaces are checked one by one by [`check_object`]).
pub fn check_destination(project: &Project, cluster: &str, namespace: Option<&str>) -> Result<(), Violation> {
    let Some(destinations) = &project.destinations else {
        return Ok(());
    };
    let allowed = destinations.iter().any(|allowed| {
        (allowed.cluster == "*" || allowed.cluster == cluster)
            && namespace
                .is_none_or(|namespace| glob_matches(&allowed.namespace, namespace, false) == Some(true))
    });
    if allowed {
        Ok(())
    } else {
        Err(Violation::Destination {
            project: project.name.clone(),
            cluster: cluster.to_owned(),
            namespace: namespace.map(str::to_owned),
        })
    }
}

/// Whether the project lets an application on `cluster` own `object`: a cluster-scoped kind must
/// be whitelisted, a namespaced kind must not be blacklisted, and the object's namespace must be
/// an allowed destination (whatever `metadata.namespace` the manifest set). A Namespace is
/// named like the namespaces the project may deploy to, so a tenant cannot create (and then own)
/// another tenant's.
pub fn check_object(
    project: &Project,
    cluster: &str,
    object: &ObjectRef,
    namespaced: bool,
) -> Result<(), Violation> {
    if namespaced {
        if project
            .namespace_resource_blacklist
            .iter()
            .any(|kind| kind.matches(object))
        {
            return Err(Violation::NamespacedKind {
                project: project.name.clone(),
                kind: group_kind(object),
            });
        }
        return check_destination(
            project,
            cluster,
            Some(object.namespace.as_deref().unwrap_or_default()),
        );
    }
    if !project
        .cluster_resource_whitelist
        .iter()
        .any(|kind| kind.matches(object))
    {
        return Err(Violation::ClusterScopedKind {
            project: project.name.clone(),
            kind: group_kind(object),
        });
    }
    if object.group.is_empty() && object.kind == "Namespace" {
        return check_destination(project, cluster, Some(&object.name));
    }
    Ok(())
}

/// The project of an Application declared in Git by a root in project `root`: the root's when
/// it names none, and never another (whoever pushes to the root's repository must not move
/// their applications to a project with more rights). Under a root without a project a child
/// may name one, which only restricts it.
pub fn child_project(root: Option<&str>, named: Option<&str>) -> Result<Option<String>, ForeignProject> {
    match (root, named) {
        (Some(root), Some(named)) if root != named => Err(ForeignProject {
            named: named.to_owned(),
            root: root.to_owned(),
        }),
        (root, named) => Ok(named.or(root).map(str::to_owned)),
    }
}

/// Why an Application declared in Git may not take its name (see [`check_child_name`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameRefusal {
    #[error(
        "application {name:?} is already defined elsewhere; an Application declared in Git cannot take another's name"
    )]
    Taken { name: String },
    #[error(
        "application {name:?} was declared by {root:?} first; an Application declared in Git cannot take a name another root declares"
    )]
    Declared { name: String, root: String },
    #[error(
        "application {name:?} is named under application {owner:?}, which is not in the tree of {top:?}; an Application declared in Git takes no name under another tree's application (\"{owner}-…\")"
    )]
    Owned {
        name: String,
        owner: String,
        top: String,
    },
    #[error(
        "application {name:?} matches the application pattern {pattern:?} of a token or notification subscription that does not cover {top:?}; an Application declared in Git cannot enter another team's patterns"
    )]
    Fenced {
        name: String,
        pattern: String,
        top: String,
    },
}

/// The application whose names `name` falls under: the longest of `known` that is `name` or
/// followed by `-` starts it.
fn name_owner<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .filter(|owner| {
            name.strip_prefix(owner)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
        })
        .max_by_key(|owner| owner.len())
}

/// Whether an Application a root declares in Git may be called `name`. `top` is the
/// configured application at the head of the declaring root's tree (the root itself, or the
/// root's root …), `tree` every application of that tree (with the ones being declared),
/// `configured` the applications of `driftless.yaml`, and `patterns` the application-name globs
/// of scoped tokens and of notification subscriptions.
///
/// A name belongs to the application whose name is its longest `-`-terminated prefix among the
/// configured applications and the tree's: one that falls under a configured application of
/// another tree (`shop-x` while `shop` is configured and `billing` declares it) is refused. A
/// name matching a pattern is refused unless the pattern covers `top` too, or the pattern's
/// literal start (up to its first wildcard) belongs to the tree — so `billing` cannot declare
/// `shop-x` into the `shop-*` of a token or a notification subscription, even when no
/// application `shop` exists. (Taking an existing name is refused by the registry, which knows
/// who declared what: [`NameRefusal::Taken`].)
pub fn check_child_name(
    name: &str,
    top: &str,
    tree: &[&str],
    configured: &[&str],
    patterns: &[String],
) -> Result<(), NameRefusal> {
    let known = || configured.iter().chain(tree).copied();
    let in_tree = |owner: &str| owner == top || tree.contains(&owner);
    if let Some(owner) = name_owner(name, known())
        && !in_tree(owner)
    {
        return Err(NameRefusal::Owned {
            name: name.to_owned(),
            owner: owner.to_owned(),
            top: top.to_owned(),
        });
    }
    let covers = |pattern: &str, text: &str| {
        crate::access::Grant {
            role: crate::access::Role::Viewer,
            applications: vec![pattern.to_owned()],
            labels: std::collections::BTreeMap::new(),
        }
        .covers_name(text)
    };
    for pattern in patterns {
        if !covers(pattern, name) || covers(pattern, top) {
            continue;
        }
        let literal = &pattern[..pattern.find(['*', '?']).unwrap_or(pattern.len())];
        let literal = literal.trim_end_matches('-');
        if !literal.is_empty() && name_owner(literal, known()).is_some_and(in_tree) {
            continue;
        }
        return Err(NameRefusal::Fenced {
            name: name.to_owned(),
            pattern: pattern.clone(),
            top: top.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupVersionKind;

    fn team_a() -> Project {
        Project {
            name: "team-a".into(),
            source_repos: Some(vec![
                "https://git.example.com/team-a/*".into(),
                "!https://git.example.com/team-a/secret-*".into(),
            ]),
            destinations: Some(vec![ProjectDestination {
                cluster: "production".into(),
                namespace: "team-a-*".into(),
            }]),
            cluster_resource_whitelist: vec![GroupKind {
                group: String::new(),
                kind: "Namespace".into(),
            }],
            namespace_resource_blacklist: vec![GroupKind {
                group: String::new(),
                kind: "ResourceQuota".into(),
            }],
        }
    }

    fn unrestricted() -> Project {
        Project {
            name: "open".into(),
            source_repos: None,
            destinations: None,
            cluster_resource_whitelist: Vec::new(),
            namespace_resource_blacklist: Vec::new(),
        }
    }

    fn object(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        let gvk = GroupVersionKind::from_api_version(api_version, kind).expect("valid");
        ObjectRef::new(&gvk, namespace, name)
    }

    #[test]
    fn sources_must_match_an_allowing_pattern_and_no_denying_one() {
        let project = team_a();
        assert_eq!(
            check_source(&project, "https://git.example.com/team-a/web"),
            Ok(())
        );
        assert_eq!(
            check_source(&project, "https://bot:token@git.example.com/team-a/web"),
            Ok(()),
            "credentials in the URL do not change what it is"
        );
        for refused in [
            "https://git.example.com/team-a/secret-keys",
            "https://git.example.com/team-b/web",
            "https://git.example.com/team-a/group/web",
            "https://git.example.com/team-a/../team-b",
            "https://git.example.com/team-a/..",
            "https://evil.example/git.example.com/team-a/web",
        ] {
            assert!(check_source(&project, refused).is_err(), "{refused}");
        }
        let err =
            check_source(&project, "https://bot:token@git.example.com/team-b/web").expect_err("refused");
        assert_eq!(
            err.to_string(),
            "project team-a does not allow the source repository https://git.example.com/team-b/web",
            "the message never carries credentials"
        );
        assert_eq!(check_source(&unrestricted(), "file:///anything"), Ok(()));
    }

    #[test]
    fn sources_match_however_the_repository_or_the_pattern_is_spelled() {
        let project = team_a();
        for spelling in [
            "https://Git.Example.com/team-a/web.git",
            "https://git.example.com:443/team-a/web/",
            "https://bot@git.example.com/team-a/web",
            "https://git.example.com/team-a/%77eb",
        ] {
            assert_eq!(check_source(&project, spelling), Ok(()), "{spelling}");
        }
        for denied in [
            "https://GIT.example.com/team-a/secret-keys.git",
            "https://git.example.com:443/team-a/secret-keys/",
            "https://git.example.com/team-a/%73ecret-keys",
            "https://git.example.com/team-a/web/%2e%2e/secret-keys",
            "https://git.example.com/team-a/Secret-keys",
            "https://git.example.com/TEAM-A/SECRET-KEYS.git",
        ] {
            assert!(check_source(&project, denied).is_err(), "{denied}");
        }
        let mut spelled = team_a();
        spelled.source_repos = Some(vec![
            "https://GIT.example.com:443/team-a/*.git".into(),
            "git@git.example.com:team-a/*".into(),
            "!https://git.example.com/team-a/secret-*/".into(),
        ]);
        for allowed in [
            "https://git.example.com/team-a/web",
            "ssh://git@git.example.com:22/team-a/web.git",
            "git@GIT.example.com:team-a/web",
        ] {
            assert_eq!(check_source(&spelled, allowed), Ok(()), "{allowed}");
        }
        assert!(check_source(&spelled, "https://git.example.com/team-a/secret-x.git").is_err());
        let mut capitals = team_a();
        capitals.source_repos = Some(vec![
            "https://git.example.com/Team-A/*".into(),
            "!https://git.example.com/Team-A/Secret-*".into(),
        ]);
        assert_eq!(
            check_source(&capitals, "https://git.example.com/team-a/web"),
            Ok(())
        );
        assert!(check_source(&capitals, "https://git.example.com/team-a/secret-x").is_err());
        assert!(check_source(&spelled, "ssh://git@git.example.com:2222/team-a/web").is_err());
        let mut any = team_a();
        any.source_repos = Some(vec!["*".into(), "**".into()]);
        assert_eq!(check_source(&any, "https://git.example.com/team-a/web"), Ok(()));
    }

    #[test]
    fn only_denying_patterns_or_an_empty_list_allow_nothing() {
        let mut project = team_a();
        project.source_repos = Some(vec!["!https://git.example.com/team-b/*".into()]);
        assert!(check_source(&project, "https://git.example.com/team-a/web").is_err());
        project.source_repos = Some(Vec::new());
        assert!(check_source(&project, "https://git.example.com/team-a/web").is_err());
        project.source_repos = Some(vec!["https://*.example.com/**".into()]);
        assert_eq!(check_source(&project, "https://git.example.com/a/b/c"), Ok(()));
        assert!(check_source(&project, "https://evil.com/a.example.com/x").is_err());
    }

    #[test]
    fn destinations_match_the_cluster_exactly_or_any_and_the_namespace_by_glob() {
        let project = team_a();
        assert_eq!(
            check_destination(&project, "production", Some("team-a-web")),
            Ok(())
        );
        assert_eq!(check_destination(&project, "production", None), Ok(()));
        let err = check_destination(&project, "production", Some("kube-system")).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "project team-a does not allow the destination production/kube-system"
        );
        let err = check_destination(&project, "staging", None).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "project team-a does not allow the destination cluster staging"
        );
        let mut any_cluster = team_a();
        any_cluster.destinations = Some(vec![ProjectDestination {
            cluster: "*".into(),
            namespace: "team-a".into(),
        }]);
        assert_eq!(check_destination(&any_cluster, "staging", Some("team-a")), Ok(()));
        assert!(check_destination(&any_cluster, "staging", Some("team-a-x")).is_err());
    }

    #[test]
    fn cluster_scoped_kinds_need_the_whitelist_and_namespaces_an_allowed_name() {
        let project = team_a();
        let binding = object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            None,
            "admin",
        );
        let err = check_object(&project, "production", &binding, false).expect_err("refused");
        assert_eq!(
            format!("{binding}: {err}"),
            "rbac.authorization.k8s.io/ClusterRoleBinding/admin: project team-a does not allow cluster-scoped kind rbac.authorization.k8s.io/ClusterRoleBinding"
        );
        let own = object("v1", "Namespace", None, "team-a-web");
        assert_eq!(check_object(&project, "production", &own, false), Ok(()));
        let other = object("v1", "Namespace", None, "team-b-web");
        assert!(check_object(&project, "production", &other, false).is_err());
        assert!(
            check_object(&unrestricted(), "production", &binding, false).is_err(),
            "no cluster-scoped kind unless whitelisted"
        );
    }

    #[test]
    fn namespaced_objects_need_an_allowed_namespace_and_kind() {
        let project = team_a();
        let config = object("v1", "ConfigMap", Some("team-a-web"), "settings");
        assert_eq!(check_object(&project, "production", &config, true), Ok(()));
        let elsewhere = object("v1", "ConfigMap", Some("team-b-web"), "settings");
        let err = check_object(&project, "production", &elsewhere, true).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "project team-a does not allow the destination production/team-b-web"
        );
        let quota = object("v1", "ResourceQuota", Some("team-a-web"), "quota");
        let err = check_object(&project, "production", &quota, true).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "project team-a does not allow namespaced kind ResourceQuota"
        );
        let mut wildcard = team_a();
        wildcard.namespace_resource_blacklist = vec![GroupKind {
            group: "rbac.authorization.k8s.io".into(),
            kind: "*".into(),
        }];
        let role = object("rbac.authorization.k8s.io/v1", "Role", Some("team-a-web"), "r");
        assert!(check_object(&wildcard, "production", &role, true).is_err());
        assert_eq!(check_object(&wildcard, "production", &quota, true), Ok(()));
    }

    #[test]
    fn invalid_patterns_fail_closed() {
        let mut project = team_a();
        project.source_repos = Some(vec!["https://git.example.com/**".into(), "!https://[".into()]);
        assert!(check_source(&project, "https://git.example.com/team-a/web").is_err());
        project.destinations = Some(vec![ProjectDestination {
            cluster: "production".into(),
            namespace: "[".into(),
        }]);
        assert!(check_destination(&project, "production", Some("[")).is_err());
        assert!(check_pattern("[").is_err());
        assert_eq!(check_pattern("team-a-*"), Ok(()));
    }

    #[test]
    fn a_child_takes_no_name_of_another_tree_or_another_teams_patterns() {
        let configured = ["shop", "shop-payments", "billing"];
        let patterns = vec!["ops-*".to_owned(), "shop*".to_owned(), "*-prod".to_owned()];
        let check =
            |name: &str, top: &str, tree: &[&str]| check_child_name(name, top, tree, &configured, &patterns);
        assert_eq!(check("billing-web", "billing", &["billing"]), Ok(()));
        assert_eq!(check("shop-web", "shop", &["shop"]), Ok(()));
        assert_eq!(
            check("guestbook", "billing", &["billing"]),
            Ok(()),
            "names that nobody owns stay free (Argo CD repositories)"
        );
        assert_eq!(
            check("shop-web-x", "shop", &["shop", "shop-web"]),
            Ok(()),
            "under its own tree's child"
        );
        let err = check("shop-evil", "billing", &["billing"]).expect_err("owned");
        assert_eq!(
            err.to_string(),
            "application \"shop-evil\" is named under application \"shop\", which is not in the tree of \"billing\"; an Application declared in Git takes no name under another tree's application (\"shop-…\")"
        );
        assert_eq!(
            check("shop-payments-x", "shop", &["shop"]),
            Err(NameRefusal::Owned {
                name: "shop-payments-x".into(),
                owner: "shop-payments".into(),
                top: "shop".into()
            }),
            "the longest prefix owns it"
        );
        let err = check("ops-x", "billing", &["billing"]).expect_err("fenced");
        assert_eq!(
            err.to_string(),
            "application \"ops-x\" matches the application pattern \"ops-*\" of a token or notification subscription that does not cover \"billing\"; an Application declared in Git cannot enter another team's patterns"
        );
        assert!(matches!(
            check("billing-prod", "billing", &["billing"]),
            Err(NameRefusal::Fenced { .. })
        ));
        assert_eq!(
            check("ops-x", "ops", &["ops"]),
            Ok(()),
            "a pattern whose start the tree owns"
        );
        assert_eq!(check("shop-staging", "shop", &["shop"]), Ok(()), "covers the top");
    }

    #[test]
    fn a_child_stays_in_its_roots_project() {
        assert_eq!(child_project(Some("team-a"), None), Ok(Some("team-a".into())));
        assert_eq!(
            child_project(Some("team-a"), Some("team-a")),
            Ok(Some("team-a".into()))
        );
        assert_eq!(
            child_project(Some("team-a"), Some("platform"))
                .expect_err("refused")
                .to_string(),
            "names project platform, but its root is in project team-a; an Application declared in Git stays in its root's project"
        );
        assert_eq!(child_project(None, Some("team-b")), Ok(Some("team-b".into())));
        assert_eq!(child_project(None, None), Ok(None));
    }
}
