//! The starter rules: what most clusters want from day one, written as plain CEL so they double
//! as examples for rules of one's own.

use crate::{Action, Operation, Rule};

/// The annotation that allows deleting a protected kind (`"true"`), set on the object before the
/// change that deletes it — deletion takes two deliberate steps.
pub const ALLOW_DELETION_ANNOTATION: &str = "driftless.dev/allow-deletion";

const WORKLOADS: [&str; 7] = [
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

/// The pod spec of any workload kind; CEL has no `let`, so rules inline it.
const POD_SPEC: &str = "(object.kind == 'Pod' ? object.spec : \
     object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : \
     object.spec.template.spec)";

/// Every container of the pod spec, init containers included.
fn containers() -> String {
    format!("({POD_SPEC}.containers + (has({POD_SPEC}.initContainers) ? {POD_SPEC}.initContainers : []))")
}

fn workload_rule(name: &str, action: Action, each_container: &str, message: &str) -> Rule {
    Rule {
        name: name.to_owned(),
        action,
        kinds: WORKLOADS.iter().map(|kind| (*kind).to_owned()).collect(),
        operations: Vec::new(),
        expression: format!("{}.all(c, {each_container})", containers()),
        message: Some(message.to_owned()),
    }
}

/// The starter set, every rule with `action`.
#[must_use]
pub fn starter_rules(action: Action) -> Vec<Rule> {
    let deletion = format!(
        "has(oldObject.metadata.annotations) && \
         '{ALLOW_DELETION_ANNOTATION}' in oldObject.metadata.annotations && \
         oldObject.metadata.annotations['{ALLOW_DELETION_ANNOTATION}'] == 'true'"
    );
    vec![
        workload_rule(
            "no-latest-tag",
            action,
            "c.image.contains('@') || \
             (c.image.substring(c.image.lastIndexOf('/') + 1).contains(':') && \
              !c.image.endsWith(':latest'))",
            "every container image names a tag other than `latest` (or a digest)",
        ),
        workload_rule(
            "resource-limits",
            action,
            "has(c.resources) && has(c.resources.limits) && \
             'cpu' in c.resources.limits && 'memory' in c.resources.limits",
            "every container sets resources.limits.cpu and resources.limits.memory",
        ),
        workload_rule(
            "no-privileged",
            action,
            "!(has(c.securityContext) && has(c.securityContext.privileged) && \
               c.securityContext.privileged == true)",
            "no container runs privileged",
        ),
        Rule {
            name: "no-cluster-admin".to_owned(),
            action,
            kinds: vec![
                "rbac.authorization.k8s.io/ClusterRoleBinding".to_owned(),
                "rbac.authorization.k8s.io/RoleBinding".to_owned(),
            ],
            operations: Vec::new(),
            expression: "!(object.roleRef.kind == 'ClusterRole' && \
                           object.roleRef.name == 'cluster-admin')"
                .to_owned(),
            message: Some("no binding grants the cluster-admin ClusterRole".to_owned()),
        },
        Rule {
            name: "protected-deletion".to_owned(),
            action,
            kinds: vec![
                "PersistentVolumeClaim".to_owned(),
                "Namespace".to_owned(),
                "apiextensions.k8s.io/CustomResourceDefinition".to_owned(),
            ],
            operations: vec![Operation::Delete],
            expression: deletion,
            message: Some(format!(
                "deleting a PersistentVolumeClaim, Namespace or CustomResourceDefinition takes \
                 the annotation {ALLOW_DELETION_ANNOTATION}: \"true\" on it first"
            )),
        },
    ]
}
