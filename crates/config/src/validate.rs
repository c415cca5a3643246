use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use driftless_core::application::{
    Application, Automated, Cluster, ClusterConnection, DEFAULT_INTERVAL, Decryption, Destination,
    DirectoryOptions, HelmOptions, HelmParameter, IgnoreDifference, JsonnetOptions, JsonnetVariable,
    KeySource, Renderer, RepositoryChart, RepositoryCredentials, RepositoryVerification, Retry, SecretSource,
    SensitiveData, SensitiveField, Source, SourceLimits, SyncPolicy, Verification, VerifyMode,
    WebhookSecrets,
};
use driftless_core::application::{PostBuild, SubstituteKind, SubstituteReference, is_variable_name};
use driftless_core::arguments::{ArgumentError, is_dns_label};
use driftless_core::notifications::Notifications;
use driftless_core::project::{GroupKind, Project, ProjectDestination, check_pattern};
use serde_saphyr::Spanned;

use crate::raw::{
    RawApplication, RawCluster, RawCommitStatusTarget, RawConfig, RawDecryption, RawGroupKind, RawHelm,
    RawHelmChart, RawIgnoreDifference, RawJsonnet, RawJsonnetVariable, RawKeySource, RawLimits,
    RawNotifications, RawPostBuild, RawProject, RawRedaction, RawRepository, RawSecretRef, RawSource,
    RawSyncPolicy, RawTarget, RawVerify, Text,
};
use crate::{Config, ConfigError, Problem};

pub const API_VERSION: &str = "driftless.dev/v1alpha1";
pub const CONFIG_KIND: &str = "Config";
pub const APPLICATION_KIND: &str = "Application";

/// Longest accepted reconcile interval; longer is almost certainly a typo (`3h` for `3m` is not,
/// `300d` is).
const MAX_INTERVAL: Duration = Duration::from_hours(7 * 24);

/// Limits on the YAML itself: a configuration is small, and a hostile one must not be able to
/// expand aliases or nest without bound.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_events: 1_000_000,
            max_depth: 64,
        },
    }
}

/// Collects problems while walking one document.
pub(crate) struct Checker<'a> {
    file: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    /// `message` is a text or an error of this crate's checks (or of `driftless_core`'s).
    fn report(&mut self, line: Option<u64>, field: impl Into<String>, message: impl std::fmt::Display) {
        self.problems.push(Problem {
            file: self.file.to_owned(),
            line,
            field: field.into(),
            message: message.to_string(),
        });
    }

    pub(crate) fn report_at(
        &mut self,
        text: &Text,
        field: impl Into<String>,
        message: impl std::fmt::Display,
    ) {
        self.report(line_of(text), field, message);
    }
}

/// `None` when the value did not come from YAML text (e.g. a JSON value rendered from Git).
fn line_of<T>(spanned: &Spanned<T>) -> Option<u64> {
    Some(spanned.referenced.line()).filter(|line| *line > 0)
}

pub fn config(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig =
        serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|err| yaml_error(file, &err))?;
    let mut checker = Checker {
        file,
        problems: Vec::new(),
    };
    check_header(&mut checker, &raw.api_version, &raw.kind, CONFIG_KIND, "");

    let clusters = clusters(&mut checker, &raw.clusters, base);
    let cluster_names: Vec<String> = clusters.iter().map(|cluster| cluster.name.clone()).collect();
    let mut repositories = Vec::new();
    let mut repository_verifications = Vec::new();
    for (index, raw_repo) in raw.repositories.iter().enumerate() {
        let Some(credentials) = repository(&mut checker, raw_repo, index, base) else {
            continue;
        };
        if let Some(raw_verify) = &raw_repo.verify
            && let Some(verify) = verification(
                &mut checker,
                raw_verify,
                &format!("repositories[{index}].verify"),
                Some(base),
            )
        {
            repository_verifications.push(RepositoryVerification {
                url_prefix: credentials.url_prefix.clone(),
                verify,
            });
        }
        repositories.push(credentials);
    }

    let projects = projects(&mut checker, &raw.projects, &cluster_names);
    // Declared names, valid or not: a project with a mistake is not also "unknown".
    let project_names: BTreeSet<&str> = raw
        .projects
        .iter()
        .map(|project| project.name.value.as_str())
        .collect();
    let applications = applications(
        &mut checker,
        &raw.applications,
        &cluster_names,
        &project_names,
        base,
    );
    let data_dir = raw.data_dir.as_ref().map(|dir| resolve_path(base, &dir.value));
    let limits = raw
        .limits
        .as_ref()
        .map_or_else(SourceLimits::default, |raw| limits(&mut checker, raw));
    let redaction = raw
        .redaction
        .as_ref()
        .map(|raw| redaction(&mut checker, raw))
        .unwrap_or_default();
    let webhooks = raw.webhooks.as_ref().map_or_else(WebhookSecrets::default, |raw| {
        let mut secret = |what: &str, source: Option<&RawSecretRef>| {
            source.map(|source| secret_source(&mut checker, source, &format!("webhooks.{what}"), base))
        };
        WebhookSecrets {
            github: secret("github", raw.github.as_ref()),
            gitlab: secret("gitlab", raw.gitlab.as_ref()),
            gitea: secret("gitea", raw.gitea.as_ref()),
            bitbucket: secret("bitbucket", raw.bitbucket.as_ref()),
            generic: secret("generic", raw.generic.as_ref()),
        }
    });
    let notifications = raw
        .notifications
        .as_ref()
        .map(|raw| notifications(&mut checker, raw, base))
        .unwrap_or_default();
    let policy = raw
        .policy
        .as_ref()
        .map(|raw| crate::policy::rules(&mut checker, raw))
        .unwrap_or_default();
    finish(
        checker,
        Config {
            data_dir,
            clusters,
            repositories,
            repository_verifications,
            limits,
            redaction,
            projects,
            webhooks,
            notifications,
            policy,
            applications,
        },
    )
}

/// An `http(s)://` URL, or a report naming `field`.
fn http_url(checker: &mut Checker<'_>, url: &Text, field: &str) -> String {
    if !(url.value.starts_with("https://") || url.value.starts_with("http://")) {
        checker.report_at(
            url,
            field,
            format!("{:?} must be an https:// or http:// URL", url.value),
        );
    }
    url.value.trim_end_matches('/').to_owned()
}

/// Whether a token may be sent to `url`: `https://`, or `http://` to this machine as
/// `driftless_secrets::is_loopback` decides it (the rule `plan --post` applies too), since a token
/// must not cross a network in clear. The host is the URL's real one: with user-info
/// (`http://127.0.0.1:80@evil.example` is evil.example) or a port that is not a number, it is
/// refused rather than guessed.
fn token_may_go_to(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    if authority.contains('@') {
        return false;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, "")) => (host, ""),
            Some((host, after)) => match after.strip_prefix(':') {
                Some(port) => (host, port),
                None => return false,
            },
            None => return false,
        },
        None => authority.split_once(':').unwrap_or((authority, "")),
    };
    port.bytes().all(|byte| byte.is_ascii_digit()) && driftless_secrets::is_loopback(host)
}

/// An API URL a token is sent to ([`token_may_go_to`]), or a report naming `field`.
fn token_url(checker: &mut Checker<'_>, url: &Text, field: &str) -> String {
    let value = url.value.trim_end_matches('/');
    if !token_may_go_to(value) {
        checker.report_at(
            url,
            field,
            format!(
                "{:?} must be an https:// URL (http:// only on a loopback address): the token goes there",
                url.value
            ),
        );
    }
    value.to_owned()
}

/// The one kind a notification target sets.
fn target_kind(
    checker: &mut Checker<'_>,
    target: &RawTarget,
    field: &str,
    base: &Path,
) -> Option<driftless_core::notifications::TargetKind> {
    use driftless_core::notifications::{CommitStatusTarget, EmailTarget, TargetKind};
    let status = |checker: &mut Checker<'_>, raw: &RawCommitStatusTarget, which: &str, default: &str| {
        CommitStatusTarget {
            api_url: raw.api_url.as_ref().map_or_else(
                || default.to_owned(),
                |url| token_url(checker, url, &format!("{field}.{which}.apiURL")),
            ),
            token: secret_source(checker, &raw.token, &format!("{field}.{which}.token"), base),
            context: raw
                .context
                .as_ref()
                .map_or_else(|| "driftless/{application}".to_owned(), |t| t.value.clone()),
        }
    };
    let set = [
        target.slack.is_some(),
        target.webhook.is_some(),
        target.email.is_some(),
        target.github.is_some(),
        target.gitlab.is_some(),
    ];
    if set.iter().filter(|set| **set).count() != 1 {
        checker.report_at(
            &target.name,
            field,
            "set exactly one of slack, webhook, email, github and gitlab",
        );
        return None;
    }
    Some(if let Some(slack) = &target.slack {
        TargetKind::Slack {
            url: secret_source(checker, &slack.url, &format!("{field}.slack.url"), base),
        }
    } else if let Some(webhook) = &target.webhook {
        TargetKind::Webhook {
            url: http_url(checker, &webhook.url, &format!("{field}.webhook.url")),
            secret: webhook
                .secret
                .as_ref()
                .map(|secret| secret_source(checker, secret, &format!("{field}.webhook.secret"), base)),
        }
    } else if let Some(email) = &target.email {
        for address in std::iter::once(&email.from).chain(&email.to) {
            if !address.value.contains('@') || address.value.contains(['\r', '\n']) {
                checker.report_at(
                    address,
                    format!("{field}.email"),
                    format!("{:?} is not a mail address", address.value),
                );
            }
        }
        if email.to.is_empty() {
            checker.report_at(
                &target.name,
                format!("{field}.email.to"),
                "name at least one recipient",
            );
        }
        TargetKind::Email(EmailTarget {
            host: email.host.value.clone(),
            port: email.port.unwrap_or(587),
            from: email.from.value.clone(),
            to: email.to.iter().map(|t| t.value.clone()).collect(),
            username: email.username.as_ref().map(|t| t.value.clone()),
            password: email
                .password
                .as_ref()
                .map(|secret| secret_source(checker, secret, &format!("{field}.email.password"), base)),
            ca_file: email.ca_file.as_ref().map(|path| resolve_path(base, &path.value)),
        })
    } else if let Some(github) = &target.github {
        TargetKind::GithubStatus(status(checker, github, "github", "https://api.github.com"))
    } else {
        let gitlab = target.gitlab.as_ref()?;
        TargetKind::GitlabStatus(status(checker, gitlab, "gitlab", "https://gitlab.com/api/v4"))
    })
}

/// `notifications:`: targets with unique names, each a Slack webhook (its URL a secret), a
/// JSON webhook, email, or GitHub/GitLab commit statuses; subscriptions naming known targets and
/// known events.
fn notifications(checker: &mut Checker<'_>, raw: &RawNotifications, base: &Path) -> Notifications {
    use driftless_core::notifications::{NoticeKind, Subscription, Target};
    let mut targets: Vec<Target> = Vec::new();
    for (index, target) in raw.targets.iter().enumerate() {
        let field = format!("notifications.targets[{index}]");
        let name = target.name.value.clone();
        if name.is_empty() || targets.iter().any(|known| known.name == name) {
            checker.report_at(
                &target.name,
                format!("{field}.name"),
                format!("{name:?} is empty or used twice"),
            );
        }
        let Some(kind) = target_kind(checker, target, &field, base) else {
            continue;
        };
        targets.push(Target { name, kind });
    }
    let mut subscriptions = Vec::new();
    for (index, subscription) in raw.subscriptions.iter().enumerate() {
        let field = format!("notifications.subscriptions[{index}]");
        for target in &subscription.targets {
            if !raw.targets.iter().any(|known| known.name.value == target.value) {
                checker.report_at(
                    target,
                    format!("{field}.targets"),
                    format!("no target is named {:?}", target.value),
                );
            }
        }
        let on = subscription
            .on
            .iter()
            .filter_map(|event| {
                let kind = NoticeKind::parse(&event.value);
                if kind.is_none() {
                    let known: Vec<&str> = NoticeKind::ALL.iter().map(|kind| kind.as_str()).collect();
                    checker.report_at(
                        event,
                        format!("{field}.on"),
                        format!("{:?} is not an event (one of {})", event.value, known.join(", ")),
                    );
                }
                kind
            })
            .collect();
        subscriptions.push(Subscription {
            applications: subscription
                .applications
                .iter()
                .map(|t| t.value.clone())
                .collect(),
            on,
            targets: subscription.targets.iter().map(|t| t.value.clone()).collect(),
            template: subscription.template.as_ref().map(|t| t.value.clone()),
        });
    }
    Notifications {
        targets,
        subscriptions,
    }
}

/// `redaction:`: annotation keys and JSON pointers per kind.
fn redaction(checker: &mut Checker<'_>, raw: &RawRedaction) -> SensitiveData {
    let mut fields = Vec::new();
    for (index, field) in raw.fields.iter().enumerate() {
        for pointer in &field.json_pointers {
            if !pointer.value.starts_with('/') {
                checker.report_at(
                    pointer,
                    format!("redaction.fields[{index}].jsonPointers"),
                    format!(
                        "{:?} is not a JSON pointer (it must start with '/')",
                        pointer.value
                    ),
                );
            }
        }
        fields.push(SensitiveField {
            group: field.group.clone(),
            kind: field.kind.value.clone(),
            json_pointers: field.json_pointers.iter().map(|p| p.value.clone()).collect(),
        });
    }
    SensitiveData {
        annotations: raw.annotations.iter().map(|a| a.value.clone()).collect(),
        fields,
    }
}

/// `limits:`; each omitted field keeps its default.
fn limits(checker: &mut Checker<'_>, raw: &RawLimits) -> SourceLimits {
    let defaults = SourceLimits::default();
    let count = |checker: &mut Checker<'_>, text: &Option<Text>, field: &str, default: usize| {
        let Some(text) = text else { return default };
        match quantity(&text.value).and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n > 0 => n,
            _ => {
                checker.report_at(
                    text,
                    format!("limits.{field}"),
                    format!(
                        "{:?} is not a positive whole number (a size may end in Ki, Mi or Gi)",
                        text.value
                    ),
                );
                default
            }
        }
    };
    let max_files = count(checker, &raw.max_files, "maxFiles", defaults.max_files);
    let max_repository_bytes = count(
        checker,
        &raw.max_repository_bytes,
        "maxRepositoryBytes",
        usize::try_from(defaults.max_repository_bytes).unwrap_or(usize::MAX),
    );
    let max_file_bytes = count(
        checker,
        &raw.max_file_bytes,
        "maxFileBytes",
        defaults.max_file_bytes,
    );
    let max_documents = count(
        checker,
        &raw.max_documents,
        "maxDocuments",
        defaults.max_documents,
    );
    let render_timeout = raw
        .render_timeout
        .as_ref()
        .and_then(|text| duration(checker, text, "limits.renderTimeout"))
        .unwrap_or(defaults.render_timeout);
    SourceLimits {
        max_files,
        max_repository_bytes: u64::try_from(max_repository_bytes).unwrap_or(u64::MAX),
        max_file_bytes,
        max_documents,
        render_timeout,
    }
}

/// `20000`, `16Mi`, `1Gi`, `512Ki`.
fn quantity(text: &str) -> Option<u64> {
    let text = text.trim();
    let (digits, multiplier) = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        .iter()
        .find_map(|(suffix, m)| text.strip_suffix(suffix).map(|d| (d, *m)))
        .unwrap_or((text, 1));
    digits.parse::<u64>().ok()?.checked_mul(multiplier)
}

fn applications(
    checker: &mut Checker<'_>,
    raw: &[RawApplication],
    cluster_names: &[String],
    project_names: &BTreeSet<&str>,
    base: &Path,
) -> Vec<Application> {
    let mut applications = Vec::new();
    let mut names = BTreeSet::new();
    for (index, raw_app) in raw.iter().enumerate() {
        let field = format!("applications[{index}]");
        if let Some(project) = &raw_app.spec.project
            && !project_names.contains(&project.value.as_str())
        {
            checker.report_at(
                project,
                format!("{field}.spec.project"),
                format!(
                    "unknown project {:?} (configured: {})",
                    project.value,
                    listed(project_names.iter().copied())
                ),
            );
        }
        if let Some(app) = application(checker, raw_app, &field, cluster_names, Some(base)) {
            if !names.insert(app.name.clone()) {
                checker.report_at(
                    &raw_app.metadata.name,
                    format!("{field}.metadata.name"),
                    format!("application {:?} is defined twice", app.name),
                );
            }
            applications.push(app);
        }
    }
    applications
}

/// `a, b, c`, or `none`.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn projects(checker: &mut Checker<'_>, raw: &[RawProject], cluster_names: &[String]) -> Vec<Project> {
    let mut seen = BTreeSet::new();
    let mut projects = Vec::new();
    for (index, raw_project) in raw.iter().enumerate() {
        let field = format!("projects[{index}]");
        let before = checker.problems.len();
        let name = &raw_project.name;
        unique_name(checker, &mut seen, name, &field, "project");
        let source_repos = raw_project
            .source_repos
            .as_ref()
            .map(|patterns| source_repos(checker, patterns, name, &format!("{field}.sourceRepos")));
        let destinations = raw_project.destinations.as_ref().map(|destinations| {
            project_destinations(
                checker,
                destinations,
                cluster_names,
                &format!("{field}.destinations"),
            )
        });
        let cluster_resource_whitelist = group_kinds(
            checker,
            &raw_project.cluster_resource_whitelist,
            &format!("{field}.clusterResourceWhitelist"),
        );
        let namespace_resource_blacklist = group_kinds(
            checker,
            &raw_project.namespace_resource_blacklist,
            &format!("{field}.namespaceResourceBlacklist"),
        );
        if checker.problems.len() == before {
            projects.push(Project {
                name: name.value.clone(),
                source_repos,
                destinations,
                cluster_resource_whitelist,
                namespace_resource_blacklist,
            });
        }
    }
    projects
}

/// `text`'s value, reported when it is not a usable glob (after a leading `!`, when `negatable`).
fn glob(checker: &mut Checker<'_>, text: &Text, field: &str, negatable: bool) -> String {
    let pattern = if negatable {
        text.value.strip_prefix('!').unwrap_or(&text.value)
    } else {
        &text.value
    };
    if pattern.is_empty() {
        checker.report_at(text, field, "must not be empty");
    } else if let Err(err) = check_pattern(pattern) {
        checker.report_at(text, field, err);
    }
    text.value.clone()
}

fn source_repos(checker: &mut Checker<'_>, patterns: &[Text], name: &Text, field: &str) -> Vec<String> {
    let patterns: Vec<String> = patterns
        .iter()
        .map(|pattern| glob(checker, pattern, field, true))
        .collect();
    if !patterns.is_empty() && patterns.iter().all(|pattern| pattern.starts_with('!')) {
        checker.report_at(
            name,
            field,
            "only '!' patterns allow no repository at all; add the repositories allowed (e.g. \"https://git.example.com/team/*\")",
        );
    }
    patterns
}

fn project_destinations(
    checker: &mut Checker<'_>,
    raw: &[crate::raw::RawProjectDestination],
    cluster_names: &[String],
    field: &str,
) -> Vec<ProjectDestination> {
    raw.iter()
        .enumerate()
        .map(|(index, destination)| {
            let field = format!("{field}[{index}]");
            let cluster = &destination.cluster;
            if cluster.value != "*" && !cluster_names.contains(&cluster.value) {
                checker.report_at(
                    cluster,
                    format!("{field}.cluster"),
                    format!(
                        "unknown cluster {:?} (configured: {}; or \"*\" for any)",
                        cluster.value,
                        listed(cluster_names.iter().map(String::as_str))
                    ),
                );
            }
            ProjectDestination {
                cluster: cluster.value.clone(),
                namespace: glob(
                    checker,
                    &destination.namespace,
                    &format!("{field}.namespace"),
                    false,
                ),
            }
        })
        .collect()
}

fn group_kinds(checker: &mut Checker<'_>, raw: &[RawGroupKind], field: &str) -> Vec<GroupKind> {
    raw.iter()
        .enumerate()
        .map(|(index, entry)| {
            let field = format!("{field}[{index}]");
            // The core group is written "": only a non-empty group is a pattern to check.
            if !entry.group.value.is_empty() {
                glob(checker, &entry.group, &format!("{field}.group"), false);
            }
            GroupKind {
                group: entry.group.value.clone(),
                kind: glob(checker, &entry.kind, &format!("{field}.kind"), false),
            }
        })
        .collect()
}

pub fn application_manifest(
    manifest: &serde_json::Value,
    source: &str,
    known_clusters: &[String],
) -> Result<Application, ConfigError> {
    let raw: RawApplication = serde_json::from_value(manifest.clone()).map_err(|err| ConfigError {
        problems: vec![Problem {
            file: source.to_owned(),
            line: None,
            field: String::new(),
            message: err.to_string(),
        }],
    })?;
    let mut checker = Checker {
        file: source,
        problems: Vec::new(),
    };
    let app = application(&mut checker, &raw, "", known_clusters, None);
    match app {
        Some(app) => finish(checker, app),
        None => Err(ConfigError {
            problems: checker.problems,
        }),
    }
}

fn finish<T>(checker: Checker<'_>, value: T) -> Result<T, ConfigError> {
    if checker.problems.is_empty() {
        Ok(value)
    } else {
        Err(ConfigError {
            problems: checker.problems,
        })
    }
}

fn yaml_error(file: &str, err: &serde_saphyr::Error) -> ConfigError {
    let location = err.location();
    ConfigError {
        problems: vec![Problem {
            file: file.to_owned(),
            line: location.map(|l| l.line()).filter(|line| *line > 0),
            field: String::new(),
            message: err.to_string(),
        }],
    }
}

pub(crate) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

fn check_header(
    checker: &mut Checker<'_>,
    api_version: &Text,
    kind: &Text,
    expected_kind: &str,
    prefix: &str,
) {
    if api_version.value != API_VERSION {
        checker.report_at(
            api_version,
            join(prefix, "apiVersion"),
            format!("must be {API_VERSION}, found {:?}", api_version.value),
        );
    }
    if kind.value != expected_kind {
        checker.report_at(
            kind,
            join(prefix, "kind"),
            format!("must be {expected_kind}, found {:?}", kind.value),
        );
    }
}

/// A path from the file: `~/` is the home directory, relative paths are relative to the file.
fn resolve_path(base: &Path, path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => base.join(path),
    }
}

/// RFC 1123 subdomain: what Kubernetes accepts for most object names.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// Reports a name that is not a DNS label, or that `seen` already holds.
fn unique_name(checker: &mut Checker<'_>, seen: &mut BTreeSet<String>, name: &Text, field: &str, what: &str) {
    if !is_dns_label(&name.value) {
        checker.report_at(
            name,
            format!("{field}.name"),
            format!(
                "{:?} is not a valid name (lowercase letters, digits and '-', at most 63)",
                name.value
            ),
        );
    } else if !seen.insert(name.value.clone()) {
        checker.report_at(
            name,
            format!("{field}.name"),
            format!("{what} {:?} is defined twice", name.value),
        );
    }
}

fn clusters(checker: &mut Checker<'_>, raw: &[RawCluster], base: &Path) -> Vec<Cluster> {
    let mut seen = BTreeSet::new();
    let mut clusters = Vec::new();
    for (index, cluster) in raw.iter().enumerate() {
        let field = format!("clusters[{index}]");
        let name = &cluster.name;
        unique_name(checker, &mut seen, name, &field, "cluster");
        let connection = match (&cluster.kubeconfig, cluster.in_cluster) {
            (Some(path), false) => ClusterConnection::Kubeconfig {
                path: resolve_path(base, &path.value),
                context: cluster.context.as_ref().map(|c| c.value.clone()),
            },
            (None, true) => ClusterConnection::InCluster,
            (Some(path), true) => {
                checker.report_at(path, field, "set either kubeconfig or inCluster, not both");
                continue;
            }
            (None, false) => {
                checker.report_at(name, field, "set kubeconfig (a file) or inCluster: true");
                continue;
            }
        };
        clusters.push(Cluster {
            name: name.value.clone(),
            connection,
        });
    }
    clusters
}

fn secret_source(checker: &mut Checker<'_>, raw: &RawSecretRef, field: &str, base: &Path) -> SecretSource {
    match raw {
        RawSecretRef::File(path) => SecretSource::File(resolve_path(base, &path.value)),
        RawSecretRef::Env(name) => {
            if name.value.is_empty() || !name.value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                checker.report_at(
                    name,
                    field,
                    format!("{:?} is not an environment variable name", name.value),
                );
            }
            SecretSource::Env(name.value.clone())
        }
    }
}

fn repository(
    checker: &mut Checker<'_>,
    raw: &RawRepository,
    index: usize,
    base: &Path,
) -> Option<RepositoryCredentials> {
    let field = format!("repositories[{index}]");
    if let Err(err) = check_repo_url(&raw.url.value) {
        checker.report_at(&raw.url, format!("{field}.url"), err);
        return None;
    }
    Some(RepositoryCredentials {
        url_prefix: raw.url.value.clone(),
        username: raw.username.as_ref().map(|u| u.value.clone()),
        password: raw
            .password
            .as_ref()
            .map(|s| secret_source(checker, s, &format!("{field}.password"), base)),
        ssh_private_key: raw
            .ssh_private_key
            .as_ref()
            .map(|s| secret_source(checker, s, &format!("{field}.sshPrivateKey"), base)),
        known_hosts: raw
            .known_hosts
            .as_ref()
            .map(|s| secret_source(checker, s, &format!("{field}.knownHosts"), base)),
    })
}

/// Returned by [`check_repo_url`]. The URL is shown without its user-info, which may hold a
/// password or token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RepoUrlError {
    #[error("must not be empty")]
    Empty,
    #[error("{url:?} must not start with '-'")]
    Option { url: String },
    #[error("must not contain control characters or encoded newlines")]
    ControlCharacters,
    #[error("{url:?} must be an https://, http://, ssh://, git://, file:// or user@host:path URL")]
    Scheme { url: String },
}

/// `url` without what precedes an `@` in its authority (`user:password@`), scheme or not: a
/// refused URL may be anything, such as `user:token@host/repo` with the scheme forgotten.
fn without_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |end| end + 3);
    let end = url[start..].find('/').map_or(url.len(), |slash| start + slash);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// Repository URLs reach `git` as arguments: refuse what git would treat as an option or a
/// helper-program transport, and control characters (CVE-2020-5260: newlines smuggled into
/// credential helper input).
pub(crate) fn check_repo_url(url: &str) -> Result<(), RepoUrlError> {
    if url.is_empty() {
        return Err(RepoUrlError::Empty);
    }
    if url.starts_with('-') {
        return Err(RepoUrlError::Option {
            url: without_userinfo(url),
        });
    }
    if url.chars().any(char::is_control)
        || url.contains("%0a")
        || url.contains("%0A")
        || url.contains("%0d")
        || url.contains("%0D")
    {
        return Err(RepoUrlError::ControlCharacters);
    }
    let allowed = ["https://", "http://", "ssh://", "git://", "file://"];
    if allowed.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(());
    }
    // scp-like `user@host:path`, as git accepts for ssh.
    if let Some((host, _)) = url.split_once(':')
        && host.contains('@')
        && !host.contains('/')
    {
        return Ok(());
    }
    Err(RepoUrlError::Scheme {
        url: without_userinfo(url),
    })
}

/// Returned by [`check_revision`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum RevisionError {
    #[error("must not be empty")]
    Empty,
    #[error("{revision:?} must not start with '-'")]
    Option { revision: String },
    #[error("{revision:?} is not a branch, tag or commit name")]
    NotARevision { revision: String },
}

/// A revision also reaches `git` as an argument.
fn check_revision(revision: &str) -> Result<(), RevisionError> {
    if revision.is_empty() {
        return Err(RevisionError::Empty);
    }
    if revision.starts_with('-') {
        return Err(RevisionError::Option {
            revision: revision.to_owned(),
        });
    }
    let valid = revision
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/-+@".contains(&b));
    if !valid || revision.contains("..") || revision.contains("@{") {
        return Err(RevisionError::NotARevision {
            revision: revision.to_owned(),
        });
    }
    Ok(())
}

/// Returned by [`normalise_path`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    #[error("must be UTF-8")]
    NotUtf8,
    #[error("{path:?} must not contain '..'")]
    ParentDir { path: String },
    #[error("{path:?} must be relative to the repository root")]
    Absolute { path: String },
    #[error("{path:?} must not start with ':' (git reads a leading ':' as pathspec magic)")]
    PathspecMagic { path: String },
}

/// Normalises an application path: relative, no `..`, no `.` components; "" for the root. It
/// reaches `git ls-tree` as a pathspec, where a leading `:` is magic (`:/` means everything).
pub(crate) fn normalise_path(path: &str) -> Result<String, PathError> {
    let mut parts = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or(PathError::NotUtf8)?.to_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(PathError::ParentDir {
                    path: path.to_owned(),
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(PathError::Absolute {
                    path: path.to_owned(),
                });
            }
        }
    }
    if parts.first().is_some_and(|first| first.starts_with(':')) {
        return Err(PathError::PathspecMagic {
            path: path.to_owned(),
        });
    }
    Ok(parts.join("/"))
}

fn duration(checker: &mut Checker<'_>, text: &Text, field: &str) -> Option<Duration> {
    match humantime::parse_duration(text.value.trim()) {
        Ok(value) if value.is_zero() => {
            checker.report_at(text, field, "must be longer than zero");
            None
        }
        Ok(value) if value > MAX_INTERVAL => {
            checker.report_at(
                text,
                field,
                format!("{:?} is longer than the maximum of 7 days", text.value),
            );
            None
        }
        Ok(value) => Some(value),
        Err(err) => {
            checker.report_at(
                text,
                field,
                format!("{:?} is not a duration such as 30s, 3m or 1h: {err}", text.value),
            );
            None
        }
    }
}

/// `base` is the directory of `driftless.yaml`; `None` for an Application read from a repository.
fn application(
    checker: &mut Checker<'_>,
    raw: &RawApplication,
    prefix: &str,
    clusters: &[String],
    base: Option<&Path>,
) -> Option<Application> {
    let before = checker.problems.len();
    check_header(checker, &raw.api_version, &raw.kind, APPLICATION_KIND, prefix);
    let name = &raw.metadata.name;
    if !is_dns_label(&name.value) {
        checker.report_at(
            name,
            join(prefix, "metadata.name"),
            format!(
                "{:?} is not a valid name (lowercase letters, digits and '-', at most 63)",
                name.value
            ),
        );
    }
    let spec = join(prefix, "spec");
    let source = source(checker, &raw.spec.source, &join(&spec, "source"));
    default_release_name(checker, name, source.as_ref(), &spec);
    let destination = &raw.spec.destination;
    if !clusters.contains(&destination.cluster.value) {
        checker.report_at(
            &destination.cluster,
            join(&spec, "destination.cluster"),
            format!(
                "unknown cluster {:?} (configured: {})",
                destination.cluster.value,
                if clusters.is_empty() {
                    "none".to_owned()
                } else {
                    clusters.join(", ")
                }
            ),
        );
    }
    if let Some(namespace) = &destination.namespace
        && !is_dns_label(&namespace.value)
    {
        checker.report_at(
            namespace,
            join(&spec, "destination.namespace"),
            format!("{:?} is not a valid namespace name", namespace.value),
        );
    }
    let sync_policy = sync_policy(checker, &raw.spec.sync_policy, &join(&spec, "syncPolicy"));
    let ignore_differences = ignore_differences(checker, &raw.spec.ignore_differences, &spec);
    let decryption = raw.spec.decryption.as_ref().map(|raw_decryption| {
        decryption(
            checker,
            raw_decryption,
            &join(&spec, "decryption"),
            base,
            destination.namespace.as_ref().map(|n| n.value.as_str()),
        )
    });
    let verify = raw
        .spec
        .source
        .verify
        .as_ref()
        .and_then(|raw_verify| verification(checker, raw_verify, &join(&spec, "source.verify"), base));
    let post_build = raw.spec.source.post_build.as_ref().and_then(|raw_post_build| {
        post_build(
            checker,
            raw_post_build,
            &join(&spec, "source.postBuild"),
            source.as_ref(),
            destination.namespace.is_some(),
        )
    });
    let project = raw.spec.project.as_ref().map(|project| {
        if !is_dns_label(&project.value) {
            checker.report_at(
                project,
                join(&spec, "project"),
                format!("{:?} is not a valid project name", project.value),
            );
        }
        project.value.clone()
    });
    if checker.problems.len() > before {
        return None;
    }
    Some(Application {
        name: name.value.clone(),
        labels: raw.metadata.labels.clone(),
        source: source?,
        destination: Destination {
            cluster: destination.cluster.value.clone(),
            namespace: destination.namespace.as_ref().map(|n| n.value.clone()),
        },
        sync_policy: sync_policy?,
        ignore_differences,
        decryption,
        verify,
        project,
        post_build,
    })
}

/// Flux's `postBuild`, for the sources Flux's Kustomization renders (Kustomize, directories).
/// Names are checked here; the ConfigMaps and Secrets are read when the application renders.
fn post_build(
    checker: &mut Checker<'_>,
    raw: &RawPostBuild,
    field: &str,
    source: Option<&Source>,
    has_namespace: bool,
) -> Option<PostBuild> {
    let before = checker.problems.len();
    let at = raw
        .substitute_strategy
        .as_ref()
        .or(raw.substitute.values().next());
    if let Some(Source {
        renderer: Renderer::Helm(_),
        ..
    }) = source
    {
        let message = "postBuild applies to Kustomize and directory sources, not to Helm charts";
        match at {
            Some(text) => checker.report_at(text, field, message),
            None => checker.report(None, field, message),
        }
    }
    for (name, value) in &raw.substitute {
        if !is_variable_name(name) {
            checker.report_at(
                value,
                format!("{field}.substitute"),
                format!(
                    "{name:?} is not a valid variable name (must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$)"
                ),
            );
        }
    }
    let always = match raw.substitute_strategy.as_ref().map(|s| s.value.as_str()) {
        None | Some("WithVariables") => false,
        Some("Always") => true,
        Some(other) => {
            if let Some(text) = &raw.substitute_strategy {
                checker.report_at(
                    text,
                    format!("{field}.substituteStrategy"),
                    format!("{other:?} is not a strategy (WithVariables or Always)"),
                );
            }
            false
        }
    };
    let mut substitute_from = Vec::new();
    for (index, reference) in raw.substitute_from.iter().enumerate() {
        let entry = format!("{field}.substituteFrom[{index}]");
        let kind = match reference.kind.value.as_str() {
            "ConfigMap" => SubstituteKind::ConfigMap,
            "Secret" => SubstituteKind::Secret,
            other => {
                checker.report_at(
                    &reference.kind,
                    format!("{entry}.kind"),
                    format!("{other:?} is not ConfigMap or Secret"),
                );
                continue;
            }
        };
        if !is_dns_subdomain(&reference.name.value) {
            checker.report_at(
                &reference.name,
                format!("{entry}.name"),
                format!("{:?} is not a valid object name", reference.name.value),
            );
        }
        if !has_namespace {
            checker.report_at(
                &reference.name,
                entry.clone(),
                "substituteFrom reads from the destination namespace: set spec.destination.namespace",
            );
        }
        substitute_from.push(SubstituteReference {
            kind,
            name: reference.name.value.clone(),
            optional: reference.optional,
        });
    }
    (checker.problems.len() == before).then(|| PostBuild {
        substitute: raw
            .substitute
            .iter()
            .map(|(name, value)| (name.clone(), value.value.clone()))
            .collect(),
        substitute_from,
        always,
    })
}

fn ignore_differences(
    checker: &mut Checker<'_>,
    rules: &[RawIgnoreDifference],
    spec: &str,
) -> Vec<IgnoreDifference> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let field = join(spec, &format!("ignoreDifferences[{index}]"));
            for pointer in &rule.json_pointers {
                if !pointer.value.starts_with('/') {
                    checker.report_at(
                        pointer,
                        format!("{field}.jsonPointers"),
                        format!(
                            "{:?} is not a JSON pointer (it must start with '/')",
                            pointer.value
                        ),
                    );
                }
            }
            if rule.json_pointers.is_empty() && rule.managed_fields_managers.is_empty() {
                checker.report_at(&rule.kind, field, "set jsonPointers or managedFieldsManagers");
            }
            IgnoreDifference {
                group: rule.group.clone(),
                kind: rule.kind.value.clone(),
                name: rule.name.clone(),
                namespace: rule.namespace.clone(),
                json_pointers: rule.json_pointers.iter().map(|p| p.value.clone()).collect(),
                managed_fields_managers: rule.managed_fields_managers.clone(),
            }
        })
        .collect()
}

/// Which keys vouch for an application's commits. Only `driftless.yaml` may say: an Application
/// from a repository is written by whoever can push there, who must neither choose the keys
/// that vouch for their own commits nor read driftless's files or environment.
fn verification(
    checker: &mut Checker<'_>,
    raw: &RawVerify,
    field: &str,
    base: Option<&Path>,
) -> Option<Verification> {
    let before = checker.problems.len();
    let mode = match raw.mode.as_ref() {
        None => VerifyMode::Head,
        Some(text) => match text.value.as_str() {
            "head" => VerifyMode::Head,
            "all-since-last-synced" => VerifyMode::AllSinceLastSynced,
            other => {
                checker.report_at(
                    text,
                    join(field, "mode"),
                    format!("{other:?} is not a mode (head or all-since-last-synced)"),
                );
                VerifyMode::Head
            }
        },
    };
    if raw.ssh.is_none() && raw.pgp.is_none() {
        checker.report(
            raw.mode.as_ref().and_then(line_of),
            field,
            "name the trusted keys: ssh (an allowed_signers file), pgp (armored public keys) or both",
        );
    }
    let [ssh, pgp] = [(&raw.ssh, "ssh"), (&raw.pgp, "pgp")].map(|(raw_keys, name)| {
        let raw_keys = raw_keys.as_ref()?;
        let field = join(field, name);
        let Some(base) = base else {
            let (text, which) = match raw_keys {
                RawSecretRef::File(text) => (text, "file"),
                RawSecretRef::Env(text) => (text, "env"),
            };
            checker.report_at(
                text,
                format!("{field}.{which}"),
                "an Application from a repository cannot name trusted keys; set verify on its \
                 repository in driftless.yaml",
            );
            return None;
        };
        Some(secret_source(checker, raw_keys, &field, base))
    });
    (checker.problems.len() == before).then_some(Verification { mode, ssh, pgp })
}

/// Keys an application decrypts with. An Application from a repository is written by whoever
/// can push there: it may not read driftless's own files or environment, only a Secret in the
/// namespace it deploys to (which its authors own anyway).
fn decryption(
    checker: &mut Checker<'_>,
    raw: &RawDecryption,
    field: &str,
    base: Option<&Path>,
    destination_namespace: Option<&str>,
) -> Decryption {
    if raw.keys.is_empty() {
        checker.report(
            None,
            format!("{field}.keys"),
            "name at least one key (file, env or secret)",
        );
    }
    let mut keys = Vec::new();
    for (index, key) in raw.keys.iter().enumerate() {
        let field = format!("{field}.keys[{index}]");
        let from_repository =
            "an Application from a repository may only use a Secret in its destination namespace";
        match key {
            RawKeySource::File(path) => match base {
                Some(base) => keys.push(KeySource::File(resolve_path(base, &path.value))),
                None => checker.report_at(path, format!("{field}.file"), from_repository),
            },
            RawKeySource::Env(name) => {
                if base.is_none() {
                    checker.report_at(name, format!("{field}.env"), from_repository);
                } else if let SecretSource::Env(name) = secret_source(
                    checker,
                    &RawSecretRef::Env(name.clone()),
                    &format!("{field}.env"),
                    Path::new(""),
                ) {
                    keys.push(KeySource::Env(name));
                }
            }
            RawKeySource::Secret(secret) => {
                let namespace = secret
                    .namespace
                    .as_ref()
                    .map(|n| n.value.as_str())
                    .or(destination_namespace);
                let Some(namespace) = namespace else {
                    checker.report_at(
                        &secret.name,
                        format!("{field}.secret.namespace"),
                        "give the Secret's namespace (the application has no destination namespace)",
                    );
                    continue;
                };
                if base.is_none() && Some(namespace) != destination_namespace {
                    checker.report_at(&secret.name, format!("{field}.secret.namespace"), from_repository);
                    continue;
                }
                for (what, text) in [("name", secret.name.value.as_str()), ("namespace", namespace)] {
                    if !is_dns_subdomain(text) {
                        checker.report_at(
                            &secret.name,
                            format!("{field}.secret.{what}"),
                            format!("{text:?} is not a valid {what}"),
                        );
                    }
                }
                keys.push(KeySource::Secret {
                    namespace: namespace.to_owned(),
                    name: secret.name.value.clone(),
                    key: secret.key.as_ref().map(|k| k.value.clone()),
                });
            }
        }
    }
    Decryption { keys }
}

fn source(checker: &mut Checker<'_>, raw: &RawSource, field: &str) -> Option<Source> {
    let before = checker.problems.len();
    if let Err(err) = check_repo_url(&raw.repo_url.value) {
        checker.report_at(&raw.repo_url, join(field, "repoURL"), err);
    }
    let revision = raw
        .revision
        .as_ref()
        .map_or("HEAD", |r| r.value.as_str())
        .to_owned();
    if let Some(text) = &raw.revision
        && let Err(err) = check_revision(&text.value)
    {
        checker.report_at(text, join(field, "revision"), err);
    }
    let path = match &raw.path {
        None => String::new(),
        Some(text) => normalise_path(&text.value).unwrap_or_else(|err| {
            checker.report_at(text, join(field, "path"), err);
            String::new()
        }),
    };
    let renderer = match (&raw.directory, &raw.kustomize, &raw.helm) {
        (Some(directory), None, None) => Renderer::Directory(DirectoryOptions {
            recurse: directory.recurse,
            include: directory.include.as_ref().map(|glob| glob.value.clone()),
            exclude: directory.exclude.as_ref().map(|glob| glob.value.clone()),
            jsonnet: directory
                .jsonnet
                .as_ref()
                .map_or_else(JsonnetOptions::default, |jsonnet| {
                    jsonnet_options(checker, jsonnet, &join(field, "directory.jsonnet"))
                }),
        }),
        (None, Some(_), None) => Renderer::Kustomize,
        (None, None, Some(helm)) => Renderer::Helm(helm_options(checker, helm, &join(field, "helm"))),
        (None, None, None) => Renderer::Detect,
        _ => {
            checker.report_at(
                &raw.repo_url,
                field,
                "set one of directory, kustomize and helm, not several",
            );
            Renderer::Detect
        }
    };
    (checker.problems.len() == before).then(|| Source {
        repo_url: raw.repo_url.value.clone(),
        revision,
        path,
        renderer,
    })
}

/// Argo CD's `directory.jsonnet`: library paths inside the repository, variable names a program
/// can name (a top-level argument is a parameter, so an identifier), none given twice.
fn jsonnet_options(checker: &mut Checker<'_>, raw: &RawJsonnet, field: &str) -> JsonnetOptions {
    let mut variables = |list: &[RawJsonnetVariable], which: &str| -> Vec<JsonnetVariable> {
        let field = join(field, which);
        let mut seen = BTreeSet::new();
        for variable in list {
            let name = variable.name.value.as_str();
            if which == "tlas" && !is_variable_name(name) {
                checker.report_at(
                    &variable.name,
                    join(&field, "name"),
                    format!(
                        "{name:?} is not a Jsonnet identifier (letters, digits and _, not first a digit)"
                    ),
                );
            } else if name.is_empty() || name.chars().any(char::is_control) {
                checker.report_at(
                    &variable.name,
                    join(&field, "name"),
                    "must be a non-empty name without control characters",
                );
            } else if !seen.insert(name) {
                checker.report_at(
                    &variable.name,
                    join(&field, "name"),
                    format!("{name:?} is given twice"),
                );
            }
        }
        list.iter()
            .map(|variable| JsonnetVariable {
                name: variable.name.value.clone(),
                value: variable.value.value.clone(),
                code: variable.code,
            })
            .collect()
    };
    let ext_vars = variables(&raw.ext_vars, "extVars");
    let tlas = variables(&raw.tlas, "tlas");
    let libs = raw
        .libs
        .iter()
        .filter_map(|lib| match normalise_path(&lib.value) {
            Ok(path) => Some(path),
            Err(err) => {
                checker.report_at(lib, join(field, "libs"), err);
                None
            }
        })
        .collect();
    JsonnetOptions { ext_vars, tlas, libs }
}

/// `source.helm`. Value files are checked against the repository when the chart renders (they
/// are relative to the chart, which may be a symlink); here only their form.
fn helm_options(checker: &mut Checker<'_>, raw: &RawHelm, field: &str) -> HelmOptions {
    for file in &raw.value_files {
        let value = file.value.as_str();
        if value.contains("://") {
            checker.report_at(
                file,
                join(field, "valueFiles"),
                format!("{value:?} is a URL: values files come from the repository only"),
            );
        } else if value.starts_with('/') || value.is_empty() {
            checker.report_at(
                file,
                join(field, "valueFiles"),
                format!("{value:?} must be a path relative to the chart's directory"),
            );
        }
    }
    let values = match &raw.values {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Object(map)) => Some(serde_json::Value::Object(map.clone()).to_string()),
        Some(serde_json::Value::String(text)) => match serde_saphyr::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Some(serde_json::Value::Object(map).to_string()),
            Ok(serde_json::Value::Null) => None,
            _ => {
                checker.report(
                    None,
                    join(field, "values"),
                    "must be a mapping of values (or YAML text holding one)",
                );
                None
            }
        },
        Some(_) => {
            checker.report(
                None,
                join(field, "values"),
                "must be a mapping of values (or YAML text holding one)",
            );
            None
        }
    };
    helm_arguments(checker, raw, field);
    if raw.include_crds == Some(false) && !raw.skip_crds {
        checker.report(
            None,
            join(field, "includeCRDs"),
            "use skipCrds: true to leave the chart's CRDs out",
        );
    }
    HelmOptions {
        chart: raw
            .chart
            .as_ref()
            .map(|chart| repository_chart(checker, chart, &join(field, "chart"))),
        release_name: raw.release_name.as_ref().map(|t| t.value.clone()),
        namespace: raw.namespace.as_ref().map(|t| t.value.clone()),
        value_files: raw.value_files.iter().map(|t| t.value.clone()).collect(),
        values,
        parameters: raw
            .parameters
            .iter()
            .map(|p| HelmParameter {
                name: p.name.value.clone(),
                value: p.value.value.clone(),
                force_string: p.force_string,
            })
            .collect(),
        kube_version: raw.kube_version.as_ref().map(|t| t.value.clone()),
        api_versions: raw.api_versions.iter().map(|t| t.value.clone()).collect(),
        skip_crds: raw.skip_crds,
    }
}

/// A chart's release is named after the application unless `releaseName` says otherwise; Helm
/// allows shorter names than Kubernetes does.
fn default_release_name(checker: &mut Checker<'_>, name: &Text, source: Option<&Source>, spec: &str) {
    if let Some(Source {
        renderer: Renderer::Helm(helm),
        ..
    }) = source
        && helm.release_name.is_none()
        && name.value.len() > driftless_core::arguments::MAX_RELEASE_NAME
    {
        checker.report_at(
            name,
            join(spec, "source.helm.releaseName"),
            format!(
                "not set, so the release is named after the application, and {:?} is longer than Helm's {} characters: set releaseName",
                name.value,
                driftless_core::arguments::MAX_RELEASE_NAME
            ),
        );
    }
}

/// The `source.helm` fields that reach helm's command line, each against its grammar
/// (`crate::arguments`; the renderer checks them again before it runs helm).
fn helm_arguments(checker: &mut Checker<'_>, raw: &RawHelm, field: &str) {
    let mut check = |text: &Text, name: String, grammar: fn(&str) -> Result<(), ArgumentError>| {
        if let Err(err) = grammar(&text.value) {
            checker.report_at(text, join(field, &name), err);
        }
    };
    if let Some(name) = &raw.release_name {
        check(
            name,
            "releaseName".into(),
            driftless_core::arguments::release_name,
        );
    }
    if let Some(namespace) = &raw.namespace {
        check(
            namespace,
            "namespace".into(),
            driftless_core::arguments::namespace,
        );
    }
    if let Some(version) = &raw.kube_version {
        check(
            version,
            "kubeVersion".into(),
            driftless_core::arguments::kube_version,
        );
    }
    for (index, api) in raw.api_versions.iter().enumerate() {
        check(
            api,
            format!("apiVersions[{index}]"),
            driftless_core::arguments::api_version,
        );
    }
    for (index, parameter) in raw.parameters.iter().enumerate() {
        check(
            &parameter.name,
            format!("parameters[{index}].name"),
            driftless_core::arguments::parameter_name,
        );
        check(
            &parameter.value,
            format!("parameters[{index}].value"),
            driftless_core::arguments::parameter_value,
        );
    }
}

/// `source.helm.chart`: a chart repository URL (no credentials in it: those belong in
/// `repositories[]`), a bare chart name and a version or range (checked when it resolves).
fn repository_chart(checker: &mut Checker<'_>, raw: &RawHelmChart, field: &str) -> RepositoryChart {
    let repository = raw.repository.value.trim_end_matches('/');
    let scheme_ok = ["https://", "http://", "oci://"].iter().any(|scheme| {
        repository
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    });
    if !scheme_ok {
        checker.report_at(
            &raw.repository,
            join(field, "repository"),
            format!("{repository:?} must be an https://, http:// or oci:// URL"),
        );
    } else if repository
        .split("://")
        .nth(1)
        .is_some_and(|rest| rest.split('/').next().unwrap_or_default().contains('@'))
    {
        checker.report_at(
            &raw.repository,
            join(field, "repository"),
            "credentials in the URL are not allowed; configure them under repositories[]",
        );
    }
    let name = raw.name.value.as_str();
    if name.is_empty() || name.contains(['/', '\\', ':', '@']) || name.starts_with('.') {
        checker.report_at(
            &raw.name,
            join(field, "name"),
            format!("{name:?} is not a chart name"),
        );
    }
    if raw.plain_http && !repository.starts_with("oci://") {
        checker.report_at(
            &raw.repository,
            join(field, "plainHttp"),
            "applies to oci:// repositories only",
        );
    }
    RepositoryChart {
        repository: repository.to_owned(),
        name: name.to_owned(),
        version: raw
            .version
            .as_ref()
            .map(|t| t.value.trim().to_owned())
            .unwrap_or_default(),
        plain_http: raw.plain_http,
    }
}

fn sync_policy(checker: &mut Checker<'_>, raw: &RawSyncPolicy, field: &str) -> Option<SyncPolicy> {
    let before = checker.problems.len();
    let interval = raw
        .interval
        .as_ref()
        .and_then(|text| duration(checker, text, &join(field, "interval")))
        .unwrap_or(DEFAULT_INTERVAL);
    let mut retry = Retry::default();
    if let Some(raw_retry) = &raw.retry {
        if let Some(limit) = raw_retry.limit {
            retry.limit = limit;
        }
        if let Some(backoff) = &raw_retry.backoff {
            let backoff_field = join(field, "retry.backoff");
            if let Some(value) = backoff
                .duration
                .as_ref()
                .and_then(|t| duration(checker, t, &join(&backoff_field, "duration")))
            {
                retry.backoff = value;
            }
            if let Some(value) = backoff
                .max_duration
                .as_ref()
                .and_then(|t| duration(checker, t, &join(&backoff_field, "maxDuration")))
            {
                retry.max_backoff = value;
            }
            if let Some(factor) = backoff.factor {
                retry.factor = factor.max(1);
            }
        }
    }
    let mut policy = SyncPolicy {
        automated: raw.automated.as_ref().map(|a| Automated {
            prune: a.prune,
            self_heal: a.self_heal,
        }),
        interval,
        retry,
        create_namespace: false,
        prune_last: false,
        replace: false,
        // Argo CD has it only under `automated`; a manual sync of nothing is as surprising, so
        // either place allows both.
        allow_empty: raw.allow_empty || raw.automated.as_ref().is_some_and(|a| a.allow_empty),
    };
    for option in &raw.sync_options {
        let Some((key, value)) = option.value.split_once('=') else {
            checker.report_at(
                option,
                join(field, "syncOptions"),
                format!("{:?} must be Key=true or Key=false", option.value),
            );
            continue;
        };
        let enabled = match value {
            "true" => true,
            "false" => false,
            _ => {
                checker.report_at(
                    option,
                    join(field, "syncOptions"),
                    format!("{:?}: the value must be true or false", option.value),
                );
                continue;
            }
        };
        match key {
            "CreateNamespace" => policy.create_namespace = enabled,
            "PruneLast" => policy.prune_last = enabled,
            "Replace" => policy.replace = enabled,
            "ServerSideApply" if enabled => {}
            "ServerSideApply" => checker.report_at(option, join(field, "syncOptions"), "server-side apply is always on and cannot be turned off"),
            _ => checker.report_at(
                option,
                join(field, "syncOptions"),
                format!("unknown sync option {key:?} (known: CreateNamespace, PruneLast, Replace, ServerSideApply)"),
            ),
        }
    }
    (checker.problems.len() == before).then_some(policy)
}

#[cfg(test)]
mod tests {
    use super::token_may_go_to;

    #[test]
    fn a_token_goes_in_clear_only_to_this_machine() {
        for url in [
            "https://api.github.com",
            "http://127.0.0.1",
            "http://127.0.0.1:8080/api/v4",
            "http://[::1]",
            "http://[::1]:8080/api/v4",
            "http://localhost:8080",
        ] {
            assert!(token_may_go_to(url), "{url}");
        }
        for url in [
            "http://gitlab.example/api/v4",
            "http://localhost.evil.example",
            // User `127.0.0.1`, password `80`, on evil.example.
            "http://127.0.0.1:80@evil.example/api",
            "http://[::1]@evil.example",
            "http://[::1]evil.example",
            "http://[::1",
            "http://::1/",
            "http://127.0.0.1:x/",
            "ftp://127.0.0.1",
            "api.github.com",
        ] {
            assert!(!token_may_go_to(url), "{url}");
        }
    }
}
