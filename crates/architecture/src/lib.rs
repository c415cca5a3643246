//! Checks of what ARCHITECTURE.md states, so the document and the code cannot drift apart:
//!
//! - [`rules`] reads each crate's `**Must not depend on**` line from ARCHITECTURE.md, and
//!   [`dependencies`] checks the workspace's dependency graph (`cargo metadata`) against them.
//! - [`modules`] builds each crate's graph of imports between its top-level modules and finds its
//!   cycles; the `module-cycles` binary (`scripts/module-cycles`) prints them.
//!
//! The tests in `tests/architecture.rs` run both on the real workspace, so `cargo test
//! --workspace` fails when a crate breaks its rules or the engine gains an import cycle.

pub mod dependencies;
pub mod modules;
pub mod rules;
mod scc;

use std::path::{Path, PathBuf};

pub use dependencies::{MetadataError, Workspace, WorkspaceCrate};
pub use modules::{ModuleGraph, ModuleGraphError, Node};
pub use rules::{CrateRules, RulesError, Section};

/// The workspace root: two directories above this crate's manifest.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/architecture is two levels below the workspace root")
        .to_path_buf()
}

/// The cargo that runs us (`cargo test`, `cargo run` set `CARGO`), else the one on `PATH`.
pub fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// The import cycles of one library or binary target.
#[derive(Debug, Clone)]
pub struct TargetCycles {
    /// `crates/engine`.
    pub crate_dir: String,
    pub package: String,
    /// `lib`, or `bin driftless`.
    pub target: String,
    /// The directory of the target's root file, as it is to be shown (`crates/engine/src`).
    pub source_dir: PathBuf,
    pub graph: ModuleGraph,
    pub cycles: Vec<Vec<Node>>,
}

impl std::fmt::Display for TargetCycles {
    /// Each cycle with every import inside it and where it is written.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for cycle in &self.cycles {
            let names: Vec<String> = cycle.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "{} ({}): cycle {}",
                self.crate_dir,
                self.target,
                names.join(" ↔ ")
            )?;
            for (from, to, evidence) in self.graph.edges_within(cycle) {
                writeln!(
                    f,
                    "    {from} → {to}: {}:{} {}",
                    self.source_dir.join(&evidence.file).display(),
                    evidence.line,
                    evidence.path
                )?;
            }
        }
        Ok(())
    }
}

/// A target whose module tree could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{crate_dir} ({target})")]
pub struct TargetError {
    pub crate_dir: String,
    pub target: String,
    #[source]
    pub source: ModuleGraphError,
}

/// The module import cycles of every library and binary target in the workspace, or why a
/// target's modules could not be read.
pub fn module_cycles(workspace: &Workspace) -> Vec<Result<TargetCycles, TargetError>> {
    let mut found = Vec::new();
    for krate in &workspace.crates {
        for target in &krate.targets {
            let name = if target.kind == "bin" {
                format!("bin {}", target.name)
            } else {
                target.kind.clone()
            };
            found.push(match ModuleGraph::of_crate(&target.root) {
                Ok(graph) => Ok(TargetCycles {
                    crate_dir: krate.dir.clone(),
                    package: krate.name.clone(),
                    target: name,
                    source_dir: target
                        .root
                        .strip_prefix(&workspace.root)
                        .unwrap_or(&target.root)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .to_path_buf(),
                    cycles: graph.cycles(),
                    graph,
                }),
                Err(source) => Err(TargetError {
                    crate_dir: krate.dir.clone(),
                    target: name,
                    source,
                }),
            });
        }
    }
    found
}

/// `err` and its sources, `: `-separated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    std::iter::successors(Some(err), |err| err.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
