//! `driftless import`: Argo CD and Flux objects, from files or a live cluster, written as a
//! `driftless.yaml` (applications and projects) or as Application manifests, with a report of
//! everything that could not be carried over. The conversion is `driftless_config::foreign`'s;
//! this reads its input and writes its output.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use driftless_config::foreign::{self, Conversion, ForeignObject, Purpose, Severity};
use driftless_core::application::{Cluster, ClusterConnection};
use serde_json::{Value, json};

use crate::cli::Common;

/// What `import` writes on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// A driftless.yaml: clusters, projects (from AppProjects) and applications.
    Config,
    /// Application manifests, for a root application's Git (app-of-apps).
    Manifests,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file or directory (its .yaml, .yml and .json files, recursively) of Argo CD and Flux
    /// objects; `-` reads standard input; repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required_unless_present = "from_cluster"
    )]
    pub files: Vec<PathBuf>,
    /// Read Argo CD and Flux objects from a live cluster (every namespace), for those of their
    /// kinds it serves: the cluster of --kubeconfig, else the first of the configuration's.
    #[arg(long, conflicts_with = "files")]
    pub from_cluster: bool,
    /// The kubeconfig for --from-cluster (its current context unless --context).
    #[arg(long, requires = "from_cluster")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
    /// What to write: a driftless.yaml, or Application manifests.
    #[arg(long, value_enum, default_value_t = ImportFormat::Config)]
    pub format: ImportFormat,
    /// Write the report of what was not carried over to this file instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Exit with status 1 when anything that changes what is deployed was not carried over.
    #[arg(long)]
    pub strict: bool,
    /// The configured cluster that Argo CD's `in-cluster` and Flux's own cluster become
    /// (default: the configuration's first cluster, else `in-cluster`).
    #[arg(long)]
    pub cluster: Option<String>,
}

/// Exit status of `--strict` when something was not carried over.
const EXIT_NOT_CARRIED_OVER: u8 = 1;

/// Name of the cluster written when there is no configuration: driftless running inside it.
const IN_CLUSTER: &str = "in-cluster";

pub async fn run(common: &Common, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    // The configuration is optional here: it names the clusters destinations may match.
    let configured: Vec<Cluster> = if common.config.exists() {
        driftless_config::load(&common.config)?.clusters
    } else {
        Vec::new()
    };
    let known = driftless_engine::known_clusters(&configured);
    let home = args
        .cluster
        .clone()
        .or_else(|| configured.first().map(|cluster| cluster.name.clone()))
        .unwrap_or_else(|| IN_CLUSTER.to_owned());
    let objects = if args.from_cluster {
        from_cluster(args, &configured).await?
    } else {
        from_files(&args.files)?
    };
    let context = foreign::Context {
        purpose: Purpose::Import,
        home_cluster: &home,
        clusters: &known,
        home_repository: None,
    };
    let conversion = foreign::convert(&objects, &context);
    let output = match args.format {
        ImportFormat::Config => config_document(&conversion, &configured, &home)?,
        ImportFormat::Manifests => manifests(&conversion)?,
    };
    print!("{output}");
    let report = report(&conversion, args.format, objects.len());
    match &args.report {
        Some(path) => std::fs::write(path, &report)
            .with_context(|| format!("writing the report to {}", path.display()))?,
        None => eprint!("{report}"),
    }
    let unsupported = conversion.all_findings().any(foreign::Finding::blocks);
    Ok(if args.strict && unsupported {
        ExitCode::from(EXIT_NOT_CARRIED_OVER)
    } else {
        ExitCode::SUCCESS
    })
}

/// Every object of the files and directories, in the order given (a directory's files sorted).
fn from_files(paths: &[PathBuf]) -> anyhow::Result<Vec<ForeignObject>> {
    let mut objects = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            objects.extend(foreign::read_objects(&text, "<stdin>")?);
            continue;
        }
        for file in files_under(path)? {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            objects.extend(foreign::read_objects(&text, &file.display().to_string())?);
        }
    }
    Ok(objects)
}

/// `path` itself when it is a file; else its YAML and JSON files, recursively, sorted. Links
/// are not followed into directories, so a loop cannot make it walk for ever.
fn files_under(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let metadata = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    let mut pending = vec![path.to_owned()];
    while let Some(directory) = pending.pop() {
        for entry in
            std::fs::read_dir(&directory).with_context(|| format!("reading {}", directory.display()))?
        {
            let entry = entry?;
            let kind = entry.file_type()?;
            let entry_path = entry.path();
            if kind.is_dir() {
                pending.push(entry_path);
            } else if entry_path
                .extension()
                .and_then(|extension| extension.to_str())
                .is_some_and(|extension| matches!(extension, "yaml" | "yml" | "json"))
            {
                files.push(entry_path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The kinds `driftless import --from-cluster` lists, by API group.
const CLUSTER_KINDS: &[(&str, &[&str])] = &[
    ("argoproj.io", &["Application", "AppProject", "ApplicationSet"]),
    ("kustomize.toolkit.fluxcd.io", &["Kustomization"]),
    (
        "source.toolkit.fluxcd.io",
        &[
            "GitRepository",
            "HelmRepository",
            "OCIRepository",
            "Bucket",
            "HelmChart",
        ],
    ),
    ("helm.toolkit.fluxcd.io", &["HelmRelease"]),
];

/// Every Argo CD and Flux object of the cluster, for the kinds its API server serves (a cluster
/// without Flux simply has none of Flux's).
async fn from_cluster(args: &ImportArgs, configured: &[Cluster]) -> anyhow::Result<Vec<ForeignObject>> {
    let client = match (&args.kubeconfig, configured.first()) {
        (Some(path), _) => client_for(path, args.context.as_deref()).await?,
        (None, Some(cluster)) => match &cluster.connection {
            ClusterConnection::Kubeconfig { path, context } => client_for(path, context.as_deref()).await?,
            ClusterConnection::InCluster => kube::Client::try_from(kube::Config::incluster()?)?,
        },
        (None, None) => {
            bail!("--from-cluster needs --kubeconfig, or a configuration (--config) with a cluster")
        }
    };
    let groups: Vec<&str> = CLUSTER_KINDS.iter().map(|(group, _)| *group).collect();
    let discovery = kube::discovery::Discovery::new(client.clone())
        .filter(&groups)
        .run()
        .await
        .context("listing the cluster's API groups")?;
    let mut objects = Vec::new();
    for (group, kinds) in CLUSTER_KINDS {
        let Some(served) = discovery.groups().find(|served| served.name() == *group) else {
            continue;
        };
        for kind in *kinds {
            let Some((resource, _)) = served.recommended_kind(kind) else {
                continue;
            };
            let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(client.clone(), &resource);
            let listed = api
                .list(&kube::api::ListParams::default())
                .await
                .with_context(|| format!("listing {kind} in {group}"))?;
            for item in listed.items {
                let mut manifest = serde_json::to_value(&item)?;
                // A list's items carry no type: the conversion reads it from them.
                manifest["apiVersion"] = json!(resource.api_version);
                manifest["kind"] = json!(resource.kind);
                objects.push(ForeignObject {
                    manifest,
                    source: "cluster".into(),
                });
            }
        }
    }
    Ok(objects)
}

/// A client for `path`'s `context`. An `exec` credential plugin is refused, as for every
/// cluster driftless connects to: it would run a program the kubeconfig names.
async fn client_for(path: &Path, context: Option<&str>) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    if let Some(user) = kubeconfig
        .auth_infos
        .iter()
        .find(|named| named.auth_info.as_ref().is_some_and(|auth| auth.exec.is_some()))
    {
        bail!(
            "kubeconfig {}: user {:?} runs an exec credential plugin, which driftless does not run",
            path.display(),
            user.name
        );
    }
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..kube::config::KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    Ok(kube::Client::try_from(config)?)
}

/// A driftless.yaml of the conversion: the configured clusters (or the one `in-cluster`
/// means), projects and applications.
fn config_document(conversion: &Conversion, configured: &[Cluster], home: &str) -> anyhow::Result<String> {
    let mut clusters: Vec<Value> = configured
        .iter()
        .map(|cluster| match &cluster.connection {
            ClusterConnection::Kubeconfig { path, context } => {
                let mut entry = json!({ "name": cluster.name, "kubeconfig": path.display().to_string() });
                if let Some(context) = context {
                    entry["context"] = json!(context);
                }
                entry
            }
            ClusterConnection::InCluster => json!({ "name": cluster.name, "inCluster": true }),
        })
        .collect();
    if !configured.iter().any(|cluster| cluster.name == home) {
        clusters.push(json!({ "name": home, "inCluster": true }));
    }
    let applications: Vec<Value> = conversion
        .applications
        .iter()
        .map(|app| app.manifest.clone())
        .collect();
    let projects: Vec<Value> = conversion
        .projects
        .iter()
        .map(|project| project.document.clone())
        .collect();
    // Each section on its own, in the order people read a driftless.yaml (a JSON map would sort
    // them).
    let mut text = held_back_comment(conversion);
    text.push_str(&format!(
        "apiVersion: {}\nkind: {}\n",
        driftless_config::API_VERSION,
        driftless_config::CONFIG_KIND
    ));
    text.push_str(&serde_saphyr::to_string(&json!({ "clusters": clusters }))?);
    if !projects.is_empty() {
        text.push_str(&serde_saphyr::to_string(&json!({ "projects": projects }))?);
    }
    text.push_str(&serde_saphyr::to_string(
        &json!({ "applications": applications }),
    )?);
    Ok(text)
}

/// Application manifests, one YAML document each.
fn manifests(conversion: &Conversion) -> anyhow::Result<String> {
    let mut text = held_back_comment(conversion);
    for app in &conversion.applications {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(&app.manifest)?);
    }
    Ok(text)
}

/// A comment at the head of the output naming the applications that must not be used as they
/// are, so the file itself warns whoever commits it.
fn held_back_comment(conversion: &Conversion) -> String {
    let held: Vec<String> = conversion
        .applications
        .iter()
        .filter(|app| app.unsupported().next().is_some())
        .map(|app| {
            format!(
                "#   {} (from {})\n",
                printable(app.name()),
                printable(&app.origin)
            )
        })
        .collect();
    if held.is_empty() {
        return String::new();
    }
    format!(
        "# Written by driftless import. These applications lost something that changes what they\n# deploy (see the report) and must be fixed before they are used:\n{}",
        held.concat()
    )
}

/// What was read, converted and not carried over, most serious first.
fn report(conversion: &Conversion, format: ImportFormat, objects: usize) -> String {
    let mut findings: Vec<&foreign::Finding> = conversion.all_findings().collect();
    findings.sort_by_key(|finding| finding.severity);
    // A source's finding comes with each object that names it: said once.
    let mut seen = std::collections::BTreeSet::new();
    findings.retain(|finding| seen.insert(finding.to_string()));
    let unsupported = findings.iter().filter(|finding| finding.blocks()).count();
    let mut text = format!(
        "driftless import: {objects} object(s) read, {} application(s) and {} project(s) written; {unsupported} field(s) not carried over, {} that only differ in how Argo CD or Flux behave\n",
        conversion.applications.len(),
        if format == ImportFormat::Config {
            conversion.projects.len()
        } else {
            0
        },
        findings.len() - unsupported,
    );
    if format == ImportFormat::Manifests && !conversion.projects.is_empty() {
        text.push_str(
            "projects are not written as manifests: they live in driftless.yaml (--format config)\n",
        );
    }
    let mut heading = None;
    for finding in findings {
        if heading != Some(finding.severity) {
            heading = Some(finding.severity);
            text.push_str(match finding.severity {
                Severity::Unsupported => "not carried over (the application would deploy something else):\n",
                Severity::Differs => "differs:\n",
            });
        }
        text.push_str(&format!("  {}\n", printable(&finding.to_string())));
    }
    text
}

/// `text` with control characters shown as `?`: names and values come from the objects read, and
/// a line break must not end the output's comment (writing YAML of its own) nor an escape
/// sequence reach the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn names_from_the_objects_cannot_break_out_of_a_comment_or_reach_the_terminal() {
        assert_eq!(
            printable("web\napplications: []\u{1b}[2J"),
            "web?applications: []?[2J"
        );
    }
}
