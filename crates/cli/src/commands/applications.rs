//! Commands that work on configured applications, directly against their clusters.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use driftless_core::SyncState;
use driftless_core::diff::ObjectDiff;
use driftless_engine::{AppComparison, AppStatus, Engine, EngineOptions, SyncOptions, SyncReport};
use driftless_server::{ApiClient, SyncRequest};
use driftless_store::{ObjectAction, SyncResult};
use serde::Serialize;

use super::output::{self, print_diff, short, structured, table, time};
use super::{EXIT_DIFFERENCES, EXIT_ERROR};
use crate::cli::{Command, Common, DEFAULT_CONFIG, ListenFlags, OutputFormat, SyncFlags};

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("driftless")
}

/// The configuration and the data directory it (or `--data-dir`) names.
pub(super) fn load(common: &Common) -> anyhow::Result<(driftless_config::Config, PathBuf)> {
    if common.config.as_os_str() == DEFAULT_CONFIG && !common.config.exists() {
        // The user named no file: say where we looked and how to name one, not "cannot read".
        anyhow::bail!(
            "no {DEFAULT_CONFIG} in the current directory; name the configuration with --config FILE or DRIFTLESS_CONFIG"
        );
    }
    let config = driftless_config::load(&common.config)?;
    let data_dir = common
        .data_dir
        .clone()
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(default_data_dir);
    Ok((config, data_dir))
}

/// The `driftless serve` to go through: the one `--server` names (with `DRIFTLESS_TOKEN`), else
/// the running one for this configuration, unless `--direct`.
async fn server(common: &Common) -> anyhow::Result<Option<ApiClient>> {
    if common.direct {
        return Ok(None);
    }
    if let Some(url) = &common.server {
        let token = std::env::var("DRIFTLESS_TOKEN")
            .context("--server needs a token in the environment variable DRIFTLESS_TOKEN")?;
        let ca = match &common.server_ca {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?)
            }
            None => None,
        };
        return Ok(Some(ApiClient::remote_with_ca(url, &token, ca.as_deref())?));
    }
    let (_, data_dir) = load(common)?;
    Ok(ApiClient::connect(&data_dir).await)
}

pub(super) fn open(common: &Common) -> anyhow::Result<Engine> {
    let (config, data_dir) = load(common)?;
    let options = EngineOptions {
        data_dir,
        ..EngineOptions::default()
    };
    Engine::new(config, options).context("failed to open the state directory")
}

fn sync_options(flags: &SyncFlags, format: OutputFormat) -> SyncOptions {
    SyncOptions {
        prune: flags.prune,
        dry_run: flags.dry_run,
        force: flags.force,
        adopt: flags.adopt,
        progress: (format == OutputFormat::Text).then(output::progress),
        ..SyncOptions::default()
    }
}

pub async fn run(common: &Common, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Status { application } => status(common, application.as_deref()).await,
        Command::Diff { application } => diff(common, &application).await,
        Command::Sync { application, flags } => sync(common, &application, &flags).await,
        Command::Refresh {
            application,
            repo,
            all: _,
        } => refresh(common, application.as_deref(), repo).await,
        Command::Rollback {
            application,
            to,
            flags,
        } => rollback(common, &application, &to, &flags).await,
        Command::Suspend { application } => {
            let state = if admin(common, &application, Admin::Suspend).await? {
                "suspended: no automated syncs until `driftless resume`"
            } else {
                "was already suspended"
            };
            println!("{application}: {state}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { application } => {
            let state = if admin(common, &application, Admin::Resume).await? {
                "resumed: automated syncs run again"
            } else {
                "was not suspended"
            };
            println!("{application}: {state}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Pin { application } => {
            let revision = pin(common, &application).await?;
            println!("{application}: pinned at {revision}; unpin to follow its configured revision again");
            Ok(ExitCode::SUCCESS)
        }
        Command::Unpin { application } => {
            let was_pinned = admin(common, &application, Admin::Unpin).await?;
            let state = if was_pinned {
                "unpinned; it follows its configured revision again"
            } else {
                "was not pinned"
            };
            println!("{application}: {state}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Render {
            application,
            revision,
        } => {
            let rendered = open(common)?.render(&application, revision.as_deref()).await?;
            if common.output == OutputFormat::Json {
                println!("{}", serde_json::to_string_pretty(&rendered)?);
            } else {
                let documents: Vec<String> = rendered
                    .manifests
                    .iter()
                    .map(driftless_core::diff::to_yaml)
                    .collect();
                print!("{}", documents.join("---\n"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History { application, limit } => history(common, &application, limit).await,
        Command::Events { application, limit } => events(common, &application, limit).await,
        Command::Serve { workers, listen } => serve(common, workers, listen).await,
        Command::Token { action } => super::tokens::run(common, action),
        Command::Quickstart { .. }
        | Command::Completions { .. }
        | Command::Plan { .. }
        | Command::Import { .. } => {
            unreachable!("handled by commands::run")
        }
    }
}

/// Through a running `serve` (serialised with its reconciles) when there is one, else directly.
async fn sync(common: &Common, application: &str, flags: &SyncFlags) -> anyhow::Result<ExitCode> {
    let report: SyncReport = if let Some(client) = server(common).await? {
        let request = SyncRequest {
            prune: flags.prune,
            dry_run: flags.dry_run,
            force: flags.force,
            adopt: flags.adopt,
        };
        client
            .post(&format!("/api/v1/applications/{application}/sync"), &request)
            .await?
    } else {
        open(common)?
            .sync(application, sync_options(flags, common.output))
            .await?
    };
    print_report(common.output, &report)
}

/// One application, or (without one) every application of `repo`, or all.
async fn refresh(
    common: &Common,
    application: Option<&str>,
    repo: Option<String>,
) -> anyhow::Result<ExitCode> {
    let Some(client) = server(common).await? else {
        anyhow::bail!("no driftless serve is running for this configuration (refresh needs one)");
    };
    if let Some(application) = application {
        client
            .post_empty(&format!("/api/v1/applications/{application}/refresh"))
            .await?;
        println!("{application}: refresh requested");
        return Ok(ExitCode::SUCCESS);
    }
    let repo_given = repo.is_some();
    let response: driftless_server::RefreshResponse = client
        .post(
            "/api/v1/refresh",
            &driftless_server::RefreshRequest { repo_url: repo },
        )
        .await?;
    if response.applications.is_empty() && repo_given {
        anyhow::bail!("no application's source is that repository (URLs are compared exactly as configured)");
    }
    for application in &response.applications {
        println!("{application}: refresh requested");
    }
    Ok(ExitCode::SUCCESS)
}

/// An administrative change that answers yes or no (was it not so already).
#[derive(Clone, Copy)]
enum Admin {
    Suspend,
    Resume,
    Unpin,
}

/// Through a running `serve` (under the lock its reconciles of the application take) when there
/// is one, else directly.
async fn admin(common: &Common, application: &str, action: Admin) -> anyhow::Result<bool> {
    let (path, answer) = match action {
        Admin::Suspend => ("suspend", "suspended"),
        Admin::Resume => ("resume", "resumed"),
        Admin::Unpin => ("unpin", "unpinned"),
    };
    if let Some(client) = server(common).await? {
        let response: serde_json::Value = client
            .post(
                &format!("/api/v1/applications/{application}/{path}"),
                &serde_json::json!({}),
            )
            .await?;
        return response[answer]
            .as_bool()
            .with_context(|| format!("the server's answer has no {answer:?}"));
    }
    let engine = open(common)?;
    Ok(match action {
        Admin::Suspend => engine.suspend(application)?,
        Admin::Resume => engine.resume(application)?,
        Admin::Unpin => engine.unpin(application)?,
    })
}

/// Pins through a running `serve` when there is one, else directly; returns the revision.
async fn pin(common: &Common, application: &str) -> anyhow::Result<String> {
    if let Some(client) = server(common).await? {
        let pinned: driftless_server::Pinned = client
            .post(
                &format!("/api/v1/applications/{application}/pin"),
                &serde_json::json!({}),
            )
            .await?;
        return Ok(pinned.pinned);
    }
    Ok(open(common)?.pin(application)?)
}

/// Through a running `serve` (serialised with its reconciles) when there is one, else directly.
async fn rollback(
    common: &Common,
    application: &str,
    to: &str,
    flags: &SyncFlags,
) -> anyhow::Result<ExitCode> {
    let report: SyncReport = if let Some(client) = server(common).await? {
        let request = driftless_server::RollbackRequest {
            revision: to.to_owned(),
            prune: flags.prune,
            dry_run: flags.dry_run,
        };
        client
            .post(&format!("/api/v1/applications/{application}/rollback"), &request)
            .await?
    } else {
        open(common)?
            .rollback(application, to, sync_options(flags, common.output))
            .await?
    };
    let code = print_report(common.output, &report)?;
    if report.result == SyncResult::Succeeded && !report.dry_run && common.output == OutputFormat::Text {
        println!(
            "{application} is pinned at {}; automated syncs are suspended until `driftless unpin {application}`.",
            short(&report.revision)
        );
    }
    Ok(code)
}

#[derive(Serialize)]
struct StatusRow {
    application: String,
    revision: Option<String>,
    sync: SyncState,
    health: Option<driftless_core::HealthState>,
    last_sync: Option<SyncResult>,
    message: String,
    /// What its Argo CD or Flux object does that behaves differently here; filled in only
    /// when one application is asked for, as the server's application detail has them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    conversion_notes: Vec<String>,
}

async fn status(common: &Common, only: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(client) = server(common).await? {
        // What the running server saw at its last reconcile of each application.
        let statuses: std::collections::BTreeMap<String, AppStatus> =
            client.get("/api/v1/applications").await?;
        let mut rows: Vec<StatusRow> = statuses
            .into_iter()
            .filter(|(name, _)| only.is_none_or(|only| only == name))
            .map(|(application, status)| StatusRow {
                application,
                revision: status.revision,
                sync: status.sync.unwrap_or(SyncState::Unknown),
                health: status.health.as_ref().map(|health| health.state),
                last_sync: status.last_sync,
                message: status
                    .error
                    .or(status.health.map(|health| health.message))
                    .unwrap_or_default(),
                conversion_notes: Vec::new(),
            })
            .collect();
        if let Some(only) = only {
            let Some(row) = rows.first_mut() else {
                anyhow::bail!("no application named {only:?}");
            };
            let detail: driftless_server::ApplicationDetail =
                client.get(&format!("/api/v1/applications/{only}")).await?;
            row.conversion_notes = detail.conversion_notes;
        }
        print_rows(common.output, &rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    let engine = open(common)?;
    let rows = if let Some(name) = only {
        let name = engine.find_application(name).await?.name.clone();
        let mut rows = status_rows(&engine, vec![name.clone()]).await?;
        for row in &mut rows {
            row.conversion_notes = engine.conversion_notes(&name);
        }
        rows
    } else {
        // Applications declared by root applications become known by rendering the roots.
        engine.discover().await;
        status_rows(&engine, engine.application_names()).await?
    };
    print_rows(common.output, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// Compares each application and prints one row per application; an application that cannot be
/// compared shows its error instead of failing the others.
pub(super) async fn print_status(
    engine: &Engine,
    names: Vec<String>,
    format: OutputFormat,
) -> anyhow::Result<()> {
    print_rows(format, &status_rows(engine, names).await?)
}

async fn status_rows(engine: &Engine, names: Vec<String>) -> anyhow::Result<Vec<StatusRow>> {
    let mut rows = Vec::new();
    for name in names {
        let last_sync = engine
            .store()
            .history(&name, 1)?
            .first()
            .map(|record| record.result);
        // One application's failure is shown on its row; the others are still compared.
        let row = match engine.compare(&name).await {
            Ok(comparison) => StatusRow {
                application: name,
                revision: Some(comparison.revision),
                sync: comparison.sync,
                health: Some(comparison.health.state),
                last_sync,
                message: comparison.health.message,
                conversion_notes: Vec::new(),
            },
            Err(err) => StatusRow {
                application: name,
                revision: None,
                sync: SyncState::Unknown,
                health: None,
                last_sync,
                message: err.to_string(),
                conversion_notes: Vec::new(),
            },
        };
        rows.push(row);
    }
    Ok(rows)
}

fn print_rows(format: OutputFormat, rows: &[StatusRow]) -> anyhow::Result<()> {
    if !structured(format, &rows)? {
        let mut out = table(&[
            "APPLICATION",
            "REVISION",
            "SYNC",
            "HEALTH",
            "LAST SYNC",
            "MESSAGE",
        ]);
        for row in rows {
            out.add_row(vec![
                row.application.clone(),
                row.revision.as_deref().map_or("-", short).to_owned(),
                row.sync.to_string(),
                row.health.map_or("-".to_owned(), |h| h.to_string()),
                row.last_sync.map_or("-".to_owned(), |r| format!("{r:?}")),
                row.message.clone(),
            ]);
        }
        println!("{out}");
        for row in rows.iter().filter(|row| !row.conversion_notes.is_empty()) {
            println!(
                "\n{}: converted from an Argo CD or Flux object; it syncs, but these fields work differently here:",
                row.application
            );
            for note in &row.conversion_notes {
                println!("  {note}");
            }
        }
    }
    Ok(())
}

async fn diff(common: &Common, application: &str) -> anyhow::Result<ExitCode> {
    let compared = match server(common).await? {
        Some(client) => client
            .get::<AppComparison>(&format!("/api/v1/applications/{application}/diff"))
            .await
            .map_err(|err| err.to_string()),
        None => open(common)?
            .compare(application)
            .await
            .map_err(|err| err.to_string()),
    };
    let comparison = match compared {
        Ok(comparison) => comparison,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    if !structured(common.output, &comparison)? {
        for object in &comparison.objects {
            match &object.diff {
                ObjectDiff::Unchanged => {}
                ObjectDiff::Changed { unified, .. } => print_diff(unified),
                ObjectDiff::Missing { desired } => {
                    let name = object.object.to_string();
                    let added = desired.lines().fold(String::new(), |mut text, line| {
                        text.push('+');
                        text.push_str(line);
                        text.push('\n');
                        text
                    });
                    print_diff(&format!(
                        "--- live/{name} (does not exist)\n+++ desired/{name}\n{added}"
                    ));
                }
            }
        }
        for object in &comparison.to_prune {
            println!("would prune {object} (left Git)");
        }
        let changed = comparison.objects.iter().filter(|o| !o.diff.is_in_sync()).count();
        eprintln!(
            "{application} at {}: {} ({changed} of {} objects differ, {} to prune)",
            short(&comparison.revision),
            comparison.sync,
            comparison.objects.len(),
            comparison.to_prune.len()
        );
    }
    Ok(if comparison.sync == SyncState::Synced {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DIFFERENCES)
    })
}

pub(super) fn print_report(format: OutputFormat, report: &SyncReport) -> anyhow::Result<ExitCode> {
    if !structured(format, report)? {
        // Only what the sync did or could not do; unchanged objects are counted below (`-o json`
        // lists every object).
        let acted: Vec<_> = report
            .outcomes
            .iter()
            .filter(|outcome| outcome.action != ObjectAction::Unchanged)
            .collect();
        if !acted.is_empty() {
            let mut out = table(&["OBJECT", "ACTION", "MESSAGE"]);
            for outcome in acted {
                out.add_row(vec![
                    outcome.object.to_string(),
                    format!("{:?}", outcome.action),
                    outcome.message.clone(),
                ]);
            }
            println!("{out}");
        }
        let summary = driftless_store::Summary::of(&report.outcomes);
        let verb = if report.dry_run { "Dry-run of sync" } else { "Sync" };
        let result = if report.result == SyncResult::Succeeded {
            "succeeded"
        } else {
            "failed"
        };
        println!(
            "{verb} of {} at {} {result}: {} created, {} configured, {} unchanged, {} pruned, {} kept, {} skipped, {} failed{}",
            report.application,
            short(&report.revision),
            summary.created,
            summary.configured,
            summary.unchanged,
            summary.pruned,
            summary.kept,
            summary.skipped,
            summary.failed,
            if report.message.is_empty() {
                String::new()
            } else {
                format!(" ({})", report.message)
            },
        );
    }
    Ok(if report.result == SyncResult::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    })
}

async fn serve(common: &Common, workers: usize, listen: ListenFlags) -> anyhow::Result<ExitCode> {
    // Refused before anything is opened or bound: a token must not cross a network in clear.
    let tls = match listen.listen {
        Some(address) => {
            driftless_server::check_listen(address, listen.tls_cert.is_some(), listen.insecure_http)?;
            match (&listen.tls_cert, &listen.tls_key) {
                (Some(cert), Some(key)) => Some(driftless_server::TlsConfig::from_pem_files(cert, key)?),
                _ => None,
            }
        }
        None => None,
    };
    let (_, data_dir) = load(common)?;
    if ApiClient::connect(&data_dir).await.is_some() {
        anyhow::bail!(
            "another driftless serve is already running for {}",
            data_dir.display()
        );
    }
    let engine = std::sync::Arc::new(open(common)?);
    let names = engine.application_names();
    tracing::info!(applications = ?names, workers, "serving");
    let controller = driftless_engine::Controller::new(std::sync::Arc::clone(&engine), workers);
    let _notifications = driftless_notify::spawn(&controller);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to listen for SIGTERM")?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let api = tokio::spawn({
        let controller = std::sync::Arc::clone(&controller);
        let socket = driftless_server::socket_path(&data_dir);
        let mut stopped = stopped.clone();
        async move {
            driftless_server::serve_local(controller, &socket, async move {
                let _ = stopped.changed().await;
            })
            .await
        }
    });
    let tcp = match listen.listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("failed to listen on {address}"))?;
            // The address bound (port 0 takes a free one, with no race against other processes),
            // on standard output, which serve uses for nothing else.
            let bound = listener
                .local_addr()
                .with_context(|| format!("failed to listen on {address}"))?;
            let scheme = if tls.is_some() { "https" } else { "http" };
            println!("API listening on {scheme}://{bound}");
            let controller = std::sync::Arc::clone(&controller);
            let mut stopped = stopped.clone();
            let stopped = async move {
                let _ = stopped.changed().await;
            };
            Some(tokio::spawn(async move {
                match tls {
                    Some(tls) => driftless_server::serve_tls(controller, listener, &tls, stopped).await,
                    None => driftless_server::serve_tcp(controller, listener, stopped).await,
                }
            }))
        }
        None => None,
    };
    let mut stopped_controller = stopped;
    let signals = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
        }
        let _ = stop.send(true);
    };
    tokio::spawn(signals);
    controller
        .run(async move {
            let _ = stopped_controller.changed().await;
        })
        .await;
    for task in std::iter::once(api).chain(tcp) {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err.into()),
            Err(err) => return Err(anyhow::anyhow!("the API task failed: {err}")),
        }
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn events(common: &Common, application: &str, limit: usize) -> anyhow::Result<ExitCode> {
    let engine = open(common)?;
    engine.find_application(application).await?;
    let events = engine.store().events(application, limit)?;
    if !structured(common.output, &events)? {
        let mut out = table(&["TIME", "EVENT", "MESSAGE"]);
        for event in &events {
            let kind = serde_json::to_value(event.kind)?;
            out.add_row(vec![
                time(event.time),
                kind.as_str().unwrap_or_default().to_owned(),
                event.message.clone(),
            ]);
        }
        println!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn history(common: &Common, application: &str, limit: usize) -> anyhow::Result<ExitCode> {
    let engine = open(common)?;
    engine.find_application(application).await?;
    let records = engine.store().history(application, limit)?;
    if !structured(common.output, &records)? {
        let mut out = table(&[
            "ID", "REVISION", "TRIGGER", "RESULT", "STARTED", "CHANGES", "MESSAGE",
        ]);
        for record in &records {
            let s = &record.summary;
            out.add_row(vec![
                record.id.to_string(),
                short(&record.revision).to_owned(),
                format!("{:?}", record.trigger),
                format!("{:?}", record.result),
                time(record.started_at),
                format!("+{} ~{} -{} !{}", s.created, s.configured, s.pruned, s.failed),
                record.message.clone(),
            ]);
        }
        println!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}
