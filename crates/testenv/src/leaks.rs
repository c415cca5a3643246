//! Looking for a secret where it must never be: in any file under a directory (a Git mirror, a
//! chart cache), as it is or as an `Authorization: Basic` header carries it.

use std::path::{Path, PathBuf};

use base64::Engine as _;

/// Searches every file under `dir` (symlinks are not followed) for `secret`, and panics naming
/// the first file that holds it. Returns how many files were searched, so a test can check that
/// the search saw what it meant to.
///
/// Besides the plain bytes, the secret is looked for base64-encoded at each of the three
/// alignments it can have inside a longer encoded value (`user:secret`): only the characters
/// that depend on the secret alone, so a neighbour cannot hide it. A secret shorter than about
/// nine bytes has too few of those to look for without false alarms; it is searched plain only.
///
/// # Panics
/// When a file holds the secret, or `dir` cannot be read.
#[must_use]
pub fn assert_no_file_holds(dir: &Path, secret: &str) -> usize {
    let needles = needles(secret);
    let mut searched = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        let meta =
            std::fs::symlink_metadata(&path).unwrap_or_else(|err| panic!("stat {}: {err}", path.display()));
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path)
                .unwrap_or_else(|err| panic!("read the directory {}: {err}", path.display()));
            stack.extend(entries.map(|entry| entry.expect("a directory entry").path()));
        } else if meta.is_file() {
            searched += 1;
            let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
            for needle in &needles {
                assert!(
                    !bytes
                        .windows(needle.len())
                        .any(|window| window == needle.as_bytes()),
                    "{} holds the secret (as {needle:?})",
                    path.display()
                );
            }
        }
    }
    searched
}

/// The secret, and the part of its base64 encoding that only it decides at each alignment: the
/// first four characters may encode a byte before it, the last four a byte after it.
fn needles(secret: &str) -> Vec<String> {
    const MIN_ENCODED: usize = 8;
    let mut needles = vec![secret.to_owned()];
    for before in ["", "x", "xy"] {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{before}{secret}"));
        let core = encoded.trim_end_matches('=');
        if core.len() >= MIN_ENCODED + 8 {
            needles.push(core[4..core.len() - 4].to_owned());
        }
    }
    needles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_secret_plain_and_inside_a_basic_header_at_every_alignment() {
        let secret = "correct-horse-battery";
        for user in ["", "a", "ab", "abc", "robot"] {
            let dir = tempfile::tempdir().expect("tempdir");
            let header = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
            std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
            std::fs::write(
                dir.path().join("logs/HEAD"),
                format!("Authorization: Basic {header}\n"),
            )
            .expect("write");
            let found = std::panic::catch_unwind(|| assert_no_file_holds(dir.path(), secret));
            assert!(found.is_err(), "the header of user {user:?} was found");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config"),
            format!("url = https://bot:{secret}@host/\n"),
        )
        .expect("write");
        assert!(std::panic::catch_unwind(|| assert_no_file_holds(dir.path(), secret)).is_err());
        std::fs::write(dir.path().join("config"), "url = https://host/\n").expect("write");
        assert_eq!(assert_no_file_holds(dir.path(), secret), 1);
    }
}
