//! What a kustomization may refer to, checked before kustomize runs.
//!
//! kustomize's `LoadRestrictionsRootOnly` keeps *files* inside each kustomization's directory,
//! but a *directory* in `resources` or `components` may be anywhere on the host: a repository could
//! pull in whatever kustomization another tenant or the host has on disk (the CVE-2022-24877
//! class). So every path-valued field of every kustomization the render reaches is resolved
//! against the repository, and anything that leaves it, is absolute, is remote (remote bases are
//! off: only the configured repository may change the cluster) or inflates Helm charts is refused
//! with the file, field and path.
//!
//! Paths are judged from where kustomize reads each kustomization: the materialised copy, where a
//! symlink is a copied file or directory. A kustomization reached through `app -> a/b/c` is read
//! at `app/`, so its `../` chains count from `app/`, not from `a/b/c/` (counted from there, a chain
//! that leaves the repository at `app/` could look inside). Only reading a file follows links.

use std::collections::BTreeSet;

use driftless_files::{Entry, FileTree, TreeError, join_inside};
use serde_json::Value;

use crate::RenderError;
use crate::kustomize::KUSTOMIZATION_FILES;

/// Fields whose values are lists of paths (files or kustomization directories).
const PATH_LISTS: &[&str] = &[
    "resources",
    "components",
    "bases",
    "crds",
    "configurations",
    "transformers",
    "generators",
    "validators",
    "patchesStrategicMerge",
];

/// Fields that would run Helm inside kustomize.
const HELM_FIELDS: &[&str] = &["helmCharts", "helmChartInflationGenerator", "helmGlobals"];

/// How deep kustomizations may nest before the render is refused.
const MAX_DEPTH: usize = 64;

/// How many kustomizations one render may reach: a directory linked to its own parent makes
/// ever longer paths to the same files, each a new place to judge from.
const MAX_KUSTOMIZATIONS: usize = 1000;

fn refused(file: &str, field: &str, path: &str, reason: &str) -> RenderError {
    RenderError::KustomizeRefused {
        file: file.to_owned(),
        field: field.to_owned(),
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The forms kustomize fetches (URLs, `?ref=`, scp-like `user@host:path`, `git::`, well-known
/// hosts in any case); only for a clearer message — a path the repository does not hold is
/// refused anyway, since kustomize would try to fetch it.
fn is_remote(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.contains("://")
        || lower.contains("?ref=")
        || lower.starts_with("git::")
        || path
            .split_once(':')
            .is_some_and(|(before, _)| before.contains('@') && !before.contains('/'))
        || ["github.com", "gitlab.com", "bitbucket.org"]
            .iter()
            .any(|host| lower.starts_with(host))
}

/// Fields whose entries kustomize loads as kustomization directories, as files of plugin
/// configuration, or (text with a newline) as inline plugin configuration.
const PLUGIN_LISTS: &[&str] = &["generators", "transformers", "validators"];

/// Plugin kinds that run Helm.
const HELM_PLUGINS: &[&str] = &["HelmChartInflationGenerator"];

/// The string, or strings, of `value`.
fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match value {
        Some(Value::String(text)) => (Some(text.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// The files a `configMapGenerator`/`secretGenerator` entry (or a `ConfigMapGenerator` or
/// `SecretGenerator` plugin's configuration) loads: `files` (`key=path` or `path`), `envs`, `env`.
fn generator_files(generator: &Value) -> impl Iterator<Item = (&'static str, &str)> {
    let files = strings(generator.get("files"))
        .map(|entry| ("files", entry.split_once('=').map_or(entry, |(_, path)| path)));
    let envs = strings(generator.get("envs")).map(|path| ("envs", path));
    let env = strings(generator.get("env")).map(|path| ("env", path));
    files.chain(envs).chain(env)
}

/// Every (field, path) a builtin plugin's configuration loads as a file, by its kind: patches'
/// `path`/`paths`, generators' files, replacements' `path`. Only those fields: labels,
/// annotations and `fieldSpecs[].path` (a field path) are not files. Other kinds load no file
/// (and kustomize runs no plugin that is not builtin: plugins are off).
fn plugin_paths(config: &Value) -> Vec<(&'static str, &str)> {
    match config.get("kind").and_then(Value::as_str).unwrap_or_default() {
        "PatchTransformer" | "PatchJson6902Transformer" => {
            strings(config.get("path")).map(|path| ("path", path)).collect()
        }
        "PatchStrategicMergeTransformer" => {
            strings(config.get("paths")).map(|path| ("paths", path)).collect()
        }
        "ConfigMapGenerator" | "SecretGenerator" => generator_files(config).collect(),
        "ReplacementTransformer" => config
            .get("replacements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|replacement| strings(replacement.get("path")))
            .map(|path| ("path", path))
            .collect(),
        _ => Vec::new(),
    }
}

/// Where `path` is in the tree once every symlink along it is followed: what the materialised
/// copy holds at `path`.
fn resolve_along(tree: &FileTree, path: &str) -> Result<String, TreeError> {
    let mut current = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        let next = if current.is_empty() {
            part.to_owned()
        } else {
            format!("{current}/{part}")
        };
        current = tree.resolve(&next)?;
    }
    Ok(current)
}

/// The kustomization file kustomize reads at `dir` (a path as kustomize sees it), and its contents.
pub(crate) fn kustomization_in<'a>(tree: &'a FileTree, dir: &str) -> Option<(String, &'a [u8])> {
    KUSTOMIZATION_FILES.iter().find_map(|name| {
        let file = if dir.is_empty() {
            (*name).to_owned()
        } else {
            format!("{dir}/{name}")
        };
        let resolved = resolve_along(tree, &file).ok()?;
        match tree.entries.get(&resolved) {
            Some(Entry::File { contents, .. }) => Some((file, contents.as_slice())),
            _ => None,
        }
    })
}

/// Every path-valued field of a kustomization, as (field, path).
fn referenced_paths(kustomization: &Value) -> Vec<(&'static str, &str)> {
    let Value::Object(fields) = kustomization else {
        return Vec::new();
    };
    let mut referenced: Vec<(&'static str, &str)> = Vec::new();
    for field in PATH_LISTS {
        for item in fields.get(*field).and_then(Value::as_array).into_iter().flatten() {
            // Inline patches are YAML text, not paths; inline plugin configuration is checked
            // by `check_plugin`.
            if let Some(path) = item.as_str().filter(|p| !p.contains('\n')) {
                referenced.push((field, path));
            }
        }
    }
    for field in ["patches", "patchesJson6902", "replacements"] {
        for item in fields.get(field).and_then(Value::as_array).into_iter().flatten() {
            if let Some(path) = item.get("path").and_then(Value::as_str) {
                referenced.push((field, path));
            }
        }
    }
    for field in ["configMapGenerator", "secretGenerator"] {
        for generator in fields.get(field).and_then(Value::as_array).into_iter().flatten() {
            referenced.extend(generator_files(generator).map(|(_, path)| (field, path)));
        }
    }
    if let Some(path) = kustomization.pointer("/openapi/path").and_then(Value::as_str) {
        referenced.push(("openapi", path));
    }
    referenced
}

/// Checks the kustomization at `dir` and every kustomization it reaches. `dir` is the path
/// kustomize builds, unresolved (in the materialised copy, symlinks are copies).
pub(crate) fn check(tree: &FileTree, dir: &str) -> Result<(), RenderError> {
    let mut visited = BTreeSet::new();
    check_dir(tree, dir, 0, &mut visited)
}

fn check_dir(
    tree: &FileTree,
    dir: &str,
    depth: usize,
    visited: &mut BTreeSet<String>,
) -> Result<(), RenderError> {
    let Some((file, contents)) = kustomization_in(tree, dir) else {
        return Ok(());
    };
    if !visited.insert(file.clone()) {
        return Ok(());
    }
    if visited.len() > MAX_KUSTOMIZATIONS {
        return Err(refused(
            &file,
            "resources",
            dir,
            &format!(
                "takes the render past {MAX_KUSTOMIZATIONS} kustomizations (a directory linked to its own parent?)"
            ),
        ));
    }
    if depth > MAX_DEPTH {
        return Err(refused(
            &file,
            "resources",
            dir,
            "nests kustomizations too deeply",
        ));
    }
    let text = std::str::from_utf8(contents).map_err(|_| RenderError::Unparsable {
        file: file.clone(),
        line: None,
        message: "not UTF-8 text".to_owned(),
    })?;
    let kustomization: Value = crate::manifests::parse_one(text, &file)?;
    let Value::Object(fields) = &kustomization else {
        return Ok(());
    };
    let referenced = referenced_paths(&kustomization);
    for field in HELM_FIELDS {
        if fields.contains_key(*field) {
            return Err(refused(
                &file,
                field,
                "",
                "inflates Helm charts inside kustomize, which is off (render charts as a Helm source)",
            ));
        }
    }
    for field in PLUGIN_LISTS {
        for item in fields.get(*field).and_then(Value::as_array).into_iter().flatten() {
            if let Some(inline) = item.as_str().filter(|text| text.contains('\n')) {
                for config in
                    crate::manifests::parse_documents(inline, &file, &crate::RenderLimits::default())?
                {
                    check_plugin(tree, &config.manifest, &file, Some(field), dir)?;
                }
            }
        }
    }
    for (field, path) in referenced {
        let target = check_path(tree, &file, field, path, dir)?;
        let resolved =
            resolve_along(tree, &target).map_err(|err| refused(&file, field, path, &err.to_string()))?;
        match tree.entries.get(&resolved) {
            // A directory: a kustomization kustomize will build.
            None if matches!(field, "resources" | "components" | "bases")
                || PLUGIN_LISTS.contains(&field) =>
            {
                check_dir(tree, &target, depth + 1, visited)?;
            }
            Some(Entry::File { contents, .. }) if PLUGIN_LISTS.contains(&field) => {
                let text = std::str::from_utf8(contents).map_err(|_| RenderError::Unparsable {
                    file: target.clone(),
                    line: None,
                    message: "not UTF-8 text".to_owned(),
                })?;
                for config in
                    crate::manifests::parse_documents(text, &target, &crate::RenderLimits::default())?
                {
                    check_plugin(tree, &config.manifest, &target, None, dir)?;
                }
            }
            Some(Entry::Submodule) => {
                return Err(refused(
                    &file,
                    field,
                    path,
                    "is a submodule, which driftless does not fetch (kustomize would look for it elsewhere)",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where `path`, named in `file` (a kustomization at `dir`, as kustomize reads it), is in the
/// repository; refused when it is remote, absolute, leaves the repository, or is not there (kustomize
/// would try to fetch what it cannot find as a remote base).
fn check_path(
    tree: &FileTree,
    file: &str,
    field: &str,
    path: &str,
    dir: &str,
) -> Result<String, RenderError> {
    if is_remote(path) {
        return Err(refused(
            file,
            field,
            path,
            "is a remote base: remote bases are off (only the application's repository may change the cluster)",
        ));
    }
    if path.starts_with('/') {
        return Err(refused(
            file,
            field,
            path,
            "is an absolute path: only paths inside the repository are allowed",
        ));
    }
    // Counted from `dir` as kustomize sees it, never from where a link led.
    let target = join_inside(dir, path).ok_or_else(|| refused(file, field, path, "leaves the repository"))?;
    match resolve_along(tree, &target) {
        Ok(_) => Ok(target),
        Err(TreeError::NotFound { .. }) => Err(refused(
            file,
            field,
            path,
            "is not in the repository at this commit (kustomize would try to fetch it from elsewhere)",
        )),
        Err(err) => Err(refused(file, field, path, &err.to_string())),
    }
}

/// A builtin plugin's configuration (from a file, or inline in `file`'s `field`): every path it
/// loads is judged like a kustomization's own, from the kustomization's directory `dir`, and
/// plugins that run Helm are refused.
fn check_plugin(
    tree: &FileTree,
    config: &Value,
    file: &str,
    field: Option<&'static str>,
    dir: &str,
) -> Result<(), RenderError> {
    if let Some(kind) = config.get("kind").and_then(Value::as_str)
        && HELM_PLUGINS.contains(&kind)
    {
        return Err(refused(
            file,
            field.unwrap_or("kind"),
            kind,
            "inflates Helm charts inside kustomize, which is off (render charts as a Helm source)",
        ));
    }
    for (key, path) in plugin_paths(config) {
        check_path(tree, file, field.unwrap_or(key), path, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[(&str, Entry)]) -> FileTree {
        entries.iter().cloned().collect()
    }

    fn link(target: &str) -> Entry {
        Entry::link(target)
    }

    #[test]
    fn directories_linked_to_their_own_parent_end_quickly() {
        // Every path a/x/y/x/… is a new place for kustomize: two links double them at each level.
        let tree = tree(&[
            (
                "a/kustomization.yaml",
                Entry::File {
                    contents: b"resources: [x, y]\n".to_vec(),
                    executable: false,
                },
            ),
            ("a/x", link(".")),
            ("a/y", link(".")),
        ]);
        let started = std::time::Instant::now();
        let err = check(&tree, "a").expect_err("refused");
        assert!(err.to_string().contains("kustomizations"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
