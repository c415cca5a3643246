//! The `driftless` executable as a user runs it.

use std::process::{Command, Output};

fn driftless(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftless"))
        .args(args)
        .output()
        .expect("run driftless")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn version_names_the_program_and_its_version() {
    let output = driftless(&["--version"]);
    assert!(output.status.success());
    assert_eq!(
        stdout(&output).trim(),
        format!("driftless {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_commands() {
    let output = driftless(&["--help"]);
    assert!(output.status.success());
    let help = stdout(&output);
    for command in ["quickstart", "completions"] {
        assert!(
            help.contains(command),
            "--help does not mention {command}:\n{help}"
        );
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef driftless"),
        ("fish", "complete -c driftless"),
    ] {
        let output = driftless(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {output:?}");
        assert!(
            stdout(&output).contains(marker),
            "{shell} completion lacks {marker:?}"
        );
    }
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let output = driftless(&["no-such-command"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no-such-command"));
}

/// The README's main job, end to end against a real control plane.
#[test]
fn quickstart_applies_to_a_real_control_plane() {
    let output = driftless(&["quickstart", "--exit"]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "quickstart failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("Connected: Kubernetes v1.20.2"), "{text}");
    assert!(text.contains("Namespaces: default"), "{text}");
    assert!(text.contains("field managers: driftless (Apply)"), "{text}");
}
