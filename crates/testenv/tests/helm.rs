//! The helm shim that scripts/testenv installs renders charts with real Helm: values layering,
//! Release and Capabilities, CRDs, hooks, vendored subcharts and template errors. These tests fail
//! (they do not skip) when the shim is missing.

use std::path::Path;
use std::process::{Command, Output};

use driftless_testenv::helm::helm_binary;

fn write(root: &Path, path: &str, contents: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, contents).expect("write");
}

/// A chart with a Deployment, a pre-install hook Job, a CRD and a vendored subchart.
fn chart() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\ndependencies:\n  - name: sub\n    version: 0.2.0\n",
    );
    write(
        root,
        "demo/values.yaml",
        "replicas: 1\nimage: nginx\ntag: latest\nexplode: false\nsub:\n  greeting: from-parent\n",
    );
    write(
        root,
        "demo/templates/deployment.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
  annotations:
    kube-version: {{ .Capabilities.KubeVersion.Version | quote }}
    has-widgets: {{ .Capabilities.APIVersions.Has "example.com/v1/Widget" | quote }}
spec:
  replicas: {{ .Values.replicas }}
  template:
    spec:
      containers:
        - name: web
          image: "{{ .Values.image }}:{{ .Values.tag }}"
"#,
    );
    write(
        root,
        "demo/templates/migrate.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    "helm.sh/hook": pre-install
    "helm.sh/hook-delete-policy": hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: busybox
"#,
    );
    write(
        root,
        "demo/templates/explode.yaml",
        "{{- if .Values.explode }}{{ fail \"explode was set\" }}{{- end }}\n",
    );
    write(
        root,
        "demo/crds/widget.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n",
    );
    write(
        root,
        "demo/charts/sub/Chart.yaml",
        "apiVersion: v2\nname: sub\nversion: 0.2.0\n",
    );
    write(
        root,
        "demo/charts/sub/values.yaml",
        "greeting: from-sub\nother: sub-default\n",
    );
    write(
        root,
        "demo/charts/sub/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-sub\ndata:\n  greeting: {{ .Values.greeting }}\n  other: {{ .Values.other }}\n",
    );
    write(root, "a.yaml", "replicas: 2\nimage: registry.example/a\n");
    write(root, "b.yaml", "replicas: 3\n");
    dir
}

fn helm(dir: &Path, args: &[&str]) -> Output {
    Command::new(helm_binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the helm shim")
}

/// `helm template web demo ARGS...`, which must succeed; returns stdout.
fn template(dir: &Path, args: &[&str]) -> String {
    let mut all = vec!["template", "web", "demo"];
    all.extend_from_slice(args);
    let output = helm(dir, &all);
    assert!(
        output.status.success(),
        "helm {all:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The `# Source:` of every document, in order.
fn sources(rendered: &str) -> Vec<&str> {
    rendered
        .lines()
        .filter_map(|line| line.strip_prefix("# Source: "))
        .collect()
}

/// The document rendered from `source`.
fn document<'a>(rendered: &'a str, source: &str) -> &'a str {
    rendered
        .split("---\n")
        .find(|doc| doc.starts_with(&format!("# Source: {source}\n")))
        .unwrap_or_else(|| panic!("no document from {source} in:\n{rendered}"))
}

#[test]
fn version_is_helm_4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = helm(dir.path(), &["version", "--short"]);
    assert!(output.status.success());
    let version = String::from_utf8(output.stdout).expect("utf-8");
    assert!(version.starts_with("v4."), "{version}");
}

#[test]
fn renders_the_stream_helm_template_prints() {
    let dir = chart();
    let out = template(dir.path(), &[]);
    assert!(out.starts_with("---\n# Source: "), "{out}");
    // Install order by kind (ConfigMap before Deployment), hooks after the manifests; no CRDs
    // without --include-crds, nothing from an empty template.
    assert_eq!(
        sources(&out),
        [
            "demo/charts/sub/templates/configmap.yaml",
            "demo/templates/deployment.yaml",
            "demo/templates/migrate.yaml",
        ]
    );
    let deployment = document(&out, "demo/templates/deployment.yaml");
    assert!(deployment.contains("name: web-web\n"), "{deployment}");
    assert!(deployment.contains("namespace: default\n"), "{deployment}");
    assert!(deployment.contains("replicas: 1\n"), "{deployment}");
    let hook = document(&out, "demo/templates/migrate.yaml");
    assert!(hook.contains("\"helm.sh/hook\": pre-install"), "{hook}");
    assert!(hook.contains("name: web-migrate"), "{hook}");
    // The subchart renders with its own values, overridden from the parent's.
    let configmap = document(&out, "demo/charts/sub/templates/configmap.yaml");
    assert!(configmap.contains("greeting: from-parent\n"), "{configmap}");
    assert!(configmap.contains("other: sub-default\n"), "{configmap}");
}

#[test]
fn values_files_layer_in_order_and_set_wins() {
    let dir = chart();
    let files = template(dir.path(), &["--values", "a.yaml", "--values", "b.yaml"]);
    let deployment = document(&files, "demo/templates/deployment.yaml");
    assert!(deployment.contains("replicas: 3\n"), "{deployment}");
    assert!(
        deployment.contains("image: \"registry.example/a:latest\""),
        "{deployment}"
    );

    let reversed = template(dir.path(), &["-f", "b.yaml,a.yaml"]);
    assert!(document(&reversed, "demo/templates/deployment.yaml").contains("replicas: 2\n"));

    let set = template(
        dir.path(),
        &[
            "--values=a.yaml",
            "-f",
            "b.yaml",
            "--set",
            "replicas=5",
            "--set",
            "sub.greeting=from-set",
            "--set-string",
            "tag=1.25",
        ],
    );
    let deployment = document(&set, "demo/templates/deployment.yaml");
    assert!(deployment.contains("replicas: 5\n"), "{deployment}");
    assert!(
        deployment.contains("image: \"registry.example/a:1.25\""),
        "{deployment}"
    );
    assert!(document(&set, "demo/charts/sub/templates/configmap.yaml").contains("greeting: from-set\n"));
}

#[test]
fn namespace_and_capabilities_follow_the_flags() {
    let dir = chart();
    let default = template(dir.path(), &[]);
    let deployment = document(&default, "demo/templates/deployment.yaml");
    assert!(deployment.contains("has-widgets: \"false\""), "{deployment}");

    let out = template(
        dir.path(),
        &[
            "--namespace",
            "prod",
            "--kube-version",
            "v1.29.3",
            "--api-versions",
            "example.com/v1/Widget",
        ],
    );
    let deployment = document(&out, "demo/templates/deployment.yaml");
    assert!(deployment.contains("namespace: prod\n"), "{deployment}");
    assert!(deployment.contains("kube-version: \"v1.29.3\""), "{deployment}");
    assert!(deployment.contains("has-widgets: \"true\""), "{deployment}");
}

#[test]
fn crds_come_first_with_include_crds_and_not_otherwise() {
    let dir = chart();
    let out = template(dir.path(), &["--include-crds"]);
    assert_eq!(sources(&out).first(), Some(&"demo/crds/widget.yaml"), "{out}");
    assert!(document(&out, "demo/crds/widget.yaml").contains("name: widgets.example.com\n"));

    for args in [&[][..], &["--skip-crds"][..]] {
        let out = template(dir.path(), args);
        assert!(!out.contains("CustomResourceDefinition"), "{args:?}: {out}");
    }
}

#[test]
fn no_hooks_leaves_the_hooks_out() {
    let dir = chart();
    let out = template(dir.path(), &["--no-hooks"]);
    assert!(!out.contains("helm.sh/hook"), "{out}");
    assert_eq!(
        sources(&out),
        [
            "demo/charts/sub/templates/configmap.yaml",
            "demo/templates/deployment.yaml"
        ]
    );
}

#[test]
fn a_template_error_fails_with_helms_message() {
    let dir = chart();
    let output = helm(dir.path(), &["template", "web", "demo", "--set", "explode=true"]);
    assert!(!output.status.success());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains("explode was set"), "{stderr}");
    assert!(stderr.contains("demo/templates/explode.yaml"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn what_the_shim_does_not_implement_is_a_usage_error() {
    let dir = chart();
    for args in [
        &["install", "web", "demo"][..],
        &["template", "web", "demo", "--post-renderer", "x"][..],
        &["template", "web"][..],
    ] {
        let output = helm(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?}");
    }
}
