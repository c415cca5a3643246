//! A repository's files at one commit, held in memory.

use std::collections::BTreeMap;
use std::path::Path;

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

/// Returned when a path cannot be read safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: symlink to {target:?} points outside the repository")]
    SymlinkEscapes { path: String, target: String },
    #[error("{path}: too many levels of symlinks (a loop?)")]
    SymlinkLoop { path: String },
    #[error("{path}: no such file in the repository at this commit")]
    NotFound { path: String },
}

/// Symlink hops followed before a chain counts as a loop (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Files of a repository at one commit, keyed by their path from the repository root
/// (`/`-separated, no leading `/`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTree {
    pub entries: BTreeMap<String, Entry>,
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

    /// Where `path` finally points, following symlinks, refusing any that leave the repository.
    /// A directory symlink resolves to the directory's path.
    pub fn resolve(&self, path: &str) -> Result<String, TreeError> {
        let mut current = path.to_owned();
        for _ in 0..MAX_SYMLINK_HOPS {
            match self.entries.get(&current) {
                Some(Entry::Symlink { target }) => {
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

    /// Writes the tree into `dir` for programs that read files (Kustomize). Symlinks that resolve
    /// inside the repository are written as copies of what they point at, so no link on disk can
    /// lead a program elsewhere; links that escape, loop or dangle are left out and listed in the
    /// result, for the error a program reading them will give. Submodules are left out.
    pub fn materialize(&self, dir: &Path) -> std::io::Result<Vec<TreeError>> {
        let mut refused = Vec::new();
        for (path, entry) in &self.entries {
            let contents = match entry {
                Entry::File { contents, .. } => contents.as_slice(),
                Entry::Submodule => continue,
                Entry::Symlink { .. } => {
                    let resolved = match self.resolve(path) {
                        Ok(resolved) => resolved,
                        Err(err) => {
                            refused.push(err);
                            continue;
                        }
                    };
                    if let Some(Entry::File { contents, .. }) = self.entries.get(&resolved) {
                        contents.as_slice()
                    } else {
                        // A link to a directory: copy the directory's files under the link's path.
                        for inner in self.paths_under(&resolved) {
                            if let Some(Entry::File { contents, .. }) = self.entries.get(inner) {
                                write_file(dir, &format!("{path}{}", &inner[resolved.len()..]), contents)?;
                            }
                        }
                        continue;
                    }
                }
            };
            write_file(dir, path, contents)?;
        }
        Ok(refused)
    }
}

fn write_file(root: &Path, path: &str, contents: &[u8]) -> std::io::Result<()> {
    let target = root.join(path);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(target, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, Entry)]) -> FileTree {
        FileTree {
            entries: entries
                .iter()
                .map(|(p, e)| ((*p).to_owned(), e.clone()))
                .collect(),
        }
    }

    fn file(text: &str) -> Entry {
        Entry::File {
            contents: text.as_bytes().to_vec(),
            executable: false,
        }
    }

    fn link(target: &str) -> Entry {
        Entry::Symlink {
            target: target.to_owned(),
        }
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
        let refused = t.materialize(dir.path()).expect("materialize");
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
}
