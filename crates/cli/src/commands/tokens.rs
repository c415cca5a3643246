//! `driftless token`: the API's bearer tokens, kept (as digests) in the state database.

use std::process::ExitCode;

use anyhow::Context as _;
use driftless_core::access::{Grant, Role};
use driftless_store::Store;

use crate::cli::{Common, OutputFormat, RoleArg, TokenAction};

fn store(common: &Common) -> anyhow::Result<Store> {
    let (_, data_dir) = super::applications::load(common)?;
    Store::open(&data_dir.join("driftless.db")).context("failed to open the state database")
}

pub(crate) fn now_millis() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

pub fn run(common: &Common, action: TokenAction) -> anyhow::Result<ExitCode> {
    match action {
        TokenAction::Create {
            name,
            role,
            applications,
            labels,
        } => {
            let role = match role {
                RoleArg::Viewer => Role::Viewer,
                RoleArg::Operator => Role::Operator,
                RoleArg::Admin => Role::Admin,
            };
            let grant = Grant {
                role,
                applications,
                labels: labels.into_iter().collect(),
            };
            let secret = store(common)?.create_token(&name, &grant, now_millis())?;
            // The secret goes to stdout alone, so `TOKEN=$(driftless token create …)` works.
            println!("{secret}");
            eprintln!("token {name} ({role}) created; its secret is shown only now");
        }
        TokenAction::List {} => {
            let tokens = store(common)?.tokens()?;
            if common.output == OutputFormat::Json {
                let listed: Vec<serde_json::Value> = tokens
                    .iter()
                    .map(|token| {
                        serde_json::json!({
                            "name": token.name,
                            "role": token.grant.role,
                            "applications": token.grant.applications,
                            "labels": token.grant.labels,
                            "createdAt": token.created_at,
                            "lastUsedAt": token.last_used_at,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&listed)?);
            } else {
                for token in &tokens {
                    let mut scope: Vec<String> = token.grant.applications.clone();
                    scope.extend(
                        token
                            .grant
                            .labels
                            .iter()
                            .map(|(key, value)| format!("{key}={value}")),
                    );
                    let scope = if scope.is_empty() {
                        "all applications".to_owned()
                    } else {
                        scope.join(", ")
                    };
                    let used = if token.last_used_at.is_some() {
                        "used"
                    } else {
                        "never used"
                    };
                    println!("{}\t{}\t{scope}\t{used}", token.name, token.grant.role);
                }
            }
        }
        TokenAction::Revoke { name } => {
            if !store(common)?.revoke_token(&name)? {
                anyhow::bail!("no token named {name:?}");
            }
            eprintln!("token {name} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
