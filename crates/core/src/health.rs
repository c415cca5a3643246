//! Health of live objects: pure functions from an object (as JSON) to a [`Health`].
//!
//! Built-in kinds follow what their controllers report (the same rules `kubectl rollout status`
//! uses for workloads); any other kind is judged kstatus-style from `observedGeneration` and the
//! standard `Ready`/`Available`/`Stalled`/`Reconciling` conditions. An object with no status at all
//! (ConfigMap, Secret, RBAC) is healthy by existing.

use serde_json::Value;

use crate::HealthState;

/// An object's or an application's health with a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub state: HealthState,
    /// Empty when healthy and there is nothing worth saying.
    pub message: String,
}

impl Health {
    #[must_use]
    pub fn new(state: HealthState, message: impl Into<String>) -> Self {
        Self {
            state,
            message: message.into(),
        }
    }

    #[must_use]
    pub fn healthy() -> Self {
        Self::new(HealthState::Healthy, "")
    }

    fn progressing(message: impl Into<String>) -> Self {
        Self::new(HealthState::Progressing, message)
    }

    fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthState::Degraded, message)
    }

    /// An object that should exist but does not.
    #[must_use]
    pub fn missing() -> Self {
        Self::new(HealthState::Missing, "object does not exist in the cluster")
    }
}

/// Judges one live object. `group` is its API group (empty for the core group).
#[must_use]
pub fn assess(group: &str, kind: &str, object: &Value) -> Health {
    if let Some(stale) = stale_generation(object) {
        return stale;
    }
    match (group, kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") => replica_set(object),
        ("", "Pod") => pod(object),
        ("batch", "Job") => job(object),
        ("batch", "CronJob") => cron_job(object),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(object),
        ("", "Service") => service(object),
        ("networking.k8s.io" | "extensions", "Ingress") => ingress(object),
        ("", "Namespace") => namespace(object),
        ("apiregistration.k8s.io", "APIService") => api_service(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => custom_resource_definition(object),
        _ => from_conditions(object),
    }
}

/// The worst health of several objects, keeping the message of the object that decided it.
#[must_use]
pub fn worst<'a>(healths: impl IntoIterator<Item = &'a Health>) -> Health {
    healths
        .into_iter()
        .max_by_key(|health| health.state)
        .cloned()
        .unwrap_or_else(Health::healthy)
}

// === helpers over JSON ===

fn int(object: &Value, pointer: &str) -> Option<i64> {
    object.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

fn flag(object: &Value, pointer: &str) -> bool {
    object.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// `status.conditions[type == kind]`.
fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|condition| condition.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_status<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    condition(object, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
}

fn condition_message(object: &Value, kind: &str) -> String {
    condition(object, kind)
        .and_then(|c| c.get("message").or_else(|| c.get("reason")))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A controller that has not seen the latest spec yet: nothing in its status can be trusted.
fn stale_generation(object: &Value) -> Option<Health> {
    let generation = int(object, "/metadata/generation")?;
    let observed = int(object, "/status/observedGeneration")?;
    (observed < generation).then(|| {
        Health::progressing(format!(
            "waiting for the controller to observe generation {generation} (seen {observed})"
        ))
    })
}

/// `spec.replicas`, which defaults to 1 on every workload kind.
fn desired_replicas(object: &Value) -> i64 {
    int(object, "/spec/replicas").unwrap_or(1)
}

// === workloads ===

fn deployment(object: &Value) -> Health {
    if flag(object, "/spec/paused") {
        return Health::new(HealthState::Suspended, "deployment is paused");
    }
    if condition(object, "Progressing")
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        == Some("ProgressDeadlineExceeded")
    {
        return Health::degraded(format!(
            "deployment exceeded its progress deadline: {}",
            condition_message(object, "Progressing")
        ));
    }
    if int(object, "/status/observedGeneration").is_none() {
        return Health::progressing("waiting for the deployment controller");
    }
    let desired = desired_replicas(object);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    let total = int(object, "/status/replicas").unwrap_or(0);
    let available = int(object, "/status/availableReplicas").unwrap_or(0);
    if updated < desired {
        return Health::progressing(format!("{updated} of {desired} replicas updated"));
    }
    if total > updated {
        return Health::progressing(format!("{} old replicas pending termination", total - updated));
    }
    if available < updated {
        return Health::progressing(format!("{available} of {updated} updated replicas available"));
    }
    Health::healthy()
}

fn stateful_set(object: &Value) -> Health {
    if int(object, "/status/observedGeneration").is_none() {
        return Health::progressing("waiting for the statefulset controller");
    }
    if text(object, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::healthy();
    }
    let desired = desired_replicas(object);
    let ready = int(object, "/status/readyReplicas").unwrap_or(0);
    if ready < desired {
        return Health::progressing(format!("{ready} of {desired} pods ready"));
    }
    let partition = int(object, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    let updated = int(object, "/status/updatedReplicas").unwrap_or(0);
    if partition > 0 {
        let expected = desired - partition;
        return if updated < expected {
            Health::progressing(format!(
                "{updated} of {expected} pods updated (partition {partition})"
            ))
        } else {
            Health::healthy()
        };
    }
    if text(object, "/status/updateRevision") != text(object, "/status/currentRevision") {
        return Health::progressing(format!(
            "rolling update in progress: {updated} of {desired} pods updated"
        ));
    }
    Health::healthy()
}

fn daemon_set(object: &Value) -> Health {
    if int(object, "/status/observedGeneration").is_none() {
        return Health::progressing("waiting for the daemonset controller");
    }
    if text(object, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::healthy();
    }
    let desired = int(object, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(object, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(object, "/status/numberAvailable").unwrap_or(0);
    if updated < desired {
        return Health::progressing(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Health::progressing(format!("{available} of {desired} pods available"));
    }
    Health::healthy()
}

fn replica_set(object: &Value) -> Health {
    if condition_status(object, "ReplicaFailure") == Some("True") {
        return Health::degraded(condition_message(object, "ReplicaFailure"));
    }
    let desired = desired_replicas(object);
    let available = int(object, "/status/availableReplicas").unwrap_or(0);
    if available < desired {
        return Health::progressing(format!("{available} of {desired} replicas available"));
    }
    Health::healthy()
}

/// Waiting reasons that will not fix themselves without a change.
const BROKEN_CONTAINER_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ErrImagePull",
    "ImagePullBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
];

fn pod(object: &Value) -> Health {
    let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"]
        .into_iter()
        .filter_map(|pointer| object.pointer(pointer).and_then(Value::as_array))
        .flatten();
    for status in statuses {
        let reason = status
            .pointer("/state/waiting/reason")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if BROKEN_CONTAINER_REASONS.contains(&reason) {
            let name = status.get("name").and_then(Value::as_str).unwrap_or("?");
            let detail = status
                .pointer("/state/waiting/message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Health::degraded(
                format!("container {name}: {reason} {detail}")
                    .trim_end()
                    .to_owned(),
            );
        }
    }
    match text(object, "/status/phase") {
        Some("Succeeded") => Health::healthy(),
        Some("Failed") => {
            Health::degraded(text(object, "/status/message").unwrap_or("pod failed").to_owned())
        }
        Some("Running") if condition_status(object, "Ready") == Some("True") => Health::healthy(),
        Some("Running") => Health::progressing("pod is running but not ready"),
        Some(phase) => Health::progressing(format!("pod is {phase}")),
        None => Health::progressing("pod has not been scheduled"),
    }
}

fn job(object: &Value) -> Health {
    if condition_status(object, "Failed") == Some("True") {
        return Health::degraded(format!("job failed: {}", condition_message(object, "Failed")));
    }
    if condition_status(object, "Complete") == Some("True") {
        return Health::healthy();
    }
    if flag(object, "/spec/suspend") {
        return Health::new(HealthState::Suspended, "job is suspended");
    }
    Health::progressing("job is running")
}

fn cron_job(object: &Value) -> Health {
    if flag(object, "/spec/suspend") {
        return Health::new(HealthState::Suspended, "cronjob is suspended");
    }
    Health::healthy()
}

fn persistent_volume_claim(object: &Value) -> Health {
    match text(object, "/status/phase") {
        Some("Bound") => Health::healthy(),
        Some("Lost") => Health::degraded("claim lost its volume"),
        _ => Health::progressing("waiting for the claim to be bound"),
    }
}

fn has_load_balancer_ingress(object: &Value) -> bool {
    object
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|i| !i.is_empty())
}

fn service(object: &Value) -> Health {
    if text(object, "/spec/type") == Some("LoadBalancer") && !has_load_balancer_ingress(object) {
        return Health::progressing("waiting for the load balancer");
    }
    Health::healthy()
}

fn ingress(object: &Value) -> Health {
    if has_load_balancer_ingress(object) {
        Health::healthy()
    } else {
        Health::progressing("waiting for the ingress controller to publish an address")
    }
}

fn namespace(object: &Value) -> Health {
    match text(object, "/status/phase") {
        Some("Terminating") => Health::progressing("namespace is terminating"),
        _ => Health::healthy(),
    }
}

fn api_service(object: &Value) -> Health {
    match condition_status(object, "Available") {
        Some("True") => Health::healthy(),
        _ => Health::progressing(condition_message(object, "Available")),
    }
}

fn custom_resource_definition(object: &Value) -> Health {
    if condition_status(object, "NamesAccepted") == Some("False") {
        return Health::degraded(format!(
            "names not accepted: {}",
            condition_message(object, "NamesAccepted")
        ));
    }
    match condition_status(object, "Established") {
        Some("True") => Health::healthy(),
        _ => Health::progressing("waiting for the CRD to be established"),
    }
}

/// kstatus-style judgement for kinds without their own rules.
fn from_conditions(object: &Value) -> Health {
    if condition_status(object, "Stalled") == Some("True") {
        return Health::degraded(condition_message(object, "Stalled"));
    }
    if condition_status(object, "Reconciling") == Some("True") {
        return Health::progressing(condition_message(object, "Reconciling"));
    }
    for kind in ["Ready", "Available"] {
        match condition_status(object, kind) {
            Some("True") => return Health::healthy(),
            Some("False") => {
                let message = condition_message(object, kind);
                return Health::progressing(if message.is_empty() {
                    format!("{kind} is False")
                } else {
                    message
                });
            }
            _ => {}
        }
    }
    Health::healthy()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(group: &str, kind: &str, object: &Value) -> HealthState {
        assess(group, kind, object).state
    }

    #[test]
    fn deployments_progress_until_every_replica_is_updated_and_available() {
        let mut deployment = json!({
            "metadata": { "generation": 2 },
            "spec": { "replicas": 3 },
            "status": { "observedGeneration": 1 }
        });
        let stale = assess("apps", "Deployment", &deployment);
        assert_eq!(stale.state, HealthState::Progressing);
        assert!(stale.message.contains("generation 2"), "{}", stale.message);

        deployment["status"] =
            json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 1 });
        assert_eq!(
            assess("apps", "Deployment", &deployment).message,
            "1 of 3 replicas updated"
        );

        deployment["status"] =
            json!({ "observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3 });
        assert_eq!(
            assess("apps", "Deployment", &deployment).message,
            "1 old replicas pending termination"
        );

        deployment["status"] =
            json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2 });
        assert_eq!(state("apps", "Deployment", &deployment), HealthState::Progressing);

        deployment["status"] =
            json!({ "observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3 });
        assert_eq!(assess("apps", "Deployment", &deployment), Health::healthy());
    }

    #[test]
    fn deployment_past_its_deadline_is_degraded_and_paused_is_suspended() {
        let failed = json!({
            "spec": {},
            "status": { "observedGeneration": 1, "conditions": [
                { "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing." }
            ] }
        });
        let health = assess("apps", "Deployment", &failed);
        assert_eq!(health.state, HealthState::Degraded);
        assert!(health.message.contains("timed out"), "{}", health.message);

        let paused = json!({ "spec": { "paused": true }, "status": {} });
        assert_eq!(state("apps", "Deployment", &paused), HealthState::Suspended);
    }

    #[test]
    fn stateful_sets_respect_partitions_and_revisions() {
        let mut set = json!({
            "spec": { "replicas": 3, "updateStrategy": { "type": "RollingUpdate", "rollingUpdate": { "partition": 2 } } },
            "status": { "observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1 }
        });
        assert_eq!(state("apps", "StatefulSet", &set), HealthState::Healthy);
        set["spec"]["updateStrategy"] = json!({ "type": "RollingUpdate" });
        set["status"]["currentRevision"] = json!("web-1");
        set["status"]["updateRevision"] = json!("web-2");
        assert_eq!(state("apps", "StatefulSet", &set), HealthState::Progressing);
        set["status"]["currentRevision"] = json!("web-2");
        assert_eq!(state("apps", "StatefulSet", &set), HealthState::Healthy);
        set["status"]["readyReplicas"] = json!(2);
        assert_eq!(assess("apps", "StatefulSet", &set).message, "2 of 3 pods ready");
    }

    #[test]
    fn daemon_sets_and_replica_sets() {
        let daemons = json!({ "status": { "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1 } });
        assert_eq!(
            assess("apps", "DaemonSet", &daemons).message,
            "1 of 2 pods available"
        );
        let failing = json!({ "spec": { "replicas": 2 }, "status": { "conditions": [
            { "type": "ReplicaFailure", "status": "True", "message": "pods \"x\" is forbidden: exceeded quota" }
        ] } });
        assert_eq!(state("apps", "ReplicaSet", &failing), HealthState::Degraded);
        let ready = json!({ "spec": { "replicas": 2 }, "status": { "availableReplicas": 2 } });
        assert_eq!(state("apps", "ReplicaSet", &ready), HealthState::Healthy);
    }

    #[test]
    fn pods_crash_looping_are_degraded_and_ready_pods_healthy() {
        let crashing = json!({ "status": { "phase": "Running", "containerStatuses": [
            { "name": "web", "state": { "waiting": { "reason": "CrashLoopBackOff", "message": "back-off 5m0s" } } }
        ] } });
        let health = assess("", "Pod", &crashing);
        assert_eq!(health.state, HealthState::Degraded);
        assert_eq!(health.message, "container web: CrashLoopBackOff back-off 5m0s");

        let ready = json!({ "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] } });
        assert_eq!(state("", "Pod", &ready), HealthState::Healthy);
        assert_eq!(
            state("", "Pod", &json!({ "status": { "phase": "Pending" } })),
            HealthState::Progressing
        );
        assert_eq!(
            state("", "Pod", &json!({ "status": { "phase": "Failed" } })),
            HealthState::Degraded
        );
        assert_eq!(
            state("", "Pod", &json!({ "status": { "phase": "Succeeded" } })),
            HealthState::Healthy
        );
    }

    #[test]
    fn jobs_and_cron_jobs() {
        let complete = json!({ "status": { "conditions": [{ "type": "Complete", "status": "True" }] } });
        assert_eq!(state("batch", "Job", &complete), HealthState::Healthy);
        let failed = json!({ "status": { "conditions": [{ "type": "Failed", "status": "True", "message": "BackoffLimitExceeded" }] } });
        assert_eq!(
            assess("batch", "Job", &failed).message,
            "job failed: BackoffLimitExceeded"
        );
        assert_eq!(
            state("batch", "Job", &json!({ "status": {} })),
            HealthState::Progressing
        );
        assert_eq!(
            state("batch", "CronJob", &json!({ "spec": { "suspend": true } })),
            HealthState::Suspended
        );
        assert_eq!(
            state("batch", "CronJob", &json!({ "spec": {} })),
            HealthState::Healthy
        );
    }

    #[test]
    fn claims_services_ingresses_namespaces() {
        assert_eq!(
            state(
                "",
                "PersistentVolumeClaim",
                &json!({ "status": { "phase": "Bound" } })
            ),
            HealthState::Healthy
        );
        assert_eq!(
            state(
                "",
                "PersistentVolumeClaim",
                &json!({ "status": { "phase": "Pending" } })
            ),
            HealthState::Progressing
        );
        assert_eq!(
            state(
                "",
                "PersistentVolumeClaim",
                &json!({ "status": { "phase": "Lost" } })
            ),
            HealthState::Degraded
        );

        let pending_lb = json!({ "spec": { "type": "LoadBalancer" }, "status": { "loadBalancer": {} } });
        assert_eq!(state("", "Service", &pending_lb), HealthState::Progressing);
        let lb = json!({ "spec": { "type": "LoadBalancer" }, "status": { "loadBalancer": { "ingress": [{ "ip": "192.0.2.1" }] } } });
        assert_eq!(state("", "Service", &lb), HealthState::Healthy);
        assert_eq!(
            state("", "Service", &json!({ "spec": { "type": "ClusterIP" } })),
            HealthState::Healthy
        );
        assert_eq!(
            state("networking.k8s.io", "Ingress", &json!({ "status": {} })),
            HealthState::Progressing
        );
        assert_eq!(
            state("", "Namespace", &json!({ "status": { "phase": "Terminating" } })),
            HealthState::Progressing
        );
        assert_eq!(
            state("", "Namespace", &json!({ "status": { "phase": "Active" } })),
            HealthState::Healthy
        );
    }

    #[test]
    fn crds_and_api_services() {
        let established =
            json!({ "status": { "conditions": [{ "type": "Established", "status": "True" }] } });
        assert_eq!(
            state("apiextensions.k8s.io", "CustomResourceDefinition", &established),
            HealthState::Healthy
        );
        let clash = json!({ "status": { "conditions": [{ "type": "NamesAccepted", "status": "False", "message": "plural is taken" }] } });
        assert_eq!(
            state("apiextensions.k8s.io", "CustomResourceDefinition", &clash),
            HealthState::Degraded
        );
        let unavailable = json!({ "status": { "conditions": [{ "type": "Available", "status": "False", "message": "no endpoints" }] } });
        assert_eq!(
            assess("apiregistration.k8s.io", "APIService", &unavailable).message,
            "no endpoints"
        );
    }

    #[test]
    fn other_kinds_follow_standard_conditions() {
        assert_eq!(
            state("", "ConfigMap", &json!({ "data": {} })),
            HealthState::Healthy
        );
        let ready = json!({ "status": { "conditions": [{ "type": "Ready", "status": "True" }] } });
        assert_eq!(state("example.com", "Widget", &ready), HealthState::Healthy);
        let not_ready = json!({ "status": { "conditions": [{ "type": "Ready", "status": "False", "message": "waiting for database" }] } });
        assert_eq!(
            assess("example.com", "Widget", &not_ready).message,
            "waiting for database"
        );
        let stalled = json!({ "status": { "conditions": [{ "type": "Stalled", "status": "True", "message": "bad spec" }] } });
        assert_eq!(state("example.com", "Widget", &stalled), HealthState::Degraded);
        let stale = json!({ "metadata": { "generation": 5 }, "status": { "observedGeneration": 4, "conditions": [{ "type": "Ready", "status": "True" }] } });
        assert_eq!(state("example.com", "Widget", &stale), HealthState::Progressing);
    }

    #[test]
    fn application_health_keeps_the_deciding_message() {
        let objects = [
            Health::healthy(),
            Health::degraded("container web: CrashLoopBackOff"),
            Health::progressing("1 of 2"),
        ];
        assert_eq!(
            worst(&objects),
            Health::degraded("container web: CrashLoopBackOff")
        );
        assert_eq!(worst(&[]), Health::healthy());
    }
}
