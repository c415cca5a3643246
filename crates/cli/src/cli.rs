use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// GitOps continuous delivery for Kubernetes: keeps clusters equal to what Git declares.
#[derive(Debug, Parser)]
#[command(name = "driftless", version, about, propagate_version = true)]
pub struct Cli {
    /// How log lines on stderr are written.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "DRIFTLESS_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Also log what the libraries underneath say (`-v`: their warnings, `-vv`: everything at
    /// info, `-vvv`: debug); by default a failure prints only its one message.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub common: Common,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
}

/// The configuration read when neither --config nor DRIFTLESS_CONFIG names one.
pub const DEFAULT_CONFIG: &str = "driftless.yaml";

/// Where the configuration and state are, and how to print results. Global: written before or
/// after the subcommand (`driftless --config x.yaml status` and `driftless status --config x.yaml`).
#[derive(Debug, Args)]
pub struct Common {
    /// The configuration file (clusters, repositories, applications).
    #[arg(long, short = 'c', global = true, env = "DRIFTLESS_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Where Git mirrors and the history database live; overrides `dataDir` in the configuration.
    #[arg(long, global = true, env = "DRIFTLESS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// How results are printed on stdout (logs and errors go to stderr).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Work directly against the clusters even when a `driftless serve` is running.
    #[arg(long, global = true)]
    pub direct: bool,
    /// Go through the `driftless serve` at this URL (`https://…`; `http://` only on loopback),
    /// with the token in the environment variable DRIFTLESS_TOKEN (never a flag: flags show in
    /// the process list).
    #[arg(long, global = true, env = "DRIFTLESS_SERVER", conflicts_with = "direct")]
    pub server: Option<String>,
    /// A PEM certificate authority to trust for --server (one whose certificate a private CA
    /// signed), besides the system's.
    #[arg(long, global = true, env = "DRIFTLESS_SERVER_CA")]
    pub server_ca: Option<PathBuf>,
}

/// How `serve` listens over TCP, if it does.
#[derive(Debug, Args)]
pub struct ListenFlags {
    /// Also serve the API over TCP on this address (e.g. 127.0.0.1:8080); every request there
    /// needs a bearer token (`driftless token create`). An address that is not loopback
    /// needs --tls-cert and --tls-key, or --insecure-http.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Serve --listen over HTTPS with this PEM certificate chain (the server's certificate
    /// first).
    #[arg(long, requires_all = ["listen", "tls_key"])]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve --listen over plain HTTP although other hosts can reach it: only behind a
    /// TLS-terminating proxy that is the only way in (tokens would cross the network in clear).
    #[arg(long, requires = "listen", conflicts_with = "tls_cert")]
    pub insecure_http: bool,
}

#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "independent command-line flags")]
pub struct SyncFlags {
    /// Delete objects that left Git (after everything else applied).
    #[arg(long)]
    pub prune: bool,
    /// Show what would happen (server-side dry-run); change and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take over fields other field managers own instead of failing on conflicts.
    #[arg(long)]
    pub force: bool,
    /// Take over live objects that exist but were not created by driftless.
    #[arg(long)]
    pub adopt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Read applications, diffs, history and events.
    Viewer,
    /// Also refresh, sync, roll back, pin and unpin.
    Operator,
    /// Also what is not one application's (refreshing every repository, statistics).
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token and print its secret (shown this once; only a digest is stored).
    Create {
        /// A name for the token (who or what uses it).
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Only applications whose names match this glob (`*`, `?`); repeatable; all when absent.
        #[arg(long = "app")]
        applications: Vec<String>,
        /// Only applications carrying this label (`KEY=VALUE`); repeatable, all must match.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List tokens (names, roles, scopes, last use; never secrets).
    List {},
    /// Revoke a token: requests with it are refused from now on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each application's revision, sync state and health.
    Status {
        /// Only this application.
        application: Option<String>,
    },
    /// Show what a sync would change. Exit status 0: in sync, 1: differences, 2: error.
    Diff { application: String },
    /// Apply an application's desired state now.
    Sync {
        application: String,
        #[command(flatten)]
        flags: SyncFlags,
    },
    /// Ask a running `driftless serve` to reconcile an application now (or every application of
    /// a repository, or all of them: they share one fetch, as after a push).
    Refresh {
        #[arg(required_unless_present_any = ["all", "repo"], conflicts_with_all = ["all", "repo"])]
        application: Option<String>,
        /// Every application whose source is this repository URL (exactly as configured).
        #[arg(long, conflicts_with = "all")]
        repo: Option<String>,
        /// Every application.
        #[arg(long)]
        all: bool,
    },
    /// What a change (Git at --head against --base, e.g. a pull request) does to every
    /// application it affects: objects added, changed and removed, schema violations, policy
    /// findings and, when the cluster is reachable, a server-side dry-run against the live
    /// state. Exit 0: no changes; 1: changes; 2: an error, a schema violation or a denying policy.
    Plan {
        #[command(flatten)]
        args: PlanArgs,
    },
    /// Print the manifests an application declares, as they would be applied.
    Render {
        application: String,
        /// Render this branch, tag or commit instead of the configured revision.
        #[arg(long)]
        revision: Option<String>,
    },
    /// List an application's syncs, newest first.
    History {
        application: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// List what the controller noticed about an application (drift detected and who changed
    /// what, self-heal backing off), newest first.
    Events {
        application: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Sync a revision that was synced before and pin the application there (automated syncs
    /// stop until `driftless unpin`). `git revert` is the GitOps-native way to roll back.
    Rollback {
        application: String,
        /// A branch, tag or commit that was synced successfully before.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        flags: SyncFlags,
    },
    /// Keep an application at the commit it runs (its last successful sync): new commits are
    /// compared but not deployed until `driftless unpin`.
    Pin { application: String },
    /// Let a pinned or rolled-back application follow its configured revision again.
    Unpin { application: String },
    /// Stop automated syncs of an application (it is still compared and reported; manual syncs
    /// still work) until `driftless resume`.
    Suspend { application: String },
    /// Let automated syncs of a suspended application run again.
    Resume { application: String },
    /// Reconcile every application continuously: on its interval, and sync the automated ones
    /// when they drift from Git. SIGTERM or Ctrl-C finishes running work, then exits.
    Serve {
        /// How many applications are reconciled at once.
        #[arg(long, default_value_t = 4)]
        workers: usize,
        #[command(flatten)]
        listen: ListenFlags,
    },
    /// Create, list and revoke the API's bearer tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Start a local Kubernetes control plane and show driftless working against it.
    ///
    /// Needs the control-plane binaries that `scripts/testenv` builds.
    Quickstart {
        /// Stop the control plane and exit when done instead of serving until Ctrl-C.
        #[arg(long)]
        exit: bool,
        /// The examples folder to serve from a local Git repository.
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
    },
    /// Write the driftless.yaml (or Application manifests) equivalent to Argo CD and Flux
    /// objects read from files or a live cluster, and report what could not be carried over.
    /// Exit 0 unless something failed (with --strict: 1 when a field was not carried over).
    Import {
        #[command(flatten)]
        args: crate::commands::import::ImportArgs,
    },
    /// Print a shell completion script to stdout.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// `KEY=VALUE` of `--label`.
fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// Where `driftless plan --post` puts the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Forge {
    Github,
    Gitlab,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The branch, tag or commit the change starts from (the pull request's target).
    #[arg(long)]
    pub base: String,
    /// The branch, tag or commit with the change.
    #[arg(long)]
    pub head: String,
    /// A local clone to read instead of the applications' repository (a CI checkout): plans
    /// the applications whose source is this clone's `origin` (or the clone itself).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Print Markdown for a pull-request comment instead of text (`-o json` for JSON).
    #[arg(long)]
    pub markdown: bool,
    /// Contact no cluster: a render-only plan, validated against the bundled schemas
    /// (Kubernetes v1.20) or --schemas.
    #[arg(long)]
    pub offline: bool,
    /// An OpenAPI v2 document (a release's `api/openapi-spec/swagger.json`, or a cluster's
    /// `/openapi/v2`) to validate against when the cluster is not compared.
    #[arg(long, value_name = "FILE")]
    pub schemas: Option<PathBuf>,
    /// Also put the plan on the pull/merge request as one comment (edited on every run) and
    /// set the head commit's `driftless/plan` status, from the CI job's environment (see the
    /// README); the head commit is `DRIFTLESS_HEAD_SHA`, else --head in --repo.
    #[arg(long, value_enum)]
    pub post: Option<Forge>,
}
