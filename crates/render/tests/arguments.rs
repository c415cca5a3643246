//! No value from Git or an Application becomes an option of helm: each value that reaches helm's
//! command line is checked against its grammar right before the command line is built, and a
//! hostile one is refused with its field named — helm does not even start. Proved with a `helm`
//! on PATH that records every run: this test runs itself again as a child process with that
//! `helm` first on PATH (a test cannot change its own environment: `unsafe` is forbidden).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use driftless_core::application::{HelmOptions, HelmParameter, Renderer, Source};
use driftless_files::{Entry, FileTree};
use driftless_render::{Keys, RenderError, RenderLimits, RenderTarget, render};

/// Set in the child process: where the recording `helm` writes its command lines.
const RECORD: &str = "DRIFTLESS_TEST_HELM_RECORD";
const TEST_NAME: &str = "hostile_values_never_reach_helm_and_name_their_field";

fn chart() -> FileTree {
    let mut tree = FileTree::default();
    tree.entries.insert(
        "charts/web/Chart.yaml".into(),
        Entry::File {
            contents: b"apiVersion: v2\nname: web\nversion: 1.0.0\n".to_vec(),
            executable: false,
        },
    );
    tree
}

fn target<'a>(application: &'a str, api_versions: &'a [String]) -> RenderTarget<'a> {
    RenderTarget {
        application,
        namespace: Some("shop"),
        kube_version: Some("v1.20.2"),
        api_versions,
        charts: None,
        // The recording helm prints nothing: these renders are about arguments, not objects.
        allow_empty: true,
    }
}

async fn render_with(options: HelmOptions, target: RenderTarget<'_>) -> Result<usize, RenderError> {
    let source = Source {
        repo_url: "https://git.example.com/charts.git".into(),
        revision: "main".into(),
        path: "charts/web".into(),
        renderer: Renderer::Helm(options),
    };
    render(&chart(), &source, target, &RenderLimits::default(), &Keys::new())
        .await
        .map(|rendered| rendered.manifests.len())
}

fn runs(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn parameter(name: &str, value: &str) -> HelmOptions {
    HelmOptions {
        parameters: vec![HelmParameter {
            name: name.into(),
            value: value.into(),
            force_string: false,
        }],
        ..HelmOptions::default()
    }
}

/// In the child: one harmless render (the recording helm runs: the proof it is the one found),
/// then every hostile value, each refused naming its field, with no further run.
async fn child(record: &Path) {
    let none: &[String] = &[];
    render_with(HelmOptions::default(), target("web", none))
        .await
        .expect("a harmless render runs the recording helm");
    let first = runs(record);
    assert_eq!(first.len(), 1, "the recording helm ran once: {first:?}");
    let args: Vec<&str> = first[0].split(' ').collect();
    // The release name and the chart are positional: after `--`, where nothing is an option.
    assert_eq!(
        args[args.len() - 3..args.len() - 1],
        ["--", "web"],
        "positional arguments follow --: {first:?}"
    );

    let long_name = "a".repeat(54);
    let hostile_api = ["--set-file=x=/etc/hostname".to_owned()];
    let cluster_api = ["-h".to_owned()];
    for (index, (field, options, target)) in cases(&long_name, &hostile_api, &cluster_api)
        .into_iter()
        .enumerate()
    {
        let err = render_with(options, target)
            .await
            .expect_err(&format!("case {index} ({field}) is refused"));
        let message = err.to_string();
        assert!(
            matches!(err, RenderError::HelmArgument { .. })
                && message.starts_with(&format!("helm template charts/web: {field}: ")),
            "case {index} ({field}): {message}"
        );
        assert_eq!(
            runs(record).len(),
            1,
            "case {index} ({field}) ran helm: {:?}",
            runs(record)
        );
    }
}

/// Each hostile value, with the field its error must name.
fn cases<'a>(
    long_name: &'a str,
    hostile_api: &'a [String],
    cluster_api: &'a [String],
) -> Vec<(&'static str, HelmOptions, RenderTarget<'a>)> {
    let none: &[String] = &[];
    let with = |edit: fn(&mut HelmOptions)| {
        let mut options = HelmOptions::default();
        edit(&mut options);
        options
    };
    vec![
        (
            "spec.source.helm.releaseName",
            with(|o| o.release_name = Some("-h".into())),
            target("web", none),
        ),
        (
            "spec.source.helm.releaseName",
            with(|o| o.release_name = Some("--post-renderer=/bin/sh".into())),
            target("web", none),
        ),
        (
            "spec.source.helm.releaseName",
            with(|o| o.release_name = Some("a".repeat(54))),
            target("web", none),
        ),
        // The default release name is the application's.
        ("metadata.name", HelmOptions::default(), target(long_name, none)),
        (
            "spec.source.helm.namespace",
            with(|o| o.namespace = Some("--kube-version=--help".into())),
            target("web", none),
        ),
        (
            "spec.destination.namespace",
            HelmOptions::default(),
            RenderTarget {
                namespace: Some("-n"),
                ..target("web", none)
            },
        ),
        (
            "spec.source.helm.kubeVersion",
            with(|o| o.kube_version = Some("--kube-version=--help".into())),
            target("web", none),
        ),
        (
            "spec.source.helm.kubeVersion",
            with(|o| o.kube_version = Some("--help".into())),
            target("web", none),
        ),
        (
            "the destination cluster's version",
            HelmOptions::default(),
            RenderTarget {
                kube_version: Some("--help"),
                ..target("web", none)
            },
        ),
        (
            "spec.source.helm.apiVersions[0]",
            with(|o| o.api_versions = vec!["--set-file=x=/etc/hostname".into()]),
            target("web", none),
        ),
        (
            "spec.source.helm.apiVersions[0]",
            with(|o| o.api_versions = vec!["apps/v1,--post-renderer=/bin/sh".into()]),
            target("web", none),
        ),
        (
            "the destination cluster's API versions",
            HelmOptions::default(),
            target("web", cluster_api),
        ),
        (
            "the destination cluster's API versions",
            HelmOptions::default(),
            target("web", hostile_api),
        ),
        (
            "spec.source.helm.parameters[0].name",
            parameter("--set-file=x", "/etc/hostname"),
            target("web", none),
        ),
        (
            "spec.source.helm.parameters[0].name",
            parameter("-h", "x"),
            target("web", none),
        ),
        (
            "spec.source.helm.parameters[0].name",
            parameter("a,b", "c"),
            target("web", none),
        ),
        (
            "spec.source.helm.parameters[0].name",
            parameter("a=b", "c"),
            target("web", none),
        ),
        (
            "spec.source.helm.parameters[0].value",
            parameter("a", "x\0y"),
            target("web", none),
        ),
    ]
}

#[test]
fn hostile_values_never_reach_helm_and_name_their_field() {
    if let Some(record) = std::env::var_os(RECORD) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(child(Path::new(&record)));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let record = dir.path().join("runs");
    // Render runs helm with an empty environment: the record's path is written into the script.
    // It reads its standard input (the values) as helm does, so the render can write them.
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\ncat > /dev/null\n",
        record.display()
    );
    let helm = bin.join("helm");
    std::fs::write(&helm, script).expect("write helm");
    std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).expect("chmod helm");
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env("PATH", path)
        .env(RECORD, &record)
        .output()
        .expect("run the child");
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "the child ran the test: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(runs(&record).len(), 1, "helm ran only for the harmless render");
}
