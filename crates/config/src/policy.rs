//! The `policy:` section: the starter rules as configured, then the configuration's own CEL
//! rules, each compiled here so that a rule that cannot work is a configuration error naming
//! its field, not a surprise in the first sync.

use driftless_policy::{Action, Operation, Policies, Rule, starter_rules};

use crate::raw::{RawPolicy, RawPolicyRule, Text};
use crate::validate::Checker;

/// A rule's setting: on with an action, or off.
#[derive(Clone, Copy)]
enum Setting {
    On(Action),
    Off,
}

impl Setting {
    fn action(self) -> Option<Action> {
        match self {
            Self::On(action) => Some(action),
            Self::Off => None,
        }
    }
}

/// `deny`, `warn`, or `off`; `None` (reported) for anything else.
fn action(checker: &mut Checker<'_>, text: &Text, field: &str) -> Option<Setting> {
    match text.value.as_str() {
        "deny" => Some(Setting::On(Action::Deny)),
        "warn" => Some(Setting::On(Action::Warn)),
        "off" => Some(Setting::Off),
        other => {
            checker.report_at(text, field, format!("{other:?} is not deny, warn or off"));
            None
        }
    }
}

fn operations(checker: &mut Checker<'_>, raw: &[Text], field: &str) -> Vec<Operation> {
    raw.iter()
        .enumerate()
        .filter_map(|(index, text)| match text.value.as_str() {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            other => {
                checker.report_at(
                    text,
                    format!("{field}[{index}]"),
                    format!("{other:?} is not CREATE, UPDATE or DELETE"),
                );
                None
            }
        })
        .collect()
}

/// A rule of one's own, compiled to check it.
fn own_rule(checker: &mut Checker<'_>, raw: &RawPolicyRule, expression: &Text, field: &str) -> Option<Rule> {
    let action = match &raw.action {
        Some(text) => action(checker, text, &format!("{field}.action"))?.action(),
        None => Some(Action::Deny),
    };
    let rule = Rule {
        name: raw.name.value.clone(),
        action: action?,
        kinds: raw.kinds.iter().map(|kind| kind.value.clone()).collect(),
        operations: operations(checker, &raw.operations, &format!("{field}.operations")),
        expression: expression.value.clone(),
        message: raw.message.as_ref().map(|message| message.value.clone()),
    };
    match Policies::new(vec![rule.clone()]) {
        Ok(_) => Some(rule),
        Err(driftless_policy::PolicyError::Kind { kind, .. }) => {
            checker.report_at(
                &raw.name,
                format!("{field}.kinds"),
                format!("{kind:?} is not Kind or group/Kind"),
            );
            None
        }
        Err(driftless_policy::PolicyError::Compile { message, .. }) => {
            checker.report_at(
                expression,
                format!("{field}.expression"),
                format!("does not compile: {message}"),
            );
            None
        }
    }
}

pub(crate) fn rules(checker: &mut Checker<'_>, raw: &RawPolicy) -> Vec<Rule> {
    let starter_action = match &raw.starter {
        Some(text) => action(checker, text, "policy.starter").and_then(Setting::action),
        None => None,
    };
    let starter = starter_rules(Action::Deny);
    let mut rules: Vec<Rule> = match starter_action {
        Some(action) => starter_rules(action),
        None => Vec::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for (index, raw_rule) in raw.rules.iter().enumerate() {
        let field = format!("policy.rules[{index}]");
        let name = &raw_rule.name.value;
        if !seen.insert(name.clone()) {
            checker.report_at(
                &raw_rule.name,
                format!("{field}.name"),
                format!("{name:?} is declared twice"),
            );
            continue;
        }
        if let Some(expression) = &raw_rule.expression {
            if starter.iter().any(|rule| rule.name == *name) {
                checker.report_at(
                    &raw_rule.name,
                    format!("{field}.name"),
                    format!("{name:?} is a starter rule: give only its action, or choose another name"),
                );
                continue;
            }
            rules.extend(own_rule(checker, raw_rule, expression, &field));
            continue;
        }
        // A starter rule's action, whether or not the starter set is on.
        let Some(template) = starter.iter().find(|rule| rule.name == *name) else {
            let known: Vec<&str> = starter.iter().map(|rule| rule.name.as_str()).collect();
            checker.report_at(
                &raw_rule.name,
                format!("{field}.expression"),
                format!("missing: {name:?} is not a starter rule ({})", known.join(", ")),
            );
            continue;
        };
        let Some(text) = &raw_rule.action else {
            checker.report_at(
                &raw_rule.name,
                format!("{field}.action"),
                "a starter rule's entry needs its action",
            );
            continue;
        };
        let Some(action) = action(checker, text, &format!("{field}.action")) else {
            continue;
        };
        rules.retain(|rule| rule.name != *name);
        if let Setting::On(action) = action {
            rules.push(Rule {
                action,
                ..template.clone()
            });
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use driftless_policy::Action;

    fn parse(policy: &str) -> Result<crate::Config, crate::ConfigError> {
        let text = format!("apiVersion: driftless.dev/v1alpha1\nkind: Config\npolicy:\n{policy}");
        crate::parse(&text, "driftless.yaml", Path::new("."))
    }

    #[test]
    fn starter_rules_can_be_turned_to_warnings_or_off_and_own_rules_are_added() {
        let config = parse(
            "  starter: deny\n  rules:\n    - {name: no-latest-tag, action: warn}\n    - {name: resource-limits, action: off}\n    - name: team-label\n      kinds: [Deployment, apps/StatefulSet]\n      expression: \"has(object.metadata.labels) && 'team' in object.metadata.labels\"\n      message: every workload names its team\n",
        )
        .expect("a valid policy");
        let rules: Vec<(&str, Action)> = config
            .policy
            .iter()
            .map(|rule| (rule.name.as_str(), rule.action))
            .collect();
        assert_eq!(
            rules,
            [
                ("no-privileged", Action::Deny),
                ("no-cluster-admin", Action::Deny),
                ("protected-deletion", Action::Deny),
                ("no-latest-tag", Action::Warn),
                ("team-label", Action::Deny),
            ]
        );
        assert!(
            parse("  starter: warn\n")
                .expect("valid")
                .policy
                .iter()
                .all(|rule| rule.action == Action::Warn)
        );
        assert!(
            parse("  rules: []\n").expect("valid").policy.is_empty(),
            "the starter set is opt-in"
        );
    }

    #[test]
    fn broken_rules_are_errors_naming_their_field_and_line() {
        let err = parse(
            "  starter: strict\n  rules:\n    - {name: a, expression: 'object.spec. =='}\n    - {name: b, expression: 'true', operations: [PATCH]}\n    - {name: c}\n    - {name: a, expression: 'true'}\n    - {name: no-privileged, expression: 'true'}\n",
        )
        .expect_err("invalid");
        let text = err.to_string();
        for expected in [
            "driftless.yaml:4: policy.starter: \"strict\" is not deny, warn or off",
            "driftless.yaml:6: policy.rules[0].expression: does not compile",
            "policy.rules[1].operations[0]: \"PATCH\" is not CREATE, UPDATE or DELETE",
            "policy.rules[2].expression: missing: \"c\" is not a starter rule",
            "policy.rules[3].name: \"a\" is declared twice",
            "policy.rules[4].name: \"no-privileged\" is a starter rule",
        ] {
            assert!(text.contains(expected), "{expected:?} not in:\n{text}");
        }
    }
}
