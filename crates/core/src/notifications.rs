//! What driftless tells people, and whom: notices about an application (a sync succeeded or
//! failed, health degraded or recovered, drift detected, a commit refused for its signature),
//! subscriptions that route them to targets, and the message text. Pure; delivery is the
//! server's.

use serde::{Deserialize, Serialize};

use crate::access::Grant;
use crate::application::SecretSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// An automated sync began (commit statuses show "pending").
    SyncStarted,
    SyncSucceeded,
    SyncFailed,
    HealthDegraded,
    HealthRecovered,
    DriftDetected,
    SignatureRefused,
}

impl NoticeKind {
    pub const ALL: [Self; 7] = [
        Self::SyncStarted,
        Self::SyncSucceeded,
        Self::SyncFailed,
        Self::HealthDegraded,
        Self::HealthRecovered,
        Self::DriftDetected,
        Self::SignatureRefused,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SyncStarted => "sync-started",
            Self::SyncSucceeded => "sync-succeeded",
            Self::SyncFailed => "sync-failed",
            Self::HealthDegraded => "health-degraded",
            Self::HealthRecovered => "health-recovered",
            Self::DriftDetected => "drift-detected",
            Self::SignatureRefused => "signature-refused",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Something worth telling about one application. The message is already free of secret
/// values (sync messages and drift descriptions are redacted where they are made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub application: String,
    pub kind: NoticeKind,
    /// The commit concerned, when known.
    pub revision: Option<String>,
    pub message: String,
}

/// Where notices go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    /// A Slack-compatible incoming webhook; its URL is a secret (it holds the token).
    Slack { url: SecretSource },
    /// A JSON POST, signed like driftless's own generic webhook when `secret` is set.
    Webhook {
        url: String,
        secret: Option<SecretSource>,
    },
    /// Mail over SMTP; the connection is always upgraded with STARTTLS (refused without it).
    Email(EmailTarget),
    /// The synced commit's status on GitHub (`POST /repos/{owner}/{repo}/statuses/{sha}`).
    GithubStatus(CommitStatusTarget),
    /// The synced commit's status on GitLab (`POST /projects/{id}/statuses/{sha}`).
    GitlabStatus(CommitStatusTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTarget {
    pub host: String,
    /// 587 (submission) unless set.
    pub port: u16,
    pub from: String,
    pub to: Vec<String>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    /// A PEM file of CA certificates the server's certificate must chain to, instead of the
    /// public roots (a private mail relay).
    pub ca_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitStatusTarget {
    /// `https://api.github.com`, `https://gitlab.com/api/v4`, or a self-hosted instance's.
    pub api_url: String,
    pub token: SecretSource,
    /// The status's name on the commit; `{application}` is replaced.
    pub context: String,
}

/// A commit status's state, in the provider's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    Pending,
    Success,
    Failure,
}

impl CommitState {
    /// The state a notice reports, if it is about a sync.
    #[must_use]
    pub fn of(kind: NoticeKind) -> Option<Self> {
        match kind {
            NoticeKind::SyncStarted => Some(Self::Pending),
            NoticeKind::SyncSucceeded => Some(Self::Success),
            NoticeKind::SyncFailed => Some(Self::Failure),
            _ => None,
        }
    }

    #[must_use]
    pub fn github(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    #[must_use]
    pub fn gitlab(self) -> &'static str {
        match self {
            Self::Pending => "running",
            Self::Success => "success",
            Self::Failure => "failed",
        }
    }
}

/// `owner/repo` (GitHub) or the project's full path (GitLab: `group/subgroup/project`) of a
/// repository URL: `https://host/a/b.git`, `ssh://git@host/a/b`, `git@host:a/b.git`.
#[must_use]
pub fn repository_path(url: &str) -> Option<String> {
    let key = crate::application::repository_key(url);
    let (_, path) = key.split_once('/')?;
    (path.contains('/')
        && !path
            .split('/')
            .any(|part| part.is_empty() || part == ".." || part == "."))
    .then(|| path.to_owned())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
}

/// Which notices of which applications go to which targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// Application-name globs; every application when empty.
    pub applications: Vec<String>,
    /// Every kind when empty.
    pub on: Vec<NoticeKind>,
    pub targets: Vec<String>,
    /// `{application}`, `{event}`, `{revision}` and `{message}` are replaced; the default is
    /// [`DEFAULT_TEMPLATE`].
    pub template: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifications {
    pub targets: Vec<Target>,
    pub subscriptions: Vec<Subscription>,
}

pub const DEFAULT_TEMPLATE: &str = "{application}: {event} at {revision}: {message}";

impl Subscription {
    #[must_use]
    pub fn wants(&self, notice: &Notice) -> bool {
        let scope = Grant {
            role: crate::access::Role::Viewer,
            applications: self.applications.clone(),
            labels: std::collections::BTreeMap::new(),
        };
        scope.covers_name(&notice.application) && (self.on.is_empty() || self.on.contains(&notice.kind))
    }

    /// Whether this subscription routes `notice` to `target`: commit statuses only take notices
    /// about syncs; people hear that a sync started only when they asked for `sync-started`.
    fn reaches(&self, target: &Target, notice: &Notice) -> bool {
        match target.kind {
            TargetKind::GithubStatus(_) | TargetKind::GitlabStatus(_) => {
                CommitState::of(notice.kind).is_some()
            }
            _ => notice.kind != NoticeKind::SyncStarted || self.on.contains(&NoticeKind::SyncStarted),
        }
    }

    /// The message text for `notice`.
    #[must_use]
    pub fn text(&self, notice: &Notice) -> String {
        let revision = notice
            .revision
            .as_deref()
            .map_or("an unknown revision", |revision| {
                revision.get(..12).unwrap_or(revision)
            });
        self.template
            .as_deref()
            .unwrap_or(DEFAULT_TEMPLATE)
            .replace("{application}", &notice.application)
            .replace("{event}", notice.kind.as_str())
            .replace("{revision}", revision)
            .replace("{message}", &notice.message)
    }
}

impl Notifications {
    /// Each target a notice goes to, with the text its subscription makes (a target subscribed
    /// twice gets the first subscription's text, once).
    #[must_use]
    pub fn route<'a>(&'a self, notice: &Notice) -> Vec<(&'a Target, String)> {
        let mut routed: Vec<(&Target, String)> = Vec::new();
        for subscription in self.subscriptions.iter().filter(|s| s.wants(notice)) {
            for name in &subscription.targets {
                let Some(target) = self.targets.iter().find(|t| t.name == *name) else {
                    continue;
                };
                if !subscription.reaches(target, notice) {
                    continue;
                }
                if !routed.iter().any(|(known, _)| known.name == target.name) {
                    routed.push((target, subscription.text(notice)));
                }
            }
        }
        routed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(application: &str, kind: NoticeKind) -> Notice {
        Notice {
            application: application.into(),
            kind,
            revision: Some("0123456789abcdef0123".into()),
            message: "2 objects configured".into(),
        }
    }

    #[test]
    fn subscriptions_route_by_application_and_kind_with_their_template() {
        let target = |name: &str| Target {
            name: name.into(),
            kind: TargetKind::Webhook {
                url: format!("https://{name}.example"),
                secret: None,
            },
        };
        let notifications = Notifications {
            targets: vec![target("ops"), target("team")],
            subscriptions: vec![
                Subscription {
                    applications: vec![],
                    on: vec![NoticeKind::SyncFailed, NoticeKind::HealthDegraded],
                    targets: vec!["ops".into()],
                    template: None,
                },
                Subscription {
                    applications: vec!["shop-*".into()],
                    on: vec![],
                    targets: vec!["team".into(), "ops".into()],
                    template: Some("[{event}] {application} {revision}".into()),
                },
            ],
        };
        let routed = |n: &Notice| {
            notifications
                .route(n)
                .into_iter()
                .map(|(t, text)| (t.name.clone(), text))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            routed(&notice("billing", NoticeKind::SyncFailed)),
            [(
                "ops".to_owned(),
                "billing: sync-failed at 0123456789ab: 2 objects configured".to_owned()
            )]
        );
        assert!(routed(&notice("billing", NoticeKind::SyncSucceeded)).is_empty());
        assert_eq!(
            routed(&notice("shop-web", NoticeKind::DriftDetected)),
            [
                (
                    "team".to_owned(),
                    "[drift-detected] shop-web 0123456789ab".to_owned()
                ),
                (
                    "ops".to_owned(),
                    "[drift-detected] shop-web 0123456789ab".to_owned()
                ),
            ]
        );
        assert_eq!(
            routed(&notice("shop-web", NoticeKind::SyncFailed)).len(),
            2,
            "ops once"
        );
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(NoticeKind::parse("sync-exploded"), None);
    }

    #[test]
    fn commit_statuses_hear_only_of_syncs_and_people_not_of_starts_unless_asked() {
        let status = CommitStatusTarget {
            api_url: "https://api.github.com".into(),
            token: SecretSource::Env("GITHUB_TOKEN".into()),
            context: "driftless/{application}".into(),
        };
        let notifications = Notifications {
            targets: vec![
                Target {
                    name: "gh".into(),
                    kind: TargetKind::GithubStatus(status),
                },
                Target {
                    name: "chat".into(),
                    kind: TargetKind::Webhook {
                        url: "https://chat.example".into(),
                        secret: None,
                    },
                },
            ],
            subscriptions: vec![Subscription {
                applications: vec![],
                on: vec![],
                targets: vec!["gh".into(), "chat".into()],
                template: None,
            }],
        };
        let names = |kind| {
            notifications
                .route(&notice("web", kind))
                .into_iter()
                .map(|(t, _)| t.name.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(NoticeKind::SyncStarted), ["gh"]);
        assert_eq!(names(NoticeKind::SyncFailed), ["gh", "chat"]);
        assert_eq!(names(NoticeKind::DriftDetected), ["chat"]);
        assert_eq!(
            CommitState::of(NoticeKind::SyncFailed).map(CommitState::gitlab),
            Some("failed")
        );
        assert_eq!(
            CommitState::of(NoticeKind::SyncStarted).map(CommitState::github),
            Some("pending")
        );
    }

    #[test]
    fn repository_paths_come_from_every_url_form() {
        for (url, path) in [
            ("https://github.com/acme/shop.git", Some("acme/shop")),
            (
                "https://token@gitlab.example/group/sub/project",
                Some("group/sub/project"),
            ),
            ("ssh://git@github.com/acme/shop", Some("acme/shop")),
            ("git@github.com:acme/shop.git", Some("acme/shop")),
            ("https://github.com/shop", None),
            ("https://github.com/acme/../x", None),
            ("file:///srv/git/acme/shop.git", Some("srv/git/acme/shop")),
        ] {
            assert_eq!(repository_path(url).as_deref(), path, "{url}");
        }
    }
}
