//! The command line as README.md writes it (issue 21): global options before or after the
//! subcommand, the configuration from `DRIFTLESS_CONFIG` or `./driftless.yaml`, and a failure
//! that prints its one message and no library's log lines unless `-v` asks for them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;

/// `driftless ARGS` in `dir`, with nothing from the test's own environment that changes what
/// it reads or logs.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_driftless"));
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("DRIFTLESS_CONFIG")
        .env_remove("DRIFTLESS_LOG")
        .env_remove("RUST_LOG");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run driftless")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_config(dir: &Path, env: &TestEnv, repo: &TestRepo) -> PathBuf {
    common::write_config(
        dir,
        env.kubeconfig_path(),
        ("web", &repo.file_url(), "app"),
        &env.namespace,
        "",
    )
}

/// Where to run, the arguments, and the environment.
type Spelling<'a> = (&'a Path, Vec<&'a str>, Vec<(&'a str, &'a str)>);

const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {colour: blue}\n";

#[tokio::test]
async fn global_options_work_before_or_after_the_subcommand_and_the_configuration_is_found() {
    let env = TestEnv::new("global_options").await;
    let repo = TestRepo::new();
    repo.write("app/settings.yaml", CONFIG_MAP);
    repo.commit("main");
    let dir = tempfile::tempdir().expect("dir");
    let config = write_config(dir.path(), &env, &repo);
    let config = config.to_str().expect("UTF-8 path");
    let elsewhere = tempfile::tempdir().expect("dir");

    let spellings: [Spelling<'_>; 5] = [
        (
            elsewhere.path(),
            vec!["--config", config, "-o", "json", "render", "web"],
            vec![],
        ),
        (
            elsewhere.path(),
            vec!["render", "web", "--config", config, "-o", "json"],
            vec![],
        ),
        (
            elsewhere.path(),
            vec!["-o", "json", "render", "--config", config, "web"],
            vec![],
        ),
        (
            elsewhere.path(),
            vec!["render", "web", "-o", "json"],
            vec![("DRIFTLESS_CONFIG", config)],
        ),
        (dir.path(), vec!["render", "-o", "json", "web"], vec![]),
    ];
    let mut rendered = Vec::new();
    for (cwd, args, variables) in &spellings {
        let output = run_in(cwd, args, variables);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        let value: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{args:?}: not JSON ({err}): {}", text(&output)));
        assert_eq!(
            value["manifests"][0]["data"]["colour"], "blue",
            "{args:?}: {value}"
        );
        rendered.push(value);
    }
    assert!(rendered.windows(2).all(|pair| pair[0] == pair[1]), "{rendered:?}");

    // Where the user named nothing and there is nothing: where we looked, how to name one.
    let output = run_in(elsewhere.path(), &["status"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_eq!(
        stderr(&output),
        "error: no driftless.yaml in the current directory; name the configuration with --config FILE or DRIFTLESS_CONFIG\n"
    );
    // A named file that is wrong: that file, line and field, and nothing else.
    let wrong = std::fs::read_to_string(dir.path().join("driftless.yaml"))
        .expect("read")
        .replace("cluster: local,", "cluster: nowhere,");
    std::fs::write(elsewhere.path().join("wrong.yaml"), wrong).expect("write");
    let output = run_in(elsewhere.path(), &["--config", "wrong.yaml", "diff", "web"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert_eq!(
        stderr(&output),
        "error: invalid configuration (1 problem)\n  wrong.yaml:13: applications[0].spec.destination.cluster: unknown cluster \"nowhere\" (configured: local)\n"
    );
}

/// A Service with two ports of one number and protocol: the API server answers the dry-run with
/// 500 (a duplicate key of the ports' associative list), which the HTTP layer underneath logs
/// as an ERROR of its own.
const DUPLICATE_PORTS: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: doubled}\nspec:\n  selector: {app: web}\n  ports:\n    - {name: a, port: 80, protocol: TCP}\n    - {name: b, port: 80, protocol: TCP}\n";

#[tokio::test]
async fn a_failing_diff_or_plan_prints_its_one_message_and_library_logs_only_when_asked() {
    let env = TestEnv::new("quiet_failure").await;
    let repo = TestRepo::new();
    repo.write("app/settings.yaml", CONFIG_MAP);
    repo.commit("main");
    repo.write("app/service.yaml", DUPLICATE_PORTS);
    repo.commit("main");
    let dir = tempfile::tempdir().expect("dir");
    write_config(dir.path(), &env, &repo);

    let output = run_in(dir.path(), &["diff", "web"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let message = stderr(&output);
    assert_eq!(
        message.lines().count(),
        1,
        "one message, nothing else:\n{message}"
    );
    assert!(
        message.starts_with(&format!("error: web: Service/{}/doubled: ", env.namespace))
            && message.contains("duplicate entries"),
        "{message}"
    );

    // What the libraries said is still there for whoever asks.
    for (args, env) in [
        (vec!["-v", "diff", "web"], vec![]),
        (vec!["diff", "web"], vec![("RUST_LOG", "info")]),
    ] {
        let verbose = run_in(dir.path(), &args, &env);
        assert_eq!(verbose.status.code(), Some(2), "{}", text(&verbose));
        let logged = stderr(&verbose);
        assert!(logged.contains("tower_http"), "{args:?} {env:?}: {logged}");
    }

    // A plan reports the refusal in the plan itself (stdout); stderr has nothing to add.
    let base = repo.commit("base");
    repo.write(
        "app/service.yaml",
        &DUPLICATE_PORTS.replace("doubled", "doubled-again"),
    );
    repo.commit("main");
    let output = run_in(dir.path(), &["plan", "--base", &base, "--head", "main"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("duplicate entries"),
        "{}",
        text(&output)
    );
    assert_eq!(stderr(&output), "", "{}", text(&output));
}
