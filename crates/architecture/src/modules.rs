//! The import graph between the top-level modules of one crate (a library or binary target), and
//! its cycles.
//!
//! - **Nodes** are the crate root (`lib.rs`/`main.rs`, shown as `crate`) and the modules it
//!   declares (`mod sync;` → `sync`, whether `sync.rs` or `sync/mod.rs`). A submodule belongs to
//!   its top-level module: what `sync/apply.rs` imports, `sync` imports.
//! - **Edges** come from paths that name another part of the crate: `use crate::a::…`,
//!   `crate::a::f()` anywhere in code (types, expressions, patterns, macro arguments),
//!   `super::…` and `self::…` (resolved against the module they are written in), and in the crate
//!   root, paths through its own modules. Visibility restrictions (`pub(crate)`,
//!   `pub(in crate::a)`) are not imports.
//! - **The crate root's `use` items are a facade**: `crate::Engine`, where the root says
//!   `pub use engine::Engine;`, is an edge to `engine`, not to the root. Only items the root
//!   defines itself (functions, types, macros) make the root a node others depend on, and only
//!   paths in those items make edges from it.
//! - `#[cfg(test)]` items (test modules, test-only helpers) are left out: they may reach
//!   anywhere, and are not part of the layering.
//!
//! A cycle is a strongly connected component of more than one node.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, TokenStream, TokenTree};
use syn::visit::Visit;

/// A node: the crate root or one top-level module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Node {
    Root,
    Module(String),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Root => f.write_str("crate"),
            Self::Module(name) => f.write_str(name),
        }
    }
}

/// Where an edge comes from: the first place seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// Relative to the crate's root directory (`src/`).
    pub file: PathBuf,
    pub line: usize,
    /// The path as written, `crate::sync::apply`.
    pub path: String,
}

/// One crate's module graph.
#[derive(Debug, Clone, Default)]
pub struct ModuleGraph {
    pub nodes: BTreeSet<Node>,
    pub edges: BTreeMap<(Node, Node), Evidence>,
}

/// Returned by [`ModuleGraph::of_crate`].
#[derive(Debug, thiserror::Error)]
pub enum ModuleGraphError {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {}:{line}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: syn::Error,
    },
}

/// A path the crate root makes available to the crate by a `use` item (`crate::Name`).
#[derive(Debug, Clone)]
enum Import {
    /// `use a::b::Name;` (or `as Name`): `Name` stands for `a::b::Name`, crate-absolute when `a`
    /// is one of the crate's modules.
    Named(Vec<String>),
    /// `use a::*;`: any name `a` defines.
    Glob(Vec<String>),
}

/// What the crate root provides: its modules, its imports and the names it defines itself.
#[derive(Debug, Default)]
struct Root {
    modules: BTreeSet<String>,
    imports: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    items: BTreeSet<String>,
}

impl Root {
    fn of(file: &syn::File) -> Self {
        let mut root = Self::default();
        for item in &file.items {
            if is_test_only(item_attrs(item)) {
                continue;
            }
            match item {
                syn::Item::Mod(module) => {
                    root.modules.insert(module.ident.to_string());
                }
                syn::Item::Use(item) => {
                    for (name, import) in flatten_use(&item.tree, Vec::new()) {
                        match import {
                            Import::Named(path) => {
                                root.imports.insert(name, path);
                            }
                            Import::Glob(path) => root.globs.push(path),
                        }
                    }
                }
                _ => {
                    if let Some(name) = item_name(item) {
                        root.items.insert(name);
                    }
                }
            }
        }
        root
    }

    /// The node a crate-absolute path lands in, `None` outside the crate.
    fn resolve(&self, path: &[String], depth: usize) -> Option<Node> {
        let Some(first) = path.first() else {
            return Some(Node::Root);
        };
        if depth > 16 {
            return None;
        }
        if self.modules.contains(first) {
            return Some(Node::Module(first.clone()));
        }
        if let Some(target) = self.imports.get(first) {
            let mut full = target.clone();
            full.extend_from_slice(&path[1..]);
            return self.resolve_import(&full, depth);
        }
        if self.items.contains(first) {
            return Some(Node::Root);
        }
        // A name only a glob import can provide: the one glob into the crate's modules.
        let mut candidates = self
            .globs
            .iter()
            .filter_map(|glob| self.resolve_import(glob, depth))
            .collect::<BTreeSet<_>>()
            .into_iter();
        match (candidates.next(), candidates.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// An import's path as written in the root: `crate::a`, `self::a` and `a` all mean the
    /// crate's `a` when it is a module or a name the root provides.
    fn resolve_import(&self, path: &[String], depth: usize) -> Option<Node> {
        match path.first().map(String::as_str) {
            Some("crate" | "self" | "$crate") => self.resolve(&path[1..], depth + 1),
            Some(first)
                if self.modules.contains(first)
                    || self.items.contains(first)
                    || self.imports.contains_key(first) =>
            {
                // `use x::X;` then `use X as Y;`: follow the chain unless it names itself.
                if self
                    .imports
                    .get(first)
                    .is_some_and(|target| target.len() == 1 && target[0] == first)
                {
                    return None;
                }
                self.resolve(path, depth + 1)
            }
            _ => None,
        }
    }
}

impl ModuleGraph {
    /// The graph of the crate whose root file is `root_file`.
    pub fn of_crate(root_file: &Path) -> Result<Self, ModuleGraphError> {
        let base = root_file.parent().unwrap_or(Path::new(""));
        let file = parse_file(root_file)?;
        let root = Root::of(&file);
        let mut graph = Self {
            nodes: std::iter::once(Node::Root)
                .chain(root.modules.iter().cloned().map(Node::Module))
                .collect(),
            edges: BTreeMap::new(),
        };
        // (file, its module path, the directory its child modules live in, parsed file)
        let mut pending = vec![(root_file.to_path_buf(), Vec::new(), base.to_path_buf(), file)];
        while let Some((path, module, children_dir, file)) = pending.pop() {
            let mut visitor = Visitor {
                root: &root,
                module: module.clone(),
                children_dir: children_dir.clone(),
                file_dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
                references: Vec::new(),
                children: Vec::new(),
            };
            for item in &file.items {
                // The root's own `use` items are its facade, not imports (see the module docs).
                if module.is_empty() && matches!(item, syn::Item::Use(_)) {
                    continue;
                }
                visitor.visit_item(item);
            }
            let relative = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
            for reference in visitor.references {
                let from = reference
                    .module
                    .first()
                    .map_or(Node::Root, |top| Node::Module(top.clone()));
                let Some(to) = root.resolve(&reference.target, 0) else {
                    continue;
                };
                if from != to && graph.nodes.contains(&to) {
                    graph.edges.entry((from, to)).or_insert_with(|| Evidence {
                        file: relative.clone(),
                        line: reference.line,
                        path: reference.written,
                    });
                }
            }
            for child in visitor.children {
                let file = parse_file(&child.file)?;
                pending.push((child.file, child.module, child.children_dir, file));
            }
        }
        Ok(graph)
    }

    /// Strongly connected components of more than one node, each sorted, in a stable order.
    pub fn cycles(&self) -> Vec<Vec<Node>> {
        let components = crate::scc::strongly_connected(self.nodes.iter().cloned().collect(), |node| {
            self.edges
                .keys()
                .filter(|(from, _)| from == node)
                .map(|(_, to)| to.clone())
                .collect()
        });
        let mut cycles: Vec<Vec<Node>> = components
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|mut nodes| {
                nodes.sort();
                nodes
            })
            .collect();
        cycles.sort();
        cycles
    }

    /// The edges between the nodes of `component`, with where each was seen.
    pub fn edges_within<'a>(
        &'a self,
        component: &'a [Node],
    ) -> impl Iterator<Item = (&'a Node, &'a Node, &'a Evidence)> + 'a {
        self.edges
            .iter()
            .filter(|((from, to), _)| component.contains(from) && component.contains(to))
            .map(|((from, to), evidence)| (from, to, evidence))
    }
}

fn parse_file(path: &Path) -> Result<syn::File, ModuleGraphError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModuleGraphError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    syn::parse_file(&text).map_err(|source| ModuleGraphError::Parse {
        path: path.to_path_buf(),
        line: source.span().start().line,
        source,
    })
}

/// A path to somewhere in the crate, crate-absolute (`["sync", "apply"]`; empty for the root).
struct Reference {
    /// The module path where it was written.
    module: Vec<String>,
    target: Vec<String>,
    written: String,
    line: usize,
}

/// A `mod x;` whose file is to be read.
struct ChildFile {
    file: PathBuf,
    module: Vec<String>,
    children_dir: PathBuf,
}

struct Visitor<'a> {
    root: &'a Root,
    /// The module path of what is being visited, inline modules included.
    module: Vec<String>,
    /// Where `mod x;` in the current module finds `x.rs` or `x/mod.rs`.
    children_dir: PathBuf,
    /// The directory of the file being read, for `#[path]`.
    file_dir: PathBuf,
    references: Vec<Reference>,
    children: Vec<ChildFile>,
}

impl Visitor<'_> {
    /// `segments` as written where the visitor stands → crate-absolute, or `None` when it does
    /// not name the crate (std, another crate, a local name).
    fn absolute(&self, segments: &[String], leading_colon: bool) -> Option<Vec<String>> {
        let first = segments.first()?;
        if leading_colon {
            return None;
        }
        // A lone `self` is a receiver and a lone `super` or `crate` a visibility; a lone name the
        // root imported is that import, when used in the root.
        if segments.len() == 1 {
            return (self.module.is_empty() && self.root.imports.contains_key(first))
                .then(|| segments.to_vec());
        }
        match first.as_str() {
            "crate" | "$crate" => Some(segments[1..].to_vec()),
            "self" => Some(self.module.iter().chain(&segments[1..]).cloned().collect()),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let kept = self.module.len().checked_sub(ups)?;
                Some(
                    self.module[..kept]
                        .iter()
                        .chain(&segments[ups..])
                        .cloned()
                        .collect(),
                )
            }
            // In the root, a module's or an import's name starts a path into the crate.
            first
                if self.module.is_empty()
                    && (self.root.modules.contains(first) || self.root.imports.contains_key(first)) =>
            {
                Some(segments.to_vec())
            }
            _ => None,
        }
    }

    fn record(&mut self, segments: &[String], leading_colon: bool, line: usize) {
        if let Some(target) = self.absolute(segments, leading_colon) {
            self.references.push(Reference {
                module: self.module.clone(),
                target,
                written: segments.join("::"),
                line,
            });
        }
    }

    /// `crate :: a :: b` and the like inside macro arguments, which syn leaves as tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut index = 0;
        while index < trees.len() {
            if let TokenTree::Group(group) = &trees[index] {
                self.scan_tokens(group.stream());
                index += 1;
                continue;
            }
            let line = trees[index].span().start().line;
            let (segments, next) = path_at(&trees, index);
            if segments.len() >= 2 {
                self.record(&segments, false, line);
                index = next;
            } else {
                index += 1;
            }
        }
    }
}

/// The path starting at `trees[start]` (`$crate`, `crate`, `self`, `super` or an identifier
/// followed by `::`), and the index after it.
fn path_at(trees: &[TokenTree], start: usize) -> (Vec<String>, usize) {
    let mut index = start;
    let mut segments = Vec::new();
    if let Some(TokenTree::Punct(dollar)) = trees.get(index)
        && dollar.as_char() == '$'
        && let Some(TokenTree::Ident(ident)) = trees.get(index + 1)
        && ident == "crate"
    {
        segments.push("$crate".to_owned());
        index += 2;
    } else if let Some(TokenTree::Ident(ident)) = trees.get(index) {
        segments.push(ident.to_string());
        index += 1;
    } else {
        return (segments, start + 1);
    }
    loop {
        let colons = matches!(
            (trees.get(index), trees.get(index + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                if a.as_char() == ':' && a.spacing() == Spacing::Joint && b.as_char() == ':'
        );
        match (colons, trees.get(index + 2)) {
            (true, Some(TokenTree::Ident(ident))) => {
                segments.push(ident.to_string());
                index += 3;
            }
            _ => return (segments, index),
        }
    }
}

impl<'ast> Visit<'ast> for Visitor<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test_only(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        let name = module.ident.to_string();
        let path_attr = module.attrs.iter().find_map(|attr| {
            let syn::Meta::NameValue(meta) = &attr.meta else {
                return None;
            };
            if !meta.path.is_ident("path") {
                return None;
            }
            match &meta.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            }
        });
        if let Some((_, items)) = &module.content {
            self.module.push(name.clone());
            let inner_dir = self.children_dir.join(&name);
            let outer_dir = std::mem::replace(&mut self.children_dir, inner_dir);
            for item in items {
                self.visit_item(item);
            }
            self.children_dir = outer_dir;
            self.module.pop();
            return;
        }
        let mut module_path = self.module.clone();
        module_path.push(name.clone());
        let child = if let Some(path) = path_attr {
            let file = self.file_dir.join(path);
            let children_dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
            ChildFile {
                file,
                module: module_path,
                children_dir,
            }
        } else {
            let file = self.children_dir.join(format!("{name}.rs"));
            let dir_file = self.children_dir.join(&name).join("mod.rs");
            let children_dir = self.children_dir.join(&name);
            let file = if file.is_file() {
                file
            } else if dir_file.is_file() {
                dir_file
            } else {
                // Reported by `of_crate` when it reads the file.
                file
            };
            ChildFile {
                file,
                module: module_path,
                children_dir,
            }
        };
        self.children.push(child);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let line = item.use_token.span.start().line;
        for (_, import) in flatten_use(&item.tree, Vec::new()) {
            match import {
                Import::Named(path) => self.record(&path, item.leading_colon.is_some(), line),
                // `use super::*;` names the module it globs: `super` alone is a path here.
                Import::Glob(path) => {
                    let mut probe = path.clone();
                    probe.push("*".to_owned());
                    if item.leading_colon.is_none()
                        && let Some(mut target) = self.absolute(&probe, false)
                    {
                        target.pop();
                        self.references.push(Reference {
                            module: self.module.clone(),
                            target,
                            written: probe.join("::"),
                            line,
                        });
                    }
                }
            }
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        let line = path
            .segments
            .first()
            .map_or(0, |segment| segment.ident.span().start().line);
        self.record(&segments, path.leading_colon.is_some(), line);
        syn::visit::visit_path(self, path);
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone());
    }
}

/// Each leaf of a `use` tree: the name it binds (empty for a glob) and the path it stands for.
fn flatten_use(tree: &syn::UseTree, prefix: Vec<String>) -> Vec<(String, Import)> {
    match tree {
        syn::UseTree::Path(path) => {
            let mut prefix = prefix;
            prefix.push(path.ident.to_string());
            flatten_use(&path.tree, prefix)
        }
        syn::UseTree::Name(name) => {
            let ident = name.ident.to_string();
            if ident == "self" {
                let bound = prefix.last().cloned().unwrap_or_default();
                return vec![(bound, Import::Named(prefix))];
            }
            let mut path = prefix;
            path.push(ident.clone());
            vec![(ident, Import::Named(path))]
        }
        syn::UseTree::Rename(rename) => {
            let mut path = prefix;
            let ident = rename.ident.to_string();
            if ident != "self" {
                path.push(ident);
            }
            vec![(rename.rename.to_string(), Import::Named(path))]
        }
        syn::UseTree::Glob(_) => vec![(String::new(), Import::Glob(prefix))],
        syn::UseTree::Group(group) => group
            .items
            .iter()
            .flat_map(|tree| flatten_use(tree, prefix.clone()))
            .collect(),
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    match item {
        syn::Item::Const(item) => &item.attrs,
        syn::Item::Enum(item) => &item.attrs,
        syn::Item::ExternCrate(item) => &item.attrs,
        syn::Item::Fn(item) => &item.attrs,
        syn::Item::ForeignMod(item) => &item.attrs,
        syn::Item::Impl(item) => &item.attrs,
        syn::Item::Macro(item) => &item.attrs,
        syn::Item::Mod(item) => &item.attrs,
        syn::Item::Static(item) => &item.attrs,
        syn::Item::Struct(item) => &item.attrs,
        syn::Item::Trait(item) => &item.attrs,
        syn::Item::TraitAlias(item) => &item.attrs,
        syn::Item::Type(item) => &item.attrs,
        syn::Item::Union(item) => &item.attrs,
        syn::Item::Use(item) => &item.attrs,
        _ => &[],
    }
}

/// The name an item defines in its module, if any.
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(item) => &item.ident,
        syn::Item::Enum(item) => &item.ident,
        syn::Item::Fn(item) => &item.sig.ident,
        syn::Item::Macro(item) => item.ident.as_ref()?,
        syn::Item::Static(item) => &item.ident,
        syn::Item::Struct(item) => &item.ident,
        syn::Item::Trait(item) => &item.ident,
        syn::Item::TraitAlias(item) => &item.ident,
        syn::Item::Type(item) => &item.ident,
        syn::Item::Union(item) => &item.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// `#[cfg(test)]`, exactly: `cfg(any(test, …))` and the like stay in.
fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && attr.parse_args::<syn::Ident>().is_ok_and(|ident| ident == "test")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate on disk from `(path, text)` pairs under a fresh directory.
    fn write_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("driftless-architecture-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().expect("under dir")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir.join("lib.rs")
    }

    fn module(name: &str) -> Node {
        Node::Module(name.to_owned())
    }

    fn edges(graph: &ModuleGraph) -> Vec<String> {
        graph
            .edges
            .keys()
            .map(|(from, to)| format!("{from}->{to}"))
            .collect()
    }

    #[test]
    fn finds_a_cycle_through_a_root_re_export_super_and_a_submodule() {
        let root = write_crate(
            "cycle",
            &[
                (
                    "lib.rs",
                    "mod engine;\nmod desired;\nmod sync;\nmod leaf;\npub use engine::Engine;\n",
                ),
                ("engine.rs", "use crate::desired::render;\npub struct Engine;\n"),
                // A submodule's imports are its top-level module's; `super::super` leaves it.
                ("desired/mod.rs", "mod fetch;\npub fn render() {}\n"),
                ("desired/fetch.rs", "fn f() { super::super::sync::apply(); }\n"),
                // Through the root's re-export, inside a macro's arguments.
                (
                    "sync.rs",
                    "pub fn apply() { let _ = format!(\"{:?}\", crate::Engine); crate::leaf::f(); }\n",
                ),
                ("leaf.rs", "pub fn f() {}\n"),
            ],
        );
        let graph = ModuleGraph::of_crate(&root).expect("parses");
        assert_eq!(
            edges(&graph),
            ["desired->sync", "engine->desired", "sync->engine", "sync->leaf"]
        );
        assert_eq!(
            graph.cycles(),
            [vec![module("desired"), module("engine"), module("sync")]]
        );
        let evidence = &graph.edges[&(module("desired"), module("sync"))];
        assert_eq!(
            (evidence.file.as_path(), evidence.line, evidence.path.as_str()),
            (Path::new("desired/fetch.rs"), 1, "super::super::sync::apply")
        );
    }

    #[test]
    fn test_code_visibility_and_self_references_make_no_edges() {
        let root = write_crate(
            "clean",
            &[
                ("lib.rs", "mod a;\nmod b;\npub use a::A;\n"),
                (
                    "a.rs",
                    "use crate::b::B;\npub struct A;\npub(in crate::b) fn g() {}\nfn h() { self::i(); }\nfn i() {}\n",
                ),
                (
                    "b.rs",
                    "pub struct B;\npub(crate) fn f() {}\n#[cfg(test)]\nmod tests { use crate::a::A; }\n#[cfg(test)]\nfn helper() { crate::A; }\n",
                ),
            ],
        );
        let graph = ModuleGraph::of_crate(&root).expect("parses");
        assert_eq!(edges(&graph), ["a->b"]);
        assert!(graph.cycles().is_empty());
    }

    #[test]
    fn items_the_root_defines_make_it_a_node() {
        let root = write_crate(
            "root-items",
            &[
                ("lib.rs", "mod a;\npub struct Shared;\nfn uses() { a::f(); }\n"),
                ("a.rs", "pub fn f() -> crate::Shared { crate::Shared }\n"),
            ],
        );
        let graph = ModuleGraph::of_crate(&root).expect("parses");
        assert_eq!(edges(&graph), ["crate->a", "a->crate"]);
        assert_eq!(graph.cycles(), [vec![Node::Root, module("a")]]);
    }

    #[test]
    fn a_missing_module_file_is_an_error() {
        let root = write_crate("missing", &[("lib.rs", "mod gone;\n")]);
        let err = ModuleGraph::of_crate(&root).expect_err("gone.rs does not exist");
        assert!(err.to_string().contains("gone.rs"), "{err}");
    }
}
