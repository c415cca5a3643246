//! What a proposed change (a pull request: Git at `base` → Git at `head`) does to an
//! application's rendered objects, and that as a pull-request comment. Pure: the engine renders
//! both sides; `driftless plan` prints or posts the result.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ObjectRef;
use crate::diff::{FieldChange, Redaction, labelled_unified_diff, redact, to_yaml};

/// One object's fate between base and head, redacted like every diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "change")]
pub enum ObjectChange {
    /// Only at head: it would be created. `manifest` is its redacted YAML.
    Added { object: ObjectRef, manifest: String },
    /// At both, different: a unified diff `base` → `head`, and the same field by field.
    Changed {
        object: ObjectRef,
        unified: String,
        changes: Vec<FieldChange>,
    },
    /// Only at base: a sync with prune would delete it.
    Removed { object: ObjectRef },
}

impl ObjectChange {
    #[must_use]
    pub fn object(&self) -> &ObjectRef {
        match self {
            Self::Added { object, .. } | Self::Changed { object, .. } | Self::Removed { object } => object,
        }
    }
}

/// The namespaces a sync would create before anything inside them: the Namespaces `desired`
/// declares (its own or `CreateNamespace=true`'s) that are not live. A diff or plan cannot
/// dry-run an object inside one — the API server refuses it, "namespaces \"web\" not found",
/// before looking at the object — so such an object is shown as to be created, as declared
/// (a plan still validates it against the cluster's schemas).
#[must_use]
pub fn namespaces_to_create<'a>(
    desired: impl IntoIterator<Item = &'a ObjectRef>,
    is_live: impl Fn(&ObjectRef) -> bool,
) -> BTreeSet<String> {
    desired
        .into_iter()
        .filter(|object| object.group.is_empty() && object.kind == "Namespace" && !is_live(object))
        .map(|namespace| namespace.name.clone())
        .collect()
}

/// Whether `object` lives in one of the namespaces a sync would create (see
/// [`namespaces_to_create`]), so that no dry-run of it can succeed yet.
#[must_use]
pub fn in_namespace_to_create(object: &ObjectRef, to_create: &BTreeSet<String>) -> bool {
    object
        .namespace
        .as_ref()
        .is_some_and(|namespace| to_create.contains(namespace))
}

/// How much a problem counts: an error fails the plan (and a denying policy stops a sync).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// What is wrong with one object at head: it breaks the schema of its kind, or a policy rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub severity: Severity,
    /// `schema`, or `policy/<rule>`.
    pub check: String,
    pub object: ObjectRef,
    /// The file (and document) the object was rendered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The field, for a schema violation: `spec.template.spec.containers[0].image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

impl Problem {
    /// Where it is: `file: path`, either alone, or nothing.
    #[must_use]
    pub fn place(&self) -> String {
        [self.file.as_deref(), self.path.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ")
    }
}

/// Head against the application's live cluster: a server-side dry-run of every object, so
/// defaults, admission and drift already in the cluster show — or why that was not possible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum LiveComparison {
    /// What a sync of head would change in `cluster`: creations, changes (a unified diff
    /// live → head) and prunes.
    Compared {
        cluster: String,
        changes: Vec<ObjectChange>,
    },
    /// The cluster could not be reached (or was not asked: `--offline`); the plan is render-only.
    NotCompared { cluster: String, reason: String },
}

/// One application's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPlan {
    pub application: String,
    pub changes: Vec<ObjectChange>,
    /// Why head (or base) could not be rendered; the plan of this application is then unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Schema violations and policy findings of the objects at head (and of deletions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveComparison>,
}

impl ApplicationPlan {
    /// A plan with nothing in it yet.
    #[must_use]
    pub fn new(application: &str) -> Self {
        Self {
            application: application.to_owned(),
            changes: Vec::new(),
            error: None,
            problems: Vec::new(),
            live: None,
        }
    }

    /// `(added, changed, removed)` between base and head.
    #[must_use]
    pub fn counts(&self) -> (usize, usize, usize) {
        counts(&self.changes)
    }

    /// The changes a sync of head would make to the live cluster, when it was compared.
    #[must_use]
    pub fn live_changes(&self) -> Option<&[ObjectChange]> {
        match &self.live {
            Some(LiveComparison::Compared { changes, .. }) => Some(changes),
            _ => None,
        }
    }

    /// A render error or an error-severity problem (a denying policy, a schema violation):
    /// the plan fails.
    #[must_use]
    pub fn fails(&self) -> bool {
        self.error.is_some()
            || self
                .problems
                .iter()
                .any(|problem| problem.severity == Severity::Error)
    }

    /// Whether merging would change anything: between base and head, or in the live cluster.
    #[must_use]
    pub fn changes_anything(&self) -> bool {
        !self.changes.is_empty() || self.live_changes().is_some_and(|changes| !changes.is_empty())
    }

    /// Whether the plan has anything to tell.
    #[must_use]
    pub fn is_worth_telling(&self) -> bool {
        self.error.is_some() || !self.problems.is_empty() || self.changes_anything()
    }
}

/// `(added, changed, removed)`.
#[must_use]
pub fn counts(changes: &[ObjectChange]) -> (usize, usize, usize) {
    changes.iter().fold((0, 0, 0), |(a, c, r), change| match change {
        ObjectChange::Added { .. } => (a + 1, c, r),
        ObjectChange::Changed { .. } => (a, c + 1, r),
        ObjectChange::Removed { .. } => (a, c, r + 1),
    })
}

/// The changes from the objects rendered at base to those at head, in object order.
#[must_use]
pub fn compare_renders(
    base: &BTreeMap<ObjectRef, Value>,
    head: &BTreeMap<ObjectRef, Value>,
    redaction: &Redaction<'_>,
) -> Vec<ObjectChange> {
    let mut changes = Vec::new();
    for (object, at_head) in head {
        let head_redacted = redact(object, at_head, redaction);
        match base.get(object) {
            None => changes.push(ObjectChange::Added {
                object: object.clone(),
                manifest: to_yaml(&head_redacted),
            }),
            Some(at_base) if at_base != at_head => {
                let base_redacted = redact(object, at_base, redaction);
                let unified = labelled_unified_diff(
                    &to_yaml(&base_redacted),
                    &to_yaml(&head_redacted),
                    &format!("base/{object}"),
                    &format!("head/{object}"),
                );
                // Two objects that differ only in a redacted value still differ (their hashes do).
                changes.push(ObjectChange::Changed {
                    object: object.clone(),
                    unified,
                    changes: crate::diff::field_changes_between(&base_redacted, &head_redacted),
                });
            }
            Some(_) => {}
        }
    }
    changes.extend(
        base.keys()
            .filter(|object| !head.contains_key(*object))
            .map(|object| ObjectChange::Removed {
                object: object.clone(),
            }),
    );
    changes.sort_by(|a, b| a.object().cmp(b.object()));
    changes
}

/// What replaces the content of a change in an application whose render decrypted SOPS files:
/// any object may carry a decrypted value (a chart value copied into a ConfigMap), and a plan
/// is posted where many can read it, so only which objects change is told.
pub const WITHHELD: &str = "(content withheld: this application's render decrypts SOPS files)\n";

/// `changes` with every manifest and diff replaced by [`WITHHELD`].
#[must_use]
pub fn withhold(changes: Vec<ObjectChange>) -> Vec<ObjectChange> {
    changes
        .into_iter()
        .map(|change| match change {
            ObjectChange::Added { object, .. } => ObjectChange::Added {
                object,
                manifest: WITHHELD.to_owned(),
            },
            ObjectChange::Changed { object, .. } => ObjectChange::Changed {
                object,
                unified: WITHHELD.to_owned(),
                changes: Vec::new(),
            },
            removed @ ObjectChange::Removed { .. } => removed,
        })
        .collect()
}

/// Text from a repository made inert in the comment: no HTML tags or entities, no code-span
/// breaks (an object or error could otherwise close `<details>` and forge a plan).
fn inert(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// The hidden line that marks driftless's comment on a pull request, so a new run edits it.
pub const COMMENT_MARKER: &str = "<!-- driftless-plan -->";

fn summary_line(plan: &ApplicationPlan) -> String {
    let name = inert(&plan.application);
    let mut line = if let Some(error) = &plan.error {
        format!(
            "<b>{name}</b>: cannot be planned: {}",
            inert(error.lines().next().unwrap_or_default())
        )
    } else {
        let (added, changed, removed) = plan.counts();
        format!("<b>{name}</b>: {added} to add, {changed} to change, {removed} to remove")
    };
    let errors = plan
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = plan.problems.len() - errors;
    if errors + warnings > 0 {
        let _ = write!(line, "; {errors} error(s), {warnings} warning(s)");
    }
    match &plan.live {
        Some(LiveComparison::Compared { changes, .. }) => {
            let (added, changed, removed) = counts(changes);
            let _ = write!(
                line,
                "; live: {added} to create, {changed} to change, {removed} to prune"
            );
        }
        Some(LiveComparison::NotCompared { .. }) => line.push_str("; not compared with the cluster"),
        None => {}
    }
    line
}

/// Text from a repository inside a code fence: it cannot close the fence.
fn fenced(text: &str) -> String {
    text.replace("```", "'''")
}

fn write_changes(body: &mut String, changes: &[ObjectChange]) {
    for change in changes {
        let name = inert(&change.object().to_string());
        let _ = match change {
            ObjectChange::Added { manifest, .. } => {
                write!(body, "`+ {name}` (new)\n```yaml\n{}```\n", fenced(manifest))
            }
            ObjectChange::Changed { unified, .. } => {
                write!(body, "`~ {name}`\n```diff\n{}```\n", fenced(unified))
            }
            ObjectChange::Removed { .. } => writeln!(body, "`- {name}` (would be pruned)"),
        };
    }
}

fn write_problems(body: &mut String, problems: &[Problem]) {
    if problems.is_empty() {
        return;
    }
    let cell = |text: &str| inert(text).replace('|', "\\|").replace('\n', " ");
    body.push_str("| | check | object | where | problem |\n|---|---|---|---|---|\n");
    for problem in problems {
        let mark = match problem.severity {
            Severity::Error => "\u{274c}",
            Severity::Warning => "\u{26a0}\u{fe0f}",
        };
        let place = problem.place();
        let _ = writeln!(
            body,
            "| {mark} | {} | {} | {} | {} |",
            cell(&problem.check),
            cell(&problem.object.to_string()),
            cell(&place),
            cell(&problem.message)
        );
    }
    body.push('\n');
}

fn details(plan: &ApplicationPlan) -> String {
    let mut body = String::new();
    if let Some(error) = &plan.error {
        let _ = write!(body, "```\n{}\n```\n", fenced(error));
    }
    write_problems(&mut body, &plan.problems);
    write_changes(&mut body, &plan.changes);
    match &plan.live {
        Some(LiveComparison::Compared { cluster, changes }) => {
            let _ = writeln!(
                body,
                "\n**Against the live cluster `{}`** (server-side dry-run):\n",
                inert(cluster)
            );
            if changes.is_empty() {
                body.push_str("In sync: a sync of head changes nothing.\n");
            }
            write_changes(&mut body, changes);
        }
        Some(LiveComparison::NotCompared { cluster, reason }) => {
            let _ = writeln!(
                body,
                "\n_Not compared with the live cluster `{}`: {}. Render-only plan._",
                inert(cluster),
                inert(reason.lines().next().unwrap_or_default())
            );
        }
        None => {}
    }
    body
}

/// A pull-request comment (HTML tags, not `**`, in summaries: GitHub renders no Markdown inside
/// `<summary>`): a summary line per application, each application's changes in a
/// collapsed section. Beyond `limit` bytes (GitHub takes 65,536) the details of the largest
/// applications are left out, and the comment says so; the summary is always complete.
#[must_use]
pub fn markdown(plans: &[ApplicationPlan], limit: usize) -> String {
    let mut out = format!("{COMMENT_MARKER}\n### driftless plan\n\n");
    let changed: Vec<&ApplicationPlan> = plans.iter().filter(|plan| plan.is_worth_telling()).collect();
    if changed.is_empty() {
        out.push_str("No changes: this pull request changes no application's objects.\n");
        return out;
    }
    let sections: Vec<(String, String)> = changed
        .iter()
        .map(|plan| (summary_line(plan), details(plan)))
        .collect();
    let wrap = |summary: &str, details: &str| {
        format!("<details><summary>{summary}</summary>\n\n{details}\n</details>\n\n")
    };
    let note = "_Some details were left out to fit the comment; run `driftless plan` for all of them._\n";
    let fixed: usize =
        out.len() + note.len() + sections.iter().map(|(s, _)| wrap(s, "").len()).sum::<usize>();
    // Keep details smallest first while they fit.
    let mut order: Vec<usize> = (0..sections.len()).collect();
    order.sort_by_key(|&i| sections[i].1.len());
    let mut budget = limit.saturating_sub(fixed);
    let mut kept = vec![false; sections.len()];
    for i in order {
        if sections[i].1.len() <= budget {
            budget -= sections[i].1.len();
            kept[i] = true;
        }
    }
    for (i, (summary, detail)) in sections.iter().enumerate() {
        if kept[i] {
            out.push_str(&wrap(summary, detail));
        } else {
            let _ = writeln!(out, "{summary} (details left out)\n");
        }
    }
    if kept.iter().any(|kept| !kept) {
        out.push_str(note);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_in_a_namespace_the_sync_creates_are_not_dry_run() {
        let reference = |kind: &str, namespace: Option<&str>, name: &str| ObjectRef {
            group: String::new(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        };
        let desired = [
            reference("Namespace", None, "new"),
            reference("Namespace", None, "there"),
            reference("ConfigMap", Some("new"), "settings"),
            reference("ConfigMap", Some("there"), "settings"),
            reference("ConfigMap", Some("elsewhere"), "settings"),
        ];
        let live = |object: &ObjectRef| object.name == "there";
        let to_create = namespaces_to_create(&desired, live);
        assert_eq!(to_create, BTreeSet::from(["new".to_owned()]));
        let waiting: Vec<&ObjectRef> = desired
            .iter()
            .filter(|object| in_namespace_to_create(object, &to_create))
            .collect();
        assert_eq!(waiting, [&desired[2]]);
        // A custom kind named Namespace is not a namespace.
        let custom = ObjectRef {
            group: "example.com".to_owned(),
            ..reference("Namespace", None, "fake")
        };
        assert!(namespaces_to_create([&custom], |_| false).is_empty());
    }

    fn object(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: String::new(),
            kind: kind.into(),
            namespace: Some("web".into()),
            name: name.into(),
        }
    }

    fn config_map(name: &str, value: &str) -> (ObjectRef, Value) {
        (
            object("ConfigMap", name),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "web"}, "data": {"k": value}}),
        )
    }

    fn secret(value: &str) -> (ObjectRef, Value) {
        (
            object("Secret", "creds"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "web"}, "stringData": {"password": value}}),
        )
    }

    fn redaction() -> Redaction<'static> {
        Redaction::secrets(b"salt")
    }

    #[test]
    fn added_changed_and_removed_objects_are_told_apart_and_secrets_stay_hidden() {
        let base = BTreeMap::from([
            config_map("kept", "1"),
            config_map("changed", "1"),
            config_map("gone", "1"),
            secret("old-pass"),
        ]);
        let head = BTreeMap::from([
            config_map("kept", "1"),
            config_map("changed", "2"),
            config_map("new", "1"),
            secret("new-pass"),
        ]);
        let changes = compare_renders(&base, &head, &redaction());
        let kinds: Vec<String> = changes
            .iter()
            .map(|change| match change {
                ObjectChange::Added { object, .. } => format!("+{}", object.name),
                ObjectChange::Changed { object, .. } => format!("~{}", object.name),
                ObjectChange::Removed { object } => format!("-{}", object.name),
            })
            .collect();
        assert_eq!(kinds, ["~changed", "-gone", "+new", "~creds"]);
        let text = serde_json::to_string(&changes).expect("json");
        assert!(!text.contains("old-pass") && !text.contains("new-pass"), "{text}");
        let plan = ApplicationPlan {
            application: "web".into(),
            changes,
            error: None,
            ..ApplicationPlan::new("")
        };
        assert_eq!(plan.counts(), (1, 2, 1));
        insta::assert_snapshot!(markdown(&[plan], 65_536));
    }

    #[test]
    fn a_long_plan_keeps_every_summary_and_drops_the_largest_details() {
        let big: BTreeMap<ObjectRef, Value> =
            (0..200).map(|i| config_map(&format!("cm-{i:03}"), "x")).collect();
        let plans = [
            ApplicationPlan {
                application: "large".into(),
                changes: compare_renders(&BTreeMap::new(), &big, &redaction()),
                error: None,
                ..ApplicationPlan::new("")
            },
            ApplicationPlan {
                application: "small".into(),
                changes: compare_renders(
                    &BTreeMap::new(),
                    &BTreeMap::from([config_map("one", "1")]),
                    &redaction(),
                ),
                error: None,
                ..ApplicationPlan::new("")
            },
            ApplicationPlan {
                application: "broken".into(),
                changes: vec![],
                error: Some("render failed: apps/broken/a.yaml: line 3: bad indentation".into()),
                ..ApplicationPlan::new("")
            },
            ApplicationPlan {
                application: "untouched".into(),
                changes: vec![],
                error: None,
                ..ApplicationPlan::new("")
            },
        ];
        let comment = markdown(&plans, 4_000);
        assert!(comment.len() <= 4_000, "{} bytes", comment.len());
        assert!(comment.starts_with(COMMENT_MARKER));
        assert!(
            comment.contains("<b>large</b>: 200 to add, 0 to change, 0 to remove (details left out)"),
            "{comment}"
        );
        assert!(
            comment.contains("<details><summary><b>small</b>: 1 to add"),
            "{comment}"
        );
        assert!(
            comment.contains("<b>broken</b>: cannot be planned: render failed"),
            "{comment}"
        );
        assert!(
            !comment.contains("untouched"),
            "an application without changes is not listed"
        );
        assert!(comment.contains("Some details were left out"));
    }

    #[test]
    fn nothing_to_change_says_so() {
        let plan = ApplicationPlan {
            application: "web".into(),
            changes: vec![],
            error: None,
            ..ApplicationPlan::new("")
        };
        assert!(markdown(&[plan], 65_536).contains("No changes"));
    }
    #[test]
    fn repository_text_cannot_forge_the_comment_and_decrypted_content_is_withheld() {
        let hostile = ApplicationPlan {
            application: "web".into(),
            changes: vec![],
            error: Some("render failed: </summary></details>No changes<details><summary>".into()),
            ..ApplicationPlan::new("")
        };
        let comment = markdown(&[hostile], 65_536);
        // In the summary it is inert; below, it is inside a code fence, where GitHub parses no HTML.
        let summary = comment
            .lines()
            .find(|line| line.starts_with("<details><summary>"))
            .expect("a summary");
        assert_eq!(summary.matches("</summary>").count(), 1, "{summary}");
        assert!(
            !summary.contains("</details>") && summary.contains("&lt;/summary&gt;"),
            "{summary}"
        );
        let mut odd = object("ConfigMap", "a`b");
        odd.kind = "Kind`<i>".into();
        let plan = ApplicationPlan {
            application: "web".into(),
            changes: withhold(vec![
                ObjectChange::Added {
                    object: odd,
                    manifest: "password: hunter2\n".into(),
                },
                ObjectChange::Changed {
                    object: object("ConfigMap", "c"),
                    unified: "-a: plain-old\n+a: plain-new\n".into(),
                    changes: vec![],
                },
            ]),
            error: None,
            ..ApplicationPlan::new("")
        };
        let comment = markdown(&[plan], 65_536);
        assert!(
            !comment.contains("hunter2") && !comment.contains("plain-new"),
            "{comment}"
        );
        assert!(comment.contains(WITHHELD.trim()), "{comment}");
        assert!(comment.contains("`+ Kind'&lt;i&gt;/web/a'b` (new)"), "{comment}");
    }

    #[test]
    fn problems_and_the_live_comparison_are_in_the_comment() {
        let head = BTreeMap::from([config_map("a", "2")]);
        let base = BTreeMap::from([config_map("a", "1")]);
        let changes = compare_renders(&base, &head, &redaction());
        let problem = |severity, check: &str, path: Option<&str>, message: &str| Problem {
            severity,
            check: check.into(),
            object: object("ConfigMap", "a"),
            file: Some("apps/web/a.yaml (document 1)".into()),
            path: path.map(Into::into),
            message: message.into(),
        };
        let live = LiveComparison::Compared {
            cluster: "prod".into(),
            changes: vec![
                ObjectChange::Changed {
                    object: object("ConfigMap", "a"),
                    unified: "--- live/ConfigMap/web/a\n+++ head/ConfigMap/web/a\n-  k: drifted\n+  k: '2'\n"
                        .into(),
                    changes: vec![],
                },
                ObjectChange::Removed {
                    object: object("ConfigMap", "old"),
                },
            ],
        };
        let plan = ApplicationPlan {
            problems: vec![
                problem(
                    Severity::Error,
                    "schema",
                    Some("data.k|x"),
                    "expected string, got integer",
                ),
                problem(
                    Severity::Warning,
                    "policy/no-latest-tag",
                    None,
                    "images need a <pinned> tag",
                ),
            ],
            live: Some(live),
            changes,
            ..ApplicationPlan::new("web")
        };
        assert!(plan.fails() && plan.changes_anything());
        let offline = ApplicationPlan {
            live: Some(LiveComparison::NotCompared {
                cluster: "dev".into(),
                reason: "cannot reach https://127.0.0.1:1: connection refused".into(),
            }),
            changes: compare_renders(&BTreeMap::new(), &head, &redaction()),
            ..ApplicationPlan::new("shop")
        };
        assert!(!offline.fails());
        insta::assert_snapshot!(markdown(&[plan, offline], 65_536));
    }
}
