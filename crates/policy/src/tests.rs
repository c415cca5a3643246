use serde_json::{Value, json};

use super::*;

fn starter() -> Policies {
    Policies::new(starter_rules(Action::Deny)).expect("the starter rules compile")
}

fn created(object: &Value) -> Admission<'_> {
    Admission {
        operation: Operation::Create,
        object: Some(object),
        old_object: None,
    }
}

fn rules_broken(policies: &Policies, admission: &Admission<'_>) -> Vec<String> {
    policies
        .check(admission)
        .into_iter()
        .map(|finding| finding.rule)
        .collect()
}

fn deployment(container: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "shop" },
        "spec": { "template": { "spec": { "containers": [container] } } }
    })
}

fn good_container() -> Value {
    json!({
        "name": "web", "image": "registry.local:5000/shop/web:1.4.2",
        "resources": { "limits": { "cpu": "500m", "memory": "256Mi" } }
    })
}

#[test]
fn a_well_formed_workload_breaks_no_starter_rule() {
    let object = deployment(&good_container());
    assert_eq!(rules_broken(&starter(), &created(&object)), Vec::<String>::new());
}

#[test]
fn image_tags_latest_implicit_latest_and_digests() {
    let policies = starter();
    for (image, broken) in [
        ("nginx:latest", true),
        ("nginx", true),
        ("registry.local:5000/nginx", true),
        ("registry.local:5000/nginx:1.27", false),
        ("nginx@sha256:0123abcd", false),
    ] {
        let mut container = good_container();
        container["image"] = json!(image);
        let object = deployment(&container);
        let rules = rules_broken(&policies, &created(&object));
        assert_eq!(
            rules.contains(&"no-latest-tag".to_owned()),
            broken,
            "{image}: {rules:?}"
        );
    }
}

#[test]
fn init_containers_cron_jobs_and_pods_are_checked_too() {
    let policies = starter();
    let privileged = json!({
        "name": "setup", "image": "busybox:1.36", "securityContext": { "privileged": true },
        "resources": { "limits": { "cpu": "1", "memory": "1Gi" } }
    });
    let mut with_init = deployment(&good_container());
    with_init["spec"]["template"]["spec"]["initContainers"] = json!([privileged]);
    assert_eq!(rules_broken(&policies, &created(&with_init)), ["no-privileged"]);

    let cron = json!({
        "apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": { "name": "nightly" },
        "spec": { "jobTemplate": { "spec": { "template": { "spec": {
            "containers": [{ "name": "job", "image": "busybox:latest" }] } } } } }
    });
    assert_eq!(
        rules_broken(&policies, &created(&cron)),
        ["no-latest-tag", "resource-limits"]
    );

    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "debug" },
        "spec": { "containers": [{ "name": "debug", "image": "busybox:1.36",
            "resources": { "limits": { "memory": "64Mi" } } }] }
    });
    let findings = policies.check(&created(&pod));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].action, Action::Deny);
    assert!(
        findings[0].message.contains("resources.limits.cpu"),
        "{findings:?}"
    );
}

#[test]
fn cluster_admin_bindings_are_refused_other_roles_are_not() {
    let policies = starter();
    let binding = |role: &str| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": "ops" },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
            "subjects": [{ "kind": "Group", "name": "ops" }]
        })
    };
    assert_eq!(
        rules_broken(&policies, &created(&binding("cluster-admin"))),
        ["no-cluster-admin"]
    );
    assert!(rules_broken(&policies, &created(&binding("view"))).is_empty());
}

#[test]
fn protected_kinds_are_deleted_only_when_annotated_first() {
    let policies = starter();
    let claim = json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": "data", "namespace": "shop" }
    });
    let deleted = |old: &Value| -> Vec<String> {
        rules_broken(
            &policies,
            &Admission {
                operation: Operation::Delete,
                object: None,
                old_object: Some(old),
            },
        )
    };
    assert_eq!(deleted(&claim), ["protected-deletion"]);
    let mut annotated = claim.clone();
    annotated["metadata"]["annotations"] = json!({ ALLOW_DELETION_ANNOTATION: "true" });
    assert!(deleted(&annotated).is_empty());
    // Creating one, or deleting a kind that is not protected, is no concern of the rule.
    assert!(rules_broken(&policies, &created(&claim)).is_empty());
    let config_map = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } });
    assert!(deleted(&config_map).is_empty());
}

#[test]
fn own_rules_see_request_and_old_object_and_unescaped_map_keys() {
    let rules = vec![
        Rule {
            name: "team-label".to_owned(),
            action: Action::Warn,
            kinds: vec!["apps/Deployment".to_owned()],
            operations: vec![Operation::Create, Operation::Update],
            expression: "has(object.metadata.labels) && \
                         'app.kubernetes.io/part-of' in object.metadata.labels"
                .to_owned(),
            message: None,
        },
        Rule {
            name: "no-shrinking".to_owned(),
            action: Action::Deny,
            kinds: Vec::new(),
            operations: vec![Operation::Update],
            expression: "request.operation != 'UPDATE' || \
                         object.spec.replicas >= oldObject.spec.replicas"
                .to_owned(),
            message: Some("replicas only grow".to_owned()),
        },
    ];
    let policies = Policies::new(rules).expect("the rules compile");
    let mut old = deployment(&good_container());
    old["spec"]["replicas"] = json!(3);
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(2);
    let findings = policies.check(&Admission {
        operation: Operation::Update,
        object: Some(&new),
        old_object: Some(&old),
    });
    assert_eq!(
        findings,
        [
            Finding {
                rule: "team-label".to_owned(),
                action: Action::Warn,
                message: "has(object.metadata.labels) && 'app.kubernetes.io/part-of' in \
                          object.metadata.labels is false"
                    .to_owned(),
            },
            Finding {
                rule: "no-shrinking".to_owned(),
                action: Action::Deny,
                message: "replicas only grow".to_owned(),
            },
        ]
    );
    new["metadata"]["labels"] = json!({ "app.kubernetes.io/part-of": "shop" });
    new["spec"]["replicas"] = json!(4);
    assert!(
        policies
            .check(&Admission {
                operation: Operation::Update,
                object: Some(&new),
                old_object: Some(&old),
            })
            .is_empty()
    );
}

#[test]
fn an_expression_that_cannot_be_evaluated_breaks_the_rule() {
    let rule = Rule {
        name: "needs-spec".to_owned(),
        action: Action::Deny,
        kinds: Vec::new(),
        operations: Vec::new(),
        expression: "object.spec.replicas > 0".to_owned(),
        message: None,
    };
    let policies = Policies::new(vec![rule]).expect("the rule compiles");
    let object = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c" } });
    let findings = policies.check(&created(&object));
    assert_eq!(findings.len(), 1);
    assert!(
        findings[0].message.starts_with("the expression failed"),
        "{findings:?}"
    );
}

#[test]
fn rules_that_do_not_compile_are_refused_by_name() {
    let rule = Rule {
        name: "broken".to_owned(),
        action: Action::Deny,
        kinds: Vec::new(),
        operations: Vec::new(),
        expression: "object.spec. == ".to_owned(),
        message: None,
    };
    let err = Policies::new(vec![rule]).expect_err("a syntax error");
    assert!(err.to_string().starts_with("policy rule \"broken\""), "{err}");
}

#[test]
fn policies_can_be_shared_between_reconciles() {
    let policies = starter();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}});
    let findings = std::thread::scope(|scope| {
        scope
            .spawn(|| policies.check(&created(&pod)))
            .join()
            .expect("the checking thread")
    });
    assert!(findings.iter().any(|f| f.rule == "no-latest-tag"), "{findings:?}");
}
