//! The order in which an application's objects are applied.
//!
//! Waves first: the `driftless.dev/sync-wave` annotation (or Argo CD's
//! `argocd.argoproj.io/sync-wave`, so Argo CD users can migrate) places an object in a wave,
//! default 0; waves run in ascending order and each must be healthy before the next starts. Within a
//! wave, three stages: Namespaces and CustomResourceDefinitions (the CRDs must be Established
//! before anything else in the wave is applied), then other cluster-scoped objects, then
//! namespaced objects. Within a stage, kinds follow Helm's install order (ServiceAccounts and
//! ConfigMaps before the Deployments that mount them), then namespace and name, so the order is
//! deterministic.
//!
//! Hooks ([`crate::hooks`]) add phases around the waves: every `PreSync` wave runs before the
//! first wave of the application's objects, `Sync` hooks run in the waves of the objects, every
//! `PostSync` wave after the last, and `SyncFail` waves only when the sync failed. A hook in
//! several phases appears in each; a skipped object in none. A Namespace is moved up to the
//! phase and wave of the first hook that runs in it.

use serde::{Deserialize, Serialize};

use crate::hooks::{Role, SyncPhase, role_of};
use crate::{DesiredObject, ObjectRef};

pub const SYNC_WAVE_ANNOTATION: &str = "driftless.dev/sync-wave";
pub const ARGO_SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// Helm's `helm.sh/hook-weight`, a wave when neither sync-wave annotation is there.
pub const HELM_HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";

/// Helm's install order (`releaseutil.InstallOrder`), the de-facto convention; other kinds follow.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// Namespaces and CRDs; CRDs must be Established before the next stage.
    Foundations,
    ClusterScoped,
    Namespaced,
}

/// One wave's objects, stage by stage; each entry is an index into the slice given to [`plan_order`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    /// The phase the wave belongs to (`Sync` for the application's objects).
    #[serde(default = "sync_phase")]
    pub phase: SyncPhase,
    pub number: i64,
    pub stages: Vec<(Stage, Vec<usize>)>,
}

fn sync_phase() -> SyncPhase {
    SyncPhase::Sync
}

impl Wave {
    /// Every object of the wave, in apply order.
    pub fn objects(&self) -> impl Iterator<Item = usize> + '_ {
        self.stages
            .iter()
            .flat_map(|(_, objects)| objects.iter().copied())
    }
}

/// An annotation that orders the sync (a sync wave that is not an integer, a hook phase or
/// deletion policy driftless does not know).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object} ({source_location}): annotation {annotation} must be {expected}, found {value:?}")]
pub struct InvalidWave {
    pub object: String,
    pub source_location: String,
    pub annotation: &'static str,
    pub value: String,
    /// What the annotation must hold ("an integer").
    pub expected: &'static str,
}

/// The wave of one object: our annotation wins over Argo CD's.
pub fn wave_of(object: &DesiredObject) -> Result<i64, InvalidWave> {
    // Helm's hook weight last, as Argo CD reads it.
    for annotation in [
        SYNC_WAVE_ANNOTATION,
        ARGO_SYNC_WAVE_ANNOTATION,
        HELM_HOOK_WEIGHT_ANNOTATION,
    ] {
        if let Some(value) = object.annotation(annotation) {
            return value.trim().parse().map_err(|_| InvalidWave {
                object: object.reference.to_string(),
                source_location: object.source.to_string(),
                annotation,
                value: value.to_owned(),
                expected: "an integer",
            });
        }
    }
    Ok(0)
}

fn stage_of(object: &DesiredObject) -> Stage {
    stage_of_reference(&object.reference)
}

pub(crate) fn stage_of_reference(reference: &ObjectRef) -> Stage {
    let (group, kind) = (reference.group.as_str(), reference.kind.as_str());
    if (group.is_empty() && kind == "Namespace")
        || (group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition")
    {
        Stage::Foundations
    } else if reference.namespace.is_none() {
        Stage::ClusterScoped
    } else {
        Stage::Namespaced
    }
}

pub(crate) fn kind_rank(kind: &str) -> usize {
    KIND_ORDER
        .iter()
        .position(|known| *known == kind)
        .unwrap_or(KIND_ORDER.len())
}

/// Orders `objects` into phases, waves and stages. Every annotation error is reported, not only
/// the first.
pub fn plan_order(objects: &[DesiredObject]) -> Result<Vec<Wave>, Vec<InvalidWave>> {
    let mut keyed = Vec::with_capacity(objects.len());
    let mut errors = Vec::new();
    let mut hooks = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let phases = match role_of(object) {
            Ok(Role::Resource) => vec![SyncPhase::Sync],
            Ok(Role::Hook(phases)) => {
                hooks.push(index);
                phases.into_iter().collect()
            }
            Ok(Role::Skipped) => Vec::new(),
            Err(err) => {
                errors.push(err);
                continue;
            }
        };
        match wave_of(object) {
            Ok(wave) => keyed.extend(
                phases
                    .into_iter()
                    .map(|phase| (phase, wave, stage_of(object), index)),
            ),
            Err(err) => errors.push(err),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // A Namespace is applied no later than the first hook in it: a PreSync hook (Helm's
    // pre-install Jobs, Argo CD's PreSync hooks) runs before every wave of the Sync phase,
    // whatever the Namespace's own wave, and in the namespace CreateNamespace=true adds it could
    // otherwise only fail with "namespaces … not found". Argo CD creates that namespace first.
    let mut first_in: std::collections::BTreeMap<&str, (SyncPhase, i64)> = std::collections::BTreeMap::new();
    for &(phase, wave, _, index) in keyed.iter().filter(|entry| hooks.contains(&entry.3)) {
        if let Some(namespace) = objects[index].reference.namespace.as_deref() {
            let first = first_in.entry(namespace).or_insert((phase, wave));
            *first = (*first).min((phase, wave));
        }
    }
    for (phase, wave, _, index) in &mut keyed {
        let reference = &objects[*index].reference;
        if reference.group.is_empty()
            && reference.kind == "Namespace"
            && let Some(&first) = first_in.get(reference.name.as_str())
            && first < (*phase, *wave)
        {
            (*phase, *wave) = first;
        }
    }
    keyed.sort_by(|a, b| {
        let (oa, ob) = (&objects[a.3].reference, &objects[b.3].reference);
        (a.0, a.1, a.2, kind_rank(&oa.kind), oa).cmp(&(b.0, b.1, b.2, kind_rank(&ob.kind), ob))
    });
    let mut waves: Vec<Wave> = Vec::new();
    for (phase, number, stage, index) in keyed {
        if waves
            .last()
            .is_none_or(|wave| wave.number != number || wave.phase != phase)
        {
            waves.push(Wave {
                phase,
                number,
                stages: Vec::new(),
            });
        }
        let wave = waves
            .last_mut()
            .expect("a wave was just pushed if there was none");
        match wave.stages.last_mut() {
            Some((last, objects)) if *last == stage => objects.push(index),
            _ => wave.stages.push((stage, vec![index])),
        }
    }
    Ok(waves)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{GroupVersionKind, SourceLocation};

    fn object(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        wave: Option<(&str, &str)>,
    ) -> DesiredObject {
        let gvk = GroupVersionKind::from_api_version(api_version, kind).expect("valid");
        let mut manifest = json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": name } });
        if let Some((annotation, value)) = wave {
            manifest["metadata"]["annotations"] = json!({ annotation: value });
        }
        DesiredObject {
            reference: ObjectRef::new(&gvk, namespace, name),
            gvk,
            manifest,
            source: SourceLocation {
                file: "app.yaml".into(),
                document: 0,
                line: Some(1),
            },
        }
    }

    fn names(objects: &[DesiredObject], waves: &[Wave]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|wave| wave.objects().map(|i| objects[i].reference.to_string()).collect())
            .collect()
    }

    #[test]
    fn foundations_then_cluster_scoped_then_namespaced_in_kind_order() {
        let objects = vec![
            object("apps/v1", "Deployment", Some("web"), "frontend", None),
            object("v1", "ConfigMap", Some("web"), "settings", None),
            object(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                "reader",
                None,
            ),
            object("example.com/v1", "Widget", Some("web"), "w", None),
            object(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com",
                None,
            ),
            object("v1", "Namespace", None, "web", None),
            object("v1", "ServiceAccount", Some("web"), "frontend", None),
        ];
        let waves = plan_order(&objects).expect("valid");
        assert_eq!(
            names(&objects, &waves),
            vec![vec![
                "Namespace/web",
                "apiextensions.k8s.io/CustomResourceDefinition/widgets.example.com",
                "rbac.authorization.k8s.io/ClusterRole/reader",
                "ServiceAccount/web/frontend",
                "ConfigMap/web/settings",
                "apps/Deployment/web/frontend",
                "example.com/Widget/web/w",
            ]]
        );
        let stages: Vec<Stage> = waves[0].stages.iter().map(|(stage, _)| *stage).collect();
        assert_eq!(
            stages,
            vec![Stage::Foundations, Stage::ClusterScoped, Stage::Namespaced]
        );
    }

    #[test]
    fn waves_run_in_ascending_order_and_our_annotation_wins() {
        let objects = vec![
            object(
                "v1",
                "ConfigMap",
                Some("a"),
                "late",
                Some((SYNC_WAVE_ANNOTATION, "5")),
            ),
            object(
                "v1",
                "ConfigMap",
                Some("a"),
                "early",
                Some((ARGO_SYNC_WAVE_ANNOTATION, "-1")),
            ),
            object("v1", "Namespace", None, "a", Some((SYNC_WAVE_ANNOTATION, "5"))),
            object("v1", "ConfigMap", Some("a"), "default", None),
        ];
        let waves = plan_order(&objects).expect("valid");
        assert_eq!(waves.iter().map(|w| w.number).collect::<Vec<_>>(), vec![-1, 0, 5]);
        assert_eq!(
            names(&objects, &waves)[2],
            vec!["Namespace/a", "ConfigMap/a/late"]
        );

        let mut both = object(
            "v1",
            "ConfigMap",
            Some("a"),
            "both",
            Some((SYNC_WAVE_ANNOTATION, "2")),
        );
        both.manifest["metadata"]["annotations"][ARGO_SYNC_WAVE_ANNOTATION] = json!("9");
        assert_eq!(wave_of(&both), Ok(2));
        let helm = object(
            "v1",
            "ConfigMap",
            Some("a"),
            "weighted",
            Some((HELM_HOOK_WEIGHT_ANNOTATION, "-3")),
        );
        assert_eq!(wave_of(&helm), Ok(-3), "Helm's hook weight, as Argo CD reads it");
    }

    #[test]
    fn every_invalid_wave_is_reported_with_its_source() {
        let objects = vec![
            object(
                "v1",
                "ConfigMap",
                Some("a"),
                "x",
                Some((SYNC_WAVE_ANNOTATION, "soon")),
            ),
            object(
                "v1",
                "ConfigMap",
                Some("a"),
                "y",
                Some((ARGO_SYNC_WAVE_ANNOTATION, "1.5")),
            ),
        ];
        let errors = plan_order(&objects).expect_err("invalid");
        assert_eq!(errors.len(), 2);
        assert_eq!(
            errors[0].to_string(),
            "ConfigMap/a/x (app.yaml (document 1, line 1)): annotation driftless.dev/sync-wave must be an integer, found \"soon\""
        );
    }

    /// Each wave's phase, number and object names, in order.
    fn phases_and_names(objects: &[DesiredObject]) -> Vec<(SyncPhase, i64, Vec<&str>)> {
        plan_order(objects)
            .expect("valid")
            .iter()
            .map(|wave| {
                let names = wave
                    .objects()
                    .map(|i| objects[i].reference.name.as_str())
                    .collect();
                (wave.phase, wave.number, names)
            })
            .collect()
    }

    #[test]
    fn hooks_run_in_their_phases_around_the_waves_and_skipped_objects_not_at_all() {
        let hook = |name: &str, phases: &str, wave: &str| {
            let mut object = object("batch/v1", "Job", Some("a"), name, None);
            object.manifest["metadata"]["annotations"] = json!({
                crate::hooks::ARGO_HOOK_ANNOTATION: phases,
                ARGO_SYNC_WAVE_ANNOTATION: wave,
            });
            object
        };
        let objects = vec![
            object(
                "v1",
                "ConfigMap",
                Some("a"),
                "settings",
                Some((SYNC_WAVE_ANNOTATION, "3")),
            ),
            hook("migrate", "PreSync", "5"),
            hook("schema", "PreSync", "-1"),
            hook("notify", "PostSync", "-10"),
            hook("seed", "Sync", "3"),
            hook("cleanup", "SyncFail", "0"),
            hook("twice", "PreSync,PostSync", "0"),
            hook("never", "Skip", "0"),
        ];
        assert_eq!(
            phases_and_names(&objects),
            vec![
                (SyncPhase::PreSync, -1, vec!["schema"]),
                (SyncPhase::PreSync, 0, vec!["twice"]),
                (SyncPhase::PreSync, 5, vec!["migrate"]),
                (SyncPhase::Sync, 3, vec!["settings", "seed"]),
                (SyncPhase::PostSync, -10, vec!["notify"]),
                (SyncPhase::PostSync, 0, vec!["twice"]),
                (SyncPhase::SyncFail, 0, vec!["cleanup"]),
            ]
        );
        let errors = plan_order(&[hook("bad", "PreSync,Later", "0")]).expect_err("unknown phase");
        assert_eq!(errors[0].annotation, crate::hooks::ARGO_HOOK_ANNOTATION);
    }

    #[test]
    fn a_namespace_is_applied_before_the_first_hook_in_it() {
        let mut pre_install = object("batch/v1", "Job", Some("shop"), "migrate", None);
        pre_install.manifest["metadata"]["annotations"] = json!({
            "helm.sh/hook": "pre-install",
            HELM_HOOK_WEIGHT_ANNOTATION: "-2",
        });
        let objects = vec![
            object("v1", "Namespace", None, "shop", None),
            object("v1", "Namespace", None, "elsewhere", None),
            pre_install,
            object("v1", "ConfigMap", Some("shop"), "settings", None),
            object(
                "v1",
                "ConfigMap",
                Some("elsewhere"),
                "late",
                Some((SYNC_WAVE_ANNOTATION, "4")),
            ),
        ];
        assert_eq!(
            phases_and_names(&objects),
            vec![
                (SyncPhase::PreSync, -2, vec!["shop", "migrate"]),
                (SyncPhase::Sync, 0, vec!["elsewhere", "settings"]),
                (SyncPhase::Sync, 4, vec!["late"]),
            ],
            "only hooks move a Namespace, and only earlier"
        );
    }
}
