//! Issue 21's "Done when": repositories written for Argo CD and Flux, as their public examples
//! write them (fixtures/corpus, provenance in its README.md), synced through the `driftless`
//! binary from a real Git repository on loopback onto the real local control plane (v1.20).
//!
//! - argocd-example-apps' app-of-apps chart (`apps`), its `repoURL` pointed at the loopback
//!   repository through the root's Helm values as a user would: every child of every source type
//!   (directory, Helm by `Chart.yaml`, Kustomize, Jsonnet with and without top-level arguments)
//!   and every hook kind (Argo CD's PreSync/Sync/PostSync with their deletion policies, waves,
//!   Helm's hooks, `generateName`) syncs, is Synced and Healthy, and a second diff is quiet; the
//!   children driftless cannot deploy (Argo Rollouts' kind, a config-management plugin) fail
//!   naming what.
//! - flux2-kustomize-helm-example's shape: GitRepository, Kustomizations with postBuild
//!   substitution (inline and from a ConfigMap another Kustomization deploys), a staging overlay
//!   patching a HelmRelease whose HelmRepository is served on loopback; substituted values on the
//!   live objects.
//! - A path holding only a README and a Jsonnet library fails the sync naming what it found and
//!   applies nothing, unless `allowEmpty` says so.
//!
//! No kubelet runs here: while a command runs, [`Kubelet`] reports Pods as a kubelet would (a
//! Job's Pods succeed, others run Ready) and LoadBalancer Services get an address as a cloud
//! controller would give one, so health is the real controllers' verdict.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::text;
use driftless_testenv::TestEnv;
use driftless_testenv::charts::{ChartRepositoryServer, package, repo_index};
use driftless_testenv::git::TestRepo;
use driftless_testenv::helm::assert_helm_on_path;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// Every file under `fixtures/corpus/FIXTURE` into `repo` at the same relative path, with each
/// `(from, to)` of `rewrites` applied to its text.
fn copy_fixture(repo: &TestRepo, fixture: &str, rewrites: &[(&str, &str)]) {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path);
            }
        }
    }
    let root = corpus().join(fixture);
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(!files.is_empty(), "{} holds no file", root.display());
    for file in files {
        let mut contents =
            std::fs::read_to_string(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        for (from, to) in rewrites {
            contents = contents.replace(from, to);
        }
        let relative = file.strip_prefix(&root).expect("under the fixture");
        repo.write(&relative.to_string_lossy(), &contents);
    }
}

/// `driftless ARGS --config CONFIG` on a blocking thread, so the test's [`Kubelet`] keeps
/// running while a sync waits for hooks and waves.
async fn driftless(config: &Path, args: &[&str]) -> Output {
    let config = config.to_owned();
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::driftless(&config, &args)
    })
    .await
    .expect("the command's thread")
}

/// `driftless status NAME -o json`'s row.
async fn status(config: &Path, application: &str) -> Value {
    let output = driftless(config, &["status", application, "-o", "json"]).await;
    assert!(output.status.success(), "status {application}: {}", text(&output));
    let rows: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("status is not JSON ({err}): {}", text(&output)));
    rows[0].clone()
}

/// Syncs `application` through the CLI, then expects it Synced and (within a minute, the
/// controllers acting on what the [`Kubelet`] reports) Healthy, and a diff showing nothing.
async fn sync_to_healthy(config: &Path, application: &str) {
    let sync = driftless(config, &["sync", application]).await;
    assert!(sync.status.success(), "sync {application}: {}", text(&sync));
    let deadline = tokio::time::Instant::now() + Duration::from_mins(1);
    loop {
        let row = status(config, application).await;
        if row["sync"] == "Synced" && row["health"] == "Healthy" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{application} is not Synced and Healthy a minute after its sync: {row:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let diff = driftless(config, &["diff", application]).await;
    assert_eq!(
        diff.status.code(),
        Some(0),
        "a diff right after the sync of {application} shows nothing: {}",
        text(&diff)
    );
}

/// `driftless sync APPLICATION` exits non-zero with a message holding `expected`.
async fn sync_fails_saying(config: &Path, application: &str, expected: &str) {
    let sync = driftless(config, &["sync", application]).await;
    let said = text(&sync);
    assert!(!sync.status.success(), "sync {application} fails: {said}");
    assert!(
        said.contains(expected),
        "sync {application} says {expected:?}: {said}"
    );
}

/// Plays kubelet (and cloud controller) for the namespaces whose names start with `prefix`
/// until dropped.
struct Kubelet {
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    fn start(env: &TestEnv, prefix: &str) -> Self {
        let client = env.client.clone();
        let pods: Api<Pod> = Api::all(client.clone());
        let services: Api<Service> = Api::all(client.clone());
        let prefix = prefix.to_owned();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(list) = pods.list(&ListParams::default()).await {
                    for pod in list.items.iter().filter(|pod| {
                        pod.metadata
                            .namespace
                            .as_deref()
                            .is_some_and(|ns| ns.starts_with(&prefix))
                    }) {
                        report_pod(&client, pod).await;
                    }
                }
                if let Ok(list) = services.list(&ListParams::default()).await {
                    for service in list.items.iter().filter(|service| {
                        service
                            .metadata
                            .namespace
                            .as_deref()
                            .is_some_and(|ns| ns.starts_with(&prefix))
                    }) {
                        give_address(&client, service).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Self { task }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Job's Pod has run to completion; any other Pod runs, Ready.
async fn report_pod(client: &kube::Client, pod: &Pod) {
    let status = pod.status.as_ref();
    let phase = status.and_then(|status| status.phase.as_deref());
    let ready = status
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        });
    let of_job = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|owner| owner.kind == "Job");
    if matches!(phase, Some("Succeeded" | "Failed")) || (!of_job && ready) {
        return;
    }
    let containers: Vec<&str> = pod
        .spec
        .iter()
        .flat_map(|spec| spec.containers.iter().map(|container| container.name.as_str()))
        .collect();
    let started = "2026-01-01T00:00:00Z";
    let patch = if of_job {
        let statuses: Vec<Value> = containers
            .iter()
            .map(|name| {
                json!({ "name": name, "ready": false, "restartCount": 0, "image": "x", "imageID": "x",
                "state": { "terminated": { "exitCode": 0, "reason": "Completed",
                    "startedAt": started, "finishedAt": "2026-01-01T00:00:01Z" } } })
            })
            .collect();
        json!({ "status": { "phase": "Succeeded", "containerStatuses": statuses } })
    } else {
        let statuses: Vec<Value> = containers
            .iter()
            .map(|name| {
                json!({ "name": name, "ready": true, "restartCount": 0, "image": "x", "imageID": "x",
                "state": { "running": { "startedAt": started } } })
            })
            .collect();
        json!({ "status": { "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "True", "lastTransitionTime": started }],
            "containerStatuses": statuses } })
    };
    let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return;
    };
    // A Pod deleted meanwhile (a hook cleaned up) is no failure of the test.
    let _ = Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await;
}

async fn give_address(client: &kube::Client, service: &Service) {
    let load_balancer = service.spec.as_ref().and_then(|spec| spec.type_.as_deref()) == Some("LoadBalancer");
    let has_address = service
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|balancer| balancer.ingress.as_ref())
        .is_some_and(|ingress| !ingress.is_empty());
    let (Some(namespace), Some(name)) = (&service.metadata.namespace, &service.metadata.name) else {
        return;
    };
    if load_balancer && !has_address {
        let patch = json!({ "status": { "loadBalancer": { "ingress": [{ "ip": "192.0.2.10" }] } } });
        let _ = Api::<Service>::namespaced(client.clone(), namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await;
    }
}

/// A `driftless.yaml` (JSON, which is YAML) in a directory of its own: the cluster `local` and
/// `applications`.
fn write_config(env: &TestEnv, applications: &[Value]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("driftless.yaml");
    let document = json!({
        "apiVersion": "driftless.dev/v1alpha1",
        "kind": "Config",
        "dataDir": "state",
        "clusters": [{ "name": "local", "kubeconfig": env.kubeconfig_path() }],
        "applications": applications,
    });
    std::fs::write(&config, serde_json::to_string_pretty(&document).expect("JSON")).expect("write config");
    (dir, config)
}

fn application(name: &str, repo: &TestRepo, path: &str, namespace: &str, source_extra: Value) -> Value {
    let mut source = json!({ "repoURL": repo.file_url(), "revision": "main", "path": path });
    if let (Some(source), Value::Object(extra)) = (source.as_object_mut(), source_extra) {
        source.extend(extra);
    }
    json!({
        "apiVersion": "driftless.dev/v1alpha1",
        "kind": "Application",
        "metadata": { "name": name },
        "spec": { "source": source, "destination": { "cluster": "local", "namespace": namespace } },
    })
}

async fn names_of<K>(api: &Api<K>) -> Vec<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|object| object.meta().name.clone())
        .collect()
}

/// The Jobs in `namespace` whose name starts with `prefix` and that have succeeded.
async fn succeeded_jobs(env: &TestEnv, namespace: &str, prefix: &str) -> usize {
    Api::<Job>::namespaced(env.client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list jobs")
        .items
        .into_iter()
        .filter(|job| {
            job.metadata
                .name
                .as_deref()
                .is_some_and(|name| name.starts_with(prefix))
                && job.status.as_ref().and_then(|status| status.succeeded) == Some(1)
        })
        .count()
}

/// What a user forking argocd-example-apps writes in the app-of-apps root's values: their
/// repository, their branch, the applications they keep, each in a namespace of its own.
fn app_of_apps_values(repo: &TestRepo, ns: &str) -> Value {
    let child = |name: &str, extra: Value| {
        let mut entry = json!({ "name": name, "namespace": format!("{ns}-{name}") });
        if let (Some(entry), Value::Object(extra)) = (entry.as_object_mut(), extra) {
            entry.extend(extra);
        }
        entry
    };
    json!({
        "config": { "spec": { "source": { "repoURL": repo.file_url(), "targetRevision": "main" } } },
        "applications": [
            child("guestbook", json!({})),
            child("helm-guestbook", json!({ "tool": { "helm": { "releaseName": "helm-guestbook" } } })),
            child("helm-hooks", json!({})),
            child("jsonnet-guestbook", json!({})),
            child("jsonnet-guestbook-tla", json!({ "tool": { "directory": { "jsonnet": { "tlas": [
                { "name": "name", "value": "tla-guestbook-ui" },
                { "name": "replicas", "value": "2", "code": true },
                { "name": "type", "value": "ClusterIP" },
            ] } } } })),
            child("kustomize-guestbook", json!({})),
            child("pre-post-sync", json!({})),
            child("sync-waves", json!({})),
            child("blue-green", json!({ "tool": { "helm": { "releaseName": "blue-green" } } })),
            child("plugin-kasane", json!({ "path": "plugins/kasane", "tool": { "plugin": { "name": "kasane" } } })),
        ],
    })
}

/// Every application `driftless status` lists (roots' children included), sorted.
async fn application_names(config: &Path) -> Vec<String> {
    let listed = driftless(config, &["status", "-o", "json"]).await;
    let rows: Value = serde_json::from_slice(&listed.stdout)
        .unwrap_or_else(|err| panic!("status is not JSON ({err}): {}", text(&listed)));
    let mut names: Vec<String> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row["application"].as_str().map(str::to_owned))
        .collect();
    names.sort_unstable();
    names
}

/// What each synced argocd-example-apps child left in its namespace.
async fn assert_argo_objects(env: &TestEnv) {
    let ns = &env.namespace;
    let deployments = |name: &str| Api::<Deployment>::namespaced(env.client.clone(), &format!("{ns}-{name}"));
    let replica_sets =
        |name: &str| Api::<ReplicaSet>::namespaced(env.client.clone(), &format!("{ns}-{name}"));
    let services = |name: &str| Api::<Service>::namespaced(env.client.clone(), &format!("{ns}-{name}"));
    assert_eq!(names_of(&deployments("guestbook")).await, ["guestbook-ui"]);
    // A Chart.yaml without source.helm: rendered as a chart with its values.yaml.
    assert_eq!(names_of(&deployments("helm-guestbook")).await, ["helm-guestbook"]);
    assert_eq!(
        names_of(&deployments("jsonnet-guestbook")).await,
        ["jsonnet-guestbook-ui"]
    );
    let tla = deployments("jsonnet-guestbook-tla")
        .get("tla-guestbook-ui")
        .await
        .expect("named by the name tla");
    assert_eq!(
        tla.spec.and_then(|spec| spec.replicas),
        Some(2),
        "replicas, a code tla"
    );
    let tla_service = services("jsonnet-guestbook-tla")
        .get("tla-guestbook-ui")
        .await
        .expect("service");
    assert_eq!(
        tla_service.spec.and_then(|spec| spec.type_).as_deref(),
        Some("ClusterIP")
    );
    assert_eq!(
        names_of(&deployments("kustomize-guestbook")).await,
        ["kustomize-guestbook-ui"]
    );
    assert_eq!(
        names_of(&deployments("pre-post-sync")).await,
        ["pre-post-sync-kustomize-guestbook-ui"]
    );
    // PreSync and PostSync hooks with HookSucceeded: run (the sync waited for them), then gone.
    let hooks_left: Vec<String> = names_of(&Api::<Job>::namespaced(
        env.client.clone(),
        &format!("{ns}-pre-post-sync"),
    ))
    .await;
    assert!(
        hooks_left.is_empty(),
        "HookSucceeded deletes them: {hooks_left:?}"
    );
    // Waves: the generateName PreSync hook, Sync hooks in waves 1 and 3 around wave 2.
    let mut waved = names_of(&replica_sets("sync-waves")).await;
    waved.sort_unstable();
    assert_eq!(waved, ["backend", "frontend"]);
    for job in ["upgrade-sql-schema", "maint-page-up", "maint-page-down"] {
        assert_eq!(
            succeeded_jobs(env, &format!("{ns}-sync-waves"), job).await,
            1,
            "{job}"
        );
    }
    // Helm's hooks in a plain manifest, as Argo CD reads them.
    assert_eq!(names_of(&replica_sets("helm-hooks")).await, ["frontend"]);
    for job in ["upgrade-sql-schema", "maint-page-up", "maint-page-down"] {
        assert_eq!(
            succeeded_jobs(env, &format!("{ns}-helm-hooks"), job).await,
            1,
            "{job}"
        );
    }
}

#[tokio::test]
async fn argocd_example_apps_sync_through_their_app_of_apps() {
    assert_helm_on_path();
    let env = TestEnv::new("corpus_argo").await;
    let ns = env.namespace.clone();
    let repo = TestRepo::new();
    copy_fixture(&repo, "argocd-example-apps", &[]);
    repo.commit("argocd-example-apps as published");
    let values = app_of_apps_values(&repo, &ns);
    let (_dir, config) = write_config(
        &env,
        &[application(
            "apps",
            &repo,
            "apps",
            &ns,
            json!({ "helm": { "values": values } }),
        )],
    );
    let _kubelet = Kubelet::start(&env, &ns);

    let root = driftless(&config, &["sync", "apps"]).await;
    assert!(
        root.status.success(),
        "the root applies nothing of its own: {}",
        text(&root)
    );
    let names = application_names(&config).await;
    assert_eq!(
        names,
        [
            "apps",
            "example-blue-green",
            "example-guestbook",
            "example-helm-guestbook",
            "example-helm-hooks",
            "example-jsonnet-guestbook",
            "example-jsonnet-guestbook-tla",
            "example-kustomize-guestbook",
            "example-plugin-kasane",
            "example-pre-post-sync",
            "example-sync-waves",
        ]
    );

    for name in [
        "guestbook",
        "helm-guestbook",
        "helm-hooks",
        "jsonnet-guestbook",
        "jsonnet-guestbook-tla",
        "kustomize-guestbook",
        "pre-post-sync",
        "sync-waves",
    ] {
        sync_to_healthy(&config, &format!("example-{name}")).await;
    }
    assert_argo_objects(&env).await;

    // What driftless cannot deploy fails, naming it.
    sync_fails_saying(
        &config,
        "example-blue-green",
        "kind Rollout in argoproj.io/v1alpha1",
    )
    .await;
    sync_fails_saying(&config, "example-plugin-kasane", "spec.source.plugin").await;
}

#[tokio::test]
async fn a_flux_repository_with_overlays_substitutions_and_a_helm_release_syncs() {
    assert_helm_on_path();
    let env = TestEnv::new("corpus_flux").await;
    let ns = env.namespace.clone();
    let charts = tempfile::tempdir().expect("dir");
    package(&corpus().join("charts/podinfo"), charts.path());
    repo_index(charts.path());
    let chart_repository = ChartRepositoryServer::start(charts.path(), None).await;
    let repo = TestRepo::new();
    let url = repo.file_url();
    let chart_url = chart_repository.url("");
    copy_fixture(
        &repo,
        "flux2-kustomize-helm-example",
        &[
            ("https://github.com/fluxcd/flux2-kustomize-helm-example", &url),
            ("https://stefanprodan.github.io/podinfo", &chart_url),
            ("corpus-namespace", &ns),
        ],
    );
    repo.commit("a fleet repository as flux bootstrap leaves it");
    let (_dir, config) = write_config(
        &env,
        &[application(
            "flux-system",
            &repo,
            "clusters/staging",
            &ns,
            json!({}),
        )],
    );
    let _kubelet = Kubelet::start(&env, &ns);

    let root = driftless(&config, &["sync", "flux-system"]).await;
    assert!(root.status.success(), "{}", text(&root));
    sync_to_healthy(&config, "infra-configs").await;
    let config_maps = env.api::<ConfigMap>();
    let settings = config_maps
        .get("cluster-settings")
        .await
        .expect("deployed by infra-configs");
    assert_eq!(
        settings.data.unwrap_or_default()["cluster_domain"],
        "staging.example.com",
        "postBuild.substitute"
    );
    sync_to_healthy(&config, "apps").await;
    sync_to_healthy(&config, "podinfo").await;
    let fetched: Vec<String> = chart_repository
        .seen()
        .into_iter()
        .map(|seen| seen.path)
        .collect();
    assert!(
        fetched.iter().any(|path| path.ends_with("podinfo-6.9.2.tgz")),
        "the chart came from the loopback repository: {fetched:?}"
    );
    let ui = config_maps
        .get("podinfo-ui")
        .await
        .expect("rendered from the chart");
    let data = ui.data.unwrap_or_default();
    assert_eq!(data["message"], "podinfo on staging", "substitute, inline");
    assert_eq!(
        data["hostnames"], "podinfo.staging.example.com",
        "substituteFrom the ConfigMap, itself substituted"
    );
    assert_eq!(data["color"], "#34577c", "the staging overlay's patch");
    let podinfo = env.api::<Deployment>().get("podinfo").await.expect("deployment");
    assert_eq!(
        podinfo.spec.and_then(|spec| spec.replicas),
        Some(2),
        "a substituted number is a number"
    );
}

#[tokio::test]
async fn a_path_that_renders_nothing_fails_naming_what_it_holds_unless_empty_is_intended() {
    let env = TestEnv::new("corpus_empty").await;
    let ns = env.namespace.clone();
    let repo = TestRepo::new();
    copy_fixture(&repo, "renders-nothing", &[]);
    repo.commit("a Jsonnet library and its README");
    let mut allowed = application("library-allowed", &repo, ".", &ns, json!({}));
    allowed["spec"]["syncPolicy"] = json!({ "allowEmpty": true });
    let (_dir, config) = write_config(
        &env,
        &[application("library", &repo, ".", &ns, json!({})), allowed],
    );

    sync_fails_saying(
        &config,
        "library",
        "rendered no object: 1 .libsonnet file and no manifests (found: README.md) (set spec.syncPolicy.allowEmpty: true",
    )
    .await;
    let history = driftless(&config, &["history", "library", "-o", "json"]).await;
    assert!(history.status.success(), "{}", text(&history));
    let records: Value = serde_json::from_slice(&history.stdout).expect("JSON");
    assert!(
        records
            .as_array()
            .into_iter()
            .flatten()
            .all(|record| record["result"] != "Succeeded"),
        "no successful sync recorded: {records:#}"
    );
    assert!(
        names_of(&env.api::<ConfigMap>())
            .await
            .iter()
            .all(|name| name == "kube-root-ca.crt")
    );

    let intended = driftless(&config, &["sync", "library-allowed"]).await;
    assert!(intended.status.success(), "{}", text(&intended));
}
