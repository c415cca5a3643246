//! `driftless plan`: what a proposed change (Git at `base` → `head`) does to each application.
//! Only applications the change can affect are planned: those whose render read a changed path
//! (or whose directory holds one). Both sides are rendered exactly as a sync would render them
//! (plain, Kustomize, Helm, SOPS decrypted in memory) and compared
//! ([`driftless_core::preview`]); the objects at head are validated against the schemas of the
//! target cluster's version and checked against the policy rules; and when the application's
//! cluster is reachable, head is compared with the live cluster by server-side dry-run.
//! Offline (or `--offline`) the plan is render-only, validated against the bundled schemas.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt as _;

use driftless_core::application::{Application, repository_key};
use driftless_core::diff::ObjectDiff;
use driftless_core::preview::{
    ApplicationPlan, LiveComparison, ObjectChange, Problem, Severity, compare_renders, withhold,
};
use driftless_core::schema::{Schemas, Validation};
use driftless_core::{DesiredObject, ObjectRef};
use driftless_git::CommitId;
use driftless_kube::{Discovery, ObjectError, Resolved};

use crate::admission::{Change, check};
use crate::clusters::ClusterHandle;
use crate::compare;
use crate::desired::{DesiredState, RenderContext, split_children};
use crate::error::Failure;
use crate::parts::Parts;

/// Past this many objects the dry-run refuses, a plan stops comparing with the cluster (the
/// rest would most likely be refused for the same reason).
const REFUSALS_TOLD: usize = 20;

/// Applications rendered at once by a plan.
const CONCURRENT_RENDERS: usize = 4;

/// How to plan.
#[derive(Default)]
pub struct PlanOptions<'a> {
    /// A URL or path to read instead of the applications' own repositories, and the URLs it is
    /// a copy of (a CI job's clone of the pull request and its `origin`): only applications
    /// whose source is one of those are planned.
    pub checkout: Option<(&'a str, &'a [String])>,
    /// Do not contact any cluster: a render-only plan.
    pub offline: bool,
    /// Schemas to validate against offline instead of the bundled ones (another version's
    /// OpenAPI document).
    pub schemas: Option<Schemas>,
}

/// One side of the change, rendered.
struct Side {
    objects: Vec<(DesiredObject, Resolved)>,
    decrypted: bool,
    inputs: Option<std::collections::BTreeSet<String>>,
    renderer: &'static str,
    /// The Applications it declares (app-of-apps), validated.
    children: Vec<Application>,
    /// Those of its children converted from Argo CD or Flux objects with something driftless
    /// has no equivalent for, by name: they would not sync, so they are not planned.
    held_back: Vec<(String, Vec<String>)>,
}

impl Side {
    /// The side of an application that does not exist there (a child added or removed).
    fn absent() -> Self {
        Self {
            objects: Vec::new(),
            decrypted: false,
            inputs: Some(std::collections::BTreeSet::new()),
            renderer: "none",
            children: Vec::new(),
            held_back: Vec::new(),
        }
    }

    fn by_reference(&self) -> BTreeMap<ObjectRef, serde_json::Value> {
        self.objects
            .iter()
            .map(|(object, _)| (object.reference.clone(), object.manifest.clone()))
            .collect()
    }
}

/// A cluster a plan compares with, and the schemas of its version.
#[derive(Clone)]
struct Target {
    cluster: ClusterHandle,
    schemas: Arc<Schemas>,
}

/// An application rendered at both sides, before it is checked.
struct Planned {
    app: Arc<Application>,
    head_commit: CommitId,
    base: Side,
    head: Side,
    /// `Err`: why the live cluster is not compared.
    target: Result<Target, NotCompared>,
}

/// An application as declared at base and at head (`None`: not there).
type Versions = (Option<Arc<Application>>, Option<Arc<Application>>);

/// The children `root` declares at either side, by name, each with its declaration at both —
/// those whose source is the root's own repository: the change can alter only what that holds.
fn child_versions(root: &Application, base: &[Application], head: &[Application]) -> Vec<Versions> {
    let repository = repository_key(&root.source.repo_url);
    let mut by_name: BTreeMap<&str, Versions> = BTreeMap::new();
    let same_repository = |child: &&Application| repository_key(&child.source.repo_url) == repository;
    for child in base.iter().filter(same_repository) {
        by_name.entry(&child.name).or_default().0 = Some(Arc::new(child.clone()));
    }
    for child in head.iter().filter(same_repository) {
        by_name.entry(&child.name).or_default().1 = Some(Arc::new(child.clone()));
    }
    by_name.into_values().collect()
}

/// Where a plan reads `app` from: the checkout when the application's source is one of the
/// URLs it is a copy of (else `None`: not planned), or its own repository.
fn source_to_read<'a>(app: &'a Application, checkout: Option<(&'a str, &[String])>) -> Option<&'a str> {
    let Some((read, copies)) = checkout else {
        return Some(app.source.repo_url.as_str());
    };
    let key = repository_key(&app.source.repo_url);
    copies
        .iter()
        .any(|copy| repository_key(copy) == key)
        .then_some(read)
}

/// Whether any application's source is the checkout.
#[must_use]
pub(crate) fn serves_checkout(parts: &Parts, checkout: Option<(&str, &[String])>) -> bool {
    parts.catalog.names().iter().any(|name| {
        parts
            .catalog
            .application(name)
            .is_ok_and(|app| source_to_read(&app, checkout).is_some())
    })
}

/// The plan of every application `base` → `head` can affect. An application that cannot
/// be rendered on either side gets its error in its plan; the others are planned all the
/// same.
pub(crate) async fn plan(
    parts: &Parts,
    base: &str,
    head: &str,
    options: PlanOptions<'_>,
) -> Vec<ApplicationPlan> {
    let mut targets: HashMap<String, Result<Target, NotCompared>> = HashMap::new();
    let mut planned = Vec::new();
    let mut plans = Vec::new();
    // Configured applications, then the children their renders declare (app-of-apps) at
    // either side, each with its declaration at base and at head.
    let mut wave: Vec<Versions> = parts
        .catalog
        .names()
        .iter()
        .filter_map(|name| parts.catalog.application(name).ok())
        .map(|app| (Some(Arc::clone(&app)), Some(app)))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut held_back: HashMap<String, Vec<String>> = HashMap::new();
    // A wave at a time (the next holds the children the last one declared), its renders
    // concurrently: renderers are mostly other processes (kustomize, helm).
    while !wave.is_empty() {
        let mut jobs = Vec::new();
        for versions in std::mem::take(&mut wave) {
            let Some(app) = versions.1.clone().or_else(|| versions.0.clone()) else {
                continue;
            };
            if !seen.insert(app.name.clone()) {
                continue;
            }
            let Some(url) = source_to_read(&app, options.checkout).map(str::to_owned) else {
                continue;
            };
            let cluster = &app.destination.cluster;
            if !targets.contains_key(cluster) {
                let target = plan_target(parts, cluster, options.offline).await;
                targets.insert(cluster.clone(), target);
            }
            jobs.push((versions, url, targets[cluster].clone()));
        }
        let rendered: Vec<_> = futures::stream::iter(jobs)
            .map(|(versions, url, target)| async move {
                let result = render_both(parts, &versions, &url, (base, head), target).await;
                (versions, result)
            })
            .buffered(CONCURRENT_RENDERS)
            .collect()
            .await;
        for (versions, result) in rendered {
            let name = versions
                .1
                .or(versions.0)
                .map(|app| app.name.clone())
                .unwrap_or_default();
            // A child that would not sync is not planned as if it would: when the change
            // touches it, its plan says why it does not sync; its own children never exist.
            if let Some(findings) = held_back.get(&name) {
                if matches!(result, Err(_) | Ok((Some(_), _, _))) {
                    let mut plan = ApplicationPlan::new(&name);
                    plan.error = Some(Failure::Unconverted(findings.clone()).to_string());
                    plans.push(plan);
                }
                continue;
            }
            match result {
                Ok((both, children, children_held_back)) => {
                    held_back.extend(children_held_back);
                    wave.extend(children);
                    planned.extend(both);
                }
                Err(err) => {
                    let mut plan = ApplicationPlan::new(&name);
                    plan.error = Some(err.to_string());
                    plans.push(plan);
                }
            }
        }
    }
    // Custom kinds are validated against the CRDs the repository declares, at head.
    let crds: Vec<serde_json::Value> = planned
        .iter()
        .flat_map(|planned| &planned.head.objects)
        .filter(|(object, _)| {
            object.reference.group == "apiextensions.k8s.io"
                && object.reference.kind == "CustomResourceDefinition"
        })
        .map(|(object, _)| object.manifest.clone())
        .collect();
    let offline_schemas = options.schemas.unwrap_or_else(Schemas::bundled);
    let mut with_crds: HashMap<String, Schemas> = HashMap::new();
    for planned in planned {
        let key = planned
            .target
            .as_ref()
            .map_or_else(|_| String::new(), |target| target.cluster.name.clone());
        let schemas = with_crds.entry(key).or_insert_with(|| {
            let mut schemas = match &planned.target {
                Ok(target) => (*target.schemas).clone(),
                Err(_) => offline_schemas.clone(),
            };
            for crd in &crds {
                // A CRD that names no group or kind fails its own validation below.
                let _ = schemas.add_crd(crd);
            }
            schemas
        });
        plans.push(check_planned(parts, planned, schemas).await);
    }
    plans.sort_by(|a, b| a.application.cmp(&b.application));
    plans
}

/// Why a plan does not compare with a cluster (shared by the applications of that cluster).
#[derive(Debug, Clone, thiserror::Error)]
enum NotCompared {
    #[error("not asked (--offline)")]
    Offline,
    #[error("{0}")]
    Unreachable(Arc<Failure>),
    #[error("no OpenAPI document")]
    NoOpenApi,
    #[error("the cluster's OpenAPI document: {0}")]
    BadOpenApi(Arc<driftless_core::schema::SchemaError>),
}

impl<E: Into<Failure>> From<E> for NotCompared {
    fn from(err: E) -> Self {
        Self::Unreachable(Arc::new(err.into()))
    }
}

/// The cluster `name` as a plan compares with it, or why it is not compared.
async fn plan_target(parts: &Parts, name: &str, offline: bool) -> Result<Target, NotCompared> {
    if offline {
        return Err(NotCompared::Offline);
    }
    let cluster = parts.clusters.get(name).await?;
    let capabilities = cluster.discovery.capabilities().await?;
    let document = cluster
        .discovery
        .openapi_v2()
        .await?
        .ok_or(NotCompared::NoOpenApi)?;
    let schemas = Schemas::from_openapi_v2(document, &capabilities.kube_version)
        .map_err(|err| NotCompared::BadOpenApi(Arc::new(err)))?;
    Ok(Target {
        cluster,
        schemas: Arc::new(schemas),
    })
}

/// Both sides of an application (`None` when the change touches nothing its render reads),
/// and the versions of the children it declares.
async fn render_both(
    parts: &Parts,
    (at_base, at_head): &Versions,
    url: &str,
    (base, head): (&str, &str),
    target: Result<Target, NotCompared>,
) -> Result<(Option<Planned>, Vec<Versions>, Vec<(String, Vec<String>)>), Failure> {
    let Some(app) = at_head.as_ref().or(at_base.as_ref()) else {
        return Ok((None, Vec::new(), Vec::new()));
    };
    let base_commit = parts.desired.fetch_and_resolve(url, base).await?;
    let head_commit = parts.desired.fetch_and_resolve(url, head).await?;
    let cluster = target.as_ref().ok().map(|target| &target.cluster);
    let base_side = match at_base {
        Some(declared) => render_side(parts, declared, url, &base_commit, cluster).await?,
        None => Side::absent(),
    };
    let changed = parts
        .desired
        .changed_paths(url, &base_commit, &head_commit)
        .await?;
    if at_base == at_head && !driftless_core::changes::touches(app, base_side.inputs.as_ref(), &changed) {
        // Untouched, so are the children it declares; theirs may still be touched.
        let children = child_versions(app, &base_side.children, &base_side.children);
        return Ok((None, children, base_side.held_back));
    }
    let head_side = match at_head {
        Some(declared) => render_side(parts, declared, url, &head_commit, cluster).await?,
        None => Side::absent(),
    };
    let children = child_versions(app, &base_side.children, &head_side.children);
    let held_back = head_side.held_back.clone();
    Ok((
        Some(Planned {
            app: Arc::clone(app),
            head_commit,
            base: base_side,
            head: head_side,
            target,
        }),
        children,
        held_back,
    ))
}

/// The objects `app` declares at `commit` of `url`; nothing is cached or kept. With a
/// cluster, charts see its capabilities and kinds resolve by its discovery.
async fn render_side(
    parts: &Parts,
    app: &Application,
    url: &str,
    commit: &CommitId,
    cluster: Option<&ClusterHandle>,
) -> Result<Side, Failure> {
    let tree = parts.desired.read_tree(app, url, commit).await?;
    let (rendered, _) = parts
        .desired
        .render_tree(parts.context(), app, &tree, cluster)
        .await?;
    let (children, manifests) = split_children(app, rendered.manifests);
    let (children, held_back) = parts
        .catalog
        .declared_children(app, children)?
        .into_iter()
        .map(|child| {
            let held =
                (!child.unconverted.is_empty()).then(|| (child.application.name.clone(), child.unconverted));
            (child.application, held)
        })
        .unzip::<_, _, Vec<_>, Vec<_>>();
    let held_back = held_back.into_iter().flatten().collect();
    let offline = Discovery::offline();
    let discovery = cluster.map_or(&offline, |cluster| &*cluster.discovery);
    let objects =
        driftless_kube::resolve_desired(manifests, app.destination.namespace.as_deref(), discovery).await?;
    Ok(Side {
        objects,
        decrypted: rendered.decrypted,
        inputs: rendered.inputs,
        renderer: rendered.renderer,
        children,
        held_back,
    })
}

/// The plan of one rendered application: changes, problems, and the live comparison.
async fn check_planned(parts: &Parts, planned: Planned, schemas: &Schemas) -> ApplicationPlan {
    let app = &planned.app;
    let at_base = planned.base.by_reference();
    let at_head = planned.head.by_reference();
    let decrypted = planned.base.decrypted || planned.head.decrypted;
    let changes = compare_renders(&at_base, &at_head, &parts.redaction());
    let mut plan = ApplicationPlan::new(&app.name);
    // Redaction covers Secrets; a decrypted value may sit in any kind.
    plan.changes = if decrypted { withhold(changes) } else { changes };
    let files: HashMap<&ObjectRef, String> = planned
        .head
        .objects
        .iter()
        .map(|(object, _)| (&object.reference, object.source.to_string()))
        .collect();
    plan.problems = schema_problems(&planned.head.objects, schemas);
    plan.problems
        .extend(policy_problems(parts, &files, &at_base, &at_head));
    plan.live = Some(match &planned.target {
        Err(reason) => LiveComparison::NotCompared {
            cluster: app.destination.cluster.clone(),
            reason: reason.to_string(),
        },
        Ok(target) => match compare_live(parts, &planned, &at_base, &at_head).await {
            Ok((changes, refused)) => {
                plan.problems
                    .extend(refused.into_iter().map(|(object, message)| Problem {
                        severity: Severity::Error,
                        check: "dry-run".to_owned(),
                        file: files.get(&object).cloned(),
                        object,
                        path: None,
                        message: format!("the API server refuses it: {message}"),
                    }));
                LiveComparison::Compared {
                    cluster: target.cluster.name.clone(),
                    changes: if decrypted { withhold(changes) } else { changes },
                }
            }
            Err(err) => {
                // The cluster answered, but not about one object (refusals are problems):
                // the plan cannot be trusted.
                plan.error = Some(err.to_string());
                LiveComparison::NotCompared {
                    cluster: target.cluster.name.clone(),
                    reason: "the server-side dry-run failed".to_owned(),
                }
            }
        },
    });
    plan
}

/// Policy findings of every object at head (a creation, or an update of base) and of every
/// object base has and head does not (a deletion).
fn policy_problems(
    parts: &Parts,
    files: &HashMap<&ObjectRef, String>,
    at_base: &BTreeMap<ObjectRef, serde_json::Value>,
    at_head: &BTreeMap<ObjectRef, serde_json::Value>,
) -> Vec<Problem> {
    let changes = at_head
        .iter()
        .map(|(object, new)| Change {
            object,
            new: Some(new),
            old: at_base.get(object),
        })
        .chain(
            at_base
                .iter()
                .filter(|(object, _)| !at_head.contains_key(*object))
                .map(|(object, old)| Change {
                    object,
                    new: None,
                    old: Some(old),
                }),
        );
    check(parts.catalog.policies(), changes)
        .into_iter()
        .map(|(object, finding)| Problem {
            severity: match finding.action {
                driftless_policy::Action::Deny => Severity::Error,
                driftless_policy::Action::Warn => Severity::Warning,
            },
            check: format!("policy/{}", finding.rule),
            file: files.get(&object).cloned(),
            object,
            path: None,
            message: finding.message,
        })
        .collect()
}

/// Head against the live cluster, as a sync of head would change it, and the objects the
/// API server's dry-run refuses (each left out of the comparison, so that every refusal is
/// told, not only the first).
async fn compare_live(
    parts: &Parts,
    planned: &Planned,
    at_base: &BTreeMap<ObjectRef, serde_json::Value>,
    at_head: &BTreeMap<ObjectRef, serde_json::Value>,
) -> Result<(Vec<ObjectChange>, Vec<(ObjectRef, String)>), Failure> {
    let app = &planned.app;
    let mut objects = planned.head.objects.clone();
    for (object, _) in &mut objects {
        driftless_core::plan::mark_owned(object, &app.name);
    }
    let versions: HashMap<&ObjectRef, &str> = planned
        .base
        .objects
        .iter()
        .map(|(object, _)| (&object.reference, object.gvk.version.as_str()))
        .collect();
    let also_prunable: BTreeMap<ObjectRef, String> = at_base
        .keys()
        .filter(|object| !at_head.contains_key(*object))
        .map(|object| (object.clone(), versions[object].to_owned()))
        .collect();
    let mut refused = Vec::new();
    let comparison = loop {
        let desired = DesiredState {
            commit: planned.head_commit.clone(),
            objects: Arc::new(objects.clone()),
            renderer: planned.head.renderer,
            context: Arc::new(RenderContext::default()),
        };
        let options = compare::Options {
            dry_run_missing: true,
            record: false,
            also_prunable: also_prunable.clone(),
        };
        match compare::compare(parts, app, desired, options).await {
            Ok((comparison, _)) => break comparison,
            Err(Failure::Cluster(source)) if refused.len() < REFUSALS_TOLD => {
                let (ObjectError::Rejected { object, message, .. }
                | ObjectError::ServerError { object, message, .. }) = *source
                else {
                    return Err(Failure::Cluster(source));
                };
                let Some(index) = objects
                    .iter()
                    .position(|(o, _)| o.reference.to_string() == object)
                else {
                    return Err(ObjectError::Rejected {
                        object,
                        code: 0,
                        message,
                    }
                    .into());
                };
                let (dropped, _) = objects.remove(index);
                refused.push((dropped.reference, message));
            }
            Err(err) => return Err(err),
        }
    };
    let mut changes: Vec<ObjectChange> = comparison
        .objects
        .into_iter()
        .filter_map(|status| match status.diff {
            ObjectDiff::Unchanged => None,
            ObjectDiff::Missing { desired } => Some(ObjectChange::Added {
                object: status.object,
                manifest: desired,
            }),
            ObjectDiff::Changed { unified, changes } => Some(ObjectChange::Changed {
                object: status.object,
                unified,
                changes,
            }),
        })
        .collect();
    changes.extend(
        comparison
            .to_prune
            .into_iter()
            .map(|object| ObjectChange::Removed { object }),
    );
    changes.sort_by(|a, b| a.object().cmp(b.object()));
    Ok((changes, refused))
}

/// Schema violations of the objects at head (errors), and kinds without a schema (warnings).
fn schema_problems(objects: &[(DesiredObject, Resolved)], schemas: &Schemas) -> Vec<Problem> {
    let mut problems = Vec::new();
    // `Validate=false` (Argo CD's sync option): the object is applied unvalidated, so it is not
    // checked against the schemas either.
    let validated = objects
        .iter()
        .filter(|(object, _)| !driftless_core::plan::validation_skipped(object));
    for (object, _) in validated {
        let problem = |severity, path: Option<String>, message: String| Problem {
            severity,
            check: "schema".to_owned(),
            object: object.reference.clone(),
            file: Some(object.source.to_string()),
            path,
            message,
        };
        match schemas.validate(&object.manifest) {
            Validation::Valid => {}
            Validation::NoSchema { kind } => problems.push(problem(
                Severity::Warning,
                None,
                format!(
                    "no schema for {kind} in Kubernetes {} or the repository's CRDs: not validated",
                    schemas.version
                ),
            )),
            Validation::Invalid(violations) => problems.extend(violations.into_iter().map(|violation| {
                problem(
                    Severity::Error,
                    Some(violation.path).filter(|path| !path.is_empty()),
                    violation.message,
                )
            })),
        }
    }
    problems
}
