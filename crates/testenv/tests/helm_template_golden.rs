//! The helm shim (scripts/helm-shim.py, as in this repository) against output recorded from real
//! Helm: Helm v4.2.3's own `helm template` golden files (pkg/cmd/testdata/output) with the charts
//! and flags its pkg/cmd/template_test.go runs them with, copied into
//! tests/fixtures/helm-template (Apache-2.0, see its README.md). The SDK the shim binds to is the
//! same Helm, v4.2.3; what the shim does itself — flags, values files and `--set` merged in
//! Helm's order, CRDs first with `--include-crds`, hooks picked and sorted — must print exactly
//! what helm printed, byte for byte.
//!
//! Helm's test builds default `.Capabilities.KubeVersion` to v1.20.0 (`testing.Testing()` in
//! pkg/chart/common/capabilities.go) where a release build takes it from client-go; the golden
//! files were recorded that way, so every case without `--kube-version` passes
//! `--kube-version 1.20.0`, which is what that default amounts to.

use std::path::{Path, PathBuf};
use std::process::Command;

use driftless_testenv::helm::helm_binary;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/helm-template")
}

/// The shim's source in this repository, run by the interpreter the installed shim names (the
/// virtualenv with helm-python-sdk), so a change to the script is tested before it is installed.
fn shim() -> (PathBuf, PathBuf) {
    let installed = helm_binary();
    let text = std::fs::read_to_string(&installed).expect("read the installed helm shim");
    let python = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("#!"))
        .map(PathBuf::from)
        .expect("the installed shim starts with #!python (run scripts/testenv)");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/helm-shim.py");
    (python, source)
}

/// (golden file, chart, flags), as pkg/cmd/template_test.go at v4.2.3 has them; the release is
/// `release-name`, the name helm template gives a release it is not told.
const CASES: &[(&str, &str, &[&str])] = &[
    ("template", "subchart", &[]),
    ("template-set", "subchart", &["--set", "service.name=apache"]),
    (
        "template-values-files",
        "subchart",
        &["--values", "subchart/charts/subchartA/values.yaml"],
    ),
    (
        "template-with-kube-version",
        "subchart",
        &["--kube-version", "1.16.0"],
    ),
    (
        "template-with-api-version",
        "subchart",
        &["--api-versions", "helm.k8s.io/test,helm.k8s.io/test2"],
    ),
    (
        "template-with-api-version",
        "subchart",
        &[
            "--api-versions",
            "helm.k8s.io/test",
            "--api-versions",
            "helm.k8s.io/test2",
        ],
    ),
    ("template-with-crds", "subchart", &["--include-crds"]),
    ("object-order", "object-order", &[]),
    ("issue-9027", "issue-9027", &[]),
    (
        "template-subchart-cm",
        "subchart",
        &[
            "--set",
            "configmap.enabled=true",
            "--set",
            "subchartb.enabled=true",
        ],
    ),
    (
        "template-subchart-cm-set",
        "subchart",
        &[
            "--set",
            "configmap.enabled=true",
            "--set",
            "subchartb.enabled=true",
            "--set",
            "configmap.value=baz",
        ],
    ),
    (
        "template-subchart-cm-set-file",
        "subchart",
        &["-f", "subchart/extra_values.yaml"],
    ),
    (
        "template-chart-with-template-lib-dep",
        "chart-with-template-lib-dep",
        &[],
    ),
];

#[test]
fn the_shim_prints_what_helm_4_2_3_printed_for_its_own_golden_charts() {
    let (python, source) = shim();
    let charts = fixtures().join("charts");
    let mut failures = Vec::new();
    for (golden, chart, flags) in CASES {
        let mut args: Vec<&str> = vec!["template", "release-name", chart];
        args.extend_from_slice(flags);
        if !flags.contains(&"--kube-version") {
            args.extend_from_slice(&["--kube-version", "1.20.0"]);
        }
        let output = Command::new(&python)
            .arg(&source)
            .args(&args)
            .current_dir(&charts)
            .output()
            .expect("run the helm shim");
        let expected = std::fs::read_to_string(fixtures().join("expected").join(format!("{golden}.txt")))
            .expect("read the golden file");
        let printed = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || printed != expected {
            failures.push(format!(
                "helm {}: {}\n--- stderr:\n{}\n--- printed:\n{printed}",
                args.join(" "),
                golden,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn charts_helm_refuses_are_refused_with_helms_message_and_hint() {
    let (python, source) = shim();
    for (golden, chart) in [
        ("template-chart-bad-type", "chart-bad-type"),
        ("template-lib-chart", "lib-chart"),
        (
            "template-with-invalid-yaml",
            "chart-with-template-with-invalid-yaml",
        ),
    ] {
        let output = Command::new(&python)
            .arg(&source)
            .args(["template", "release-name", chart])
            .current_dir(fixtures().join("charts"))
            .output()
            .expect("run the helm shim");
        assert!(!output.status.success(), "{chart} rendered");
        let expected = std::fs::read_to_string(fixtures().join("expected").join(format!("{golden}.txt")))
            .expect("read the golden file");
        // The golden file holds what Helm's test harness printed: the error, `Error: ` first.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.trim_end().ends_with(expected.trim_end()),
            "{chart}: helm said {expected:?}, the shim {stderr:?}"
        );
    }
}
