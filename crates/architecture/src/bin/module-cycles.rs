//! Prints the import cycles between the top-level modules of every crate in the workspace (see
//! `driftless_architecture::modules` for what counts), one block per cycle with each import in it
//! and where it is written. Exits 0 whether or not there are cycles (the architecture test decides
//! which crates may have them), 2 when the workspace or a crate's modules cannot be read.
//!
//!   module-cycles [CRATE_DIR...]    only these crates (`crates/engine`)
//!   module-cycles --root FILE       the crate whose root is FILE (a `lib.rs` of another checkout)
//!   module-cycles --edges [CRATE_DIR...]   also every import edge, cycle or not

use std::process::ExitCode;

use driftless_architecture::error_chain;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--root") {
        let Some(file) = args.next() else {
            eprintln!("module-cycles: --root needs a file");
            return ExitCode::from(2);
        };
        return match driftless_architecture::ModuleGraph::of_crate(std::path::Path::new(&file)) {
            Ok(graph) => {
                let target = driftless_architecture::TargetCycles {
                    crate_dir: file.clone(),
                    package: String::new(),
                    target: "root".to_owned(),
                    source_dir: std::path::Path::new(&file)
                        .parent()
                        .unwrap_or(std::path::Path::new(""))
                        .to_path_buf(),
                    cycles: graph.cycles(),
                    graph,
                };
                if target.cycles.is_empty() {
                    println!("{file}: no cycles");
                } else {
                    print!("{target}");
                }
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("module-cycles: {}", error_chain(&err));
                ExitCode::from(2)
            }
        };
    }
    let mut only: Vec<String> = std::env::args()
        .skip(1)
        .map(|dir| dir.trim_end_matches('/').to_owned())
        .collect();
    let edges = only.first().is_some_and(|arg| arg == "--edges");
    if edges {
        only.remove(0);
    }
    let root = driftless_architecture::workspace_root();
    let workspace = match driftless_architecture::Workspace::load(
        &driftless_architecture::cargo(),
        &root.join("Cargo.toml"),
    ) {
        Ok(workspace) => workspace,
        Err(err) => {
            eprintln!("module-cycles: {}", error_chain(&err));
            return ExitCode::from(2);
        }
    };
    let mut unreadable = false;
    for target in driftless_architecture::module_cycles(&workspace) {
        let (crate_dir, shown) = match &target {
            Ok(target) if target.cycles.is_empty() => (
                &target.crate_dir,
                format!("{} ({}): no cycles\n", target.crate_dir, target.target),
            ),
            Ok(target) => (&target.crate_dir, target.to_string()),
            Err(err) => (&err.crate_dir, format!("{}\n", error_chain(err))),
        };
        if only.is_empty() || only.contains(crate_dir) {
            unreadable |= target.is_err();
            print!("{shown}");
            if let (true, Ok(target)) = (edges, &target) {
                for ((from, to), evidence) in &target.graph.edges {
                    println!(
                        "    edge {from} → {to}: {}:{} {}",
                        target.source_dir.join(&evidence.file).display(),
                        evidence.line,
                        evidence.path
                    );
                }
            }
        }
    }
    if unreadable {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
