//! Every shell command README.md shows in a fenced block, run exactly as written (issue 21):
//! `driftless` on PATH, in a directory holding `driftless.yaml` (an application `guestbook` from
//! a Git repository with a branch `my-branch`, on the real local control plane), `tls.crt` and
//! `tls.key`. A command this test neither runs nor lists in [`NOT_RUN`] with its reason fails
//! the test: adding one to the README means saying here how it is proven.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::text;
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;

/// README commands no test can run as written, and why.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "scripts/quickstart",
        "installs apt packages and builds the control plane, then serves until Ctrl-C; what it does \
         is run by cli.rs `quickstart_syncs_the_examples_into_a_real_control_plane`",
    ),
    ("scripts/test", "runs every test, this one included"),
    (
        "DRIFTLESS_TOKEN=dlt_… driftless status --server https://driftless.example.com",
        "names a remote server that exists only as an example; serve.rs tests --server against a real one",
    ),
];

/// What a README command must do here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Finish with this exit status.
    Exit(i32),
    /// Keep serving: answer on its socket (and its `--listen` port) until the next `serve`
    /// command or the end, then stop cleanly on SIGTERM.
    Serves,
}

fn expectation(command: &str) -> Option<Expect> {
    if command == "driftless status" {
        return Some(Expect::Exit(0));
    }
    let expect = match command.strip_prefix("driftless --config driftless.yaml ")? {
        // Before the first sync the guestbook differs from the cluster; `my-branch` changes it.
        "diff guestbook"
        | "plan --base main --head my-branch"
        | "plan --base main --head my-branch --offline --markdown" => Expect::Exit(1),
        "serve"
        | "serve --listen 127.0.0.1:8080"
        | "serve --listen 0.0.0.0:8443 --tls-cert tls.crt --tls-key tls.key" => Expect::Serves,
        "status"
        | "sync guestbook --prune --dry-run"
        | "sync guestbook --prune"
        | "render guestbook"
        | "history guestbook"
        | "events guestbook"
        | "refresh guestbook"
        | "refresh --all"
        | "suspend guestbook"
        | "resume guestbook"
        | "token create ci --role operator --app 'shop-*'"
        | "token list"
        | "token revoke ci" => Expect::Exit(0),
        _ => return None,
    };
    Some(expect)
}

/// The commands of README.md's fenced shell blocks, comments and blank lines left out.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let mut commands = Vec::new();
    let mut in_shell = None;
    for line in readme.lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            in_shell = match in_shell {
                None => Some(matches!(fence.trim(), "sh" | "bash" | "shell" | "console")),
                Some(_) => None,
            };
            continue;
        }
        if in_shell == Some(true) {
            let command = without_comment(line).trim();
            if !command.is_empty() {
                commands.push(command.to_owned());
            }
        }
    }
    commands
}

/// `line` up to a `#` that starts a shell comment (after whitespace, outside quotes).
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, character) in line.char_indices() {
        match (quote, character) {
            (None, '\'' | '"') => quote = Some(character),
            (Some(open), _) if open == character => quote = None,
            (None, '#') if previous.is_whitespace() => return &line[..at],
            _ => {}
        }
        previous = character;
    }
    line
}

/// A README `serve` running in the background; killed if the test ends early.
struct Serving {
    command: String,
    child: Child,
}

impl Serving {
    /// SIGTERM: it finishes what runs and exits 0.
    fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exited = self.child.wait().expect("wait for serve");
        assert!(exited.success(), "{}: {exited} after SIGTERM", self.command);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the README's commands run.
struct Workspace {
    dir: PathBuf,
    path: std::ffi::OsString,
}

impl Workspace {
    fn command(&self, command: &str) -> Command {
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            // `exec`: the process signalled and waited for is driftless itself.
            .arg(format!("exec {command}"))
            .current_dir(&self.dir)
            .env("PATH", &self.path)
            .env("NO_COLOR", "1")
            .env_remove("DRIFTLESS_CONFIG")
            .env_remove("DRIFTLESS_DATA_DIR")
            .env_remove("DRIFTLESS_SERVER")
            .env_remove("DRIFTLESS_LOG")
            .env_remove("RUST_LOG");
        shell
    }

    fn run(&self, command: &str) -> Output {
        self.command(command).output().expect("run a README command")
    }

    fn serve(&self, command: &str) -> Serving {
        let log = std::fs::File::create(self.dir.join("serve.log")).expect("serve log");
        let child = self
            .command(command)
            .stdout(log.try_clone().expect("serve log"))
            .stderr(log)
            .spawn()
            .expect("start serve");
        let mut serving = Serving {
            command: command.to_owned(),
            child,
        };
        let socket = driftless_server::socket_path(&self.dir.join("state"));
        let port = command
            .split_once("--listen ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|address| address.rsplit_once(':'))
            .map(|(_, port)| port.parse::<u16>().expect("a port"));
        let deadline = Instant::now() + Duration::from_mins(1);
        let log = || std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default();
        loop {
            // A port another process holds answers too: only a serve still running counts.
            if let Some(status) = serving.child.try_wait().expect("serve's status") {
                panic!("{command}: exited ({status}) instead of serving:\n{}", log());
            }
            let on_socket = std::os::unix::net::UnixStream::connect(&socket).is_ok();
            let on_port = port.is_none_or(|port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
            if on_socket && on_port {
                return serving;
            }
            assert!(
                Instant::now() < deadline,
                "{command}: not serving after a minute:\n{}",
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: guestbook-ui\nspec:\n  ports:\n  - port: 80\n    targetPort: 80\n  selector:\n    app: guestbook-ui\n";

fn settings(colour: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: guestbook-settings}}\ndata: {{colour: {colour}}}\n"
    )
}

#[tokio::test]
async fn every_readme_command_works_as_written() {
    let commands = readme_commands();
    for (listed, _) in NOT_RUN {
        assert!(
            commands.iter().any(|command| command == listed),
            "NOT_RUN lists {listed:?}, which README.md no longer shows: remove it"
        );
    }
    let unproven: Vec<&String> = commands
        .iter()
        .filter(|command| {
            expectation(command).is_none() && !NOT_RUN.iter().any(|(listed, _)| listed == command)
        })
        .collect();
    assert!(
        unproven.is_empty(),
        "README commands this test neither runs nor lists in NOT_RUN with a reason: {unproven:?}"
    );

    let env = TestEnv::new("readme").await;
    let repo = TestRepo::new();
    repo.write("guestbook/service.yaml", SERVICE)
        .write("guestbook/settings.yaml", &settings("blue"));
    repo.commit("the guestbook");
    repo.checkout("my-branch");
    repo.write("guestbook/settings.yaml", &settings("green"));
    repo.commit("a pull request");
    repo.checkout("main");
    let dir = tempfile::tempdir().expect("dir");
    common::write_config(
        dir.path(),
        env.kubeconfig_path(),
        ("guestbook", &repo.file_url(), "guestbook"),
        &env.namespace,
        "",
    );
    let (_, certificate, key) = driftless_testenv::certs::loopback_server();
    std::fs::write(dir.path().join("tls.crt"), certificate).expect("write tls.crt");
    std::fs::write(dir.path().join("tls.key"), key).expect("write tls.key");
    let binaries = Path::new(env!("CARGO_BIN_EXE_driftless"))
        .parent()
        .expect("the binary's directory");
    let path = std::env::join_paths(
        std::iter::once(binaries.to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .expect("PATH");
    let workspace = Workspace {
        dir: dir.path().to_path_buf(),
        path,
    };

    let mut serving: Option<Serving> = None;
    let mut ran = 0;
    for command in &commands {
        match expectation(command) {
            None => {}
            Some(Expect::Serves) => {
                if let Some(previous) = serving.take() {
                    previous.stop();
                }
                serving = Some(workspace.serve(command));
                ran += 1;
            }
            Some(Expect::Exit(code)) => {
                let output = workspace.run(command);
                assert_eq!(output.status.code(), Some(code), "{command}:\n{}", text(&output));
                ran += 1;
            }
        }
    }
    if let Some(last) = serving {
        last.stop();
    }
    assert!(ran >= 20, "ran only {ran} README commands");
    // What the commands did is what the README says they do.
    let render = workspace.run("driftless render guestbook");
    assert!(
        String::from_utf8_lossy(&render.stdout).contains("protocol: TCP"),
        "{}",
        text(&render)
    );
    let status = workspace.run("driftless -o json status");
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("Synced"),
        "{}",
        text(&status)
    );
}

#[test]
fn shell_comments_are_told_from_hashes_in_words_and_quotes() {
    assert_eq!(without_comment("driftless status   # all"), "driftless status   ");
    assert_eq!(without_comment("echo a#b '# not' # yes"), "echo a#b '# not' ");
    assert_eq!(without_comment("# only a comment"), "");
}
