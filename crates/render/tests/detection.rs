//! Source-type detection as Argo CD does it, Jsonnet programs, and renders that find nothing, on
//! real Git repositories: the argocd-example-apps fixtures (see fixtures/argocd-example-apps),
//! the real `kubectl kustomize` and the repository's `helm`.

mod common;

use std::path::Path;
use std::time::Duration;

use driftless_core::application::{DirectoryOptions, JsonnetOptions, JsonnetVariable, Renderer};
use driftless_render::{JsonnetError, Keys, RenderError, RenderLimits, RenderTarget, Rendered};
use driftless_testenv::git::TestRepo;

const TARGET: RenderTarget<'static> = RenderTarget {
    application: "guestbook",
    namespace: Some("web"),
    kube_version: None,
    api_versions: &[],
    charts: None,
    allow_empty: false,
};

fn fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/argocd-example-apps"
    ))
}

/// Writes every file of the fixture directory `name` into `repo` under `name`.
fn copy_fixture(repo: &TestRepo, name: &str) {
    fn walk(repo: &TestRepo, dir: &Path, prefix: &str) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).expect("fixture dir").flatten().collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}/{name}");
            if entry.path().is_dir() {
                walk(repo, &entry.path(), &path);
            } else {
                repo.write(
                    &path,
                    &std::fs::read_to_string(entry.path()).expect("fixture file"),
                );
            }
        }
    }
    walk(repo, &fixtures().join(name), name);
}

async fn render_with(
    repo: &TestRepo,
    path: &str,
    renderer: Renderer,
    target: RenderTarget<'_>,
    limits: &RenderLimits,
) -> Result<Rendered, RenderError> {
    common::render_committed(repo, path, renderer, target, limits, &Keys::new()).await
}

async fn detect(repo: &TestRepo, path: &str) -> Result<Rendered, RenderError> {
    render_with(repo, path, Renderer::Detect, TARGET, &RenderLimits::default()).await
}

fn names(rendered: &Rendered) -> Vec<String> {
    let mut names = common::kind_names(rendered);
    names.sort();
    names
}

fn jsonnet(options: JsonnetOptions) -> Renderer {
    Renderer::Directory(DirectoryOptions {
        jsonnet: options,
        ..DirectoryOptions::default()
    })
}

fn variable(name: &str, value: &str, code: bool) -> JsonnetVariable {
    JsonnetVariable {
        name: name.into(),
        value: value.into(),
        code,
    }
}

#[tokio::test]
async fn argocd_example_apps_render_through_detection() {
    let repo = TestRepo::new();
    for name in [
        "guestbook",
        "helm-guestbook",
        "kustomize-guestbook",
        "jsonnet-guestbook",
        "jsonnet-guestbook-tla",
    ] {
        copy_fixture(&repo, name);
    }

    let plain = detect(&repo, "guestbook").await.expect("guestbook");
    assert_eq!(plain.renderer, "directory");
    assert_eq!(names(&plain), ["Deployment/guestbook-ui", "Service/guestbook-ui"]);

    let kustomize = detect(&repo, "kustomize-guestbook")
        .await
        .expect("kustomize-guestbook");
    assert_eq!(kustomize.renderer, "kustomize");
    assert_eq!(
        names(&kustomize),
        [
            "Deployment/kustomize-guestbook-ui",
            "Service/kustomize-guestbook-ui"
        ]
    );

    // Before detection knew charts, this failed with "Chart.yaml: field kind is missing".
    let helm = detect(&repo, "helm-guestbook").await.expect("helm-guestbook");
    assert_eq!(helm.renderer, "helm");
    assert_eq!(
        names(&helm),
        [
            "Deployment/guestbook-helm-guestbook",
            "Service/guestbook-helm-guestbook"
        ]
    );
    let deployment = helm
        .manifests
        .iter()
        .find(|m| m.manifest["kind"] == "Deployment")
        .expect("a Deployment");
    // values.yaml is read as helm reads it: one replica and the guestbook image.
    assert_eq!(deployment.manifest["spec"]["replicas"], 1);
    assert_eq!(
        deployment.manifest["spec"]["template"]["spec"]["containers"][0]["image"],
        "gcr.io/google-samples/gb-frontend:v5"
    );

    // Before Jsonnet, this rendered nothing and the sync succeeded doing nothing.
    let jsonnet_guestbook = detect(&repo, "jsonnet-guestbook")
        .await
        .expect("jsonnet-guestbook");
    assert_eq!(jsonnet_guestbook.renderer, "jsonnet");
    assert_eq!(
        names(&jsonnet_guestbook),
        ["Deployment/jsonnet-guestbook-ui", "Service/jsonnet-guestbook-ui"]
    );
    assert_eq!(jsonnet_guestbook.inputs, None, "imports may read anything");
    let service = &jsonnet_guestbook.manifests[0];
    assert_eq!(service.source.file, "jsonnet-guestbook/guestbook-ui.jsonnet");
    assert_eq!(service.manifest["spec"]["ports"][0]["port"], 80);

    let defaults = detect(&repo, "jsonnet-guestbook-tla")
        .await
        .expect("tla defaults");
    assert_eq!(
        names(&defaults),
        ["Deployment/jsonnet-guestbook-ui", "Service/jsonnet-guestbook-ui"]
    );
    let tlas = JsonnetOptions {
        tlas: vec![
            variable("name", "$ARGOCD_APP_NAME-ui", false),
            variable("replicas", "1 + 2", true),
        ],
        ..JsonnetOptions::default()
    };
    let with_tlas = render_with(
        &repo,
        "jsonnet-guestbook-tla",
        jsonnet(tlas),
        TARGET,
        &RenderLimits::default(),
    )
    .await
    .expect("tlas");
    assert_eq!(
        names(&with_tlas),
        ["Deployment/guestbook-ui", "Service/guestbook-ui"]
    );
    let deployment = with_tlas
        .manifests
        .iter()
        .find(|m| m.manifest["kind"] == "Deployment")
        .expect("a Deployment");
    assert_eq!(deployment.manifest["spec"]["replicas"], 3, "code, not a string");
}

#[tokio::test]
async fn an_explicit_type_wins_over_detection() {
    let repo = TestRepo::new();
    copy_fixture(&repo, "kustomize-guestbook");
    let directory = render_with(
        &repo,
        "kustomize-guestbook",
        Renderer::Directory(DirectoryOptions {
            exclude: Some("kustomization.yaml".into()),
            ..DirectoryOptions::default()
        }),
        TARGET,
        &RenderLimits::default(),
    )
    .await
    .expect("as a directory");
    assert_eq!(directory.renderer, "directory");
    assert_eq!(
        names(&directory),
        ["Deployment/guestbook-ui", "Service/guestbook-ui"]
    );
}

#[tokio::test]
async fn jsonnet_outputs_objects_arrays_and_lists_with_imports_from_the_repository() {
    let repo = TestRepo::new();
    let config_map =
        |name: &str| format!("{{ apiVersion: 'v1', kind: 'ConfigMap', metadata: {{ name: '{name}' }} }}");
    repo.write("app/one.jsonnet", &config_map("one"))
        .write(
            "app/many.jsonnet",
            &format!(
                "[{}, [{}, [{}]]]",
                config_map("two"),
                config_map("three"),
                config_map("four")
            ),
        )
        .write(
            "app/list.jsonnet",
            &format!(
                "{{ apiVersion: 'v1', kind: 'List', items: [{}] }}",
                config_map("five")
            ),
        )
        .write(
            "app/imports.jsonnet",
            "local shared = import 'shared.libsonnet'; local up = import '../common/up.libsonnet';\n\
             [shared.cm(std.extVar('prefix') + '-six'), up.cm((importstr 'name.txt') + '-' + std.length(importbin 'name.txt'))]",
        )
        .write("app/name.txt", "seven")
        .write(
            "vendor/shared.libsonnet",
            "{ cm(name):: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name } } }",
        )
        .write("common/up.libsonnet", "import '../vendor/shared.libsonnet'")
        .write(
            "app/helpers.libsonnet",
            "error 'a .libsonnet file is read only when imported'",
        )
        .write(
            "app/plain.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n",
        );
    let options = JsonnetOptions {
        ext_vars: vec![variable("prefix", "$ARGOCD_APP_NAMESPACE", false)],
        libs: vec!["vendor".into()],
        ..JsonnetOptions::default()
    };
    let rendered = render_with(&repo, "app", jsonnet(options), TARGET, &RenderLimits::default())
        .await
        .expect("renders");
    assert_eq!(
        names(&rendered),
        [
            "ConfigMap/five",
            "ConfigMap/four",
            "ConfigMap/one",
            "ConfigMap/plain",
            "ConfigMap/seven-5",
            "ConfigMap/three",
            "ConfigMap/two",
            "ConfigMap/web-six",
        ]
    );
    let three = rendered
        .manifests
        .iter()
        .find(|m| m.manifest["metadata"]["name"] == "three")
        .expect("three");
    assert_eq!(
        (three.source.file.as_str(), three.source.document),
        ("app/many.jsonnet", 1)
    );
}

async fn jsonnet_error(
    repo: &TestRepo,
    program: &str,
    options: JsonnetOptions,
    limits: &RenderLimits,
) -> String {
    repo.write("app/main.jsonnet", program);
    render_with(repo, "app", jsonnet(options), TARGET, limits)
        .await
        .expect_err("refused")
        .to_string()
}

#[tokio::test]
async fn imports_never_leave_the_repository() {
    let repo = TestRepo::new();
    repo.write("secret.txt", "inside, but only through a path that stays inside")
        .symlink("app/link.libsonnet", "/etc/hostname");
    let none = JsonnetOptions::default;

    let err = jsonnet_error(&repo, "importstr '/etc/passwd'", none(), &RenderLimits::default()).await;
    assert!(
        err.contains("import \"/etc/passwd\"") && err.contains("an absolute path"),
        "{err}"
    );

    let err = jsonnet_error(
        &repo,
        "importstr '../../etc/passwd'",
        none(),
        &RenderLimits::default(),
    )
    .await;
    assert!(err.contains("leaves the repository"), "{err}");

    let err = jsonnet_error(&repo, "import 'link.libsonnet'", none(), &RenderLimits::default()).await;
    assert!(err.contains("points outside the repository"), "{err}");

    let err = jsonnet_error(
        &repo,
        "import 'missing.libsonnet'",
        none(),
        &RenderLimits::default(),
    )
    .await;
    assert!(
        err.contains("app/main.jsonnet")
            && err.contains("not found in the repository (looked for app/missing.libsonnet"),
        "{err}"
    );

    let libs = JsonnetOptions {
        libs: vec!["..".into()],
        ..JsonnetOptions::default()
    };
    let err = jsonnet_error(&repo, "importstr 'secret.txt'", libs, &RenderLimits::default()).await;
    assert!(err.contains("leaves the repository"), "{err}");

    let unknown = JsonnetOptions {
        ext_vars: vec![variable("x", "$ARGOCD_APP_REVISION", false)],
        ..JsonnetOptions::default()
    };
    let err = jsonnet_error(&repo, "std.extVar('x')", unknown, &RenderLimits::default()).await;
    assert!(
        err.starts_with(
            "app/main.jsonnet: spec.source.directory.jsonnet.extVars[x]: $ARGOCD_APP_REVISION is not a variable driftless knows (known: ARGOCD_APP_NAME,"
        ),
        "{err}"
    );

    let err = jsonnet_error(&repo, "{ a: std.extVar('x') }", none(), &RenderLimits::default()).await;
    assert!(
        err.contains("app/main.jsonnet") && err.contains("external variable is not defined: x"),
        "{err}"
    );
}

#[tokio::test]
async fn hostile_programs_are_bounded() {
    let repo = TestRepo::new();
    let none = JsonnetOptions::default;
    let err = jsonnet_error(
        &repo,
        "local f(x) = f(x + 1); f(0)",
        none(),
        &RenderLimits::default(),
    )
    .await;
    assert!(
        err.contains("app/main.jsonnet") && err.contains("stack overflow"),
        "{err}"
    );

    let small = RenderLimits {
        max_output_bytes: 1024 * 1024,
        ..RenderLimits::default()
    };
    let err = jsonnet_error(&repo, "std.range(0, 1e9)", none(), &small).await;
    assert_eq!(
        err,
        "app/main.jsonnet: the output is larger than the limit of 1048576 bytes"
    );

    let quick = RenderLimits {
        timeout: Duration::from_millis(300),
        ..RenderLimits::default()
    };
    let started = std::time::Instant::now();
    let err = jsonnet_error(
        &repo,
        "std.foldl(function(sum, n) sum + n, std.range(0, 1e8), 0)",
        none(),
        &quick,
    )
    .await;
    assert_eq!(
        err,
        "app/main.jsonnet: did not finish within 300ms (the render's time limit)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_render_of_nothing_is_an_error_naming_what_was_found() {
    let repo = TestRepo::new();
    repo.write("app/a.jsonnet", "[]")
        .write("app/b.jsonnet", "{ apiVersion: 'v1', kind: 'List', items: [] }")
        .write("app/c.jsonnet", "[[]]")
        .write("docs/README.md", "# no manifests here\n")
        .write("docs/Makefile", "all:\n");
    let err = detect(&repo, "app").await.expect_err("nothing rendered");
    assert_eq!(
        err.to_string(),
        "app: rendered no object: 3 .jsonnet files and no manifests \
         (set spec.syncPolicy.allowEmpty: true if an application of nothing is intended)"
    );
    assert!(matches!(err, RenderError::NothingRendered { .. }));
    let err = detect(&repo, "docs").await.expect_err("nothing rendered");
    assert_eq!(
        err.to_string(),
        "docs: rendered no object: no manifest files (found: Makefile, README.md) \
         (set spec.syncPolicy.allowEmpty: true if an application of nothing is intended)"
    );

    let intended = RenderTarget {
        allow_empty: true,
        ..TARGET
    };
    let empty = render_with(&repo, "app", Renderer::Detect, intended, &RenderLimits::default())
        .await
        .expect("an empty render is intended");
    assert!(empty.manifests.is_empty());
}

#[test]
fn jsonnet_errors_name_the_program() {
    let err = JsonnetError::TimedOut {
        file: "app/main.jsonnet".into(),
        after: Duration::from_mins(1),
    };
    assert_eq!(
        RenderError::from(err).to_string(),
        "app/main.jsonnet: did not finish within 60s (the render's time limit)"
    );
}
