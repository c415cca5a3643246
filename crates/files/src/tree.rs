//! A repository's files at one commit, held in memory.
//!
//! Every path in a [`FileTree`] came out of a Git tree, and a Git tree can hold entries no work
//! tree can: `..`, `.git`, names with a backslash or a control character (git accepts such trees
//! when objects are not verified). [`check_path`] is the grammar those paths must follow;
//! [`FileTree::from_git`] (driftless-git's `Mirrors::read_tree` builds every tree with it)
//! applies it to every entry, [`FileTree::resolve`] applies its symlink
//! variant to every target it follows, and [`FileTree::materialize`] applies it again before it
//! writes anything, then keeps every write below its root without following a link on disk.

use std::collections::{BTreeMap, HashSet};
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::ReadLimits;

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        contents: Vec<u8>,
        executable: bool,
    },
    /// The link target as stored in Git; resolve with [`FileTree::resolve`].
    Symlink {
        target: String,
    },
    /// A submodule (gitlink); its contents are not fetched.
    Submodule,
}

impl Entry {
    /// A regular file holding `text`.
    #[must_use]
    pub fn file(text: &str) -> Self {
        Self::File {
            contents: text.as_bytes().to_vec(),
            executable: false,
        }
    }

    /// A symlink to `target`, as Git stores it.
    #[must_use]
    pub fn link(target: &str) -> Self {
        Self::Symlink {
            target: target.to_owned(),
        }
    }
}

impl<'a> FromIterator<(&'a str, Entry)> for FileTree {
    fn from_iter<I: IntoIterator<Item = (&'a str, Entry)>>(entries: I) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|(path, entry)| (path.to_owned(), entry))
                .collect(),
            refused: Vec::new(),
        }
    }
}

/// Returned when a path cannot be read safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: symlink to {target:?} points outside the repository")]
    SymlinkEscapes { path: String, target: String },
    #[error("{path}: too many levels of symlinks (a loop?)")]
    SymlinkLoop { path: String },
    #[error("{path}: no such file in the repository at this commit")]
    NotFound { path: String },
    /// A path from a Git tree that breaks [`check_path`]'s grammar.
    #[error("path {path:?} from the repository is refused: it {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// A symlink whose target breaks the grammar of targets (see [`FileTree::resolve`]).
    #[error("{path:?}: symlink to {target:?} is refused: its target {reason}")]
    UnsafeSymlink {
        path: String,
        target: String,
        reason: &'static str,
    },
    /// A link to a directory that holds the link: a copy on disk would never end.
    #[error("{path:?}: symlink to {target:?} is a directory that holds the link itself (a loop); refused")]
    LinkLoop { path: String, target: String },
}

impl TreeError {
    /// The repository path the error is about.
    #[must_use]
    pub fn path(&self) -> &str {
        match self {
            Self::SymlinkEscapes { path, .. }
            | Self::SymlinkLoop { path }
            | Self::NotFound { path }
            | Self::UnsafePath { path, .. }
            | Self::UnsafeSymlink { path, .. }
            | Self::LinkLoop { path, .. } => path,
        }
    }
}

/// Returned by [`FileTree::materialize`]; nothing is written when a path or a limit is refused.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error(transparent)]
    Refused(#[from] TreeError),
    #[error(
        "{path:?}: writing it makes {what} exceed the limit of {limit} (a directory a symlink points \
         at is counted each time it is copied)"
    )]
    TooLarge {
        path: String,
        what: &'static str,
        limit: u64,
    },
    #[error("cannot write {path:?}: {cause}")]
    Io { path: String, cause: std::io::Error },
}

/// Symlink hops followed before a chain counts as a loop (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Files of a repository at one commit, keyed by their path from the repository root
/// (`/`-separated, no leading `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTree {
    pub entries: BTreeMap<String, Entry>,
    /// Entries of the Git tree left out of `entries`, each with why (see [`FileTree::from_git`]).
    /// One bad entry must not fail every application of a monorepo: only those whose own path
    /// holds it ([`FileTree::check_under`]) or whose render needs it (it is not found).
    pub refused: Vec<TreeError>,
}

/// Why one component of a path from Git is refused, if it is.
fn component_problem(component: &str) -> Option<&'static str> {
    match component {
        "" => Some("has an empty component"),
        "." => Some("has a `.` component"),
        ".." => Some("has a `..` component (it would climb out of the repository)"),
        // Any letter case: case-insensitive file systems (and git on them) treat `.GIT` as `.git`,
        // and a tool run in a copy must never find a repository (hooks, config) planted there.
        c if c.eq_ignore_ascii_case(".git") => Some("has a `.git` component"),
        // A separator on Windows, and how `..\..\x` hides a climb from `/`-splitting checks.
        c if c.contains('\\') => Some("holds a backslash"),
        // NUL ends a path for the kernel (what is checked would not be what is opened); newlines
        // and escapes would forge lines and colours in errors, logs and tools' line-based output.
        c if c.chars().any(char::is_control) => Some("holds a control character"),
        _ => None,
    }
}

fn path_problem(path: &str) -> Option<&'static str> {
    if path.starts_with('/') {
        return Some("is absolute");
    }
    path.split('/').find_map(component_problem)
}

/// Checks a path that came out of a Git tree (an entry, at any depth): refused when it is
/// absolute or a component is empty, `.`, `..`, `.git` in any letter case, or holds a backslash
/// or a control character (NUL included). The error names the path.
pub fn check_path(path: &str) -> Result<(), TreeError> {
    match path_problem(path) {
        Some(reason) => Err(TreeError::UnsafePath {
            path: path.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The grammar of a relative symlink target: like [`check_path`], except that `.` and `..` are
/// allowed (`../base` is how repositories share files; [`join_inside`] then keeps the result
/// inside the repository) and so is one trailing `/` (`../base/`). Absolute targets are left to
/// [`join_inside`], which refuses them as escapes.
fn target_problem(target: &str) -> Option<&'static str> {
    if target.is_empty() {
        return Some("is empty");
    }
    let components: Vec<&str> = target.split('/').collect();
    let last = components.len() - 1;
    components
        .iter()
        .enumerate()
        .find_map(|(i, component)| match *component {
            "." | ".." => None,
            "" if i == last => None,
            other => component_problem(other),
        })
}

/// Joins `target` onto `base_dir` and normalises it; `None` if it climbs above the root or is
/// absolute. What a path written in the repository (a symlink, a kustomization, a values file)
/// names inside it.
#[must_use]
pub fn join_inside(base_dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base_dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

impl FileTree {
    /// The tree of Git's entries, in any order. Left out and listed in `refused`: a path that
    /// breaks [`check_path`] (and everything under it), a path that appears twice, and a link to
    /// a directory that holds the link (a copy of it on disk would never end).
    #[must_use]
    pub fn from_git(entries: impl IntoIterator<Item = (String, Entry)>) -> Self {
        let mut tree = Self::default();
        let mut twice = Vec::new();
        for (path, entry) in entries {
            if let Err(err) = check_path(&path) {
                tree.refused.push(err);
            } else if tree.entries.insert(path.clone(), entry).is_some() {
                twice.push(path);
            }
        }
        for path in twice {
            tree.entries.remove(&path);
            tree.refused.push(TreeError::UnsafePath {
                path,
                reason: "appears twice in the tree",
            });
        }
        let loops: Vec<TreeError> = tree
            .entries
            .iter()
            .filter_map(|(path, entry)| tree.link_loop(path, entry))
            .collect();
        for err in loops {
            tree.entries.remove(err.path());
            tree.refused.push(err);
        }
        tree
    }

    /// The loop `path` makes when it is a link to a directory that holds it.
    fn link_loop(&self, path: &str, entry: &Entry) -> Option<TreeError> {
        let Entry::Symlink { target } = entry else {
            return None;
        };
        let resolved = self.resolve(path).ok()?;
        let directory = !self.entries.contains_key(&resolved);
        (directory && (resolved.is_empty() || path.starts_with(&format!("{resolved}/")))).then(|| {
            TreeError::LinkLoop {
                path: path.to_owned(),
                target: target.clone(),
            }
        })
    }

    /// Refuses an application whose files are at or below `dir` ("" for the whole repository)
    /// when an entry there was left out of the tree; the error names the entry.
    pub fn check_under(&self, dir: &str) -> Result<(), TreeError> {
        let holds = |path: &str| {
            dir.is_empty()
                || path == dir
                || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
                || dir.strip_prefix(path).is_some_and(|rest| rest.starts_with('/'))
        };
        match self.refused.iter().find(|err| holds(err.path())) {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Paths of the entries at or below `dir` ("" for everything).
    pub fn paths_under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .keys()
            .map(String::as_str)
            .filter(move |path| dir.is_empty() || path.starts_with(&prefix))
    }

    /// Where `path` finally points, following symlinks, refusing any that leave the repository
    /// or whose target breaks the grammar of targets (an empty component other than a trailing
    /// `/`, `.git` in any letter case, a backslash, a control character).
    /// A directory symlink resolves to the directory's path.
    pub fn resolve(&self, path: &str) -> Result<String, TreeError> {
        let mut current = path.to_owned();
        for _ in 0..MAX_SYMLINK_HOPS {
            match self.entries.get(&current) {
                Some(Entry::Symlink { target }) => {
                    if !target.starts_with('/')
                        && let Some(reason) = target_problem(target)
                    {
                        return Err(TreeError::UnsafeSymlink {
                            path: current,
                            target: target.clone(),
                            reason,
                        });
                    }
                    current =
                        join_inside(parent(&current), target).ok_or_else(|| TreeError::SymlinkEscapes {
                            path: path.to_owned(),
                            target: target.clone(),
                        })?;
                }
                Some(_) => return Ok(current),
                None if self.paths_under(&current).next().is_some() => return Ok(current),
                None => {
                    return Err(TreeError::NotFound {
                        path: path.to_owned(),
                    });
                }
            }
        }
        Err(TreeError::SymlinkLoop {
            path: path.to_owned(),
        })
    }

    /// The contents of a file, following symlinks inside the repository.
    pub fn read(&self, path: &str) -> Result<&[u8], TreeError> {
        let resolved = self.resolve(path)?;
        match self.entries.get(&resolved) {
            Some(Entry::File { contents, .. }) => Ok(contents),
            _ => Err(TreeError::NotFound {
                path: path.to_owned(),
            }),
        }
    }

    /// The repository paths whose contents [`FileTree::materialize`] wrote at `path` when it is
    /// (or lies below) a symlink: the link itself and the resolved target; empty otherwise.
    #[must_use]
    pub fn sources_of(&self, path: &str) -> Vec<String> {
        let mut sources = Vec::new();
        for (link, entry) in &self.entries {
            if !matches!(entry, Entry::Symlink { .. }) {
                continue;
            }
            let Some(rest) = path.strip_prefix(link.as_str()) else {
                continue;
            };
            if !(rest.is_empty() || rest.starts_with('/')) {
                continue;
            }
            sources.push(link.clone());
            if let Ok(target) = self.resolve(link) {
                sources.push(format!("{target}{rest}"));
            }
        }
        sources
    }

    /// Writes the tree into `dir` for programs that read files (Kustomize, Helm). Symlinks that
    /// resolve inside the repository are written as copies of what they point at, so no link on
    /// disk can lead a program elsewhere; links that escape, dangle or break the target grammar
    /// are left out and listed in the result, for the error a program reading them will give.
    /// Submodules are left out; so are links inside a directory a link points at.
    ///
    /// A link to a directory that holds the link (a copy on disk would never end) is left out and
    /// listed too ([`FileTree::from_git`] has already set such links aside, for
    /// [`FileTree::check_under`] to refuse the applications they lie in).
    ///
    /// Refused before anything is written: a path that breaks [`check_path`]; more files or
    /// bytes than `limits` once every link's copy is counted (links can multiply a repository).
    /// Each write stays lexically below `dir`, creates its file anew and never passes through a
    /// link on disk.
    pub fn materialize(&self, dir: &Path, limits: ReadLimits) -> Result<Vec<TreeError>, MaterializeError> {
        let mut refused = Vec::new();
        let mut plan = Plan {
            writes: Vec::new(),
            files: 0,
            bytes: 0,
            limits,
        };
        for (path, entry) in &self.entries {
            check_path(path)?;
            match entry {
                Entry::File { contents, .. } => plan.add(path.clone(), contents)?,
                Entry::Submodule => {}
                Entry::Symlink { .. } => {
                    if let Some(err) = self.link_loop(path, entry) {
                        refused.push(err);
                        continue;
                    }
                    let resolved = match self.resolve(path) {
                        Ok(resolved) => resolved,
                        Err(err) => {
                            refused.push(err);
                            continue;
                        }
                    };
                    if let Some(Entry::File { contents, .. }) = self.entries.get(&resolved) {
                        plan.add(path.clone(), contents)?;
                        continue;
                    }
                    // A link to a directory (not a loop): its files are copied under its path.
                    for inner in self.paths_under(&resolved) {
                        if let Some(Entry::File { contents, .. }) = self.entries.get(inner) {
                            plan.add(format!("{path}{}", &inner[resolved.len()..]), contents)?;
                        }
                    }
                }
            }
        }
        let mut writer = Writer::new(dir)?;
        for (path, contents) in plan.writes {
            writer.write(&path, contents)?;
        }
        Ok(refused)
    }
}

/// What [`FileTree::materialize`] will write, counted against the limits before any write.
struct Plan<'t> {
    writes: Vec<(String, &'t [u8])>,
    files: usize,
    bytes: u64,
    limits: ReadLimits,
}

impl<'t> Plan<'t> {
    fn add(&mut self, path: String, contents: &'t [u8]) -> Result<(), MaterializeError> {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(contents.len() as u64);
        if self.files > self.limits.max_files {
            return Err(MaterializeError::TooLarge {
                path,
                what: "the number of files",
                limit: self.limits.max_files as u64,
            });
        }
        if self.bytes > self.limits.max_bytes {
            return Err(MaterializeError::TooLarge {
                path,
                what: "the total size of the files",
                limit: self.limits.max_bytes,
            });
        }
        self.writes.push((path, contents));
        Ok(())
    }
}

/// Writes files below a root it owns, creating each directory itself so that none is a link.
struct Writer<'r> {
    root: &'r Path,
    /// Directories this writer created (or found to be real directories).
    dirs: HashSet<PathBuf>,
}

impl<'r> Writer<'r> {
    fn new(root: &'r Path) -> Result<Self, MaterializeError> {
        let io = |cause| MaterializeError::Io {
            path: root.display().to_string(),
            cause,
        };
        std::fs::create_dir_all(root).map_err(io)?;
        let mut writer = Self {
            root,
            dirs: HashSet::new(),
        };
        writer.directory(root.to_path_buf(), "")?;
        Ok(writer)
    }

    /// Makes sure `dir` is a real directory (not a link to one).
    fn directory(&mut self, dir: PathBuf, path: &str) -> Result<(), MaterializeError> {
        if self.dirs.contains(&dir) {
            return Ok(());
        }
        let io = |cause| MaterializeError::Io {
            path: path.to_owned(),
            cause,
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(&dir).map_err(io)?;
                if !meta.is_dir() {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a directory (a link?)", dir.display()),
                    )));
                }
            }
            Err(err) => return Err(io(err)),
        }
        self.dirs.insert(dir);
        Ok(())
    }

    fn write(&mut self, path: &str, contents: &[u8]) -> Result<(), MaterializeError> {
        // Also for the paths built from a link and what it points at.
        check_path(path)?;
        let io = |cause| MaterializeError::Io {
            path: path.to_owned(),
            cause,
        };
        let mut target = self.root.to_path_buf();
        let mut components = path.split('/').peekable();
        while let Some(component) = components.next() {
            target.push(component);
            if components.peek().is_some() {
                self.directory(target.clone(), path)?;
            }
        }
        // Defence in depth: the grammar already keeps `..` and absolute paths out.
        let lexically_inside = target.starts_with(self.root)
            && target
                .strip_prefix(self.root)
                .is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))));
        if !lexically_inside {
            return Err(TreeError::UnsafePath {
                path: path.to_owned(),
                reason: "leaves the directory it is written to",
            }
            .into());
        }
        // `create_new` (O_CREAT|O_EXCL) fails on anything already there, a link included, so a
        // write never follows one.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io)?;
        file.write_all(contents).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, Entry)]) -> FileTree {
        entries.iter().cloned().collect()
    }

    fn file(text: &str) -> Entry {
        Entry::file(text)
    }

    fn link(target: &str) -> Entry {
        Entry::link(target)
    }

    #[test]
    fn symlinks_inside_the_repository_are_followed() {
        let t = tree(&[
            ("base/cm.yaml", file("a")),
            ("app/cm.yaml", link("../base/cm.yaml")),
            ("app/chain", link("cm.yaml")),
        ]);
        assert_eq!(t.read("app/cm.yaml"), Ok(b"a".as_slice()));
        assert_eq!(t.read("app/chain"), Ok(b"a".as_slice()));
    }

    #[test]
    fn escaping_absolute_and_looping_symlinks_are_refused() {
        let t = tree(&[
            ("app/up", link("../../etc/passwd")),
            ("app/abs", link("/etc/passwd")),
            ("app/a", link("b")),
            ("app/b", link("a")),
            ("app/via", link("up")),
        ]);
        assert!(matches!(t.read("app/up"), Err(TreeError::SymlinkEscapes { .. })));
        assert!(matches!(t.read("app/abs"), Err(TreeError::SymlinkEscapes { .. })));
        assert!(
            matches!(t.read("app/via"), Err(TreeError::SymlinkEscapes { .. })),
            "a chain that ends outside escapes too"
        );
        assert_eq!(
            t.read("app/a"),
            Err(TreeError::SymlinkLoop { path: "app/a".into() })
        );
    }

    #[test]
    fn materialized_trees_hold_no_symlinks() {
        let t = tree(&[
            ("base/cm.yaml", file("a")),
            ("overlay/link.yaml", link("../base/cm.yaml")),
            ("overlay/base", link("../base")),
            ("overlay/evil", link("/etc/passwd")),
        ]);
        let dir = tempfile::tempdir().expect("tempdir");
        let refused = t
            .materialize(dir.path(), ReadLimits::default())
            .expect("materialize");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("overlay/link.yaml")).expect("copied"),
            "a"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("overlay/base/cm.yaml")).expect("directory copied"),
            "a"
        );
        assert!(!dir.path().join("overlay/evil").exists());
        assert_eq!(
            refused,
            vec![TreeError::SymlinkEscapes {
                path: "overlay/evil".into(),
                target: "/etc/passwd".into()
            }]
        );
        assert!(!dir.path().join("overlay/link.yaml").is_symlink());
    }

    /// Every `pwned*` file below `dir` that is not below `inside`.
    fn escaped(dir: &Path, inside: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(path) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                stack.extend(
                    std::fs::read_dir(&path)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path()),
                );
            } else if !path.starts_with(inside)
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("pwned"))
            {
                found.push(path);
            }
        }
        found
    }

    #[test]
    fn hostile_entry_paths_are_refused_and_nothing_is_written_outside() {
        for hostile in [
            "x/../../../../pwned.txt",
            "../pwned.txt",
            "x/.git/config",
            "x/.GIT/config",
            "x/a\\b",
            "/pwned.txt",
            "x//y",
            "x/./y",
            "x/\u{1b}y",
        ] {
            let outer = tempfile::tempdir().expect("tempdir");
            let root = outer.path().join("a/b/c/root");
            let t = tree(&[("app/cm.yaml", file("a")), (hostile, file("pwned"))]);
            let result = t.materialize(&root, ReadLimits::default());
            assert!(result.is_err(), "{hostile:?} is refused: {result:?}");
            assert_eq!(escaped(outer.path(), &root), Vec::<PathBuf>::new(), "{hostile:?}");
            assert!(
                !root.join("x").exists(),
                "{hostile:?}: nothing is written once a path is refused"
            );
        }
    }

    #[test]
    fn directory_links_to_themselves_or_an_ancestor_are_left_out_and_refuse_only_their_directory() {
        for (name, target) in [
            ("a", "."),
            ("x/up", ".."),
            ("x/self", "../x"),
            ("x/deep/up", "../.."),
            ("chain", "x/deep/up"),
        ] {
            let mut entries = vec![
                ("x/cm.yaml".to_owned(), file("a")),
                ("y/cm.yaml".to_owned(), file("b")),
                (name.to_owned(), link(target)),
            ];
            if name == "chain" {
                entries.push(("x/deep/up".to_owned(), link("../..")));
            }
            let as_listed = FileTree {
                entries: entries.iter().cloned().collect(),
                refused: Vec::new(),
            };
            let dir = tempfile::tempdir().expect("tempdir");
            let refused = as_listed
                .materialize(dir.path(), ReadLimits::default())
                .expect("a loop is left out, not fatal");
            assert!(
                refused.iter().any(|e| e.path() == name),
                "{name} -> {target} is left out, naming the link: {refused:?}"
            );
            assert!(!dir.path().join(name).exists(), "{name}");
            assert!(
                dir.path().join("y/cm.yaml").is_file(),
                "{name}: the rest is written"
            );

            let t = FileTree::from_git(entries);
            assert!(!t.entries.contains_key(name), "{name} is set aside");
            assert_eq!(
                t.check_under("y"),
                Ok(()),
                "{name}: another directory is unaffected"
            );
            let parent_dir = parent(name);
            let err = t.check_under(parent_dir).expect_err(name).to_string();
            assert!(err.contains(name) && err.contains("loop"), "{name}: {err}");
        }
    }

    #[test]
    fn unsafe_entries_are_left_out_and_refuse_only_the_directories_that_hold_them() {
        let t = FileTree::from_git([
            ("apps/web/cm.yaml".to_owned(), file("a")),
            ("junk/a\\b".to_owned(), file("x")),
            ("junk/Icon\r".to_owned(), file("")),
            ("junk/../../x".to_owned(), file("x")),
            ("apps/web/twice".to_owned(), file("1")),
            ("apps/web/twice".to_owned(), file("2")),
        ]);
        assert_eq!(
            t.entries.keys().collect::<Vec<_>>(),
            vec!["apps/web/cm.yaml"],
            "only safe entries are kept"
        );
        assert_eq!(t.check_under("apps/api"), Ok(()));
        assert_eq!(t.check_under("apps/webx"), Ok(()));
        for (dir, named) in [
            ("junk", "junk/a\\\\b"),
            ("", "junk/a\\\\b"),
            ("junk/a\\b/deeper", "junk/a\\\\b"),
            ("apps/web", "apps/web/twice"),
        ] {
            let err = t.check_under(dir).expect_err(dir).to_string();
            assert!(err.contains(named), "{dir}: {err}");
        }
        assert!(
            t.refused.iter().any(|e| e.path() == "junk/Icon\r"),
            "{:?}",
            t.refused
        );
    }

    #[test]
    fn links_that_multiply_a_repository_are_refused_before_anything_big_is_written() {
        // A 10 MiB repository, then 50 links to its one directory, or to its parent. (Links to
        // the root are loops, left out.)
        for (name, target) in [("copy", "top/data"), ("up", "top")] {
            let mut entries: Vec<(String, Entry)> = (0..10)
                .map(|i| (format!("top/data/blob{i}"), file(&"x".repeat(1 << 20))))
                .collect();
            entries.extend((0..50).map(|i| (format!("{name}{i}"), link(target))));
            let t = FileTree::from_git(entries);
            let dir = tempfile::tempdir().expect("tempdir");
            let result = t.materialize(dir.path(), ReadLimits::default());
            let message = format!("{result:?}");
            assert!(result.is_err(), "50 links to {target}: refused: {message}");
            assert!(message.contains(name), "names a link: {message}");
            let mut written = 0;
            let mut stack = vec![dir.path().to_path_buf()];
            while let Some(path) = stack.pop() {
                if path.is_dir() {
                    stack.extend(std::fs::read_dir(&path).expect("dir").flatten().map(|e| e.path()));
                } else {
                    written += std::fs::metadata(&path).map_or(0, |m| m.len());
                }
            }
            assert_eq!(written, 0, "50 links to {target}: nothing is written");
        }
        // 50 links to the root itself (`a -> .`): each is a loop, left out and listed; the
        // repository is written once, not 51 times.
        let mut entries: Vec<(String, Entry)> = (0..10)
            .map(|i| (format!("data/blob{i}"), file(&"x".repeat(1 << 20))))
            .collect();
        entries.extend((0..50).map(|i| (format!("root{i}"), link("."))));
        let t = FileTree::from_git(entries);
        assert_eq!(
            t.refused.len(),
            50,
            "every link to the root is refused: {:?}",
            t.refused
        );
        let dir = tempfile::tempdir().expect("tempdir");
        t.materialize(dir.path(), ReadLimits::default())
            .expect("the rest is written");
        let written: u64 = std::fs::read_dir(dir.path().join("data"))
            .expect("data")
            .flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum();
        assert_eq!(written, 10 << 20, "the data once");
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "no copy under any link"
        );
    }

    #[test]
    fn materialize_never_writes_through_a_symlink_on_disk() {
        let outer = tempfile::tempdir().expect("tempdir");
        let root = outer.path().join("root");
        let elsewhere = outer.path().join("elsewhere");
        std::fs::create_dir_all(&root).expect("root");
        std::fs::create_dir_all(&elsewhere).expect("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, root.join("app")).expect("symlink");
        std::os::unix::fs::symlink(elsewhere.join("pwned-file"), root.join("top.yaml")).expect("symlink");
        let t = tree(&[("app/pwned.yaml", file("a")), ("top.yaml", file("b"))]);
        let result = t.materialize(&root, ReadLimits::default());
        assert!(result.is_err(), "{result:?}");
        assert_eq!(
            std::fs::read_dir(&elsewhere).expect("read").count(),
            0,
            "nothing was written through a link"
        );
    }
}
