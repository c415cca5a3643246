//! Policy checks on what a change does to objects: CEL rules evaluated the way Kubernetes'
//! ValidatingAdmissionPolicy evaluates them (variables `object`, `oldObject` and `request`, with
//! the Kubernetes CEL libraries), so a rule written for an admission policy works here unchanged,
//! and runs before anything reaches a cluster — in `driftless plan` on a pull request and in
//! every sync before apply.
//!
//! This crate is pure: it knows nothing of Git, renderers or clusters. Callers say what happens
//! to each object ([`Operation`]) and get back the rules it breaks ([`Finding`]).

mod starter;

use std::collections::HashMap;
use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, Program, Value as Cel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use starter::{ALLOW_DELETION_ANNOTATION, starter_rules};

/// What a finding does: `Deny` stops a sync and fails a plan; `Warn` is reported only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deny,
    Warn,
}

/// What a change does to an object, as an admission request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// One rule as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    /// Kinds the rule applies to, as `Kind` or `group/Kind` (`""` group for core); empty: all.
    pub kinds: Vec<String>,
    /// Operations the rule applies to; empty: creations and updates.
    pub operations: Vec<Operation>,
    /// A CEL expression that is `true` when the object is acceptable.
    pub expression: String,
    /// What a finding says; without it, the expression is quoted.
    pub message: Option<String>,
}

/// A rule an object breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Finding {
    pub rule: String,
    pub action: Action,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy rule {rule:?}: the expression does not compile: {message}")]
    Compile { rule: String, message: String },
    #[error("policy rule {rule:?}: kind {kind:?} is not `Kind` or `group/Kind`")]
    Kind { rule: String, kind: String },
}

struct CompiledRule {
    rule: Rule,
    program: Program,
}

/// Compiled rules, ready to check objects. Cheap to share: nothing in it changes.
#[derive(Default)]
pub struct Policies {
    rules: Vec<CompiledRule>,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.rules.iter().map(|compiled| &compiled.rule.name))
            .finish()
    }
}

/// One object's change, as the rules see it. `object` is absent for a deletion, `old_object`
/// for a creation — as in an admission request.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    pub operation: Operation,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
}

impl Policies {
    pub fn new(rules: Vec<Rule>) -> Result<Self, PolicyError> {
        let rules = rules
            .into_iter()
            .map(|rule| {
                if let Some(kind) = rule.kinds.iter().find(|kind| kind.matches('/').count() > 1) {
                    return Err(PolicyError::Kind {
                        rule: rule.name.clone(),
                        kind: kind.clone(),
                    });
                }
                let program = Program::compile(&rule.expression).map_err(|err| PolicyError::Compile {
                    rule: rule.name.clone(),
                    message: err.to_string(),
                })?;
                Ok(CompiledRule { rule, program })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules `admission` breaks, in rule order. A rule whose expression cannot be
    /// evaluated on the object (a missing field it did not guard with `has()`, a wrong type)
    /// is broken: a policy that cannot say yes says no.
    #[must_use]
    pub fn check(&self, admission: &Admission<'_>) -> Vec<Finding> {
        let subject = admission.object.or(admission.old_object);
        let Some(subject) = subject else {
            return Vec::new();
        };
        let applicable: Vec<_> = self
            .rules
            .iter()
            .filter(|compiled| applies(&compiled.rule, admission.operation, subject))
            .collect();
        if applicable.is_empty() {
            return Vec::new();
        }
        let context = context(admission, subject);
        applicable
            .into_iter()
            .filter_map(|compiled| {
                let failure = match compiled.program.execute(&context) {
                    Ok(Cel::Bool(true)) => return None,
                    Ok(Cel::Bool(false)) => None,
                    Ok(other) => Some(format!("the expression gave {other:?}, not a boolean")),
                    Err(err) => Some(format!("the expression failed: {err}")),
                };
                let rule = &compiled.rule;
                let message = match (failure, &rule.message) {
                    (None, Some(message)) => message.clone(),
                    (None, None) => format!("{} is false", rule.expression),
                    (Some(failure), _) => failure,
                };
                Some(Finding {
                    rule: rule.name.clone(),
                    action: rule.action,
                    message,
                })
            })
            .collect()
    }
}

fn group_and_kind(object: &Value) -> (&str, &str) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
    (group, object["kind"].as_str().unwrap_or_default())
}

fn applies(rule: &Rule, operation: Operation, object: &Value) -> bool {
    let operation_matches = if rule.operations.is_empty() {
        operation != Operation::Delete
    } else {
        rule.operations.contains(&operation)
    };
    let (group, kind) = group_and_kind(object);
    operation_matches
        && (rule.kinds.is_empty()
            || rule.kinds.iter().any(|wanted| match wanted.split_once('/') {
                Some((wanted_group, wanted_kind)) => wanted_group == group && wanted_kind == kind,
                None => wanted == kind,
            }))
}

fn context(admission: &Admission<'_>, subject: &Value) -> Context<'static> {
    let mut context = Context::default().with_all();
    let (group, kind) = group_and_kind(subject);
    let version = subject["apiVersion"].as_str().map_or("", |api_version| {
        api_version.rsplit('/').next().unwrap_or_default()
    });
    let request = serde_json::json!({
        "operation": admission.operation.as_str(),
        "name": subject["metadata"]["name"],
        "namespace": subject["metadata"]["namespace"].as_str().unwrap_or_default(),
        "dryRun": true,
        "kind": { "group": group, "version": version, "kind": kind },
    });
    context.add_variable_from_value("object", admission.object.map_or(Cel::Null, to_cel));
    context.add_variable_from_value("oldObject", admission.old_object.map_or(Cel::Null, to_cel));
    context.add_variable_from_value("request", to_cel(&request));
    context
}

/// JSON as CEL sees an admitted object. Keys stay as written, so `labels['app.kubernetes.io/name']`
/// works as it does in an admission policy (where map keys are not escaped).
fn to_cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(flag) => Cel::Bool(*flag),
        Value::Number(number) => number
            .as_i64()
            .map(Cel::Int)
            .or_else(|| number.as_u64().map(Cel::UInt))
            .unwrap_or_else(|| Cel::Float(number.as_f64().unwrap_or_default())),
        Value::String(text) => Cel::String(Arc::new(text.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(fields) => {
            let map: HashMap<Key, Cel> = fields
                .iter()
                .map(|(key, value)| (Key::String(Arc::new(key.clone())), to_cel(value)))
                .collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

#[cfg(test)]
mod tests;
