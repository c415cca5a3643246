//! A control plane's processes stop when the process that started them dies, however it dies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose command line mentions `dir` (every control-plane process names its directory).
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
    let mut owner = Command::new(env!("CARGO_BIN_EXE_driftless-testenv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start driftless-testenv");
    let mut first_line = String::new();
    BufReader::new(owner.stdout.take().expect("stdout"))
        .read_line(&mut first_line)
        .expect("read its first line");
    let dir = first_line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("dir="))
        .unwrap_or_else(|| panic!("no dir= in {first_line:?}"))
        .to_owned();
    assert_eq!(
        processes_using(&dir).len(),
        3,
        "etcd, kube-apiserver and kube-controller-manager run"
    );

    // SIGKILL: no destructor, no signal handler runs in the owner.
    owner.kill().expect("kill the owner");
    owner.wait().expect("reap the owner");

    let deadline = Instant::now() + Duration::from_secs(30);
    while !processes_using(&dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running 30 s after the owner died: {:?}",
            processes_using(&dir)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
