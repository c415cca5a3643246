//! The conversion over real-world-shaped objects (fixtures: tests/fixtures/foreign/README.md).

use serde_json::{Value, json};

use super::{
    Context, Conversion, ConvertedApplication, ForeignObject, KnownCluster, Purpose, convert, read_objects,
};

fn fixture(name: &str) -> Vec<ForeignObject> {
    let path = format!("{}/tests/fixtures/foreign/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture");
    read_objects(&text, name).expect("fixture parses")
}

fn clusters() -> Vec<KnownCluster> {
    vec![
        KnownCluster {
            name: "local".into(),
            server: None,
        },
        KnownCluster {
            name: "production".into(),
            server: Some("https://prod.example.com:6443/".into()),
        },
    ]
}

fn children(name: &str) -> Conversion {
    children_of(&fixture(name))
}

/// The objects as a root's children, in the root's repository.
fn children_of(objects: &[ForeignObject]) -> Conversion {
    let clusters = clusters();
    let context = Context {
        purpose: Purpose::Children,
        home_cluster: "local",
        clusters: &clusters,
        home_repository: Some(("https://git.example/root", "main")),
    };
    convert(objects, &context)
}

fn application<'c>(conversion: &'c Conversion, name: &str) -> &'c ConvertedApplication {
    conversion
        .applications
        .iter()
        .find(|app| app.name() == name)
        .unwrap_or_else(|| panic!("{name}"))
}

/// The fields whose findings hold the application back.
fn unsupported_fields(app: &ConvertedApplication) -> Vec<&str> {
    app.unsupported().map(|f| f.field.as_str()).collect()
}

/// What a reader needs to see: each application's document and findings, and the rest.
fn summary(conversion: &Conversion) -> Value {
    json!({
        "applications": conversion.applications.iter().map(|app| json!({
            "origin": app.origin,
            "manifest": app.manifest,
            "findings": app.findings.iter().map(|finding| format!("[{:?}] {}: {}", finding.severity, finding.field, finding.message)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "projects": conversion.projects.iter().map(|project| json!({
            "origin": project.origin,
            "document": project.document,
            "findings": project.findings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "findings": conversion.findings.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).expect("YAML")
}

/// Every converted document passes driftless.yaml's own validation (the same the engine runs).
fn validates(conversion: &Conversion) {
    let clusters: Vec<String> = clusters().into_iter().map(|cluster| cluster.name).collect();
    for app in &conversion.applications {
        crate::application_from_manifest(&app.manifest, &app.origin, &clusters)
            .unwrap_or_else(|err| panic!("{}: {err}", app.origin));
    }
}

#[test]
fn argo_app_of_apps_chart() {
    let conversion = children("argocd-example-apps/apps.yaml");
    assert_eq!(conversion.applications.len(), 14);
    // Plugins have no equivalent: exactly those three are held back.
    let blocked: Vec<&str> = conversion
        .applications
        .iter()
        .filter(|app| app.unsupported().next().is_some())
        .map(ConvertedApplication::name)
        .collect();
    assert_eq!(
        blocked,
        [
            "example-plugin-kasane",
            "example-plugin-kustomized-helm",
            "example-plugin-nix"
        ]
    );
    let guestbook = application(&conversion, "example-guestbook");
    validates(&Conversion {
        applications: vec![guestbook.clone()],
        ..Conversion::default()
    });
    insta::assert_snapshot!(yaml(&summary(&conversion)));
}

#[test]
fn argo_edge_cases() {
    let conversion = children("argo-edge-cases.yaml");
    let blocked = |name: &str| unsupported_fields(application(&conversion, name));
    // jq expressions change what counts as drift: held back.
    assert_eq!(
        blocked("team-a-web"),
        ["spec.ignoreDifferences[1].jqPathExpressions"]
    );
    // An AppProject in Git narrows: this one leaves team-a's namespaces and repositories.
    assert_eq!(blocked("escapes-team-a"), ["spec.project"]);
    // Sync windows cannot be enforced, so nothing in that project syncs.
    assert_eq!(blocked("in-a-window"), ["spec.project"]);
    assert!(blocked("redis").is_empty(), "{:?}", blocked("redis"));
    assert_eq!(blocked("overlays"), ["spec.sources", "spec.destination"]);
    assert_eq!(
        blocked("kustomized"),
        [
            "spec.source.kustomize.images",
            "spec.source.kustomize.namePrefix",
            "spec.syncPolicy.syncOptions[0]",
            "spec.syncPolicy.managedNamespaceMetadata"
        ]
    );
    assert!(
        conversion
            .findings
            .iter()
            .any(|finding| finding.object.starts_with("ApplicationSet argocd/clusters") && finding.blocks())
    );
    // The child's project stays the root's: a declared AppProject is never named.
    for app in &conversion.applications {
        assert!(app.manifest["spec"]["project"].is_null(), "{}", app.origin);
    }
    insta::assert_snapshot!(yaml(&summary(&conversion)));
}

#[test]
fn argo_projects_imported() {
    let clusters = clusters();
    let context = Context {
        purpose: Purpose::Import,
        home_cluster: "local",
        clusters: &clusters,
        home_repository: None,
    };
    let conversion = convert(&fixture("argo-edge-cases.yaml"), &context);
    let names: Vec<&str> = conversion
        .projects
        .iter()
        .map(|project| project.document["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["team-a", "windows"]);
    let web = &conversion.applications[0];
    assert_eq!(web.manifest["spec"]["project"], "team-a");
    // Without a root there is no Git repository for the chart's values.
    assert_eq!(
        unsupported_fields(application(&conversion, "redis")),
        ["spec.source.chart"]
    );
    insta::assert_snapshot!(yaml(&json!(conversion.projects.iter().map(|p| json!({"document": p.document, "findings": p.findings.iter().map(ToString::to_string).collect::<Vec<_>>()})).collect::<Vec<_>>())));
}

#[test]
fn flux_example_repository() {
    let conversion = children("flux2-kustomize-helm-example/objects.yaml");
    let names: Vec<&str> = conversion
        .applications
        .iter()
        .map(ConvertedApplication::name)
        .collect();
    assert_eq!(
        names,
        ["infra-controllers", "infra-configs", "podinfo", "cert-manager"]
    );
    let podinfo = &conversion.applications[2];
    assert_eq!(
        podinfo.manifest["spec"]["source"]["helm"]["chart"],
        json!({ "repository": "https://stefanprodan.github.io/podinfo", "name": "podinfo" })
    );
    assert!(podinfo.unsupported().next().is_none());
    let cert_manager = &conversion.applications[3];
    assert_eq!(
        cert_manager.manifest["spec"]["source"]["helm"]["chart"],
        json!({ "repository": "oci://quay.io/jetstack/charts", "name": "cert-manager", "version": "1.x" })
    );
    // ExternalArtifact sources and Flux-side patches have no equivalent.
    assert_eq!(
        unsupported_fields(&conversion.applications[1]),
        ["spec.sourceRef.kind", "spec.patches"]
    );
    validates(&Conversion {
        applications: vec![podinfo.clone(), cert_manager.clone()],
        ..Conversion::default()
    });
    insta::assert_snapshot!(yaml(&summary(&conversion)));
}

#[test]
fn flux_bootstrap_shape() {
    let conversion = children("flux-bootstrap.yaml");
    let app = |name: &str| application(&conversion, name);
    let root = app("flux-system");
    assert_eq!(
        root.manifest["spec"]["source"],
        json!({ "repoURL": "ssh://git@github.com/example/fleet-infra", "revision": "main", "path": "clusters/my-cluster", "kustomize": {} })
    );
    assert!(root.unsupported().next().is_none());
    validates(&Conversion {
        applications: vec![root.clone()],
        ..Conversion::default()
    });
    let apps = app("apps");
    assert_eq!(
        apps.manifest["spec"]["source"]["postBuild"]["substituteFrom"][1],
        json!({ "kind": "Secret", "name": "cluster-secrets", "optional": true })
    );
    assert_eq!(
        apps.manifest["spec"]["source"]["postBuild"]["substituteStrategy"],
        "Always"
    );
    assert_eq!(apps.manifest["spec"]["destination"]["namespace"], "apps");
    assert_eq!(unsupported_fields(apps), ["spec.images"]);
    // Suspended: listed, manual syncs only; a Bucket has no equivalent.
    let bucket = app("from-bucket");
    assert!(bucket.manifest["spec"]["syncPolicy"]["automated"].is_null());
    assert_eq!(unsupported_fields(bucket), ["spec.sourceRef.kind"]);
    let chart = app("chart-in-git");
    assert_eq!(
        chart.manifest["spec"]["source"]["helm"]["valueFiles"],
        json!(["values-staging.yaml", "../../shared/common.yaml"])
    );
    assert_eq!(
        chart.manifest["spec"]["source"]["helm"]["releaseName"],
        "web-chart-in-git"
    );
    assert_eq!(
        chart.manifest["spec"]["syncPolicy"]["automated"]["selfHeal"],
        true
    );
    assert_eq!(unsupported_fields(chart), ["spec.valuesFrom"]);
    insta::assert_snapshot!(yaml(&summary(&conversion)));
}

#[test]
fn only_argo_and_flux_objects_are_read() {
    for (manifest, foreign) in [
        (
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}),
            true,
        ),
        (
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout"}),
            false,
        ),
        (
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization"}),
            true,
        ),
        (
            json!({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}),
            false,
        ),
        (
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "OCIRepository"}),
            true,
        ),
        (
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2beta2", "kind": "HelmRelease"}),
            true,
        ),
        (
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Alert"}),
            false,
        ),
        (json!({"apiVersion": "v1", "kind": "ConfigMap"}), false),
        (json!({"kind": "Application"}), false),
    ] {
        assert_eq!(super::is_foreign(&manifest), foreign, "{manifest}");
    }
}

#[test]
fn a_hostile_stream_is_refused_with_its_file() {
    let err = read_objects("a: &a [*a, *a]\n---\n- 1\n", "evil.yaml").expect_err("not objects");
    assert!(err.to_string().starts_with("evil.yaml: "), "{err}");
}

#[test]
fn hostile_values_from_git_are_refused_by_the_validation_every_application_passes() {
    let objects = read_objects(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: evil, namespace: flux-system}
spec: {url: 'ext::sh -c touch% /tmp/pwned', ref: {branch: '--upload-pack=touch /tmp/pwned'}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: evil, namespace: flux-system}
spec:
  path: ../../etc
  sourceRef: {kind: GitRepository, name: evil}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: evil-chart, namespace: argocd}
spec:
  source:
    repoURL: https://charts.example
    chart: web
    helm: {releaseName: '--post-renderer=/bin/sh', valueFiles: ['https://evil.example/values.yaml']}
  destination: {name: in-cluster, namespace: web}
",
        "evil.yaml",
    )
    .expect("YAML");
    let conversion = children_of(&objects);
    let names: Vec<String> = clusters().into_iter().map(|cluster| cluster.name).collect();
    let problems = |index: usize| {
        let app = &conversion.applications[index];
        crate::application_from_manifest(&app.manifest, &app.origin, &names)
            .expect_err("refused")
            .problems
            .iter()
            .map(|problem| problem.field.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        problems(0),
        ["spec.source.repoURL", "spec.source.revision", "spec.source.path"]
    );
    let chart = problems(1);
    assert!(
        chart.contains(&"spec.source.helm.valueFiles".to_owned())
            && chart.contains(&"spec.source.helm.releaseName".to_owned()),
        "{chart:?}"
    );
}
