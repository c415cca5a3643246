//! Child processes that cannot outlive the process that started them.
//!
//! Statics are never dropped and a test that aborts or is killed runs no destructor, so `Drop`
//! alone cannot promise teardown. Each server therefore runs under a tiny POSIX-shell watchdog that
//! holds the read end of a pipe whose write end only we hold (std creates pipes close-on-exec, so no
//! other child inherits it). The pipe reaches end-of-file when we drop it or when our process dies
//! in any way; the watchdog then stops the server: SIGTERM, and SIGKILL after a grace period.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `$1` is the log file, the rest is the server's command line. The server's stdin is /dev/null;
/// fd 3 keeps the watchdog's stdin (our pipe) for the reader, because POSIX shells point the stdin
/// of background jobs at /dev/null.
const WATCHDOG: &str = r#"
log=$1; shift
"$@" </dev/null >>"$log" 2>&1 &
server=$!
exec 3<&0
( cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null; sleep 10; kill -KILL "$server" 2>/dev/null ) &
reader=$!
wait "$server"
status=$?
kill "$reader" 2>/dev/null
exit "$status"
"#;

/// A server process under a watchdog. Dropping it stops the server and waits for it.
pub(crate) struct Supervised {
    name: &'static str,
    log: PathBuf,
    child: Child,
    /// Closing this tells the watchdog to stop the server.
    lifeline: Option<ChildStdin>,
}

impl Supervised {
    pub(crate) fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
    ) -> io::Result<Self> {
        File::create(&log)?;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("driftless-watchdog")
            .arg(&log)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut supervised = Self {
            name,
            log,
            child,
            lifeline: None,
        };
        supervised.lifeline = supervised.child.stdin.take();
        Ok(supervised)
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// `Some` once the server has exited (it should not while we hold the lifeline).
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines the server logged, for error messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the server and waits up to `grace` for the watchdog; kills the watchdog after that.
    pub(crate) fn stop(&mut self, grace: Duration) {
        self.lifeline.take();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The watchdog's own timer still SIGKILLs the server.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(12));
    }
}
