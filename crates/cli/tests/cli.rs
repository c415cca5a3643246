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

/// The README's main job, end to end: a real control plane, the examples in a local Git
/// repository, three applications synced.
#[test]
fn quickstart_syncs_the_examples_into_a_real_control_plane() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let output = driftless(&["quickstart", "--exit", "--examples", examples]);
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "quickstart failed:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for application in ["guestbook", "guestbook-dev", "guestbook-prod"] {
        assert!(text.contains(&format!("Sync of {application} at ")), "{text}");
    }
    // The API server answers 500 while it starts; what the HTTP layer logs about that is not
    // the user's business (issue 21).
    let logged = String::from_utf8_lossy(&output.stderr);
    for internal in ["ERROR", "tower_http", "kube_client"] {
        assert!(!logged.contains(internal), "{internal} on stderr:\n{logged}");
    }
    assert!(
        text.contains("succeeded: 4 created"),
        "namespace, config map, deployment, service: {text}"
    );
    let status: Vec<&str> = text
        .lines()
        .filter(|line| line.trim_start().starts_with("guestbook"))
        .collect();
    assert_eq!(status.len(), 3, "{text}");
    assert!(status.iter().all(|line| line.contains("Synced")), "{text}");
}
