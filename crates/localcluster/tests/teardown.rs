//! A control plane's processes stop when the process that started them dies, however it dies.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the owner if the test fails before it means to, so no control plane outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `condition` every 100 ms for up to `limit`; false when it never held.
fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose command line mentions `dir` (every control-plane process names its directory),
/// leaving out the watchdog shells and their forks.
fn processes_using(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(dir) && !cmdline.contains("driftless-watchdog") {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn killing_the_owner_stops_the_control_plane() {
    // stderr is not inherited: a leaked owner would hold the test runner's output open.
    let mut owner = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_driftless-localcluster"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start driftless-localcluster"),
    );
    let mut first_line = String::new();
    BufReader::new(owner.0.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("read its first line");
    let dir = first_line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("dir="))
        .unwrap_or_else(|| panic!("no dir= in {first_line:?}"))
        .to_owned();
    // Each watchdog forks, then execs its server; the last exec may still be under way.
    assert!(
        eventually(Duration::from_secs(10), || processes_using(&dir).len() == 3),
        "etcd, kube-apiserver and kube-controller-manager should run: {:?}",
        processes_using(&dir)
    );

    // SIGKILL: no destructor and no signal handler runs in the owner.
    owner.0.kill().expect("kill the owner");
    owner.0.wait().expect("reap the owner");

    assert!(
        eventually(Duration::from_secs(30), || processes_using(&dir).is_empty()),
        "still running 30 s after the owner died: {:?}",
        processes_using(&dir)
    );
}
