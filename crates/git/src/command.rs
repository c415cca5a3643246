//! Running `git` safely.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

use crate::credentials::Prepared;

/// Configuration given to every git process, before anything from a repository is read.
const HARDENING: &[&str] = &[
    // Transports: the usual four plus local paths; never `ext::` (runs a command) or anything new.
    "protocol.allow=never",
    "protocol.https.allow=always",
    "protocol.http.allow=always",
    "protocol.ssh.allow=always",
    "protocol.git.allow=always",
    "protocol.file.allow=always",
    // A repository must not be able to run anything on our side.
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    // Every object a clone or fetch brings is verified (git fsck's checks, warnings as errors):
    // a tree entry named `..` or `.git`, a malformed object, is refused before it is stored.
    // `transfer.*` covers clone and fetch (and receive, which driftless never runs).
    "transfer.fsckObjects=true",
    // Quirks of old tools that public histories hold, harmless to driftless (it reads no
    // identity, date or tag header to decide anything): let in, or such a repository could never
    // be fetched. Every path check (hasDot, hasDotdot, hasDotgit, fullPathname, emptyName,
    // duplicateEntries, treeNotSorted), the .gitmodules checks and the structural ones (missing
    // or bad tree, parent, object, type) stay errors. Ids as in git 2.47's fsck-msgids.
    "fetch.fsck.badDate=ignore",
    "fetch.fsck.badDateOverflow=ignore",
    "fetch.fsck.badEmail=ignore",
    "fetch.fsck.badName=ignore",
    "fetch.fsck.badTimezone=ignore",
    "fetch.fsck.missingEmail=ignore",
    "fetch.fsck.missingNameBeforeEmail=ignore",
    "fetch.fsck.missingSpaceBeforeDate=ignore",
    "fetch.fsck.missingSpaceBeforeEmail=ignore",
    "fetch.fsck.zeroPaddedDate=ignore",
    "fetch.fsck.multipleAuthors=ignore",
    "fetch.fsck.missingTaggerEntry=ignore",
    "fetch.fsck.badTagName=ignore",
    "fetch.fsck.extraHeaderEntry=ignore",
    "fetch.fsck.nulInCommit=ignore",
    "fetch.fsck.nullSha1=ignore",
    "fetch.fsck.badFilemode=ignore",
    "fetch.fsck.zeroPaddedFilemode=ignore",
    // Long paths are still read through check_path and the read limits.
    "fetch.fsck.largePathname=ignore",
    // Start from no credential helper; ours, when needed, comes after this.
    "credential.helper=",
    // A mirror may be read by another user (the server) than the one that fetched it.
    "safe.directory=*",
];

/// Output of a successful git command.
pub(crate) struct Output {
    pub stdout: Vec<u8>,
}

/// Why a git command failed; the caller adds which repository and operation.
pub(crate) enum Failure {
    Spawn(std::io::Error),
    TimedOut(Duration),
    Exit {
        status: std::process::ExitStatus,
        stderr: String,
    },
}

pub(crate) struct Git<'a> {
    dir: Option<&'a Path>,
    args: Vec<String>,
    credentials: Option<&'a Prepared>,
    timeout: Duration,
    stdin: Option<Vec<u8>>,
}

impl<'a> Git<'a> {
    pub(crate) fn new(args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            dir: None,
            args: args.into_iter().map(Into::into).collect(),
            credentials: None,
            timeout: Duration::from_mins(1),
            stdin: None,
        }
    }

    pub(crate) fn push_arg(&mut self, arg: String) {
        self.args.push(arg);
    }

    /// Runs in this repository (`git -C dir`).
    pub(crate) fn in_dir(mut self, dir: &'a Path) -> Self {
        self.dir = Some(dir);
        self
    }

    pub(crate) fn credentials(mut self, credentials: &'a Prepared) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }

    pub(crate) async fn run(self) -> Result<Output, Failure> {
        let mut command = Command::new("git");
        if let Some(dir) = self.dir {
            command.arg("-C").arg(dir);
        }
        for setting in HARDENING {
            command.arg("-c").arg(setting);
        }
        if let Some(credentials) = self.credentials {
            for setting in &credentials.config {
                command.arg("-c").arg(setting);
            }
            command.envs(credentials.env.iter().map(|(k, v)| (k, v)));
        }
        command
            .args(&self.args)
            .env("GIT_TERMINAL_PROMPT", "0")
            // A path we pass after `--` is a path, never pathspec magic (`:/`, `:(glob)…`).
            .env("GIT_LITERAL_PATHSPECS", "1")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("LC_ALL", "C")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(Failure::Spawn)?;
        // Written from its own task: git may fill stdout before it has read all of stdin.
        let writer = match (self.stdin, child.stdin.take()) {
            (Some(input), Some(mut pipe)) => Some(tokio::spawn(async move {
                let _ = pipe.write_all(&input).await;
            })),
            _ => None,
        };
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| Failure::TimedOut(self.timeout))?
            .map_err(Failure::Spawn)?;
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        if output.status.success() {
            Ok(Output {
                stdout: output.stdout,
            })
        } else {
            Err(Failure::Exit {
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }
}
