//! Paths from Git, whatever their bytes: a tree of entries (files and symlinks) given as
//! `<kind><path>\t<contents or target>` lines is checked, resolved and materialised into a
//! temporary directory. Nothing is ever written outside it, no link is ever created, every path
//! that passes the check stays inside the repository, and nothing panics.
#![no_main]

use driftless_files::{Entry, FileTree, ReadLimits, check_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut tree = FileTree::default();
    for line in text.split('\n') {
        let mut chars = line.chars();
        let kind = chars.next();
        let (path, value) = chars.as_str().split_once('\t').unwrap_or((chars.as_str(), ""));
        let entry = match kind {
            Some('l') => Entry::Symlink {
                target: value.to_owned(),
            },
            _ => Entry::File {
                contents: value.as_bytes().to_vec(),
                executable: false,
            },
        };
        // `u` adds the entry unchecked: materialize must refuse it on its own.
        if kind == Some('u') || check_path(path).is_ok() {
            tree.entries.insert(path.to_owned(), entry);
        }
    }
    // Where a checked path leads, following links, is inside the repository.
    for path in tree.entries.keys().filter(|path| check_path(path).is_ok()) {
        if let Ok(resolved) = tree.resolve(path) {
            assert!(!resolved.starts_with('/'), "{path:?} resolved to {resolved:?}");
            assert!(
                !resolved.split('/').any(|c| c == ".."),
                "{path:?} resolved to {resolved:?}"
            );
        }
    }
    let outer = tempfile::tempdir().expect("tempdir");
    let root = outer.path().join("a/b/root");
    let limits = ReadLimits {
        max_files: 256,
        max_bytes: 1 << 20,
    };
    let result = tree.materialize(&root, limits);
    let mut files = 0;
    let mut pending = vec![outer.path().to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a directory").flatten() {
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            assert!(!kind.is_symlink(), "a link was written: {}", path.display());
            if kind.is_dir() {
                pending.push(path);
            } else {
                files += 1;
                assert!(path.starts_with(&root), "written outside: {}", path.display());
                let relative = path
                    .strip_prefix(&root)
                    .expect("inside")
                    .to_string_lossy()
                    .into_owned();
                assert!(check_path(&relative).is_ok(), "wrote {relative:?}");
            }
        }
    }
    if result.is_ok() {
        assert!(files <= limits.max_files);
    }
});
