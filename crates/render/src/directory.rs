//! Plain directories of manifests.

use std::collections::BTreeSet;

use driftless_core::SourceLocation;
use driftless_core::application::DirectoryOptions;
use driftless_files::{Entry, FileTree, TreeError};
use globset::{Glob, GlobMatcher};

use crate::manifests::{check_size, parse_documents, push_manifest};
use crate::{Keys, RenderError, RenderLimits, Rendered, RenderedManifest, Substitution, decrypt, jsonnet};

/// Files with these endings are manifests; everything else (READMEs, scripts) is ignored.
const MANIFEST_EXTENSIONS: &[&str] = &[".yaml", ".yml", ".json"];

/// Jsonnet programs, each evaluated on its own; `.libsonnet` files are read only when imported.
const JSONNET_EXTENSION: &str = ".jsonnet";

fn matcher(which: &'static str, pattern: Option<&str>) -> Result<Option<GlobMatcher>, RenderError> {
    pattern
        .map(|pattern| {
            Glob::new(pattern)
                .map(|glob| glob.compile_matcher())
                .map_err(|err| RenderError::Glob {
                    which,
                    pattern: pattern.to_owned(),
                    message: err.kind().to_string(),
                })
        })
        .transpose()
}

/// Renders the manifest files at `path` (and below, with `recurse`). Globs match the path relative
/// to `path`, and `*` also crosses `/`, so `*.yaml` selects YAML files at any depth.
pub(crate) fn render(
    tree: &FileTree,
    path: &str,
    options: &DirectoryOptions,
    limits: &RenderLimits,
    keys: &Keys,
    substitution: Option<&Substitution>,
    jsonnet_environment: &[(&str, &str)],
) -> Result<Rendered, RenderError> {
    let include = matcher("include", options.include.as_deref())?;
    let exclude = matcher("exclude", options.exclude.as_deref())?;
    let root = match tree.resolve(path) {
        _ if path.is_empty() => String::new(),
        Err(TreeError::NotFound { .. }) => {
            return Err(RenderError::PathNotFound {
                path: path.to_owned(),
            });
        }
        resolved => resolved?,
    };
    if !root.is_empty() && tree.paths_under(&root).next().is_none() {
        return Err(RenderError::PathNotFound {
            path: path.to_owned(),
        });
    }
    let prefix_len = if root.is_empty() { 0 } else { root.len() + 1 };
    let mut inputs = BTreeSet::new();
    let mut files: Vec<(&str, &str)> = Vec::new();
    // Jsonnet programs are evaluated next to the manifests, as Argo CD does for a directory.
    let mut programs = Vec::new();
    for file in tree.paths_under(&root) {
        let relative = &file[prefix_len..];
        if !options.recurse && relative.contains('/') {
            continue;
        }
        let program = relative.ends_with(JSONNET_EXTENSION);
        if !program
            && !MANIFEST_EXTENSIONS
                .iter()
                .any(|extension| relative.ends_with(extension))
        {
            continue;
        }
        if include.as_ref().is_some_and(|glob| !glob.is_match(relative))
            || exclude.as_ref().is_some_and(|glob| glob.is_match(relative))
        {
            continue;
        }
        if program {
            programs.push(file.to_owned());
            continue;
        }
        let contents = match tree.entries.get(file) {
            Some(Entry::File { contents, .. }) => contents.as_slice(),
            Some(Entry::Symlink { .. }) => {
                inputs.insert(tree.resolve(file)?);
                tree.read(file)?
            }
            _ => continue,
        };
        inputs.insert(file.to_owned());
        let text = std::str::from_utf8(contents).map_err(|_| RenderError::Unparsable {
            file: file.to_owned(),
            line: None,
            message: "not UTF-8 text".to_owned(),
        })?;
        files.push((file, text));
    }
    let mut manifests = Vec::new();
    let decrypted = files.iter().any(|(_, text)| is_sops(text));
    for parsed in parse_all(&files, limits, keys, substitution) {
        manifests.extend(parsed?);
        if manifests.len() > limits.max_documents {
            return Err(RenderError::TooManyDocuments {
                limit: limits.max_documents,
            });
        }
    }
    if programs.is_empty() {
        return Ok(Rendered {
            manifests,
            inputs: Some(inputs),
            renderer: "directory",
            decrypted,
            charts: Vec::new(),
        });
    }
    let evaluation = jsonnet::Evaluation {
        options: &options.jsonnet,
        app_path: &root,
        environment: jsonnet_environment,
        timeout: limits.timeout,
        max_output_bytes: limits.max_output_bytes,
    };
    let values = jsonnet::evaluate(tree, &programs, &evaluation)?;
    for (file, value) in programs.iter().zip(values) {
        push_evaluated(value, file, &mut 0, &mut manifests)?;
        if manifests.len() > limits.max_documents {
            return Err(RenderError::TooManyDocuments {
                limit: limits.max_documents,
            });
        }
    }
    Ok(Rendered {
        manifests,
        // Imports may reach anywhere in the repository, and a file added where an import looks
        // first changes what it reads: every change counts.
        inputs: None,
        renderer: "jsonnet",
        decrypted,
        charts: Vec::new(),
    })
}

/// A program's output: an object is one manifest (a `List` kind its items), an array many, and
/// arrays of arrays are flattened. Each gets the next document number of its file.
fn push_evaluated(
    value: serde_json::Value,
    file: &str,
    document: &mut usize,
    out: &mut Vec<RenderedManifest>,
) -> Result<(), RenderError> {
    if let serde_json::Value::Array(items) = value {
        for item in items {
            push_evaluated(item, file, document, out)?;
        }
        return Ok(());
    }
    let location = SourceLocation {
        file: file.to_owned(),
        document: *document,
        line: None,
    };
    *document += 1;
    push_manifest(value, &location, out)
}

/// Whether a manifest file may be SOPS-encrypted (cheap; decryption decides).
fn is_sops(text: &str) -> bool {
    text.contains("ENC[AES256_GCM,") && text.contains("sops")
}

/// One file's manifests; a SOPS-encrypted file is decrypted in memory first (and not
/// substituted: its plaintext is never handled as text).
fn parse_file(
    file: &str,
    text: &str,
    limits: &RenderLimits,
    keys: &Keys,
    substitution: Option<&Substitution>,
) -> Result<Vec<RenderedManifest>, RenderError> {
    check_size(text, file, limits)?;
    if !is_sops(text) {
        return match substitution {
            Some(substitution) => crate::substitute::parse_substituted(text, file, limits, substitution),
            None => parse_documents(text, file, limits),
        };
    }
    let Some(documents) = decrypt::manifest_file(file, text.as_bytes(), keys)? else {
        return parse_documents(text, file, limits);
    };
    let mut manifests = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        let location = SourceLocation {
            file: file.to_owned(),
            document: index,
            line: None,
        };
        push_manifest(document, &location, &mut manifests)?;
    }
    Ok(manifests)
}

/// Below this many files per thread, parsing on more threads costs more than it saves.
const FILES_PER_THREAD: usize = 64;

/// Parses every file, in order, on as many threads as there are cores (YAML parsing is most of
/// the time of rendering a large directory).
fn parse_all(
    files: &[(&str, &str)],
    limits: &RenderLimits,
    keys: &Keys,
    substitution: Option<&Substitution>,
) -> Vec<Result<Vec<RenderedManifest>, RenderError>> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = cores.min(files.len() / FILES_PER_THREAD).max(1);
    let parse = |chunk: &[(&str, &str)]| -> Vec<_> {
        chunk
            .iter()
            .map(|(file, text)| parse_file(file, text, limits, keys, substitution))
            .collect()
    };
    if threads == 1 {
        return parse(files);
    }
    let chunk_size = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk_size)
            .map(|chunk| scope.spawn(move || parse(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
