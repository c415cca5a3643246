//! The workspace's dependency graph from `cargo metadata`, checked against the rules of
//! ARCHITECTURE.md.
//!
//! What counts as "depends on": a crate's normal dependencies (dev- and build-dependencies do
//! not count: tests may use a cluster, production code may not), followed through external crates
//! but not through other workspace crates. A crate answers for what it pulls in itself, directly
//! or through a library it chose; what it gets through another workspace crate is that crate's
//! business, checked against that crate's own rules. So `driftless-server` may use the engine,
//! which uses `kube`, while `kube` among the server's own dependencies, or behind a library it
//! picked, is a violation.
//!
//! `cargo metadata` resolves features for the whole workspace at once, so an external crate's
//! optional dependency that one crate enables is seen behind every crate that uses it; a rule can
//! therefore fail for a dependency that `cargo tree -p <crate> -e normal` would not show. The
//! message prints the chain so that is easy to tell.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::rules::{Section, same_package};

/// A workspace crate as `cargo metadata` describes it.
#[derive(Debug, Clone)]
pub struct WorkspaceCrate {
    pub name: String,
    /// Relative to the workspace root, with `/`: `crates/core`.
    pub dir: String,
    /// `(kind, root source file)` of each library and binary target.
    pub targets: Vec<Target>,
}

/// A library or binary target: a crate in rustc's sense, with its own module tree.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// `lib`, `bin`, `proc-macro`.
    pub kind: String,
    pub root: PathBuf,
}

/// The workspace: its crates and, for each, the packages it depends on in the sense above with
/// the chain that leads there.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub crates: Vec<WorkspaceCrate>,
    /// Crate name → (package name → chain of package names from the crate to it).
    pub reached: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

/// Returned by [`Workspace::load`].
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("failed to run `{command}`")]
    Run {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("failed to read the output of `cargo metadata`")]
    Json(#[from] serde_json::Error),
    #[error("no {0}")]
    Missing(&'static str),
}

impl Workspace {
    /// Runs `cargo metadata --format-version 1 --offline --filter-platform <host>` on the
    /// workspace of `manifest`: the dependencies of this machine's platform, which are also the
    /// only ones whose sources an offline machine has (the others' cannot be read).
    pub fn load(cargo: &Path, manifest: &Path) -> Result<Self, MetadataError> {
        let host = host_triple(cargo)?;
        let args = [
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host,
            "--manifest-path",
        ];
        let mut command = Command::new(cargo);
        command.args(args).arg(manifest);
        let output = run(&mut command)?;
        Self::from_metadata(&serde_json::from_slice(&output)?)
    }

    /// The workspace described by `cargo metadata`'s JSON.
    pub fn from_metadata(metadata: &Value) -> Result<Self, MetadataError> {
        let root = PathBuf::from(
            metadata["workspace_root"]
                .as_str()
                .ok_or(MetadataError::Missing("workspace_root"))?,
        );
        let members: BTreeSet<&str> = metadata["workspace_members"]
            .as_array()
            .ok_or(MetadataError::Missing("workspace_members"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let packages = metadata["packages"]
            .as_array()
            .ok_or(MetadataError::Missing("packages"))?;
        let name_of: BTreeMap<&str, &str> = packages
            .iter()
            .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
            .collect();

        let mut crates = Vec::new();
        for package in packages {
            let (Some(id), Some(name), Some(manifest)) = (
                package["id"].as_str(),
                package["name"].as_str(),
                package["manifest_path"].as_str(),
            ) else {
                return Err(MetadataError::Missing("package id, name or manifest_path"));
            };
            if !members.contains(id) {
                continue;
            }
            let dir = Path::new(manifest)
                .parent()
                .and_then(|dir| dir.strip_prefix(&root).ok())
                .map(|dir| dir.to_string_lossy().replace('\\', "/"))
                .ok_or(MetadataError::Missing(
                    "a member's directory under the workspace root",
                ))?;
            let targets = package["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|target| {
                    let kind = target["kind"]
                        .as_array()?
                        .iter()
                        .filter_map(Value::as_str)
                        .find(|kind| matches!(*kind, "lib" | "rlib" | "bin" | "proc-macro"))?;
                    Some(Target {
                        name: target["name"].as_str()?.to_owned(),
                        kind: kind.to_owned(),
                        root: PathBuf::from(target["src_path"].as_str()?),
                    })
                })
                .collect();
            crates.push(WorkspaceCrate {
                name: name.to_owned(),
                dir,
                targets,
            });
        }
        crates.sort_by(|a, b| a.dir.cmp(&b.dir));

        // Package id → its normal dependencies' ids.
        let mut normal: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for node in metadata["resolve"]["nodes"]
            .as_array()
            .ok_or(MetadataError::Missing("resolve.nodes"))?
        {
            let id = node["id"]
                .as_str()
                .ok_or(MetadataError::Missing("resolve node id"))?;
            let deps = node["deps"].as_array().into_iter().flatten().filter(|dep| {
                dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|kind| kind["kind"].is_null())
            });
            normal.insert(id, deps.filter_map(|dep| dep["pkg"].as_str()).collect());
        }

        let mut reached = BTreeMap::new();
        for &member in &members {
            let name = name_of.get(member).copied().unwrap_or(member);
            reached.insert(name.to_owned(), reachable(member, &members, &normal, &name_of));
        }
        Ok(Self {
            root,
            crates,
            reached,
        })
    }

    /// Every way the workspace breaks the rules (empty when it keeps them), and every workspace
    /// crate without a section or without a rules line, as sentences.
    pub fn violations(&self, sections: &BTreeMap<String, Section>) -> Vec<String> {
        let mut problems = Vec::new();
        for krate in &self.crates {
            let Some(section) = sections.get(&krate.dir) else {
                problems.push(format!(
                    "{} ({}) has no section in ARCHITECTURE.md (a heading ### `{}` — `{}`)",
                    krate.dir, krate.name, krate.dir, krate.name
                ));
                continue;
            };
            let Some(rules) = &section.rules else {
                problems.push(format!(
                    "{} has no {} line in ARCHITECTURE.md (its section starts at line {})",
                    krate.dir,
                    crate::rules::RULES_NAME,
                    section.line
                ));
                continue;
            };
            let reached = self.reached.get(&krate.name);
            for forbidden in &rules.forbidden {
                let hits = reached
                    .into_iter()
                    .flatten()
                    .filter(|(name, _)| same_package(name, forbidden));
                for (_, chain) in hits {
                    problems.push(format!(
                        "{} ({}) depends on `{forbidden}`, which its section forbids \
                         (ARCHITECTURE.md:{}): {}",
                        krate.dir,
                        krate.name,
                        rules.line,
                        chain.join(" → ")
                    ));
                }
            }
        }
        for dir in sections.keys() {
            if !self.crates.iter().any(|krate| &krate.dir == dir) {
                problems.push(format!(
                    "ARCHITECTURE.md has a section for {dir}, which is not a workspace crate"
                ));
            }
        }
        problems
    }
}

/// Runs `command`, its standard output when it succeeds.
fn run(command: &mut Command) -> Result<Vec<u8>, MetadataError> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|source| MetadataError::Run {
        command: shown.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(MetadataError::Failed {
            command: shown,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

/// The host's target triple from `rustc -vV`, with the rustc beside `cargo` when there is one
/// (a toolchain's own), else `$RUSTC` or the one on `PATH`.
fn host_triple(cargo: &Path) -> Result<String, MetadataError> {
    let beside = cargo.with_file_name("rustc");
    let rustc = if beside.is_file() {
        beside
    } else {
        std::env::var_os("RUSTC").map_or_else(|| PathBuf::from("rustc"), PathBuf::from)
    };
    let output = run(Command::new(rustc).arg("-vV"))?;
    String::from_utf8_lossy(&output)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
        .ok_or(MetadataError::Missing("host triple in `rustc -vV`"))
}

/// Packages reachable from `start` through normal dependencies, not entering other workspace
/// crates (they are reached, not followed), each with the shortest chain of names.
fn reachable(
    start: &str,
    members: &BTreeSet<&str>,
    normal: &BTreeMap<&str, Vec<&str>>,
    name_of: &BTreeMap<&str, &str>,
) -> BTreeMap<String, Vec<String>> {
    let name = |id: &str| name_of.get(id).copied().unwrap_or(id).to_owned();
    let mut chains: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    chains.insert(start, vec![name(start)]);
    while let Some(id) = queue.pop_front() {
        if id != start && members.contains(id) {
            continue;
        }
        for &dep in normal.get(id).into_iter().flatten() {
            if chains.contains_key(dep) {
                continue;
            }
            let mut chain = chains[id].clone();
            chain.push(name(dep));
            chains.insert(dep, chain);
            queue.push_back(dep);
        }
    }
    chains.remove(start);
    chains.into_iter().map(|(id, chain)| (name(id), chain)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::parse;

    /// core → serde → (nothing); core → jsonschema → tokio; server → engine → kube; server → axum.
    fn metadata() -> Value {
        let package = |name: &str, dir: Option<&str>| {
            let manifest = dir.map_or_else(
                || format!("/registry/{name}/Cargo.toml"),
                |dir| format!("/ws/{dir}/Cargo.toml"),
            );
            json!({"id": format!("{name}-id"), "name": name, "manifest_path": manifest,
                   "targets": [{"kind": ["lib"], "name": name, "src_path": "/ws/src/lib.rs"}]})
        };
        let node = |name: &str, deps: &[(&str, Option<&str>)]| {
            let deps: Vec<Value> = deps
                .iter()
                .map(|(dep, kind)| {
                    json!({"pkg": format!("{dep}-id"), "dep_kinds": [{"kind": kind, "target": null}]})
                })
                .collect();
            json!({"id": format!("{name}-id"), "deps": deps})
        };
        json!({
            "workspace_root": "/ws",
            "workspace_members": ["core-id", "engine-id", "server-id"],
            "packages": [
                package("core", Some("crates/core")),
                package("engine", Some("crates/engine")),
                package("server", Some("crates/server")),
                package("serde", None), package("jsonschema", None), package("tokio", None),
                package("kube", None), package("axum", None), package("insta", None),
            ],
            "resolve": {"nodes": [
                node("core", &[("serde", None), ("jsonschema", None), ("insta", Some("dev"))]),
                node("jsonschema", &[("tokio", None)]),
                node("engine", &[("core", None), ("kube", None)]),
                node("server", &[("engine", None), ("axum", None)]),
                node("serde", &[]), node("tokio", &[]), node("kube", &[]), node("axum", &[]),
                node("insta", &[]),
            ]},
        })
    }

    fn sections(core: &str, engine: &str, server: &str) -> BTreeMap<String, Section> {
        let line = |rules: &str| {
            if rules.is_empty() {
                String::new()
            } else {
                format!("**Must not depend on**: {rules}\n")
            }
        };
        parse(&format!(
            "### `crates/core` — x\n{}\n### `crates/engine` — x\n{}\n### `crates/server` — x\n{}",
            line(core),
            line(engine),
            line(server)
        ))
        .expect("valid")
    }

    #[test]
    fn a_forbidden_package_behind_an_external_crate_is_found_with_its_chain() {
        let workspace = Workspace::from_metadata(&metadata()).expect("valid");
        let problems = workspace.violations(&sections("`tokio`, `insta`", "`axum`", "`tokio`"));
        assert_eq!(
            problems,
            [
                "crates/core (core) depends on `tokio`, which its section forbids \
              (ARCHITECTURE.md:2): core → jsonschema → tokio"
            ],
            "dev-dependencies (insta) do not count"
        );
    }

    #[test]
    fn what_another_workspace_crate_brings_is_that_crates_business() {
        let workspace = Workspace::from_metadata(&metadata()).expect("valid");
        assert!(
            workspace
                .violations(&sections("`axum`", "`axum`", "`kube`"))
                .is_empty()
        );
        let problems = workspace.violations(&sections("`axum`", "`axum`", "`engine`"));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("server → engine"), "{problems:?}");
    }

    #[test]
    fn a_crate_without_a_rules_line_or_section_fails_by_name() {
        let workspace = Workspace::from_metadata(&metadata()).expect("valid");
        let problems = workspace.violations(&sections("`axum`", "", "`kube`"));
        assert_eq!(
            problems,
            [
                "crates/engine has no **Must not depend on** line in ARCHITECTURE.md \
              (its section starts at line 4)"
            ]
        );
        let only_core = parse("### `crates/core` — x\n**Must not depend on**: `axum`\n").expect("valid");
        let problems = workspace.violations(&only_core);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("crates/engine (engine) has no section"),
            "{problems:?}"
        );
    }
}
