//! driftless's file trees: the vocabulary the Git source, the chart repositories and the
//! renderers share.
//!
//! A [`FileTree`] is a repository's files at one commit (or a chart archive's), held in memory,
//! so applications at different revisions never share a mutable work tree. Every path in one is
//! hostile until checked: [`check_path`] is the grammar of paths from Git, [`join_inside`] keeps a
//! path written in the repository (a symlink, a kustomization, a values file) inside it,
//! [`FileTree::resolve`] follows symlinks only within the tree, and [`FileTree::materialize`]
//! writes a private copy without links for renderers that need files on disk, within
//! [`ReadLimits`].
//!
//! Where the trees come from is not this crate's business: driftless-git reads them from a
//! mirror's objects, driftless-charts unpacks them from an archive.

mod tree;

pub use tree::{Entry, FileTree, MaterializeError, TreeError, check_path, join_inside};

/// Bounds on what one read may load, against oversized or hostile repositories: a tree read from
/// Git, and the copy [`FileTree::materialize`] writes of it (each link's copy counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_files: 20_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}
