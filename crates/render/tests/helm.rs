//! Helm charts from a real repository, rendered by real Helm (the shim over Helm 4's Go SDK that
//! scripts/testenv installs): values layering, SOPS-encrypted values, Capabilities, CRDs,
//! vendored subcharts, template errors, values files that try to leave the repository.

use driftless_core::application::{HelmOptions, HelmParameter, Renderer, Source};
use driftless_git::Mirrors;
use driftless_render::{Keys, RenderError, RenderLimits, RenderTarget, Rendered, render};
use driftless_testenv::git::TestRepo;
use driftless_testenv::helm::assert_helm_on_path;
use driftless_testenv::sops::Lab;

const TARGET: RenderTarget<'static> = RenderTarget {
    application: "web",
    namespace: Some("shop"),
    kube_version: Some("v1.20.2"),
    api_versions: &[],
    charts: None,
    allow_empty: false,
};

fn chart_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: sidecar\n    version: 0.1.0\n")
        .write("charts/web/values.yaml", "replicas: 1\nimage: {repository: example.invalid/web, tag: \"1\"}\npassword: default\n")
        .write(
            "charts/web/templates/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\n  annotations:\n    kube-version: {{ .Capabilities.KubeVersion.Version | quote }}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
        )
        .write(
            "charts/web/templates/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-db\nstringData:\n  password: {{ .Values.password | quote }}\n",
        )
        .write(
            "charts/web/crds/widgets.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema: {openAPIV3Schema: {type: object}}\n",
        )
        .write("charts/web/charts/sidecar/Chart.yaml", "apiVersion: v2\nname: sidecar\nversion: 0.1.0\n")
        .write("charts/web/charts/sidecar/values.yaml", "greeting: hello\n")
        .write(
            "charts/web/charts/sidecar/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sidecar\ndata:\n  greeting: {{ .Values.greeting }}\n",
        )
        .write("env/prod.yaml", "replicas: 3\nimage: {tag: \"2\"}\n");
    repo
}

async fn render_chart(repo: &TestRepo, options: HelmOptions, keys: &Keys) -> Result<Rendered, RenderError> {
    assert_helm_on_path();
    repo.commit("chart");
    let dir = tempfile::tempdir().expect("tempdir");
    let mirrors = Mirrors::new(dir.path().to_owned(), Vec::new());
    let url = repo.file_url();
    let commit = mirrors.fetch_and_resolve(&url, "main").await.expect("fetch");
    let tree = mirrors.read_tree(&url, &commit, "").await.expect("read tree");
    let source = Source {
        repo_url: url,
        revision: "main".into(),
        path: "charts/web".into(),
        renderer: Renderer::Helm(options),
    };
    render(&tree, &source, TARGET, &RenderLimits::default(), keys).await
}

fn find<'a>(rendered: &'a Rendered, kind: &str) -> &'a serde_json::Value {
    &rendered
        .manifests
        .iter()
        .find(|m| m.manifest["kind"] == kind)
        .unwrap_or_else(|| panic!("{kind} in {:?}", rendered.manifests))
        .manifest
}

#[tokio::test]
async fn values_layer_in_order_with_encrypted_files_and_parameters_on_top() {
    let repo = chart_repo();
    let lab = Lab::new();
    let (identity, recipient) = lab.age_key("team");
    let sealed = lab.encrypt(
        "secret.yaml",
        b"password: canary-helm-8d2f\n",
        &["--age", &recipient],
        &[],
    );
    repo.write("env/secret.yaml", std::str::from_utf8(&sealed).expect("utf-8"));
    let mut keys = Keys::new();
    keys.add(identity.as_bytes(), "test identity").expect("key");
    let options = HelmOptions {
        value_files: vec!["../../env/prod.yaml".into(), "../../env/secret.yaml".into()],
        values: Some(r#"{"image": {"repository": "example.invalid/shop"}}"#.into()),
        parameters: vec![HelmParameter {
            name: "image.tag".into(),
            value: "3".into(),
            force_string: true,
        }],
        kube_version: Some("1.29.0".into()),
        ..HelmOptions::default()
    };
    let rendered = render_chart(&repo, options, &keys).await.expect("renders");
    assert_eq!(rendered.renderer, "helm");
    assert!(rendered.decrypted, "an encrypted values file was used");
    let deployment = find(&rendered, "Deployment");
    assert_eq!(
        deployment["metadata"]["name"], "web",
        "release name defaults to the application"
    );
    assert_eq!(
        deployment["metadata"]["namespace"], "shop",
        "namespace defaults to the destination"
    );
    assert_eq!(
        deployment["spec"]["replicas"], 3,
        "a values file beats the chart's values"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"], "example.invalid/shop:3",
        "inline values beat files, parameters beat both"
    );
    assert_eq!(deployment["metadata"]["annotations"]["kube-version"], "v1.29.0");
    assert_eq!(
        find(&rendered, "Secret")["stringData"]["password"],
        "canary-helm-8d2f"
    );
    assert_eq!(
        find(&rendered, "ConfigMap")["data"]["greeting"],
        "hello",
        "vendored subchart"
    );
    assert_eq!(
        rendered.manifests[0].manifest["kind"], "CustomResourceDefinition",
        "CRDs first, included by default"
    );
    let inputs = rendered.inputs.as_ref().expect("inputs known");
    assert!(inputs.contains("env/prod.yaml") && inputs.contains("charts/web/values.yaml"));

    let skipped = render_chart(
        &repo,
        HelmOptions {
            skip_crds: true,
            ..HelmOptions::default()
        },
        &keys,
    )
    .await
    .expect("renders");
    assert!(
        skipped
            .manifests
            .iter()
            .all(|m| m.manifest["kind"] != "CustomResourceDefinition")
    );
    assert!(!skipped.decrypted);
}

/// A parameter's value is one value: a `,` cannot start another assignment, whatever backslashes
/// precede it; `\,` is a literal comma, as Argo CD's users write it.
#[tokio::test]
async fn parameter_values_are_literal_and_cannot_add_assignments() {
    let repo = chart_repo();
    let options = HelmOptions {
        parameters: vec![
            HelmParameter {
                name: "image.tag".into(),
                value: "2,replicas=7".into(),
                force_string: false,
            },
            HelmParameter {
                name: "password".into(),
                value: r"{a,b}\,c\\,replicas=9".into(),
                force_string: true,
            },
        ],
        ..HelmOptions::default()
    };
    let rendered = render_chart(&repo, options, &Keys::new()).await.expect("renders");
    let deployment = find(&rendered, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1, "no assignment was added");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "example.invalid/web:2,replicas=7"
    );
    assert_eq!(
        find(&rendered, "Secret")["stringData"]["password"],
        r"{a,b},c\,replicas=9"
    );
}

#[tokio::test]
async fn a_failing_template_and_escaping_values_files_are_clear_errors() {
    let repo = chart_repo();
    repo.write(
        "charts/web/templates/broken.yaml",
        "{{ .Values.missing.deeper }}\n",
    );
    let err = render_chart(&repo, HelmOptions::default(), &Keys::new())
        .await
        .expect_err("template error");
    let message = err.to_string();
    assert!(
        message.starts_with("helm template charts/web failed:") && message.contains("broken.yaml"),
        "{message}"
    );
    assert!(
        !message.contains("/tmp/"),
        "names repository paths only: {message}"
    );

    let repo = chart_repo();
    repo.symlink("charts/web/leak.yaml", "/etc/passwd");
    for (file, expected) in [
        (
            "../../../../etc/passwd",
            "values file ../../../../etc/passwd: leaves the repository",
        ),
        (
            "https://example.invalid/values.yaml",
            "values file https://example.invalid/values.yaml: values files must be paths inside the repository",
        ),
        (
            "leak.yaml",
            "values file leak.yaml: charts/web/leak.yaml: symlink to \"/etc/passwd\" points outside the repository",
        ),
        (
            "../../env/missing.yaml",
            "values file ../../env/missing.yaml: env/missing.yaml: no such file in the repository at this commit",
        ),
    ] {
        let options = HelmOptions {
            value_files: vec![file.into()],
            ..HelmOptions::default()
        };
        let err = render_chart(&repo, options, &Keys::new()).await.expect_err(file);
        assert_eq!(err.to_string(), expected);
    }
}

#[tokio::test]
async fn hooks_become_pre_and_post_sync_hooks_in_their_weights_wave_and_tests_are_left_out() {
    let repo = chart_repo();
    let hook = |name: &str, kind: &str, hook: &str, weight: &str| {
        format!(
            "apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  annotations:\n    helm.sh/hook: {hook}\n    helm.sh/hook-weight: {weight:?}\n"
        )
    };
    repo.write(
        "charts/web/templates/migrate.yaml",
        &hook("migrate", "ConfigMap", "pre-install,pre-upgrade", "-5"),
    )
    .write(
        "charts/web/templates/seed.yaml",
        &hook("seed", "ConfigMap", "pre-upgrade", "3"),
    )
    .write(
        "charts/web/templates/notify.yaml",
        &hook("notify", "ConfigMap", "post-install", "0"),
    )
    .write(
        "charts/web/templates/smoke.yaml",
        &hook("smoke", "Pod", "test", "0"),
    )
    .write(
        "charts/web/templates/cleanup.yaml",
        &hook("cleanup", "ConfigMap", "pre-delete", "0"),
    );
    let rendered = render_chart(&repo, HelmOptions::default(), &Keys::new())
        .await
        .expect("renders");
    let annotation = |name: &str, key: &str| {
        rendered
            .manifests
            .iter()
            .find(|m| m.manifest["metadata"]["name"] == name)
            .map(|m| m.manifest["metadata"]["annotations"][key].clone())
    };
    let wave = |name: &str| annotation(name, "driftless.dev/sync-wave");
    let phase = |name: &str| annotation(name, "driftless.dev/hook");
    assert_eq!(
        wave("migrate"),
        Some(serde_json::json!("-5")),
        "the weight is the wave"
    );
    assert_eq!(phase("migrate"), Some(serde_json::json!("PreSync")));
    assert_eq!(wave("seed"), Some(serde_json::json!("3")));
    assert_eq!(phase("seed"), Some(serde_json::json!("PreSync")));
    assert_eq!(wave("notify"), Some(serde_json::json!("0")));
    assert_eq!(phase("notify"), Some(serde_json::json!("PostSync")));
    assert_eq!(
        wave("web"),
        Some(serde_json::Value::Null),
        "the chart's own objects keep wave 0"
    );
    assert_eq!(phase("web"), Some(serde_json::Value::Null), "not a hook");
    assert_eq!(wave("smoke"), None, "test hooks are not part of a sync");
    assert_eq!(wave("cleanup"), None, "delete hooks are not part of a sync");
    let policy = |name: &str| annotation(name, "driftless.dev/hook-delete-policy");
    assert_eq!(
        policy("migrate"),
        Some(serde_json::json!("before-hook-creation")),
        "Helm's default deletion policy, spelled out for the sync"
    );
    assert_eq!(policy("web"), Some(serde_json::Value::Null), "not a hook");
}

#[tokio::test]
async fn file_dependencies_in_the_repository_are_resolved_and_outside_it_refused() {
    let repo = chart_repo();
    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: sidecar\n    version: 0.1.0\n  - name: common\n    version: 2.0.0\n    repository: file://../common\n",
    )
    .write("charts/common/Chart.yaml", "apiVersion: v2\nname: common\nversion: 2.0.0\n")
    .write("charts/common/values.yaml", "label: shared\n")
    .write(
        "charts/common/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: common\ndata:\n  label: {{ .Values.label }}\n",
    );
    let rendered = render_chart(&repo, HelmOptions::default(), &Keys::new())
        .await
        .expect("renders");
    let common = rendered
        .manifests
        .iter()
        .find(|m| m.manifest["metadata"]["name"] == "common")
        .expect("the file:// dependency rendered");
    assert_eq!(common.manifest["data"]["label"], "shared");
    assert!(
        rendered
            .inputs
            .as_ref()
            .expect("inputs")
            .contains("charts/common/templates/cm.yaml"),
        "a change to the dependency re-renders the chart"
    );

    repo.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: sidecar\n    version: 0.1.0\n  - name: stolen\n    version: 1.0.0\n    repository: file://../../../../../etc\n",
    );
    let err = render_chart(&repo, HelmOptions::default(), &Keys::new())
        .await
        .expect_err("outside the repository");
    assert_eq!(
        err.to_string(),
        "helm template charts/web failed: dependency stolen at file://../../../../../etc: leaves the repository"
    );
}

#[tokio::test]
async fn dependencies_from_chart_repositories_need_a_url_and_chart_access() {
    let repo = chart_repo();
    for (repository, expected) in [
        (
            "'@stable'",
            "helm template charts/web failed: dependency common at @stable: name the chart repository by its URL (https:// or oci://), not by a `helm repo add` name",
        ),
        (
            "https://charts.example.invalid/stable",
            "chart common ^2 from https://charts.example.invalid/stable: chart repositories are not available here",
        ),
    ] {
        repo.write(
            "charts/web/Chart.yaml",
            &format!(
                "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: sidecar\n    version: 0.1.0\n  - name: common\n    version: ^2\n    repository: {repository}\n"
            ),
        );
        let err = render_chart(&repo, HelmOptions::default(), &Keys::new())
            .await
            .expect_err(repository);
        assert_eq!(err.to_string(), expected);
    }
}
