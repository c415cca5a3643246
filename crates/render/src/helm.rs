//! Helm charts from the repository, rendered with `helm template` on a private copy of the chart.
//!
//! Values are merged here, in memory, in Helm's order (values files, then inline values; later
//! wins, maps merge key by key) and handed to helm on its standard input, so values files that are
//! SOPS-encrypted are decrypted without their plaintext ever touching the disk. Values files are
//! resolved inside the repository: `../` that climbs out, absolute paths, URLs and escaping
//! symlinks are refused (the CVE-2022-24348 class).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;

use driftless_core::application::HelmOptions;
use driftless_core::arguments::ArgumentError;
use driftless_files::{Entry, FileTree, join_inside};
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;

use crate::manifests::{parse_documents, parse_one};
use crate::{ArgumentHint, Keys, RenderError, RenderLimits, Rendered};

/// What the chart is rendered for, besides its options.
pub(crate) struct Release<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub kube_version: Option<&'a str>,
    pub api_versions: &'a [String],
}

fn values_error(file: &str, message: impl Into<String>) -> RenderError {
    RenderError::HelmValues {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// Helm's merge of values: maps merge key by key, anything else is replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => merge(existing, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// One values file: read inside the repository, decrypted when SOPS-encrypted.
fn values_file(
    tree: &FileTree,
    chart_dir: &str,
    file: &str,
    keys: &Keys,
    inputs: &mut BTreeSet<String>,
) -> Result<(Value, bool), RenderError> {
    if file.contains("://") || file.starts_with('/') {
        return Err(values_error(
            file,
            "values files must be paths inside the repository",
        ));
    }
    let path = join_inside(chart_dir, file).ok_or_else(|| values_error(file, "leaves the repository"))?;
    let resolved = tree
        .resolve(&path)
        .map_err(|err| values_error(file, err.to_string()))?;
    let contents = tree
        .read(&resolved)
        .map_err(|err| values_error(file, err.to_string()))?;
    inputs.insert(resolved.clone());
    if let Some(documents) = crate::decrypt::manifest_file(&resolved, contents, keys)? {
        let document = documents.into_iter().next().unwrap_or(Value::Null);
        return Ok((document, true));
    }
    let text = std::str::from_utf8(contents).map_err(|_| values_error(&resolved, "not UTF-8 text"))?;
    Ok((parse_one(text, &resolved)?, false))
}

/// The values helm gets on its standard input, and whether any came from an encrypted file.
fn merged_values(
    tree: &FileTree,
    chart_dir: &str,
    options: &HelmOptions,
    keys: &Keys,
    inputs: &mut BTreeSet<String>,
) -> Result<(Value, bool), RenderError> {
    let mut merged = Value::Object(serde_json::Map::new());
    let mut decrypted = false;
    for file in &options.value_files {
        let (values, was_encrypted) = values_file(tree, chart_dir, file, keys, inputs)?;
        decrypted |= was_encrypted;
        match values {
            Value::Null => {}
            values @ Value::Object(_) => merge(&mut merged, values),
            _ => return Err(values_error(file, "must hold a mapping of values")),
        }
    }
    if let Some(inline) = &options.values {
        let inline: Value =
            serde_json::from_str(inline).map_err(|err| values_error("values", err.to_string()))?;
        merge(&mut merged, inline);
    }
    Ok((merged, decrypted))
}

/// The files under `dir`, relative to it.
fn subtree(tree: &FileTree, dir: &str) -> Vec<(String, Entry)> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    tree.entries
        .iter()
        .filter_map(|(path, entry)| Some((path.strip_prefix(&prefix)?.to_owned(), entry.clone())))
        .collect()
}

/// Charts more dependencies may nest before the chart is refused (a cycle).
const MAX_DEPENDENCY_DEPTH: usize = 16;

/// Where a chart's files come from.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// A directory of the application's repository; `file://` dependencies may point elsewhere
    /// in it.
    Repository(&'a FileTree, &'a str),
    /// A chart pulled from a chart repository (its files at the root).
    Pulled(&'a FileTree),
}

/// What a chart's dependencies need while they are gathered.
struct Gathering<'a, 'b> {
    charts: Option<crate::ChartAccess<'a>>,
    inputs: &'b mut BTreeSet<String>,
    pulled: &'b mut Vec<(crate::ChartRef, String)>,
}

fn chart_metadata(tree: &FileTree, file: &str) -> Result<Option<Value>, RenderError> {
    let Ok(contents) = tree.read(file) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(contents).map_err(|_| values_error(file, "not UTF-8 text"))?;
    Ok(Some(parse_one(text, file)?))
}

/// Whether `charts/` already holds the dependency, unpacked or as an archive.
fn is_vendored(chart: &FileTree, name: &str) -> bool {
    chart.entries.contains_key(&format!("charts/{name}/Chart.yaml"))
        || chart.entries.keys().any(|path| {
            path.strip_prefix("charts/")
                .and_then(|file| file.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| {
                    Path::new(rest)
                        .extension()
                        .is_some_and(|extension| extension.eq_ignore_ascii_case("tgz"))
                        && !rest.contains('/')
                })
        })
}

/// Pulls a chart from a chart repository, after the application's project allowed it.
async fn pull(
    charts: Option<crate::ChartAccess<'_>>,
    chart: &crate::ChartRef,
    pulled: &mut Vec<(crate::ChartRef, String)>,
) -> Result<std::sync::Arc<FileTree>, RenderError> {
    let failed = |message: String| RenderError::Chart {
        chart: chart.to_string(),
        message,
    };
    let access = charts.ok_or_else(|| {
        failed(format!(
            "chart {chart}: chart repositories are not available here"
        ))
    })?;
    (access.allowed)(&chart.repository).map_err(|refusal| RenderError::ChartRefused {
        chart: chart.to_string(),
        refusal,
    })?;
    let got = access
        .charts
        .pull(chart)
        .await
        .map_err(|err| failed(err.to_string()))?;
    pulled.push((chart.clone(), got.digest));
    Ok(got.files)
}

/// The chart's files, relative to the chart's directory (what `helm` gets on disk), with each
/// dependency its `Chart.yaml` declares placed under `charts/` as `helm dependency build` would
/// (unless vendored there already): from a `file://` path inside the repository, or pulled from
/// its chart repository at the version `Chart.lock` pins (else the range `Chart.yaml` asks for).
/// A `file://` path that leaves the repository is refused.
fn chart_tree<'f>(
    origin: Origin<'f>,
    depth: usize,
    gathering: &'f mut Gathering<'_, '_>,
) -> std::pin::Pin<Box<dyn Future<Output = Result<FileTree, RenderError>> + Send + 'f>> {
    Box::pin(async move {
        let (mut chart, shown, metadata, lock) = match origin {
            Origin::Repository(tree, chart_dir) => {
                let chart = FileTree {
                    entries: subtree(tree, chart_dir).into_iter().collect(),
                    ..FileTree::default()
                };
                let file = |name: &str| join_inside(chart_dir, name).unwrap_or_default();
                let metadata = chart_metadata(tree, &file("Chart.yaml"))?;
                let lock = chart_metadata(tree, &file("Chart.lock"))?;
                (chart, chart_dir.to_owned(), metadata, lock)
            }
            Origin::Pulled(files) => {
                let metadata = chart_metadata(files, "Chart.yaml")?;
                let lock = chart_metadata(files, "Chart.lock")?;
                (files.clone(), String::new(), metadata, lock)
            }
        };
        let Some(metadata) = metadata else {
            return Ok(chart);
        };
        let locked = |name: &str, repository: &str| {
            lock.as_ref()?["dependencies"]
                .as_array()?
                .iter()
                .find(|d| d["name"].as_str() == Some(name) && d["repository"].as_str() == Some(repository))?["version"]
                .as_str()
                .map(str::to_owned)
        };
        for dependency in metadata["dependencies"].as_array().into_iter().flatten() {
            let (Some(name), Some(repository)) =
                (dependency["name"].as_str(), dependency["repository"].as_str())
            else {
                continue;
            };
            let refused = |reason: &str| RenderError::Helm {
                path: if shown.is_empty() {
                    ".".to_owned()
                } else {
                    shown.clone()
                },
                message: format!("dependency {name} at {repository}: {reason}"),
            };
            if name.contains('/') || name.starts_with('.') || name.is_empty() {
                return Err(refused("not a chart name"));
            }
            if is_vendored(&chart, name) || repository.is_empty() {
                continue;
            }
            if depth >= MAX_DEPENDENCY_DEPTH {
                return Err(refused("charts nest too deeply (a cycle?)"));
            }
            let dependency_chart = if let Some(path) = repository.strip_prefix("file://") {
                let Origin::Repository(tree, chart_dir) = origin else {
                    return Err(refused(
                        "a pulled chart's file:// dependencies must be in its charts/",
                    ));
                };
                if path.starts_with('/') {
                    return Err(refused("must be a path inside the repository"));
                }
                let target = join_inside(chart_dir, path).ok_or_else(|| refused("leaves the repository"))?;
                let target = tree.resolve(&target).map_err(|err| refused(&err.to_string()))?;
                gathering
                    .inputs
                    .extend(tree.paths_under(&target).map(str::to_owned));
                chart_tree(Origin::Repository(tree, &target), depth + 1, gathering).await?
            } else if ["https://", "http://", "oci://"]
                .iter()
                .any(|s| repository.starts_with(s))
            {
                let reference = crate::ChartRef {
                    repository: repository.trim_end_matches('/').to_owned(),
                    name: name.to_owned(),
                    version: locked(name, repository)
                        .or_else(|| dependency["version"].as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    plain_http: false,
                };
                let files = pull(gathering.charts, &reference, gathering.pulled).await?;
                chart_tree(Origin::Pulled(&files), depth + 1, gathering).await?
            } else {
                return Err(refused(
                    "name the chart repository by its URL (https:// or oci://), not by a `helm repo add` name",
                ));
            };
            chart.entries.extend(
                dependency_chart
                    .entries
                    .into_iter()
                    .map(|(path, entry)| (format!("charts/{name}/{path}"), entry)),
            );
        }
        Ok(chart)
    })
}

/// A value for helm's command line that breaks its grammar: the field it came from, and why.
struct Refusal {
    field: String,
    reason: ArgumentError,
    hint: ArgumentHint,
}

fn checked(
    field: impl Into<String>,
    value: &str,
    grammar: fn(&str) -> Result<(), ArgumentError>,
) -> Result<(), Refusal> {
    grammar(value).map_err(|reason| Refusal {
        field: field.into(),
        reason,
        hint: ArgumentHint::None,
    })
}

/// helm's arguments up to the chart's path, which the caller appends: every value from the
/// Application or the cluster checked against its grammar first (as the configuration was when
/// loaded: this is the second line, for whatever reaches here), flags as one `--flag=value`
/// argument each, and the release name after `--`, so nothing can be read as an option.
fn helm_args(release: &Release<'_>, options: &HelmOptions) -> Result<Vec<String>, Refusal> {
    use driftless_core::arguments;
    match &options.release_name {
        Some(name) => checked("spec.source.helm.releaseName", name, arguments::release_name)?,
        None => arguments::release_name(release.name).map_err(|reason| Refusal {
            field: "metadata.name".to_owned(),
            reason,
            hint: ArgumentHint::NamedAfterApplication,
        })?,
    }
    let mut args = vec!["template".to_owned(), "--values=-".into()];
    let namespace = match (&options.namespace, release.namespace) {
        (Some(namespace), _) => Some(("spec.source.helm.namespace", namespace.as_str())),
        (None, namespace) => namespace.map(|namespace| ("spec.destination.namespace", namespace)),
    };
    if let Some((field, namespace)) = namespace {
        checked(field, namespace, arguments::namespace)?;
        args.push(format!("--namespace={namespace}"));
    }
    for (index, parameter) in options.parameters.iter().enumerate() {
        let field = format!("spec.source.helm.parameters[{index}]");
        checked(
            format!("{field}.name"),
            &parameter.name,
            arguments::parameter_name,
        )?;
        checked(
            format!("{field}.value"),
            &parameter.value,
            arguments::parameter_value,
        )?;
        let flag = if parameter.force_string {
            "--set-string"
        } else {
            "--set"
        };
        args.push(format!(
            "{flag}={}={}",
            parameter.name,
            arguments::escape_value(&parameter.value)
        ));
    }
    // A cluster whose version is unknown (offline) gives "": helm's default then.
    let kube_version = match (&options.kube_version, release.kube_version) {
        (Some(version), _) => Some(("spec.source.helm.kubeVersion", version.as_str())),
        (None, version) => version
            .filter(|version| !version.is_empty())
            .map(|version| ("the destination cluster's version", version)),
    };
    if let Some((field, version)) = kube_version {
        checked(field, version, arguments::kube_version)?;
        args.push(format!("--kube-version={version}"));
    }
    for api in release.api_versions {
        checked(
            "the destination cluster's API versions",
            api,
            arguments::api_version,
        )?;
        args.push(format!("--api-versions={api}"));
    }
    for (index, api) in options.api_versions.iter().enumerate() {
        checked(
            format!("spec.source.helm.apiVersions[{index}]"),
            api,
            arguments::api_version,
        )?;
        args.push(format!("--api-versions={api}"));
    }
    args.push(
        if options.skip_crds {
            "--skip-crds"
        } else {
            "--include-crds"
        }
        .into(),
    );
    args.extend(["--".to_owned(), release.name.to_owned()]);
    Ok(args)
}

/// What helm gets: the chart's files, the merged values, and what the render read and pulled.
struct Prepared {
    chart_files: FileTree,
    values: Value,
    decrypted: bool,
    inputs: BTreeSet<String>,
    pulled: Vec<(crate::ChartRef, String)>,
    /// How errors name the chart.
    shown: String,
}

async fn prepare(
    tree: &FileTree,
    path: &str,
    options: &HelmOptions,
    keys: &Keys,
    charts: Option<crate::ChartAccess<'_>>,
) -> Result<Prepared, RenderError> {
    let source_dir = tree.resolve(path).unwrap_or_else(|_| path.to_owned());
    let mut pulled = Vec::new();
    // A chart from a chart repository: values files are relative to the source's path, and only
    // they are read from the repository.
    let repository_chart = if let Some(chart) = &options.chart {
        Some(pull(charts, chart, &mut pulled).await?)
    } else {
        let chart_file = join_inside(&source_dir, "Chart.yaml").unwrap_or_default();
        if !matches!(tree.entries.get(&chart_file), Some(Entry::File { .. })) {
            return Err(RenderError::PathNotFound { path: chart_file });
        }
        None
    };
    let mut inputs: BTreeSet<String> = match repository_chart {
        Some(_) => BTreeSet::new(),
        None => tree.paths_under(&source_dir).map(str::to_owned).collect(),
    };
    let (values, decrypted) = merged_values(tree, &source_dir, options, keys, &mut inputs)?;
    let chart_files = {
        let mut gathering = Gathering {
            charts,
            inputs: &mut inputs,
            pulled: &mut pulled,
        };
        match &repository_chart {
            Some(files) => chart_tree(Origin::Pulled(files), 0, &mut gathering).await?,
            None => chart_tree(Origin::Repository(tree, &source_dir), 0, &mut gathering).await?,
        }
    };
    let shown = match &options.chart {
        Some(chart) => chart.to_string(),
        None if source_dir.is_empty() => ".".to_owned(),
        None => source_dir,
    };
    Ok(Prepared {
        chart_files,
        values,
        decrypted,
        inputs,
        pulled,
        shown,
    })
}

pub(crate) async fn render(
    tree: &FileTree,
    path: &str,
    release: &Release<'_>,
    options: &HelmOptions,
    limits: &RenderLimits,
    keys: &Keys,
    charts: Option<crate::ChartAccess<'_>>,
) -> Result<Rendered, RenderError> {
    // Before anything is read or pulled: no hostile value gets as far as helm.
    let args = helm_args(release, options).map_err(|refusal| RenderError::HelmArgument {
        path: match &options.chart {
            Some(chart) => chart.to_string(),
            None if path.is_empty() => ".".to_owned(),
            None => path.to_owned(),
        },
        field: refusal.field,
        reason: refusal.reason,
        hint: refusal.hint,
    })?;
    let prepared = prepare(tree, path, options, keys, charts).await?;
    let shown = prepared.shown.as_str();
    let text = run_helm(args, &prepared, limits).await?;
    let mut manifests = parse_documents(&text, &format!("helm template {shown}"), limits)?;
    place_hooks(&mut manifests);
    Ok(Rendered {
        manifests,
        inputs: Some(prepared.inputs),
        renderer: "helm",
        decrypted: prepared.decrypted,
        charts: prepared.pulled,
    })
}

/// `helm template` on a private copy of the chart, values on its standard input; its output.
/// `args` are [`helm_args`]'s; the chart's path goes last.
async fn run_helm(
    mut args: Vec<String>,
    prepared: &Prepared,
    limits: &RenderLimits,
) -> Result<String, RenderError> {
    let shown = prepared.shown.as_str();
    let program = crate::kustomize::find_on_path("helm").ok_or(RenderError::HelmNotInstalled)?;
    let workspace = tempfile::tempdir().map_err(|err| io("create a render directory", &err))?;
    let chart = workspace.path().join("chart");
    let home = workspace.path().join("home");
    std::fs::create_dir_all(&home).map_err(|err| io("create a render directory", &err))?;
    let refused = prepared
        .chart_files
        .materialize(&chart, limits.materialize)
        .map_err(|err| RenderError::Helm {
            path: shown.to_owned(),
            message: format!("cannot write the chart for helm: {err}"),
        })?;
    let failed = |message: String| RenderError::Helm {
        path: shown.to_owned(),
        message,
    };
    if let Some(err) = refused.first() {
        return Err(failed(err.to_string()));
    }
    args.push(chart.display().to_string());
    let mut child = tokio::process::Command::new(&program)
        .args(args)
        .current_dir(workspace.path())
        // Nothing of ours reaches helm; its caches and configuration stay in the private HOME, and
        // no proxy or registry setting of the host applies.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| io(&format!("start {}", program.display()), &err))?;
    let input = zeroize::Zeroizing::new(serde_json::to_vec(&prepared.values).unwrap_or_default());
    if let Some(mut stdin) = child.stdin.take() {
        // JSON is YAML; helm reads the values from its standard input.
        stdin
            .write_all(&input)
            .await
            .map_err(|err| io("give helm its values", &err))?;
    }
    let output = tokio::time::timeout(limits.timeout, child.wait_with_output())
        .await
        .map_err(|_| RenderError::HelmTimedOut {
            path: shown.to_owned(),
            after: limits.timeout,
        })?
        .map_err(|err| io("run helm", &err))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr)
            .replace(&chart.display().to_string(), shown)
            .trim()
            .to_owned();
        return Err(failed(message));
    }
    if output.stdout.len() > limits.max_output_bytes {
        return Err(failed(format!(
            "output larger than {} bytes",
            limits.max_output_bytes
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| failed("output is not UTF-8".to_owned()))
}

const HOOK: &str = "helm.sh/hook";
const HOOK_WEIGHT: &str = "helm.sh/hook-weight";
const HOOK_DELETE_POLICY: &str = "helm.sh/hook-delete-policy";
const WAVES: &[&str] = &["driftless.dev/sync-wave", "argocd.argoproj.io/sync-wave"];

fn annotation<'a>(manifest: &'a Value, key: &str) -> Option<&'a str> {
    manifest.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// The sync phases of a Helm hook, as [`driftless_core::hooks`] names them: `PreSync` for
/// `pre-install`/`pre-upgrade`, `PostSync` for `post-install`/`post-upgrade`; empty for a hook
/// that is only `test`, `*-delete` or `*-rollback` (not part of a sync at all). `None`: not a
/// Helm hook.
fn hook_phases(manifest: &Value) -> Option<Vec<&'static str>> {
    let hooks = annotation(manifest, HOOK)?;
    let has = |name: &str| hooks.split(',').any(|hook| hook.trim() == name);
    let mut phases = Vec::new();
    if has("pre-install") || has("pre-upgrade") {
        phases.push("PreSync");
    }
    if has("post-install") || has("post-upgrade") {
        phases.push("PostSync");
    }
    Some(phases)
}

/// Maps Helm hooks onto driftless's hooks (driftless renders a chart and owns its objects; it does
/// not run Helm releases), as Argo CD does: `pre-install`/`pre-upgrade` become `PreSync` hooks,
/// `post-install`/`post-upgrade` `PostSync` hooks, each in the wave of its `helm.sh/hook-weight`
/// (unless it declares its own sync wave); test, delete and rollback hooks are left out.
/// `helm.sh/hook-delete-policy` becomes `driftless.dev/hook-delete-policy` (Helm's default:
/// `before-hook-creation`). A hook that also carries Argo CD's or driftless's hook annotation
/// keeps that, as Argo CD ignores Helm's annotations then.
fn place_hooks(manifests: &mut Vec<crate::RenderedManifest>) {
    manifests.retain(|m| hook_phases(&m.manifest).is_none_or(|phases| !phases.is_empty()));
    for manifest in manifests.iter_mut() {
        let Some(phases) = hook_phases(&manifest.manifest) else {
            continue;
        };
        let declared = [
            driftless_core::hooks::HOOK_ANNOTATION,
            driftless_core::hooks::ARGO_HOOK_ANNOTATION,
        ]
        .iter()
        .any(|key| annotation(&manifest.manifest, key).is_some());
        if declared {
            continue;
        }
        let policy = annotation(&manifest.manifest, HOOK_DELETE_POLICY)
            .unwrap_or("before-hook-creation")
            .to_owned();
        let weight = annotation(&manifest.manifest, HOOK_WEIGHT)
            .and_then(|weight| weight.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let has_wave = WAVES
            .iter()
            .any(|key| annotation(&manifest.manifest, key).is_some());
        let Some(annotations) = manifest
            .manifest
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        annotations.insert(
            driftless_core::hooks::HOOK_ANNOTATION.to_owned(),
            Value::String(phases.join(",")),
        );
        annotations.insert(
            driftless_core::hooks::HOOK_DELETE_POLICY_ANNOTATION.to_owned(),
            Value::String(policy),
        );
        if !has_wave {
            annotations.insert(WAVES[0].to_owned(), Value::String(weight.to_string()));
        }
    }
}

fn io(action: &str, err: &std::io::Error) -> RenderError {
    RenderError::Io {
        action: action.to_owned(),
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_merge_as_helm_merges_them() {
        let mut base = json!({"image": {"tag": "1", "repository": "web"}, "ports": [80], "debug": true});
        merge(
            &mut base,
            json!({"image": {"tag": "2"}, "ports": [443], "debug": null}),
        );
        assert_eq!(
            base,
            json!({"image": {"tag": "2", "repository": "web"}, "ports": [443], "debug": null})
        );
    }

    #[test]
    fn values_files_stay_inside_the_repository() {
        let mut tree = FileTree::default();
        tree.entries.insert(
            "charts/web/Chart.yaml".into(),
            Entry::File {
                contents: b"name: web".to_vec(),
                executable: false,
            },
        );
        tree.entries.insert(
            "env/prod.yaml".into(),
            Entry::File {
                contents: b"replicas: 3".to_vec(),
                executable: false,
            },
        );
        tree.entries.insert(
            "charts/web/leak.yaml".into(),
            Entry::Symlink {
                target: "/etc/passwd".into(),
            },
        );
        let keys = Keys::new();
        let mut inputs = BTreeSet::new();
        let (values, _) =
            values_file(&tree, "charts/web", "../../env/prod.yaml", &keys, &mut inputs).expect("inside");
        assert_eq!(values, json!({"replicas": 3}));
        assert!(inputs.contains("env/prod.yaml"));
        for escaping in [
            "../../../etc/passwd",
            "/etc/passwd",
            "https://example.invalid/v.yaml",
            "leak.yaml",
        ] {
            let err = values_file(&tree, "charts/web", escaping, &keys, &mut inputs).expect_err(escaping);
            assert!(matches!(err, RenderError::HelmValues { .. }), "{escaping}: {err}");
        }
    }

    /// An application name too long for a release says where the name came from; a value that
    /// fails its grammar is never quoted.
    #[tokio::test]
    async fn refused_arguments_say_where_the_value_came_from() {
        let release = |name| Release {
            name,
            namespace: None,
            kube_version: None,
            api_versions: &[],
        };
        let (tree, limits, keys) = (FileTree::default(), RenderLimits::default(), Keys::new());
        let long = "a".repeat(54);
        let err = render(
            &tree,
            "web",
            &release(&long),
            &HelmOptions::default(),
            &limits,
            &keys,
            None,
        )
        .await
        .expect_err("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "helm template web: metadata.name: {long:?} is not a Helm release name (lowercase letters, \
                 digits, '-' and '.', at most 53 characters); the release is named after the application \
                 unless spec.source.helm.releaseName is set"
            )
        );
        let secret = HelmOptions {
            parameters: vec![driftless_core::application::HelmParameter {
                name: "password".into(),
                value: "s3cret\0".into(),
                force_string: true,
            }],
            ..HelmOptions::default()
        };
        let err = render(&tree, "web", &release("web"), &secret, &limits, &keys, None)
            .await
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "helm template web: spec.source.helm.parameters[0].value: must not contain a NUL character"
        );
    }
}
