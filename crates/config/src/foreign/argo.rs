//! Argo CD's `Application` and `AppProject` (argoproj.io/v1alpha1).

use driftless_core::project::{GroupKind, Project, ProjectDestination, check_destination, check_source};
use serde_json::{Map, Value, json};

use super::{
    ARGO_GROUP, Context, Conversion, ConvertedApplication, ConvertedProject, Declared, DeclaredProject,
    Object, Purpose, Report, application_document, application_name, cluster_for, items_with_flag, join,
};

/// Argo CD's project every Application may name without declaring it; it allows everything,
/// so it adds nothing to a root's project.
const DEFAULT_PROJECT: &str = "default";

/// Reads every AppProject: for an import, the configuration's projects; for a root's children,
/// what narrows the Applications naming them.
pub(super) fn projects(
    objects: &[Object<'_>],
    context: &Context<'_>,
    conversion: &mut Conversion,
) -> Declared {
    let mut declared = Declared::new();
    for object in objects
        .iter()
        .filter(|object| object.group == ARGO_GROUP && object.kind == "AppProject")
    {
        let mut report = Report::new(object);
        let (checks, document, unenforced) = project(object, context, &mut report);
        if context.purpose == Purpose::Import {
            conversion.projects.push(ConvertedProject {
                origin: object.label.clone(),
                document,
                findings: report.findings,
            });
        } else {
            // Its findings are those of the Applications that name it (they are what would
            // deploy wrongly); a project nobody names changes nothing.
            let _ = report;
        }
        declared.insert(object.name.clone(), DeclaredProject { checks, unenforced });
    }
    declared
}

fn group_kinds(report: &mut Report<'_>, value: &Value, field: &str) -> Vec<GroupKind> {
    let items = report.list(value, field).to_vec();
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let field = format!("{field}[{index}]");
            let group = report
                .text(&item["group"], &join(&field, "group"))
                .unwrap_or_default();
            let kind = report.text(&item["kind"], &join(&field, "kind"))?;
            Some(GroupKind { group, kind })
        })
        .collect()
}

#[expect(
    clippy::too_many_lines,
    reason = "one Argo CD or Flux field after another, in the order of their documentation"
)]
fn project(
    object: &Object<'_>,
    context: &Context<'_>,
    report: &mut Report<'_>,
) -> (Project, Value, Vec<String>) {
    let spec = object.spec();
    let mut unenforced = Vec::new();
    let source_repos: Option<Vec<String>> = {
        let repos: Vec<String> = report
            .list(&spec["sourceRepos"], "spec.sourceRepos")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        // Argo CD's `*` is any repository; in a driftless pattern `*` stops at `/`.
        (!repos.iter().any(|repo| repo == "*")).then_some(repos)
    };
    let mut destinations = Vec::new();
    for (index, item) in report
        .list(&spec["destinations"], "spec.destinations")
        .to_vec()
        .iter()
        .enumerate()
    {
        let field = format!("spec.destinations[{index}]");
        let name = report.text(&item["name"], &join(&field, "name"));
        let server = report.text(&item["server"], &join(&field, "server"));
        let namespace = report
            .text(&item["namespace"], &join(&field, "namespace"))
            .unwrap_or_else(|| "*".to_owned());
        let cluster = if name.as_deref() == Some("*") || server.as_deref() == Some("*") {
            "*".to_owned()
        } else {
            // A destination no configured cluster matches allows nothing: dropping it narrows.
            let mut probe = Report::new(report.object);
            let cluster = cluster_for(context, name.as_deref(), server.as_deref(), &field, &mut probe);
            if !probe.findings.is_empty() {
                report.differs(
                    &field,
                    "names no configured cluster: left out, so it allows nothing",
                );
                continue;
            }
            cluster
        };
        destinations.push(ProjectDestination { cluster, namespace });
    }
    let cluster_resource_whitelist = group_kinds(
        report,
        &spec["clusterResourceWhitelist"],
        "spec.clusterResourceWhitelist",
    );
    let namespace_resource_blacklist = group_kinds(
        report,
        &spec["namespaceResourceBlacklist"],
        "spec.namespaceResourceBlacklist",
    );
    let Value::Object(map) = spec else {
        report.unsupported("spec", "must be a mapping");
        return (empty_project(&object.name), Value::Null, vec!["spec".into()]);
    };
    for key in map.keys() {
        let field = join("spec", key);
        match key.as_str() {
            "sourceRepos"
            | "destinations"
            | "clusterResourceWhitelist"
            | "namespaceResourceBlacklist"
            | "description" => {}
            "roles" => report.differs(
                &field,
                "API access is driftless's tokens (driftless token create)",
            ),
            "orphanedResources" | "sourceNamespaces" | "permitOnlyProjectScopedClusters" => {
                report.differs(&field, "has no equivalent in driftless; ignored");
            }
            // Each of these narrows what the project allows: leaving it out would widen it.
            _ => {
                report.unsupported(&field, "narrows the project in a way driftless cannot enforce");
                unenforced.push(field);
            }
        }
    }
    let checks = Project {
        name: object.name.clone(),
        source_repos,
        destinations: Some(destinations),
        cluster_resource_whitelist,
        namespace_resource_blacklist,
    };
    let group_kinds_document = |kinds: &[GroupKind]| -> Vec<Value> {
        kinds
            .iter()
            .map(|kind| json!({ "group": kind.group, "kind": kind.kind }))
            .collect()
    };
    let mut document = json!({ "name": object.name });
    if let Some(repos) = &checks.source_repos {
        document["sourceRepos"] = json!(repos);
    }
    if let Some(destinations) = &checks.destinations {
        document["destinations"] = destinations
            .iter()
            .map(|destination| json!({ "cluster": destination.cluster, "namespace": destination.namespace }))
            .collect();
    }
    if !checks.cluster_resource_whitelist.is_empty() {
        document["clusterResourceWhitelist"] =
            group_kinds_document(&checks.cluster_resource_whitelist).into();
    }
    if !checks.namespace_resource_blacklist.is_empty() {
        document["namespaceResourceBlacklist"] =
            group_kinds_document(&checks.namespace_resource_blacklist).into();
    }
    (checks, document, unenforced)
}

fn empty_project(name: &str) -> Project {
    Project {
        name: name.to_owned(),
        source_repos: Some(Vec::new()),
        destinations: Some(Vec::new()),
        cluster_resource_whitelist: Vec::new(),
        namespace_resource_blacklist: Vec::new(),
    }
}

/// An Argo CD Application as a driftless one.
#[expect(
    clippy::too_many_lines,
    reason = "one Argo CD or Flux field after another, in the order of their documentation"
)]
pub(super) fn application(
    object: &Object<'_>,
    context: &Context<'_>,
    declared: &Declared,
) -> ConvertedApplication {
    let mut report = Report::new(object);
    let spec = object.spec();
    report.only_known(
        spec,
        "spec",
        &[
            "source",
            "sources",
            "destination",
            "project",
            "syncPolicy",
            "ignoreDifferences",
            "info",
            "revisionHistoryLimit",
        ],
    );
    report.ignored(spec, "spec", &["info", "revisionHistoryLimit"]);
    if report
        .list(&object.manifest["metadata"]["finalizers"], "metadata.finalizers")
        .iter()
        .any(|finalizer| {
            finalizer
                .as_str()
                .is_some_and(|finalizer| finalizer.starts_with("resources-finalizer.argocd.argoproj.io"))
        })
    {
        report.differs(
            "metadata.finalizers",
            "the resources finalizer has no equivalent: an application that leaves its root's Git stops being synced, its objects stay",
        );
    }
    let name = application_name(&object.name, &mut report);
    let source = match (&spec["source"], &spec["sources"]) {
        (Value::Null, Value::Array(sources)) if sources.len() == 1 => {
            source(&sources[0], "spec.sources[0]", context, &mut report)
        }
        (Value::Null, Value::Null) => {
            report.unsupported("spec.source", "is missing");
            Map::new()
        }
        (Value::Null, _) => {
            report.unsupported("spec.sources", "multiple sources are not supported");
            spec["sources"]
                .get(0)
                .map(|first| source(first, "spec.sources[0]", context, &mut Report::new(object)))
                .unwrap_or_default()
        }
        (source_value, sources) => {
            if !sources.is_null() {
                report.unsupported("spec.sources", "set source or sources, not both");
            }
            source(source_value, "spec.source", context, &mut report)
        }
    };
    let destination_value = &spec["destination"];
    report.only_known(
        destination_value,
        "spec.destination",
        &["server", "name", "namespace"],
    );
    let cluster = cluster_for(
        context,
        report
            .text(&destination_value["name"], "spec.destination.name")
            .as_deref(),
        report
            .text(&destination_value["server"], "spec.destination.server")
            .as_deref(),
        "spec.destination",
        &mut report,
    );
    let namespace = report.text(&destination_value["namespace"], "spec.destination.namespace");
    let mut destination = json!({ "cluster": cluster });
    if let Some(namespace) = &namespace {
        destination["namespace"] = json!(namespace);
    }
    let repo_url = source
        .get("repoURL")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut manifest =
        application_document(&name, &object.manifest["metadata"]["labels"], source, destination);
    if let Some(project) = report.text(&spec["project"], "spec.project") {
        apply_project(
            &mut manifest,
            &project,
            declared,
            context,
            (&repo_url, &cluster, namespace.as_deref()),
            &mut report,
        );
    }
    if let Some(policy) = sync_policy(&spec["syncPolicy"], &mut report) {
        manifest["spec"]["syncPolicy"] = policy;
    }
    let ignore = ignore_differences(&spec["ignoreDifferences"], &mut report);
    if !ignore.is_empty() {
        manifest["spec"]["ignoreDifferences"] = Value::Array(ignore);
    }
    ConvertedApplication {
        origin: object.label.clone(),
        manifest,
        findings: report.findings,
    }
}

/// The application's project. For a root's children, an AppProject declared beside them
/// narrows them (its checks run here) but their project stays the root's.
fn apply_project(
    manifest: &mut Value,
    project: &str,
    declared: &Declared,
    context: &Context<'_>,
    (repo_url, cluster, namespace): (&str, &str, Option<&str>),
    report: &mut Report<'_>,
) {
    let Some(found) = declared.get(project) else {
        if project != DEFAULT_PROJECT {
            manifest["spec"]["project"] = json!(project);
        }
        return;
    };
    if context.purpose == Purpose::Import {
        manifest["spec"]["project"] = json!(project);
        return;
    }
    if let Err(violation) = check_source(&found.checks, repo_url)
        .and_then(|()| check_destination(&found.checks, cluster, namespace))
    {
        report.unsupported(
            "spec.project",
            format!("{violation} (an AppProject declared in Git; it only narrows the root's project)"),
        );
    }
    for field in &found.unenforced {
        report.unsupported(
            "spec.project",
            format!("project {project}'s {field} cannot be enforced, so the application does not sync"),
        );
    }
}

/// One of `spec.source`/`spec.sources[]`, as driftless's `spec.source`.
fn source(value: &Value, field: &str, context: &Context<'_>, report: &mut Report<'_>) -> Map<String, Value> {
    report.only_known(
        value,
        field,
        &[
            "repoURL",
            "targetRevision",
            "path",
            "chart",
            "directory",
            "helm",
            "kustomize",
            "plugin",
            "ref",
            "name",
        ],
    );
    let mut source = Map::new();
    let repo_url = report
        .text(&value["repoURL"], &join(field, "repoURL"))
        .unwrap_or_default();
    let revision = report.text(&value["targetRevision"], &join(field, "targetRevision"));
    if let Some(chart) = report.text(&value["chart"], &join(field, "chart")) {
        // A chart from a chart repository: targetRevision is the chart's version, and the
        // Git source only carries values files.
        let repository = if repo_url.contains("://") {
            repo_url.clone()
        } else {
            format!("oci://{repo_url}")
        };
        let mut chart_document = json!({ "repository": repository, "name": chart });
        if let Some(version) = &revision {
            chart_document["version"] = json!(version);
        }
        if let Some((home, home_revision)) = context.home_repository {
            source.insert("repoURL".into(), json!(home));
            source.insert("revision".into(), json!(home_revision));
        } else {
            report.unsupported(
                &join(field, "chart"),
                "a chart from a chart repository needs a Git repository for its values in driftless (spec.source.repoURL); none is known",
            );
            source.insert("repoURL".into(), json!(repo_url));
        }
        let mut helm = helm(&value["helm"], &join(field, "helm"), report);
        helm.insert("chart".into(), chart_document);
        source.insert("helm".into(), Value::Object(helm));
        return source;
    }
    source.insert("repoURL".into(), json!(repo_url));
    if let Some(revision) = revision.filter(|revision| !revision.is_empty()) {
        source.insert("revision".into(), json!(revision));
    }
    if let Some(path) = report.text(&value["path"], &join(field, "path")) {
        let path = path.trim_start_matches("./").trim_end_matches('/');
        if !path.is_empty() && path != "." {
            source.insert("path".into(), json!(path));
        }
    }
    if !value["helm"].is_null() {
        source.insert(
            "helm".into(),
            Value::Object(helm(&value["helm"], &join(field, "helm"), report)),
        );
    }
    if let Some(kustomize) = value["kustomize"].as_object() {
        for key in kustomize.keys() {
            if key != "version" {
                report.unsupported(&join(field, &format!("kustomize.{key}")), "not supported yet");
            }
        }
        source.insert("kustomize".into(), json!({}));
    }
    if !value["directory"].is_null() {
        source.insert(
            "directory".into(),
            directory(&value["directory"], &join(field, "directory"), report),
        );
    }
    if !value["plugin"].is_null() {
        report.unsupported(
            &join(field, "plugin"),
            "config management plugins are not supported: render with Helm, Kustomize, Jsonnet or plain manifests",
        );
    }
    if !value["ref"].is_null() {
        report.unsupported(
            &join(field, "ref"),
            "a source referenced by other sources is not supported",
        );
    }
    source
}

fn directory(value: &Value, field: &str, report: &mut Report<'_>) -> Value {
    report.only_known(value, field, &["recurse", "include", "exclude", "jsonnet"]);
    let mut directory = Map::new();
    if report.flag(&value["recurse"], &join(field, "recurse")) {
        directory.insert("recurse".into(), json!(true));
    }
    for key in ["include", "exclude"] {
        if let Some(glob) = report
            .text(&value[key], &join(field, key))
            .filter(|glob| !glob.is_empty())
        {
            directory.insert(key.into(), json!(glob));
        }
    }
    let jsonnet = &value["jsonnet"];
    if let Some(options) = jsonnet.as_object().filter(|options| !options.is_empty()) {
        report.only_known(jsonnet, &join(field, "jsonnet"), &["extVars", "tlas", "libs"]);
        let mut converted = Map::new();
        for key in ["extVars", "tlas"] {
            let items = items_with_flag(
                report,
                &options.get(key).cloned().unwrap_or_default(),
                &join(field, &format!("jsonnet.{key}")),
                &["name", "value"],
                "code",
            );
            if !items.is_empty() {
                converted.insert(key.into(), Value::Array(items));
            }
        }
        if let Some(libs) = options.get("libs").filter(|libs| !libs.is_null()) {
            converted.insert("libs".into(), libs.clone());
        }
        directory.insert("jsonnet".into(), Value::Object(converted));
    }
    Value::Object(directory)
}

fn helm(value: &Value, field: &str, report: &mut Report<'_>) -> Map<String, Value> {
    report.only_known(
        value,
        field,
        &[
            "valueFiles",
            "values",
            "valuesObject",
            "parameters",
            "releaseName",
            "namespace",
            "kubeVersion",
            "apiVersions",
            "skipCrds",
            "passCredentials",
            "ignoreMissingValueFiles",
            "fileParameters",
            "version",
            "skipSchemaValidation",
            "skipTests",
        ],
    );
    let mut helm = Map::new();
    let files: Vec<Value> = report
        .list(&value["valueFiles"], &join(field, "valueFiles"))
        .to_vec();
    if !files.is_empty() {
        helm.insert("valueFiles".into(), Value::Array(files));
    }
    // Argo CD: valuesObject wins over values.
    match (&value["valuesObject"], &value["values"]) {
        (Value::Null, Value::Null) => {}
        (Value::Null, values) => {
            helm.insert("values".into(), values.clone());
        }
        (object, values) => {
            if !values.is_null() {
                report.differs(&join(field, "values"), "valuesObject is used, as Argo CD does");
            }
            helm.insert("values".into(), object.clone());
        }
    }
    let parameters = items_with_flag(
        report,
        &value["parameters"],
        &join(field, "parameters"),
        &["name", "value"],
        "forceString",
    );
    if !parameters.is_empty() {
        helm.insert("parameters".into(), Value::Array(parameters));
    }
    for key in ["releaseName", "namespace", "kubeVersion"] {
        if let Some(text) = report
            .text(&value[key], &join(field, key))
            .filter(|text| !text.is_empty())
        {
            helm.insert(key.into(), json!(text));
        }
    }
    let api_versions = report
        .list(&value["apiVersions"], &join(field, "apiVersions"))
        .to_vec();
    if !api_versions.is_empty() {
        helm.insert("apiVersions".into(), Value::Array(api_versions));
    }
    if report.flag(&value["skipCrds"], &join(field, "skipCrds")) {
        helm.insert("skipCrds".into(), json!(true));
    }
    if report.flag(
        &value["ignoreMissingValueFiles"],
        &join(field, "ignoreMissingValueFiles"),
    ) {
        report.differs(
            &join(field, "ignoreMissingValueFiles"),
            "a missing values file fails the render in driftless",
        );
    }
    if !value["fileParameters"].is_null() {
        report.unsupported(&join(field, "fileParameters"), "not supported yet");
    }
    report.ignored(
        value,
        field,
        &["passCredentials", "skipSchemaValidation", "skipTests"],
    );
    helm
}

/// Sync options driftless.yaml knows under the same name.
const KNOWN_SYNC_OPTIONS: &[&str] = &["CreateNamespace", "PruneLast", "Replace"];

#[expect(
    clippy::too_many_lines,
    reason = "one Argo CD or Flux field after another, in the order of their documentation"
)]
fn sync_policy(value: &Value, report: &mut Report<'_>) -> Option<Value> {
    if value.is_null() {
        return None;
    }
    let field = "spec.syncPolicy";
    report.only_known(
        value,
        field,
        &["automated", "syncOptions", "retry", "managedNamespaceMetadata"],
    );
    let mut policy = Map::new();
    let automated = &value["automated"];
    if !automated.is_null() {
        report.only_known(
            automated,
            "spec.syncPolicy.automated",
            &["prune", "selfHeal", "allowEmpty", "enabled"],
        );
        let enabled = automated["enabled"] != json!(false);
        if enabled {
            let mut converted = json!({
                "prune": report.flag(&automated["prune"], "spec.syncPolicy.automated.prune"),
                "selfHeal": report.flag(&automated["selfHeal"], "spec.syncPolicy.automated.selfHeal"),
            });
            if report.flag(&automated["allowEmpty"], "spec.syncPolicy.automated.allowEmpty") {
                converted["allowEmpty"] = json!(true);
            }
            policy.insert("automated".into(), converted);
        }
    }
    let mut options = Vec::new();
    for (index, option) in report
        .list(&value["syncOptions"], "spec.syncPolicy.syncOptions")
        .to_vec()
        .iter()
        .enumerate()
    {
        let option_field = format!("spec.syncPolicy.syncOptions[{index}]");
        let Some(text) = report.text(option, &option_field) else {
            continue;
        };
        let (key, setting) = text.split_once('=').unwrap_or((text.as_str(), ""));
        match (key, setting) {
            (key, _) if KNOWN_SYNC_OPTIONS.contains(&key) => options.push(json!(text)),
            ("ServerSideApply", "true") => {}
            ("ServerSideApply", _) => {
                report.differs(&option_field, "driftless always applies server-side");
            }
            (
                "Validate"
                | "ApplyOutOfSyncOnly"
                | "PrunePropagationPolicy"
                | "RespectIgnoreDifferences"
                | "SkipDryRunOnMissingResource",
                _,
            ) => {
                report.differs(
                    &option_field,
                    "has no application-wide equivalent in driftless; ignored",
                );
            }
            ("FailOnSharedResource", _) => report.differs(
                &option_field,
                "driftless never takes an object another application owns, whatever this says",
            ),
            _ => report.unsupported(&option_field, format!("unknown sync option {text:?}")),
        }
    }
    if !options.is_empty() {
        policy.insert("syncOptions".into(), Value::Array(options));
    }
    let retry = &value["retry"];
    if !retry.is_null() {
        report.only_known(retry, "spec.syncPolicy.retry", &["limit", "backoff", "refresh"]);
        let mut converted = Map::new();
        match retry["limit"].as_i64() {
            Some(limit) if limit >= 0 => {
                converted.insert("limit".into(), json!(limit));
            }
            Some(_) => report.differs(
                "spec.syncPolicy.retry.limit",
                "unlimited retries are not supported: driftless's default of 5 applies",
            ),
            None => {}
        }
        let backoff = &retry["backoff"];
        if !backoff.is_null() {
            report.only_known(
                backoff,
                "spec.syncPolicy.retry.backoff",
                &["duration", "factor", "maxDuration"],
            );
            let mut converted_backoff = Map::new();
            for key in ["duration", "maxDuration"] {
                if let Some(text) =
                    report.text(&backoff[key], &format!("spec.syncPolicy.retry.backoff.{key}"))
                {
                    converted_backoff.insert(key.into(), json!(text));
                }
            }
            if let Some(factor) = backoff["factor"].as_u64() {
                converted_backoff.insert("factor".into(), json!(factor));
            }
            converted.insert("backoff".into(), Value::Object(converted_backoff));
        }
        report.ignored(retry, "spec.syncPolicy.retry", &["refresh"]);
        policy.insert("retry".into(), Value::Object(converted));
    }
    report.unsupported_where_set(
        value,
        "spec.syncPolicy",
        &["managedNamespaceMetadata"],
        "not supported yet: declare the Namespace with its labels and annotations in Git",
    );
    (!policy.is_empty()).then_some(Value::Object(policy))
}

fn ignore_differences(value: &Value, report: &mut Report<'_>) -> Vec<Value> {
    let rules = report.list(value, "spec.ignoreDifferences").to_vec();
    rules
        .iter()
        .enumerate()
        .filter_map(|(index, rule)| {
            let field = format!("spec.ignoreDifferences[{index}]");
            report.only_known(
                rule,
                &field,
                &[
                    "group",
                    "kind",
                    "name",
                    "namespace",
                    "jsonPointers",
                    "jqPathExpressions",
                    "managedFieldsManagers",
                ],
            );
            if !rule["jqPathExpressions"].is_null() {
                report.unsupported(
                    &join(&field, "jqPathExpressions"),
                    "jq expressions are not supported yet: use jsonPointers",
                );
            }
            let mut converted = Map::new();
            for key in [
                "group",
                "kind",
                "name",
                "namespace",
                "jsonPointers",
                "managedFieldsManagers",
            ] {
                if !rule[key].is_null() {
                    converted.insert(key.into(), rule[key].clone());
                }
            }
            // A rule of jq expressions alone ignores nothing here (reported above).
            (converted.contains_key("jsonPointers") || converted.contains_key("managedFieldsManagers"))
                .then_some(Value::Object(converted))
        })
        .collect()
}
