//! Flux's `Kustomization` (kustomize.toolkit.fluxcd.io v1, v1beta2, v1beta1), `HelmRelease`
//! (helm.toolkit.fluxcd.io v2, v2beta2, v2beta1) and the sources they name
//! (source.toolkit.fluxcd.io: `GitRepository`, `HelmRepository`, `OCIRepository`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::{
    Context, ConvertedApplication, FLUX_SOURCE_EXTENSIONS_GROUP, FLUX_SOURCE_GROUP, Finding, Object, Report,
    Severity, application_document, application_name, items_with_flag, join,
};

/// Flux's bootstrap names the GitRepository of the repository it was bootstrapped from so.
const BOOTSTRAP_SOURCE: &str = "flux-system";

/// Flux's default branch when a GitRepository names no ref.
const DEFAULT_BRANCH: &str = "master";

/// The source objects among those converted, by kind, namespace and name; each remembers
/// whether something named it.
pub(super) struct Sources<'a> {
    by_identity: BTreeMap<(String, String, String), &'a Object<'a>>,
    used: RefCell<BTreeSet<(String, String, String)>>,
}

impl<'a> Sources<'a> {
    pub(super) fn new(objects: &'a [Object<'a>]) -> Self {
        let by_identity = objects
            .iter()
            .filter(|object| {
                object.group == FLUX_SOURCE_GROUP || object.group == FLUX_SOURCE_EXTENSIONS_GROUP
            })
            .map(|object| {
                (
                    (object.kind.clone(), object.namespace.clone(), object.name.clone()),
                    object,
                )
            })
            .collect();
        Self {
            by_identity,
            used: RefCell::default(),
        }
    }

    fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<&'a Object<'a>> {
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        let found = self.by_identity.get(&key).copied();
        if found.is_some() {
            self.used.borrow_mut().insert(key);
        }
        found
    }

    /// The bootstrap GitRepository, standing in for a root's repository in an import.
    fn bootstrap(&self) -> Option<&'a Object<'a>> {
        self.by_identity
            .iter()
            .find(|((kind, _, name), _)| kind == "GitRepository" && name == BOOTSTRAP_SOURCE)
            .map(|(_, object)| *object)
    }

    /// Sources nothing named: nothing is deployed from them.
    pub(super) fn unused(&self) -> Vec<Finding> {
        let used = self.used.borrow();
        self.by_identity
            .iter()
            .filter(|(key, _)| !used.contains(*key))
            .map(|(_, object)| {
                object.finding(
                    "",
                    "no Kustomization or HelmRelease among the objects names it: nothing is deployed from it",
                    Severity::Differs,
                )
            })
            .collect()
    }
}

/// A reference to a source: `{kind, name, namespace}` (namespace defaulting to the referrer's).
struct SourceRef {
    kind: String,
    name: String,
    namespace: String,
}

fn source_ref(value: &Value, field: &str, object: &Object<'_>, report: &mut Report<'_>) -> Option<SourceRef> {
    if value.is_null() {
        report.unsupported(field, "is missing");
        return None;
    }
    report.only_known(value, field, &["kind", "name", "namespace", "apiVersion"]);
    let kind = report.text(&value["kind"], &join(field, "kind"))?;
    let name = report.text(&value["name"], &join(field, "name"))?;
    let namespace = report
        .text(&value["namespace"], &join(field, "namespace"))
        .unwrap_or_else(|| object.namespace.clone());
    Some(SourceRef {
        kind,
        name,
        namespace,
    })
}

/// Where driftless takes a source's credentials from instead of the source's Secret.
const CREDENTIALS: &str = "credentials come from driftless.yaml's repositories";

const UNVERIFIED_CHART: &str = "chart signatures (cosign, notation) are not verified yet";

/// A GitRepository's URL and revision; its fields with no equivalent are the application's
/// findings (they change what it deploys).
fn git_repository(source: &Object<'_>, report: &mut Report<'_>) -> (String, String) {
    let mut own = Report::new(source);
    let spec = source.spec();
    own.only_known(
        spec,
        "spec",
        &[
            "url",
            "ref",
            "secretRef",
            "interval",
            "timeout",
            "ignore",
            "include",
            "recurseSubmodules",
            "verify",
            "proxySecretRef",
            "provider",
            "suspend",
            "gitImplementation",
            "sparseCheckout",
        ],
    );
    let url = own.text(&spec["url"], "spec.url").unwrap_or_default();
    let reference = &spec["ref"];
    own.only_known(
        reference,
        "spec.ref",
        &["branch", "tag", "semver", "name", "commit"],
    );
    let revision = ["commit", "name", "tag", "branch"]
        .iter()
        .find_map(|key| own.text(&reference[*key], &format!("spec.ref.{key}")));
    if !reference["semver"].is_null() && revision.is_none() {
        own.unsupported(
            "spec.ref.semver",
            "semver ranges of Git tags are not supported yet: name the tag",
        );
    }
    let revision = revision.unwrap_or_else(|| DEFAULT_BRANCH.to_owned());
    own.differs_where_set(spec, "spec", &["secretRef"], CREDENTIALS);
    own.differs_where_set(
        spec,
        "spec",
        &["verify"],
        "commit signatures are verified as driftless.yaml's repositories[].verify says",
    );
    own.differs_where_set(
        spec,
        "spec",
        &["ignore"],
        "driftless reads the whole path; files it should skip must be left out of it",
    );
    own.unsupported_where_set(
        spec,
        "spec",
        &["include"],
        "sources made of several repositories are not supported",
    );
    own.differs_where_set(
        spec,
        "spec",
        &["sparseCheckout"],
        "driftless reads only the application's path anyway",
    );
    own.ignored(
        spec,
        "spec",
        &[
            "recurseSubmodules",
            "proxySecretRef",
            "provider",
            "gitImplementation",
        ],
    );
    report.findings.extend(own.findings);
    (url, revision)
}

/// Source fields every converted Flux object shares, and the cluster: Flux applies in the
/// cluster it runs in unless `kubeConfig` says otherwise.
fn common(spec: &Value, report: &mut Report<'_>) -> (Option<String>, bool) {
    report.unsupported_where_set(
        spec,
        "spec",
        &["kubeConfig"],
        "a cluster from a kubeconfig Secret is not supported: add the cluster to driftless.yaml",
    );
    report.unsupported_where_set(spec, "spec", &["serviceAccountName"], "driftless applies with its own identity and does not impersonate a ServiceAccount; a project bounds what it may do");
    report.differs_where_set(spec, "spec", &["dependsOn",
        "timeout",
        "retryInterval",
        "wait",
        "healthChecks",
        "healthCheckExprs",
        "maxHistory",
        "persistentClient",
        "deletionPolicy",
        "force"], "has no equivalent in driftless; ignored (applications sync independently, ordered within one by sync waves)");
    let interval = report.text(&spec["interval"], "spec.interval");
    let suspended = report.flag(&spec["suspend"], "spec.suspend");
    if suspended {
        report.differs("spec.suspend", "suspended: manual syncs only");
    }
    (interval, suspended)
}

fn sync_policy(interval: Option<String>, suspended: bool, prune: bool, self_heal: bool) -> Value {
    let mut policy = Map::new();
    if !suspended {
        policy.insert(
            "automated".into(),
            json!({ "prune": prune, "selfHeal": self_heal }),
        );
    }
    if let Some(interval) = interval {
        policy.insert("interval".into(), json!(interval));
    }
    Value::Object(policy)
}

fn relative_path(path: &str) -> String {
    path.trim_start_matches("./").trim_end_matches('/').to_owned()
}

/// A Flux Kustomization as a driftless application of the directory it builds.
#[expect(
    clippy::too_many_lines,
    reason = "one Argo CD or Flux field after another, in the order of their documentation"
)]
pub(super) fn kustomization(
    object: &Object<'_>,
    context: &Context<'_>,
    sources: &Sources<'_>,
) -> ConvertedApplication {
    let mut report = Report::new(object);
    let spec = object.spec();
    report.only_known(
        spec,
        "spec",
        &[
            "interval",
            "path",
            "prune",
            "sourceRef",
            "targetNamespace",
            "suspend",
            "postBuild",
            "dependsOn",
            "timeout",
            "retryInterval",
            "wait",
            "healthChecks",
            "healthCheckExprs",
            "force",
            "decryption",
            "serviceAccountName",
            "kubeConfig",
            "patches",
            "patchesStrategicMerge",
            "patchesJson6902",
            "images",
            "namePrefix",
            "nameSuffix",
            "components",
            "commonMetadata",
            "validation",
            "deletionPolicy",
        ],
    );
    let name = application_name(&object.name, &mut report);
    let (interval, suspended) = common(spec, &mut report);
    let mut source = Map::new();
    let mut placeholder = true;
    if let Some(reference) = source_ref(&spec["sourceRef"], "spec.sourceRef", object, &mut report) {
        match (
            reference.kind.as_str(),
            sources.find(&reference.kind, &reference.namespace, &reference.name),
        ) {
            ("GitRepository", Some(repository)) => {
                let (url, revision) = git_repository(repository, &mut report);
                source.insert("repoURL".into(), json!(url));
                source.insert("revision".into(), json!(revision));
                placeholder = false;
            }
            ("GitRepository", None)
                if reference.name == BOOTSTRAP_SOURCE && context.home_repository.is_some() =>
            {
                let (url, revision) = context.home_repository.unwrap_or_default();
                report.differs(
                    "spec.sourceRef",
                    "GitRepository flux-system (Flux's bootstrap repository) is read as the root's own repository",
                );
                source.insert("repoURL".into(), json!(url));
                source.insert("revision".into(), json!(revision));
                placeholder = false;
            }
            ("GitRepository", None) => report.unsupported(
                "spec.sourceRef",
                format!(
                    "GitRepository {}/{} is not among the objects read",
                    reference.namespace, reference.name
                ),
            ),
            (kind, _) => report.unsupported(
                "spec.sourceRef.kind",
                format!("manifests from a source of kind {kind} are not supported: only a GitRepository"),
            ),
        }
    }
    if placeholder {
        // Never synced (the finding above blocks it); the home repository keeps the document
        // valid so the application is listed with its findings.
        source.insert(
            "repoURL".into(),
            json!(context.home_repository.map_or("", |(url, _)| url)),
        );
    }
    if let Some(path) = report.text(&spec["path"], "spec.path") {
        let path = relative_path(&path);
        if !path.is_empty() && path != "." {
            source.insert("path".into(), json!(path));
        }
    }
    // Flux builds every path with kustomize (generating a kustomization where there is none);
    // so does an explicit `kustomize` source.
    source.insert("kustomize".into(), json!({}));
    if !spec["postBuild"].is_null() {
        source.insert("postBuild".into(), post_build(&spec["postBuild"], &mut report));
    }
    report.unsupported_where_set(
        spec,
        "spec",
        &[
            "patches",
            "patchesStrategicMerge",
            "patchesJson6902",
            "images",
            "namePrefix",
            "nameSuffix",
            "components",
            "commonMetadata",
        ],
        "not supported yet: write it in a kustomization.yaml at the path",
    );
    report.ignored(spec, "spec", &["validation"]);
    let namespace = report.text(&spec["targetNamespace"], "spec.targetNamespace");
    let mut destination = json!({ "cluster": context.home_cluster });
    if let Some(namespace) = &namespace {
        destination["namespace"] = json!(namespace);
        report.differs(
            "spec.targetNamespace",
            "the destination namespace: driftless gives it to namespaced objects that name none, where Flux overrides every object's namespace",
        );
    }
    let prune = report.flag(&spec["prune"], "spec.prune");
    let mut manifest =
        application_document(&name, &object.manifest["metadata"]["labels"], source, destination);
    // Flux corrects drift on every interval: self-healing.
    manifest["spec"]["syncPolicy"] = sync_policy(interval, suspended, prune, true);
    if !spec["decryption"].is_null()
        && let Some(decryption) = decryption(&spec["decryption"], object, &mut report)
    {
        manifest["spec"]["decryption"] = decryption;
    }
    ConvertedApplication {
        origin: object.label.clone(),
        manifest,
        findings: report.findings,
    }
}

/// `postBuild` in the shape driftless reads under `spec.source`.
fn post_build(value: &Value, report: &mut Report<'_>) -> Value {
    report.only_known(
        value,
        "spec.postBuild",
        &["substitute", "substituteFrom", "substituteStrategy"],
    );
    let mut converted = Map::new();
    if let Some(substitute) = value["substitute"].as_object() {
        converted.insert("substitute".into(), Value::Object(substitute.clone()));
    }
    if let Some(strategy) = value.get("substituteStrategy") {
        converted.insert("substituteStrategy".into(), strategy.clone());
    }
    let from = items_with_flag(
        report,
        &value["substituteFrom"],
        "spec.postBuild.substituteFrom",
        &["kind", "name"],
        "optional",
    );
    if !from.is_empty() {
        converted.insert("substituteFrom".into(), Value::Array(from));
    }
    Value::Object(converted)
}

/// SOPS keys from the Secret Flux reads them from, in the object's namespace.
fn decryption(value: &Value, object: &Object<'_>, report: &mut Report<'_>) -> Option<Value> {
    report.only_known(
        value,
        "spec.decryption",
        &["provider", "secretRef", "serviceAccountName"],
    );
    if value["provider"] != json!("sops") {
        report.unsupported("spec.decryption.provider", "only sops is supported");
        return None;
    }
    report.unsupported_where_set(
        value,
        "spec.decryption",
        &["serviceAccountName"],
        "keys from a cloud KMS by workload identity are not supported",
    );
    let name = report.text(&value["secretRef"]["name"], "spec.decryption.secretRef.name")?;
    report.differs(
        "spec.decryption",
        format!(
            "the keys are read from Secret {}/{name} in the destination cluster",
            object.namespace
        ),
    );
    Some(json!({ "keys": [{ "secret": { "name": name, "namespace": object.namespace } }] }))
}

/// A Flux HelmRelease as a driftless Helm application.
#[expect(
    clippy::too_many_lines,
    reason = "one Argo CD or Flux field after another, in the order of their documentation"
)]
pub(super) fn helm_release(
    object: &Object<'_>,
    context: &Context<'_>,
    sources: &Sources<'_>,
) -> ConvertedApplication {
    let mut report = Report::new(object);
    let spec = object.spec();
    report.only_known(
        spec,
        "spec",
        &[
            "chart",
            "chartRef",
            "releaseName",
            "targetNamespace",
            "storageNamespace",
            "values",
            "valuesFrom",
            "install",
            "upgrade",
            "rollback",
            "uninstall",
            "test",
            "interval",
            "suspend",
            "dependsOn",
            "driftDetection",
            "postRenderers",
            "kubeConfig",
            "serviceAccountName",
            "maxHistory",
            "timeout",
            "persistentClient",
            "commonMetadata",
        ],
    );
    let name = application_name(&object.name, &mut report);
    let (interval, suspended) = common(spec, &mut report);
    let mut helm = Map::new();
    let mut source = Map::new();
    let home = context
        .home_repository
        .map(|(url, revision)| (url.to_owned(), revision.to_owned()))
        .or_else(|| {
            sources
                .bootstrap()
                .map(|bootstrap| git_repository(bootstrap, &mut Report::new(bootstrap)))
        });
    let mut carrier = |source: &mut Map<String, Value>, report: &mut Report<'_>| {
        if let Some((url, revision)) = &home {
            source.insert("repoURL".into(), json!(url));
            source.insert("revision".into(), json!(revision));
        } else {
            report.unsupported(
                "spec.chart",
                "a chart from a chart repository needs a Git repository for its values in driftless (spec.source.repoURL); none is known",
            );
            source.insert("repoURL".into(), json!(""));
        }
    };
    match (&spec["chart"], &spec["chartRef"]) {
        (Value::Null, Value::Null) => {
            report.unsupported("spec.chart", "is missing (and so is spec.chartRef)");
            carrier(&mut source, &mut report);
        }
        (chart, Value::Null) => {
            chart_template(
                chart,
                object,
                sources,
                &mut source,
                &mut helm,
                &mut carrier,
                &mut report,
            );
        }
        (Value::Null, reference) => {
            carrier(&mut source, &mut report);
            chart_ref(reference, object, sources, &mut helm, &mut report);
        }
        _ => {
            report.unsupported("spec.chartRef", "set chart or chartRef, not both");
            carrier(&mut source, &mut report);
        }
    }
    let target = report.text(&spec["targetNamespace"], "spec.targetNamespace");
    let namespace = target.clone().unwrap_or_else(|| object.namespace.clone());
    // Flux's default release name; a driftless application's would be its name alone.
    let release = report
        .text(&spec["releaseName"], "spec.releaseName")
        .or_else(|| target.as_ref().map(|target| format!("{target}-{}", object.name)));
    if let Some(release) = release {
        helm.insert("releaseName".into(), json!(release));
    }
    if !spec["values"].is_null() {
        helm.insert("values".into(), spec["values"].clone());
    }
    report.unsupported_where_set(spec, "spec", &["valuesFrom"], "values from ConfigMaps and Secrets are not supported yet: put them in values or a values file in Git");
    report.unsupported_where_set(
        spec,
        "spec",
        &["postRenderers"],
        "post-renderers are not supported yet",
    );
    report.unsupported_where_set(spec, "spec", &["commonMetadata"], "not supported yet");
    report.differs_where_set(
        spec,
        "spec",
        &["storageNamespace"],
        "driftless renders with helm template: there is no Helm release to store",
    );
    for key in ["install", "upgrade"] {
        let options = &spec[key];
        if options["crds"] == json!("Skip") {
            helm.insert("skipCrds".into(), json!(true));
        }
        if !options.is_null() {
            report.differs(
                &join("spec", key),
                "driftless renders with helm template and applies the objects: no Helm release, remediation or Helm hooks' release semantics; CRDs are applied unless crds: Skip",
            );
        }
    }
    report.ignored(spec, "spec", &["rollback", "uninstall", "test"]);
    let drift = &spec["driftDetection"];
    let self_heal = drift["mode"] == json!("enabled");
    report.unsupported_where_set(
        drift,
        "spec.driftDetection",
        &["ignore"],
        "not supported yet: use ignoreDifferences",
    );
    if drift["mode"] == json!("warn") {
        report.differs(
            "spec.driftDetection.mode",
            "drift is reported in driftless's status and events",
        );
    }
    source.insert("helm".into(), Value::Object(helm));
    let destination = json!({ "cluster": context.home_cluster, "namespace": namespace });
    let mut manifest =
        application_document(&name, &object.manifest["metadata"]["labels"], source, destination);
    manifest["spec"]["syncPolicy"] = sync_policy(interval, suspended, true, self_heal);
    ConvertedApplication {
        origin: object.label.clone(),
        manifest,
        findings: report.findings,
    }
}

/// `spec.chart.spec`: a chart from a HelmRepository, or at a path of a GitRepository.
#[expect(
    clippy::too_many_lines,
    reason = "one Argo CD or Flux field after another, in the order of their documentation"
)]
fn chart_template(
    chart: &Value,
    object: &Object<'_>,
    sources: &Sources<'_>,
    source: &mut Map<String, Value>,
    helm: &mut Map<String, Value>,
    carrier: &mut dyn FnMut(&mut Map<String, Value>, &mut Report<'_>),
    report: &mut Report<'_>,
) {
    report.only_known(chart, "spec.chart", &["spec", "metadata"]);
    let template = &chart["spec"];
    report.only_known(
        template,
        "spec.chart.spec",
        &[
            "chart",
            "version",
            "sourceRef",
            "valuesFiles",
            "valuesFile",
            "interval",
            "reconcileStrategy",
            "verify",
            "ignoreMissingValuesFiles",
        ],
    );
    report.differs_where_set(
        chart,
        "spec.chart",
        &["metadata"],
        "the HelmChart object Flux makes is not made; ignored",
    );
    report.ignored(template, "spec.chart.spec", &["interval", "reconcileStrategy"]);
    report.unsupported_where_set(template, "spec.chart.spec", &["verify"], UNVERIFIED_CHART);
    let chart_name = report
        .text(&template["chart"], "spec.chart.spec.chart")
        .unwrap_or_default();
    let version = report.text(&template["version"], "spec.chart.spec.version");
    let mut files: Vec<String> = report
        .list(&template["valuesFiles"], "spec.chart.spec.valuesFiles")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    if let Some(file) = report.text(&template["valuesFile"], "spec.chart.spec.valuesFile") {
        files.insert(0, file);
    }
    let Some(reference) = source_ref(
        &template["sourceRef"],
        "spec.chart.spec.sourceRef",
        object,
        report,
    ) else {
        carrier(source, report);
        return;
    };
    match (
        reference.kind.as_str(),
        sources.find(&reference.kind, &reference.namespace, &reference.name),
    ) {
        ("HelmRepository", Some(repository)) => {
            carrier(source, report);
            let url = helm_repository(repository, report);
            let mut converted = json!({ "repository": url, "name": chart_name });
            if let Some(version) = version.filter(|version| version != "*") {
                converted["version"] = json!(version);
            }
            helm.insert("chart".into(), converted);
            if !files.is_empty() {
                report.unsupported(
                    "spec.chart.spec.valuesFiles",
                    "values files inside a chart archive are not supported yet",
                );
            }
        }
        ("GitRepository", Some(repository)) => {
            let (url, revision) = git_repository(repository, report);
            let chart_path = relative_path(&chart_name);
            source.insert("repoURL".into(), json!(url));
            source.insert("revision".into(), json!(revision));
            source.insert("path".into(), json!(chart_path));
            if version.is_some() {
                report.differs(
                    "spec.chart.spec.version",
                    "the chart at the revision is used, whatever its version",
                );
            }
            if !files.is_empty() {
                // Flux's are relative to the source's root, driftless's to the chart.
                let up = "../".repeat(chart_path.split('/').filter(|part| !part.is_empty()).count());
                let files: Vec<String> = files
                    .iter()
                    .map(|file| {
                        let file = relative_path(file);
                        file.strip_prefix(&format!("{chart_path}/"))
                            .map_or_else(|| format!("{up}{file}"), str::to_owned)
                    })
                    .collect();
                helm.insert("valueFiles".into(), json!(files));
                report.differs(
                    "spec.chart.spec.valuesFiles",
                    "the chart's own values.yaml is still read first, as helm template does",
                );
            }
        }
        (kind @ ("HelmRepository" | "GitRepository"), None) => {
            carrier(source, report);
            report.unsupported(
                "spec.chart.spec.sourceRef",
                format!(
                    "{kind} {}/{} is not among the objects read",
                    reference.namespace, reference.name
                ),
            );
        }
        (kind, _) => {
            carrier(source, report);
            report.unsupported(
                "spec.chart.spec.sourceRef.kind",
                format!("charts from a source of kind {kind} are not supported"),
            );
        }
    }
}

/// A HelmRepository's URL as a chart repository of driftless (`oci://` for type oci).
fn helm_repository(repository: &Object<'_>, report: &mut Report<'_>) -> String {
    let mut own = Report::new(repository);
    let spec = repository.spec();
    own.only_known(
        spec,
        "spec",
        &[
            "url",
            "type",
            "secretRef",
            "certSecretRef",
            "passCredentials",
            "interval",
            "timeout",
            "provider",
            "insecure",
            "suspend",
            "accessFrom",
        ],
    );
    let url = own.text(&spec["url"], "spec.url").unwrap_or_default();
    if spec["type"] == json!("oci") && !url.starts_with("oci://") {
        own.unsupported("spec.url", "an OCI HelmRepository's URL must start with oci://");
    }
    if !spec["secretRef"].is_null() || !spec["certSecretRef"].is_null() {
        own.differs("spec.secretRef", CREDENTIALS);
    }
    if spec["insecure"] == json!(true) {
        own.differs(
            "spec.insecure",
            "plain HTTP is allowed for OCI registries only as driftless.yaml's chart.plainHttp says",
        );
    }
    report.findings.extend(own.findings);
    url
}

/// `spec.chartRef`: a chart in an OCIRepository (a HelmChart is not supported).
fn chart_ref(
    reference: &Value,
    object: &Object<'_>,
    sources: &Sources<'_>,
    helm: &mut Map<String, Value>,
    report: &mut Report<'_>,
) {
    let Some(reference) = source_ref(reference, "spec.chartRef", object, report) else {
        return;
    };
    let found = sources.find(&reference.kind, &reference.namespace, &reference.name);
    let Some(repository) = found.filter(|_| reference.kind == "OCIRepository") else {
        report.unsupported(
            "spec.chartRef",
            if reference.kind == "OCIRepository" {
                format!(
                    "OCIRepository {}/{} is not among the objects read",
                    reference.namespace, reference.name
                )
            } else {
                format!(
                    "charts from a source of kind {} are not supported",
                    reference.kind
                )
            },
        );
        return;
    };
    let mut own = Report::new(repository);
    let spec = repository.spec();
    own.only_known(
        spec,
        "spec",
        &[
            "url",
            "ref",
            "layerSelector",
            "secretRef",
            "certSecretRef",
            "serviceAccountName",
            "provider",
            "insecure",
            "interval",
            "timeout",
            "ignore",
            "suspend",
            "verify",
            "proxySecretRef",
        ],
    );
    let url = own.text(&spec["url"], "spec.url").unwrap_or_default();
    let (registry, chart) = url.rsplit_once('/').unwrap_or((url.as_str(), ""));
    let mut converted = json!({ "repository": registry, "name": chart });
    let version_ref = &spec["ref"];
    own.only_known(
        version_ref,
        "spec.ref",
        &["tag", "semver", "digest", "semverFilter"],
    );
    if !version_ref["digest"].is_null() {
        own.unsupported(
            "spec.ref.digest",
            "charts pinned by digest are not supported yet: name the version",
        );
    } else if let Some(version) = own
        .text(&version_ref["semver"], "spec.ref.semver")
        .or_else(|| own.text(&version_ref["tag"], "spec.ref.tag"))
    {
        converted["version"] = json!(version);
    }
    own.unsupported_where_set(spec, "spec", &["verify"], UNVERIFIED_CHART);
    own.differs_where_set(spec, "spec", &["secretRef"], CREDENTIALS);
    own.ignored(
        spec,
        "spec",
        &[
            "layerSelector",
            "serviceAccountName",
            "provider",
            "insecure",
            "ignore",
            "proxySecretRef",
            "certSecretRef",
        ],
    );
    report.findings.extend(own.findings);
    helm.insert("chart".into(), converted);
}
