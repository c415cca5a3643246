//! Kustomize, run as a program on a private copy of the repository.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use driftless_files::FileTree;

use crate::manifests::parse_documents;
use crate::{Keys, RenderError, RenderLimits, Rendered};

pub(crate) const KUSTOMIZATION_FILES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// Which kustomize would run: its path, size and modification time ("none" when not installed).
pub(crate) fn command_stamp() -> String {
    match kustomize_command() {
        Ok((path, _)) => format!("kustomize: {}", file_stamp(&path)),
        Err(_) => "kustomize: none".to_owned(),
    }
}

/// The same for another program found on PATH.
pub(crate) fn program_stamp(name: &str) -> String {
    match find_on_path(name) {
        Some(path) => format!("{name}: {}", file_stamp(&path)),
        None => format!("{name}: none"),
    }
}

fn file_stamp(path: &Path) -> String {
    let metadata = std::fs::metadata(path).ok();
    let modified = metadata
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    format!("{} {:?} {modified:?}", path.display(), metadata.map(|m| m.len()))
}

/// `kustomize build` when kustomize is installed, else `kubectl kustomize` (kubectl embeds it).
fn kustomize_command() -> Result<(PathBuf, &'static str), RenderError> {
    find_on_path("kustomize")
        .map(|path| (path, "build"))
        .or_else(|| find_on_path("kubectl").map(|path| (path, "kustomize")))
        .ok_or(RenderError::KustomizeNotInstalled)
}

pub(crate) async fn render(
    tree: &FileTree,
    path: &str,
    limits: &RenderLimits,
    keys: &Keys,
    substitution: Option<&crate::Substitution>,
) -> Result<Rendered, RenderError> {
    // Judged from `path` itself, where kustomize runs on the copy: not from where a link leads.
    crate::kustomize_guard::check(tree, path)?;
    let (program, subcommand) = kustomize_command()?;
    let workspace = tempfile::tempdir().map_err(|err| io("create a render directory", &err))?;
    let repo = workspace.path().join("repo");
    let home = workspace.path().join("home");
    std::fs::create_dir_all(&home).map_err(|err| io("create a render directory", &err))?;
    // Symlinks leaving the repository are not written; kustomize then reports them as missing.
    let refused = tree
        .materialize(&repo, limits.materialize)
        .map_err(|err| RenderError::Kustomize {
            path: display_path(path),
            message: format!("cannot write the repository for kustomize: {err}"),
        })?;
    forget_reads(&repo);
    let target = if path.is_empty() {
        repo.clone()
    } else {
        repo.join(path)
    };
    if !target.is_dir() {
        return Err(RenderError::PathNotFound {
            path: path.to_owned(),
        });
    }
    if crate::kustomize_guard::kustomization_in(tree, path).is_none() {
        // Flux builds every path with kustomize, generating the kustomization a path lacks.
        let generated = generated_kustomization(tree, path)?;
        std::fs::write(target.join(KUSTOMIZATION_FILES[0]), generated)
            .map_err(|err| io("write the generated kustomization", &err))?;
    }
    let mut command = tokio::process::Command::new(&program);
    command
        .arg(subcommand)
        // The default today; stated so a changed default cannot widen what a kustomization may read.
        .arg("--load-restrictor=LoadRestrictionsRootOnly")
        // An absolute path already, so never an option; `--` says so to kustomize too.
        .arg("--")
        .arg(&target)
        .current_dir(&repo)
        // Nothing of ours (credentials, kubeconfig, proxies) reaches the renderer, and no PATH:
        // kustomize runs git to fetch remote bases and helm to inflate charts, and must find
        // neither even if a kustomization got past the guard.
        .env_clear()
        .env("HOME", &home)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|err| io(&format!("start {}", program.display()), &err))?;
    let output = tokio::time::timeout(limits.timeout, child.wait_with_output())
        .await
        .map_err(|_| RenderError::KustomizeTimedOut {
            path: display_path(path),
            after: limits.timeout,
        })?
        .map_err(|err| io("run kustomize", &err))?;
    if !output.status.success() {
        let mut message = relative_to(&repo, &String::from_utf8_lossy(&output.stderr));
        for err in &refused {
            let _ = write!(message, "\n  note: {err}");
        }
        return Err(RenderError::Kustomize {
            path: display_path(path),
            message,
        });
    }
    if output.stdout.len() > limits.max_output_bytes {
        return Err(RenderError::Kustomize {
            path: display_path(path),
            message: format!("output larger than {} bytes", limits.max_output_bytes),
        });
    }
    let text = String::from_utf8(output.stdout).map_err(|_| RenderError::Kustomize {
        path: display_path(path),
        message: "output is not UTF-8".to_owned(),
    })?;
    let output_name = format!("kustomize build {}", display_path(path));
    let mut manifests = match substitution {
        Some(substitution) => {
            crate::substitute::parse_substituted(&text, &output_name, limits, substitution)?
        }
        None => parse_documents(&text, &output_name, limits)?,
    };
    let mut values: Vec<serde_json::Value> = manifests
        .iter_mut()
        .map(|m| std::mem::take(&mut m.manifest))
        .collect();
    let decrypted = crate::decrypt::kustomize_output(&mut values, tree, keys)?;
    for (manifest, value) in manifests.iter_mut().zip(values) {
        manifest.manifest = value;
    }
    Ok(Rendered {
        manifests,
        inputs: files_read(&repo, tree),
        renderer: "kustomize",
        decrypted,
        charts: Vec::new(),
    })
}

/// The kustomization Flux's kustomize-controller generates for a path without one (fluxcd/pkg
/// `kustomize.Generator`): every `.yaml`/`.yml` file below it, recursively, except that a
/// subdirectory holding a kustomization is built as one and not descended into. Only regular
/// files of the tree count (a symlink is not followed, so nothing outside the path is listed);
/// each nested kustomization passes the same guard as a root one. Written as JSON, which YAML
/// reads, so no file name from Git can add a field to it.
fn generated_kustomization(tree: &FileTree, path: &str) -> Result<String, RenderError> {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    let files: Vec<&str> = tree
        .paths_under(path)
        .filter(|entry| {
            matches!(
                tree.entries.get(*entry),
                Some(driftless_files::Entry::File { .. })
            )
        })
        .filter_map(|entry| entry.strip_prefix(&prefix))
        .collect();
    let mut nested: Vec<String> = Vec::new();
    let mut resources = Vec::new();
    for file in files {
        let (dir, name) = file.rsplit_once('/').unwrap_or(("", file));
        if nested
            .iter()
            .any(|kustomized| dir == kustomized || dir.starts_with(&format!("{kustomized}/")))
        {
            continue;
        }
        if !dir.is_empty() && KUSTOMIZATION_FILES.contains(&name) {
            crate::kustomize_guard::check(tree, &format!("{prefix}{dir}"))?;
            // Entries come in path order, so files of this directory listed before its
            // kustomization (and of its subdirectories) are taken back.
            resources.retain(|listed: &String| !(listed.starts_with(&format!("{dir}/"))));
            nested.push(dir.to_owned());
            resources.push(dir.to_owned());
        } else if Path::new(name)
            .extension()
            // Case-sensitive, as Flux's `filepath.Ext` comparison is.
            .is_some_and(|extension| extension == "yaml" || extension == "yml")
        {
            resources.push(file.to_owned());
        }
    }
    Ok(serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": resources,
    })
    .to_string())
}

/// Every regular file under `dir`, recursively (the private copy holds no symlinks).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files
}

/// Sets every file's access time to the epoch, so that afterwards the files kustomize read are
/// those accessed since (the kernel updates an access time older than the modification time even
/// under `relatime`). Which files a render read is what lets a new commit skip re-rendering the
/// applications it does not touch.
fn forget_reads(repo: &Path) {
    let epoch = std::fs::FileTimes::new().set_accessed(std::time::UNIX_EPOCH);
    for file in files_under(repo) {
        if let Ok(handle) = std::fs::File::open(&file) {
            let _ = handle.set_times(epoch);
        }
    }
}

/// The repository paths kustomize read (a file copied for a symlink counts as the link and its
/// target); `None` when the file system does not keep access times, meaning "anything".
fn files_read(repo: &Path, tree: &FileTree) -> Option<BTreeSet<String>> {
    let threshold = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
    let mut read = BTreeSet::new();
    for file in files_under(repo) {
        let accessed = std::fs::metadata(&file).and_then(|meta| meta.accessed()).ok()?;
        if accessed < threshold {
            continue;
        }
        let Ok(relative) = file.strip_prefix(repo) else {
            continue;
        };
        let path = relative.to_string_lossy().into_owned();
        read.extend(tree.sources_of(&path));
        read.insert(path);
    }
    // Kustomize always reads the kustomization it builds: nothing read means no access times.
    (!read.is_empty()).then_some(read)
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

fn io(action: &str, err: &std::io::Error) -> RenderError {
    RenderError::Io {
        action: action.to_owned(),
        message: err.to_string(),
    }
}

/// Kustomize's errors name files by absolute path in our private copy; show repository paths.
fn relative_to(repo: &Path, text: &str) -> String {
    let prefix = format!("{}/", repo.display());
    text.trim()
        .replace(&prefix, "")
        .replace(&repo.display().to_string(), ".")
}

#[cfg(test)]
mod tests {
    use driftless_files::Entry;

    use super::*;

    fn resources(tree: &FileTree, path: &str) -> serde_json::Value {
        let generated: serde_json::Value =
            serde_json::from_str(&generated_kustomization(tree, path).expect("generated")).expect("JSON");
        generated["resources"].clone()
    }

    #[test]
    fn a_generated_kustomization_lists_manifests_recursively_and_builds_nested_kustomizations() {
        let tree: FileTree = [
            ("apps/a.yaml", Entry::file("")),
            ("apps/README.md", Entry::file("")),
            ("apps/config.json", Entry::file("")),
            ("apps/deep/b.yml", Entry::file("")),
            ("apps/deep/er/c.yaml", Entry::file("")),
            ("apps/base/deployment.yaml", Entry::file("")),
            (
                "apps/base/kustomization.yaml",
                Entry::file("resources: [deployment.yaml]\n"),
            ),
            ("apps/base/zz/patch.yaml", Entry::file("")),
            ("apps/link.yaml", Entry::link("../elsewhere.yaml")),
            ("elsewhere.yaml", Entry::file("")),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            resources(&tree, "apps"),
            serde_json::json!(["a.yaml", "base", "deep/b.yml", "deep/er/c.yaml"])
        );
    }

    #[test]
    fn a_nested_kustomization_passes_the_guard() {
        let tree: FileTree = [
            ("apps/a.yaml", Entry::file("")),
            (
                "apps/remote/kustomization.yaml",
                Entry::file("resources: ['https://github.com/example/base']\n"),
            ),
        ]
        .into_iter()
        .collect();
        let err = generated_kustomization(&tree, "apps").expect_err("a remote base is refused");
        assert!(
            err.to_string().contains("apps/remote/kustomization.yaml"),
            "{err}"
        );
    }

    #[test]
    fn a_file_name_cannot_add_a_field_to_the_generated_kustomization() {
        let tree: FileTree = [("apps/x.yaml\"], \"patches\": [\"y.yaml", Entry::file(""))]
            .into_iter()
            .collect();
        assert_eq!(
            resources(&tree, "apps"),
            serde_json::json!(["x.yaml\"], \"patches\": [\"y.yaml"])
        );
    }
}
