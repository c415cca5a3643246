//! Argo CD's `directory.jsonnet` and `allowEmpty`, as written in driftless.yaml (issue 21).

use std::path::Path;

use driftless_config::parse;
use driftless_core::application::{JsonnetVariable, Renderer};

fn config(source_extra: &str, sync_policy: &str) -> String {
    format!(
        r"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - name: local
    inCluster: true
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: {{ name: guestbook }}
    spec:
      source:
        repoURL: https://git.example.com/apps.git
        path: jsonnet-guestbook
{source_extra}
      destination: {{ cluster: local, namespace: web }}
      syncPolicy:
{sync_policy}
"
    )
}

const JSONNET: &str = r"        directory:
          recurse: true
          jsonnet:
            extVars:
              - { name: app, value: $ARGOCD_APP_NAME }
              - { name: replicas, value: '3', code: true }
            tlas:
              - { name: ns, value: $ARGOCD_APP_NAMESPACE }
            libs: [vendor, ./lib//k8s/]";

#[test]
fn jsonnet_options_and_allow_empty_are_read_in_argo_cds_shape() {
    let text = config(JSONNET, "        automated: { prune: true, allowEmpty: true }");
    let parsed = parse(&text, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    let app = &parsed.applications[0];
    let Renderer::Directory(directory) = &app.source.renderer else {
        panic!("a directory source: {:?}", app.source.renderer);
    };
    assert!(directory.recurse);
    let variable = |name: &str, value: &str, code: bool| JsonnetVariable {
        name: name.into(),
        value: value.into(),
        code,
    };
    assert_eq!(
        directory.jsonnet.ext_vars,
        [
            variable("app", "$ARGOCD_APP_NAME", false),
            variable("replicas", "3", true)
        ]
    );
    assert_eq!(
        directory.jsonnet.tlas,
        [variable("ns", "$ARGOCD_APP_NAMESPACE", false)]
    );
    assert_eq!(directory.jsonnet.libs, ["vendor", "lib/k8s"]);
    assert!(app.sync_policy.allow_empty, "automated.allowEmpty");

    let manual = config("", "        allowEmpty: true");
    let parsed = parse(&manual, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert!(
        parsed.applications[0].sync_policy.allow_empty,
        "allowEmpty for manual syncs"
    );
    assert_eq!(parsed.applications[0].source.renderer, Renderer::Detect);

    let neither = config("", "        automated: { prune: true }");
    let parsed = parse(&neither, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert!(!parsed.applications[0].sync_policy.allow_empty);
}

#[test]
fn bad_jsonnet_options_are_reported_with_their_line_and_field() {
    let bad = r"        directory:
          jsonnet:
            extVars:
              - { name: app, value: a }
              - { name: app, value: b }
            tlas:
              - { name: 'not-an-identifier', value: x }
            libs: [../outside, /etc]
            extvars: []";
    let text = config(bad, "        interval: 3m");
    let err = parse(&text, "driftless.yaml", Path::new("/etc/driftless"))
        .expect_err("invalid")
        .to_string();
    assert!(err.contains("extvars"), "an unknown field is an error: {err}");

    let bad = bad.replace("\n            extvars: []", "");
    let text = config(&bad, "        interval: 3m");
    let err = parse(&text, "driftless.yaml", Path::new("/etc/driftless"))
        .expect_err("invalid")
        .to_string();
    for expected in [
        "spec.source.directory.jsonnet.extVars.name: \"app\" is given twice",
        "spec.source.directory.jsonnet.tlas.name: \"not-an-identifier\" is not a Jsonnet identifier",
        "spec.source.directory.jsonnet.libs:",
    ] {
        assert!(err.contains(expected), "{expected}\nin\n{err}");
    }
    assert_eq!(
        err.matches("spec.source.directory.jsonnet.libs:").count(),
        2,
        "{err}"
    );
    assert!(
        err.contains("driftless.yaml:"),
        "errors name their file and line: {err}"
    );
}
