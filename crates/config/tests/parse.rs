//! `driftless.yaml` as users write it: valid files, and every kind of mistake reported with file,
//! line and field.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use driftless_config::{ConfigError, application_from_manifest, parse};
use driftless_core::application::{ClusterConnection, Renderer, SecretSource};
use driftless_core::notifications::TargetKind;

fn problems(text: &str) -> ConfigError {
    parse(text, "driftless.yaml", Path::new("/etc/driftless")).expect_err("the configuration is invalid")
}

const VALID: &str = r"
apiVersion: driftless.dev/v1alpha1
kind: Config
dataDir: state
clusters:
  - name: local
    kubeconfig: kube/config
    context: dev
  - name: in-cluster
    inCluster: true
  - name: home
    kubeconfig: ~/.kube/config
repositories:
  - url: https://git.example.com/
    username: bot
    password: { env: GIT_TOKEN }
  - url: 'git@git.example.com:'
    sshPrivateKey: { file: keys/id_ed25519 }
    knownHosts: { file: keys/known_hosts }
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata:
      name: guestbook
      labels: { team: web }
    spec:
      source:
        repoURL: https://git.example.com/apps.git
        revision: main
        path: ./apps//guestbook/
        directory: { recurse: true, include: '*.yaml' }
      destination: { cluster: local, namespace: guestbook }
      syncPolicy:
        automated: { prune: true, selfHeal: true }
        interval: 90s
        retry: { limit: 3, backoff: { duration: 2s, factor: 3, maxDuration: 1m } }
        syncOptions: [CreateNamespace=true, PruneLast=true, ServerSideApply=true]
      ignoreDifferences:
        - group: apps
          kind: Deployment
          jsonPointers: [/spec/replicas]
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: platform }
    spec:
      source: { repoURL: 'file:///srv/git/platform', kustomize: {} }
      destination: { cluster: in-cluster }
";

#[test]
fn a_valid_configuration_is_built_with_defaults_and_resolved_paths() {
    let config = parse(VALID, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert_eq!(
        config.data_dir.as_deref(),
        Some(Path::new("/etc/driftless/state"))
    );
    assert_eq!(
        config.clusters[0].connection,
        ClusterConnection::Kubeconfig {
            path: "/etc/driftless/kube/config".into(),
            context: Some("dev".into())
        }
    );
    assert_eq!(config.clusters[1].connection, ClusterConnection::InCluster);
    let home = std::path::PathBuf::from(std::env::var_os("HOME").expect("tests run with HOME set"));
    assert_eq!(
        config.clusters[2].connection,
        ClusterConnection::Kubeconfig {
            path: home.join(".kube/config"),
            context: None
        }
    );
    assert_eq!(
        config.repositories[0].password,
        Some(SecretSource::Env("GIT_TOKEN".into()))
    );
    assert_eq!(
        config.repositories[1].ssh_private_key,
        Some(SecretSource::File("/etc/driftless/keys/id_ed25519".into()))
    );

    let guestbook = &config.applications[0];
    assert_eq!(guestbook.source.path, "apps/guestbook", "the path is normalised");
    assert!(matches!(&guestbook.source.renderer, Renderer::Directory(options) if options.recurse));
    let policy = &guestbook.sync_policy;
    assert_eq!(policy.interval, Duration::from_secs(90));
    assert!(policy.create_namespace && policy.prune_last && !policy.replace);
    assert_eq!((policy.retry.limit, policy.retry.factor), (3, 3));
    assert_eq!(policy.retry.max_backoff, Duration::from_mins(1));
    assert!(policy.automated.is_some_and(|a| a.prune && a.self_heal));
    assert_eq!(
        guestbook.ignore_differences[0].json_pointers,
        vec!["/spec/replicas"]
    );

    let platform = &config.applications[1];
    assert_eq!(platform.source.revision, "HEAD");
    assert_eq!(platform.source.path, "");
    assert_eq!(platform.source.renderer, Renderer::Kustomize);
    assert_eq!(platform.sync_policy.interval, Duration::from_mins(3));
    assert!(
        platform.sync_policy.automated.is_none(),
        "no automated block means manual sync only"
    );
}

#[test]
fn every_mistake_is_reported_with_file_line_and_field() {
    let text = r"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - name: local
    kubeconfig: kubeconfig
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: Web_App }
    spec:
      source:
        repoURL: 'ext::sh -c touch% /tmp/pwned'
        revision: --upload-pack=touch /tmp/pwned
        path: ../../etc
      destination: { cluster: prod, namespace: web }
      syncPolicy:
        interval: 0s
        syncOptions: [Prune=maybe, Validate=false, ServerSideApply=false]
      ignoreDifferences:
        - kind: Deployment
          jsonPointers: [spec/replicas]
";
    insta::assert_snapshot!(problems(text).to_string());
}

#[test]
fn unknown_fields_are_errors_with_their_line() {
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - name: local\n    kubeconfig: k\n    selfheal: true\n";
    let err = problems(text);
    let problem = &err.problems[0];
    assert_eq!(problem.line, Some(6), "{err}");
    assert!(problem.message.contains("selfheal"), "{err}");
}

#[test]
fn duplicate_names_and_wrong_kinds_are_refused() {
    let text = r"
apiVersion: driftless.dev/v1
kind: Configuration
clusters:
  - { name: a, kubeconfig: k }
  - { name: a, inCluster: true }
  - { name: b }
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: web }
    spec: { source: { repoURL: 'https://h/r' }, destination: { cluster: a } }
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: web }
    spec: { source: { repoURL: 'https://h/r' }, destination: { cluster: a } }
";
    let messages: Vec<String> = problems(text).problems.iter().map(ToString::to_string).collect();
    let expected = [
        "driftless.yaml:2: apiVersion: must be driftless.dev/v1alpha1, found \"driftless.dev/v1\"",
        "driftless.yaml:3: kind: must be Config, found \"Configuration\"",
        "driftless.yaml:6: clusters[1].name: cluster \"a\" is defined twice",
        "driftless.yaml:7: clusters[2]: set kubeconfig (a file) or inCluster: true",
        "driftless.yaml:15: applications[1].metadata.name: application \"web\" is defined twice",
    ];
    assert_eq!(messages, expected);
}

#[test]
fn yaml_bombs_are_refused_quickly() {
    let mut bomb = String::from(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..30 {
        let previous = format!("*a{}", level - 1);
        let items = vec![previous; 10].join(", ");
        writeln!(bomb, "a{level}: &a{level} [{items}]").expect("writing to a String cannot fail");
    }
    let err = problems(&bomb);
    assert_eq!(err.problems.len(), 1, "{err}");
}

#[test]
fn applications_from_git_are_validated_the_same_way() {
    let manifest = serde_json::json!({
        "apiVersion": "driftless.dev/v1alpha1", "kind": "Application",
        "metadata": { "name": "child" },
        "spec": { "source": { "repoURL": "https://h/r", "path": "apps/child" }, "destination": { "cluster": "local" } }
    });
    let app = application_from_manifest(
        &manifest,
        "apps/root/child.yaml (document 1)",
        &["local".to_owned()],
    )
    .expect("valid");
    assert_eq!(app.source.path, "apps/child");

    let mut wrong = manifest.clone();
    wrong["spec"]["destination"]["cluster"] = "elsewhere".into();
    let err = application_from_manifest(&wrong, "apps/root/child.yaml (document 1)", &["local".to_owned()])
        .expect_err("unknown cluster");
    assert_eq!(
        err.problems[0].to_string(),
        "apps/root/child.yaml (document 1): spec.destination.cluster: unknown cluster \"elsewhere\" (configured: local)"
    );
}

const VERIFIED: &str = r"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - { name: local, kubeconfig: k }
repositories:
  - url: https://git.example.com/
    verify:
      mode: all-since-last-synced
      ssh: { file: keys/allowed_signers }
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: web }
    spec:
      source:
        repoURL: https://git.example.com/web.git
        verify:
          pgp: { env: WEB_SIGNERS }
      destination: { cluster: local }
";

#[test]
fn verify_is_read_on_repositories_and_applications() {
    use driftless_core::application::{Verification, VerifyMode};
    let config = parse(VERIFIED, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert_eq!(config.repository_verifications.len(), 1);
    let repository = &config.repository_verifications[0];
    assert_eq!(repository.url_prefix, "https://git.example.com/");
    assert_eq!(
        repository.verify,
        Verification {
            mode: VerifyMode::AllSinceLastSynced,
            ssh: Some(SecretSource::File("/etc/driftless/keys/allowed_signers".into())),
            pgp: None,
        }
    );
    assert_eq!(
        config.applications[0].verify,
        Some(Verification {
            mode: VerifyMode::Head,
            ssh: None,
            pgp: Some(SecretSource::Env("WEB_SIGNERS".into())),
        }),
        "the mode defaults to head"
    );
    let unverified = parse(VALID, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert!(unverified.repository_verifications.is_empty());
    assert!(unverified.applications.iter().all(|app| app.verify.is_none()));
}

#[test]
fn verify_mistakes_are_reported_with_their_line() {
    let text = r"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - { name: local, kubeconfig: k }
repositories:
  - url: https://git.example.com/
    verify: { mode: everything, ssh: { env: 'NOT-A-NAME' } }
  - url: https://other.example.com/
    verify: { mode: head }
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: web }
    spec:
      source:
        repoURL: https://git.example.com/web.git
        verify: { pgp: { file: k }, gpg: { file: k } }
      destination: { cluster: local }
";
    let messages: Vec<String> = problems(text).problems.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "unknown fields stop the parse: {messages:?}");
    assert!(
        messages[0].starts_with("driftless.yaml:18:") && messages[0].contains("gpg"),
        "{messages:?}"
    );

    let text = text.replace(", gpg: { file: k }", "");
    let messages: Vec<String> = problems(&text).problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "driftless.yaml:8: repositories[0].verify.mode: \"everything\" is not a mode (head or all-since-last-synced)",
            "driftless.yaml:8: repositories[0].verify.ssh: \"NOT-A-NAME\" is not an environment variable name",
            "driftless.yaml:10: repositories[1].verify: name the trusted keys: ssh (an allowed_signers file), pgp (armored public keys) or both",
        ]
    );
}

#[test]
fn applications_from_git_cannot_name_trusted_keys() {
    let child = |verify: serde_json::Value| {
        let manifest = serde_json::json!({
            "apiVersion": "driftless.dev/v1alpha1", "kind": "Application",
            "metadata": { "name": "child" },
            "spec": {
                "source": { "repoURL": "https://h/r", "verify": verify },
                "destination": { "cluster": "local" }
            }
        });
        application_from_manifest(&manifest, "apps/child.yaml (document 1)", &["local".to_owned()])
            .expect_err("a child may not choose its signers")
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let refused = "an Application from a repository cannot name trusted keys; set verify on its \
                   repository in driftless.yaml";
    assert_eq!(
        child(serde_json::json!({ "ssh": { "file": "/etc/driftless/allowed_signers" } })),
        [format!(
            "apps/child.yaml (document 1): spec.source.verify.ssh.file: {refused}"
        )]
    );
    assert_eq!(
        child(serde_json::json!({ "mode": "head", "pgp": { "env": "HOME" } })),
        [format!(
            "apps/child.yaml (document 1): spec.source.verify.pgp.env: {refused}"
        )]
    );
    assert_eq!(
        child(serde_json::json!({ "mode": "head" })),
        [
            "apps/child.yaml (document 1): spec.source.verify: name the trusted keys: ssh (an allowed_signers \
          file), pgp (armored public keys) or both"
        ]
    );
}

const PROJECTS: &str = r#"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - { name: production, kubeconfig: k }
projects:
  - name: team-a
    sourceRepos: ["https://git.example.com/team-a/*", "!https://git.example.com/team-a/secret-*"]
    destinations:
      - { cluster: production, namespace: "team-a-*" }
    clusterResourceWhitelist:
      - { group: "", kind: Namespace }
    namespaceResourceBlacklist:
      - { group: "", kind: ResourceQuota }
  - name: open
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: web }
    spec:
      project: team-a
      source: { repoURL: "https://git.example.com/team-a/web" }
      destination: { cluster: production, namespace: team-a-web }
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: platform }
    spec:
      source: { repoURL: "https://git.example.com/platform" }
      destination: { cluster: production }
"#;

#[test]
fn projects_are_read_with_their_defaults() {
    use driftless_core::project::{GroupKind, Project, ProjectDestination};
    let config = parse(PROJECTS, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert_eq!(
        config.projects,
        vec![
            Project {
                name: "team-a".into(),
                source_repos: Some(vec![
                    "https://git.example.com/team-a/*".into(),
                    "!https://git.example.com/team-a/secret-*".into(),
                ]),
                destinations: Some(vec![ProjectDestination {
                    cluster: "production".into(),
                    namespace: "team-a-*".into(),
                }]),
                cluster_resource_whitelist: vec![GroupKind {
                    group: String::new(),
                    kind: "Namespace".into(),
                }],
                namespace_resource_blacklist: vec![GroupKind {
                    group: String::new(),
                    kind: "ResourceQuota".into(),
                }],
            },
            Project {
                name: "open".into(),
                source_repos: None,
                destinations: None,
                cluster_resource_whitelist: Vec::new(),
                namespace_resource_blacklist: Vec::new(),
            },
        ],
        "omitted sources and destinations allow any; an omitted whitelist allows no cluster-scoped kind"
    );
    assert_eq!(config.applications[0].project.as_deref(), Some("team-a"));
    assert_eq!(config.applications[1].project, None);
}

#[test]
fn project_mistakes_are_reported_with_their_line() {
    let text = r#"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - { name: production, kubeconfig: k }
projects:
  - name: team-a
    sourceRepos: ["!https://git.example.com/team-b/*", "!https://[x"]
    destinations:
      - { cluster: staging, namespace: "team-a-*" }
      - { cluster: "*", namespace: "" }
    clusterResourceWhitelist:
      - { group: "[", kind: Namespace }
  - name: team-a
  - name: Team_B
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: web }
    spec:
      project: team-c
      source: { repoURL: "https://git.example.com/team-a/web" }
      destination: { cluster: production }
"#;
    let messages: Vec<String> = problems(text).problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "driftless.yaml:8: projects[0].sourceRepos: \"https://[x\" is not a valid glob: unclosed character class; missing ']'",
            "driftless.yaml:7: projects[0].sourceRepos: only '!' patterns allow no repository at all; add the repositories allowed (e.g. \"https://git.example.com/team/*\")",
            "driftless.yaml:10: projects[0].destinations[0].cluster: unknown cluster \"staging\" (configured: production; or \"*\" for any)",
            "driftless.yaml:11: projects[0].destinations[1].namespace: must not be empty",
            "driftless.yaml:13: projects[0].clusterResourceWhitelist[0].group: \"[\" is not a valid glob: unclosed character class; missing ']'",
            "driftless.yaml:14: projects[1].name: project \"team-a\" is defined twice",
            "driftless.yaml:15: projects[2].name: \"Team_B\" is not a valid name (lowercase letters, digits and '-', at most 63)",
            "driftless.yaml:21: applications[0].spec.project: unknown project \"team-c\" (configured: Team_B, team-a)",
        ]
    );

    let without_group = PROJECTS.replace("{ group: \"\", kind: ResourceQuota }", "{ kind: ResourceQuota }");
    let messages: Vec<String> = problems(&without_group)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        messages.len() == 1 && messages[0].contains("group"),
        "a kind without its group is refused, not read as the core group: {messages:?}"
    );
}

#[test]
fn applications_from_git_may_name_a_project() {
    let manifest = serde_json::json!({
        "apiVersion": "driftless.dev/v1alpha1", "kind": "Application",
        "metadata": { "name": "child" },
        "spec": {
            "project": "team-a",
            "source": { "repoURL": "https://h/r" },
            "destination": { "cluster": "local" }
        }
    });
    let app = application_from_manifest(&manifest, "apps/child.yaml (document 1)", &["local".to_owned()])
        .expect("valid");
    assert_eq!(
        app.project.as_deref(),
        Some("team-a"),
        "whether the root allows it is the engine's to decide"
    );
}

#[test]
fn limits_are_read_with_binary_suffixes_and_mistakes_have_their_line() {
    let config = parse(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nlimits:\n  maxFiles: 500\n  maxRepositoryBytes: 64Mi\n  maxFileBytes: 512Ki\n  renderTimeout: 20s\n",
        "driftless.yaml",
        Path::new("/etc/driftless"),
    )
    .expect("valid limits");
    assert_eq!(config.limits.max_files, 500);
    assert_eq!(config.limits.max_repository_bytes, 64 << 20);
    assert_eq!(config.limits.max_file_bytes, 512 << 10);
    assert_eq!(
        config.limits.max_documents, 10_000,
        "omitted fields keep their defaults"
    );
    assert_eq!(config.limits.render_timeout, Duration::from_secs(20));
    let defaults = parse(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\n",
        "driftless.yaml",
        Path::new("/"),
    )
    .expect("valid");
    assert_eq!(
        defaults.limits,
        driftless_core::application::SourceLimits::default()
    );

    let messages: Vec<String> = problems(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nlimits:\n  maxFiles: 0\n  maxFileBytes: 16MB\n  renderTimeout: forever\n",
    )
    .problems
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0].starts_with("driftless.yaml:4: limits.maxFiles: \"0\" is not a positive whole number"),
        "{messages:?}"
    );
    assert!(
        messages[1].starts_with("driftless.yaml:5: limits.maxFileBytes: \"16MB\""),
        "{messages:?}"
    );
    assert!(
        messages[2].starts_with("driftless.yaml:6: limits.renderTimeout:"),
        "{messages:?}"
    );
}

#[test]
fn redaction_names_annotations_and_fields_and_checks_pointers() {
    let config = parse(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nredaction:\n  annotations: [example.com/token]\n  fields:\n    - { group: '', kind: ConfigMap, jsonPointers: [/data/password] }\n",
        "driftless.yaml",
        Path::new("/"),
    )
    .expect("valid");
    assert_eq!(config.redaction.annotations, ["example.com/token"]);
    assert_eq!(config.redaction.fields[0].kind, "ConfigMap");
    assert_eq!(config.redaction.fields[0].group.as_deref(), Some(""));
    let messages: Vec<String> = problems(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nredaction:\n  fields:\n    - { kind: ConfigMap, jsonPointers: [data/password] }\n",
    )
    .problems
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        messages,
        [
            "driftless.yaml:5: redaction.fields[0].jsonPointers: \"data/password\" is not a JSON pointer (it must start with '/')"
        ]
    );
}

#[test]
fn helm_sources_are_read_and_checked() {
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - { name: local, kubeconfig: k }\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: { name: web }\n    spec:\n      source:\n        repoURL: https://git.example.com/charts.git\n        path: charts/web\n        helm:\n          releaseName: shop\n          valueFiles: [values-prod.yaml, ../../env/prod.yaml]\n          values: |\n            image: { tag: '2' }\n          parameters: [{ name: image.tag, value: '3', forceString: true }]\n          kubeVersion: 1.29.0\n          apiVersions: [monitoring.coreos.com/v1]\n          skipCrds: true\n      destination: { cluster: local, namespace: shop }\n";
    let config = parse(text, "driftless.yaml", Path::new("/")).expect("valid");
    let Renderer::Helm(helm) = &config.applications[0].source.renderer else {
        panic!("a Helm source")
    };
    assert_eq!(helm.release_name.as_deref(), Some("shop"));
    assert_eq!(helm.value_files, ["values-prod.yaml", "../../env/prod.yaml"]);
    assert_eq!(helm.values.as_deref(), Some(r#"{"image":{"tag":"2"}}"#));
    assert!(helm.parameters[0].force_string);
    assert!(helm.skip_crds);

    let bad = text.replace(
        "[values-prod.yaml, ../../env/prod.yaml]",
        "[https://evil.example.com/v.yaml, /etc/passwd]",
    );
    let messages: Vec<String> = problems(&bad).problems.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("is a URL: values files come from the repository only"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("must be a path relative to the chart's directory"),
        "{messages:?}"
    );
    let both = text.replace("path: charts/web\n", "path: charts/web\n        kustomize: {}\n");
    let messages: Vec<String> = problems(&both).problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "driftless.yaml:11: applications[0].spec.source: set one of directory, kustomize and helm, not several"
        ]
    );
}

/// Every `source.helm` value that reaches helm's command line is checked against its grammar, in
/// `driftless.yaml` and in an Application found in Git alike: none can become an option of helm.
#[test]
fn helm_values_that_could_become_options_are_refused_with_their_field() {
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - { name: local, kubeconfig: k }\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: { name: web }\n    spec:\n      source:\n        repoURL: https://git.example.com/charts.git\n        path: charts/web\n        helm:\n          releaseName: shop\n          namespace: shop\n          parameters: [{ name: image.tag, value: '3' }]\n          kubeVersion: 1.29.0\n          apiVersions: [monitoring.coreos.com/v1]\n      destination: { cluster: local, namespace: shop }\n";
    parse(text, "driftless.yaml", Path::new("/")).expect("valid");
    let long = "a".repeat(54);
    let cases = [
        (
            "releaseName: shop",
            "releaseName: '-h'".to_owned(),
            "14: applications[0].spec.source.helm.releaseName: \"-h\" is not a Helm release name",
        ),
        (
            "releaseName: shop",
            "releaseName: '--post-renderer=/bin/sh'".to_owned(),
            "14: applications[0].spec.source.helm.releaseName: \"--post-renderer=/bin/sh\" is not",
        ),
        (
            "releaseName: shop",
            format!("releaseName: {long}"),
            "14: applications[0].spec.source.helm.releaseName: \"aaaa",
        ),
        (
            "namespace: shop\n          param",
            "namespace: '--kube-version=--help'\n          param".to_owned(),
            "15: applications[0].spec.source.helm.namespace: \"--kube-version=--help\" is not a valid namespace name",
        ),
        (
            "kubeVersion: 1.29.0",
            "kubeVersion: '--kube-version=--help'".to_owned(),
            "17: applications[0].spec.source.helm.kubeVersion: \"--kube-version=--help\" is not a Kubernetes version",
        ),
        (
            "kubeVersion: 1.29.0",
            "kubeVersion: '--help'".to_owned(),
            "17: applications[0].spec.source.helm.kubeVersion: \"--help\" is not a Kubernetes version",
        ),
        (
            "[monitoring.coreos.com/v1]",
            "[v1, '--set-file=x=/etc/hostname']".to_owned(),
            "18: applications[0].spec.source.helm.apiVersions[1]: \"--set-file=x=/etc/hostname\" is not an API version",
        ),
        (
            "[monitoring.coreos.com/v1]",
            "['apps/v1,batch/v1']".to_owned(),
            "18: applications[0].spec.source.helm.apiVersions[0]: \"apps/v1,batch/v1\" is not an API version",
        ),
        (
            "name: image.tag",
            "name: '--set-file=x'".to_owned(),
            "16: applications[0].spec.source.helm.parameters[0].name: \"--set-file=x\" is not a value name",
        ),
        (
            "name: image.tag",
            "name: '-h'".to_owned(),
            "16: applications[0].spec.source.helm.parameters[0].name: \"-h\" is not a value name",
        ),
        (
            "name: image.tag",
            "name: 'a,b'".to_owned(),
            "16: applications[0].spec.source.helm.parameters[0].name: \"a,b\" is not a value name",
        ),
        (
            "name: image.tag",
            "name: 'a=b'".to_owned(),
            "16: applications[0].spec.source.helm.parameters[0].name: \"a=b\" is not a value name",
        ),
        (
            "value: '3'",
            "value: \"x\\0y\"".to_owned(),
            "16: applications[0].spec.source.helm.parameters[0].value: must not contain a NUL character",
        ),
        ("          releaseName: shop\n", String::new(), ""),
    ];
    for (from, to, expected) in &cases {
        assert!(text.contains(from), "{from}");
        let hostile = text.replace(from, to);
        let hostile = if expected.is_empty() {
            // No releaseName: the release is named after the application, which is too long.
            hostile.replace("name: web }", &format!("name: {long} }}"))
        } else {
            hostile
        };
        let expected = if expected.is_empty() {
            format!(
                "driftless.yaml:8: applications[0].spec.source.helm.releaseName: not set, so the release is named after the application, and \"{long}\" is longer than Helm's 53 characters: set releaseName"
            )
        } else {
            format!("driftless.yaml:{expected}")
        };
        let messages: Vec<String> = problems(&hostile)
            .problems
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            messages.len() == 1 && messages[0].starts_with(&expected),
            "{to}: {messages:?}"
        );
    }
    // A value is any text: it cannot become an option or another assignment (see the renderer).
    let literal = text.replace("value: '3'", "value: '-1,replicas=7'");
    parse(&literal, "driftless.yaml", Path::new("/")).expect("any value");
}

/// An Application named `child` found in Git, deploying `source` to the cluster `local`.
fn child_with(source: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "driftless.dev/v1alpha1", "kind": "Application",
        "metadata": { "name": "child" },
        "spec": { "source": source, "destination": { "cluster": "local" } }
    })
}

/// A source path reaches `git ls-tree` as a pathspec, where a leading `:` is magic (`:/` is the
/// whole repository, `:x` is `x`): refused, so git reads exactly the path the renderer renders.
#[test]
fn source_paths_are_never_git_pathspec_magic() {
    let manifest = |path: &str| child_with(&serde_json::json!({ "repoURL": "https://h/r", "path": path }));
    let clusters = ["local".to_owned()];
    for path in [":/", ":(top)apps", ":apps", "./:apps"] {
        let err = application_from_manifest(&manifest(path), "child.yaml", &clusters).expect_err(path);
        assert_eq!(
            err.problems[0].to_string(),
            format!(
                "child.yaml: spec.source.path: {path:?} must not start with ':' (git reads a leading ':' as pathspec magic)"
            ),
        );
    }
    let app = application_from_manifest(&manifest("apps/a:b"), "child.yaml", &clusters).expect("valid");
    assert_eq!(app.source.path, "apps/a:b");
}

/// A refused repository URL is quoted in the error, but never the password or token before its
/// `@`, whether or not the URL has a scheme.
#[test]
fn refused_repository_urls_are_quoted_without_their_credentials() {
    let manifest = |url: &str| child_with(&serde_json::json!({ "repoURL": url }));
    let clusters = ["local".to_owned()];
    for (url, shown) in [
        (
            "htps://bot:s3cret@git.example.com/r.git",
            "htps://git.example.com/r.git",
        ),
        ("bot:s3cret@git.example.com/r.git", "git.example.com/r.git"),
        (
            "-https://bot:s3cret@git.example.com/r",
            "-https://git.example.com/r",
        ),
    ] {
        let err = application_from_manifest(&manifest(url), "child.yaml", &clusters).expect_err(url);
        let message = err.problems[0].to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(
            message.starts_with(&format!("child.yaml: spec.source.repoURL: {shown:?} must ")),
            "{message}"
        );
    }
}

/// The same checks for an Application found in Git (app-of-apps).
#[test]
fn helm_values_of_applications_from_git_are_checked_the_same_way() {
    let manifest = serde_json::json!({
        "apiVersion": "driftless.dev/v1alpha1", "kind": "Application",
        "metadata": { "name": "child" },
        "spec": {
            "source": { "repoURL": "https://h/r", "path": "charts/web", "helm": {
                "releaseName": "--post-renderer=/bin/sh",
                "parameters": [{ "name": "-h", "value": "x" }],
                "kubeVersion": "--help",
                "apiVersions": ["-h"],
                "namespace": "-n"
            } },
            "destination": { "cluster": "local" }
        }
    });
    let err = application_from_manifest(
        &manifest,
        "apps/root/child.yaml (document 1)",
        &["local".to_owned()],
    )
    .expect_err("hostile");
    let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.source.helm.releaseName",
            "spec.source.helm.namespace",
            "spec.source.helm.kubeVersion",
            "spec.source.helm.apiVersions[0]",
            "spec.source.helm.parameters[0].name",
        ],
        "{err}"
    );
}

#[test]
fn charts_from_chart_repositories_are_read_and_checked() {
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - { name: local, kubeconfig: k }\napplications:\n  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: { name: web }\n    spec:\n      source:\n        repoURL: https://git.example.com/values.git\n        path: web\n        helm:\n          chart: { repository: 'oci://registry.example.com/charts/', name: web, version: '~1.2', plainHttp: true }\n          valueFiles: [prod.yaml]\n      destination: { cluster: local, namespace: shop }\n";
    let config = parse(text, "driftless.yaml", Path::new("/")).expect("valid");
    let Renderer::Helm(helm) = &config.applications[0].source.renderer else {
        panic!("a Helm source")
    };
    let chart = helm.chart.as_ref().expect("a repository chart");
    assert_eq!(
        (
            chart.repository.as_str(),
            chart.name.as_str(),
            chart.version.as_str(),
            chart.plain_http
        ),
        ("oci://registry.example.com/charts", "web", "~1.2", true)
    );

    let bad = text.replace(
        "{ repository: 'oci://registry.example.com/charts/', name: web, version: '~1.2', plainHttp: true }",
        "{ repository: 'https://robot:pw@charts.example.com', name: ../web, plainHttp: true }",
    );
    let messages: Vec<String> = problems(&bad).problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "driftless.yaml:14: applications[0].spec.source.helm.chart.repository: credentials in the URL are not allowed; configure them under repositories[]",
            "driftless.yaml:14: applications[0].spec.source.helm.chart.name: \"../web\" is not a chart name",
            "driftless.yaml:14: applications[0].spec.source.helm.chart.plainHttp: applies to oci:// repositories only",
        ],
        "{messages:?}"
    );
    let not_a_url = text.replace("'oci://registry.example.com/charts/'", "charts.example.com");
    let messages: Vec<String> = problems(&not_a_url)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        messages[0].contains("must be an https://, http:// or oci:// URL"),
        "{messages:?}"
    );
}

#[test]
fn webhook_secrets_are_referenced_never_inline() {
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nwebhooks:\n  github: { file: secrets/github }\n  gitlab: { env: GITLAB_WEBHOOK_TOKEN }\n";
    let config = parse(text, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    assert_eq!(
        config.webhooks.github,
        Some(SecretSource::File("/etc/driftless/secrets/github".into()))
    );
    assert_eq!(
        config.webhooks.gitlab,
        Some(SecretSource::Env("GITLAB_WEBHOOK_TOKEN".into()))
    );
    assert_eq!(
        config.webhooks.bitbucket, None,
        "a receiver without a secret stays off"
    );
    let inline = text.replace("{ file: secrets/github }", "s3cret");
    assert!(
        !problems(&inline).problems.is_empty(),
        "an inline secret is refused"
    );
    let unknown = text.replace("gitlab:", "gitlub:");
    let messages: Vec<String> = problems(&unknown)
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(messages.iter().any(|m| m.contains("gitlub")), "{messages:?}");
}

#[test]
fn notification_targets_and_subscriptions_are_checked() {
    let text = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nnotifications:\n  targets:\n    - { name: chat, slack: { url: { env: SLACK_URL } } }\n    - { name: chat }\n    - { name: hook, webhook: { url: 'ftp://x' } }\n    - { name: mail, email: { host: smtp.example, from: nobody, to: [] } }\n    - { name: gh, github: { apiURL: api.github.com, token: { env: GH } } }\n    - { name: gl, gitlab: { apiURL: 'http://gitlab.example/api/v4', token: { env: GL } } }\n  subscriptions:\n    - { on: [sync-exploded], targets: [chat, nobody] }\n";
    let messages: Vec<String> = problems(text).problems.iter().map(ToString::to_string).collect();
    for expected in [
        "notifications.targets[1].name: \"chat\" is empty or used twice",
        "notifications.targets[1]: set exactly one of slack, webhook, email, github and gitlab",
        "notifications.targets[3].email: \"nobody\" is not a mail address",
        "notifications.targets[3].email.to: name at least one recipient",
        "notifications.targets[4].github.apiURL: \"api.github.com\" must be an https:// URL (http:// only on a loopback address)",
        "notifications.targets[5].gitlab.apiURL: \"http://gitlab.example/api/v4\" must be an https:// URL",
        "notifications.targets[2].webhook.url: \"ftp://x\" must be an https:// or http:// URL",
        "notifications.subscriptions[0].on: \"sync-exploded\" is not an event",
        "notifications.subscriptions[0].targets: no target is named \"nobody\"",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected:?} not in {messages:?}"
        );
    }
    let good = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nnotifications:\n  targets:\n    - { name: chat, slack: { url: { env: SLACK_URL } } }\n  subscriptions:\n    - { applications: ['shop-*'], on: [sync-failed, health-degraded], targets: [chat], template: '{application} {event}' }\n";
    let config = parse(good, "driftless.yaml", Path::new("/")).expect("valid");
    assert_eq!(config.notifications.subscriptions[0].on.len(), 2);
    let kinds = "apiVersion: driftless.dev/v1alpha1\nkind: Config\nnotifications:\n  targets:\n    - { name: mail, email: { host: smtp.example, port: 2525, from: cd@example.com, to: [ops@example.com], username: cd, password: { file: smtp-password }, caFile: ca.pem } }\n    - { name: gh, github: { token: { env: GITHUB_TOKEN } } }\n    - { name: gl, gitlab: { apiURL: 'https://gitlab.example/api/v4/', token: { env: GITLAB_TOKEN }, context: 'cd/{application}' } }\n";
    let config = parse(kinds, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    let targets = &config.notifications.targets;
    let TargetKind::Email(email) = &targets[0].kind else {
        panic!("email: {targets:?}")
    };
    assert_eq!(
        (email.port, email.ca_file.as_deref()),
        (2525, Some(Path::new("/etc/driftless/ca.pem")))
    );
    assert_eq!(
        email.password,
        Some(SecretSource::File("/etc/driftless/smtp-password".into()))
    );
    let TargetKind::GithubStatus(github) = &targets[1].kind else {
        panic!("github: {targets:?}")
    };
    assert_eq!(
        (github.api_url.as_str(), github.context.as_str()),
        ("https://api.github.com", "driftless/{application}")
    );
    let TargetKind::GitlabStatus(gitlab) = &targets[2].kind else {
        panic!("gitlab: {targets:?}")
    };
    assert_eq!(
        gitlab.api_url, "https://gitlab.example/api/v4",
        "no trailing slash"
    );
}

const POST_BUILD: &str = r"
apiVersion: driftless.dev/v1alpha1
kind: Config
clusters:
  - { name: local, kubeconfig: k }
applications:
  - apiVersion: driftless.dev/v1alpha1
    kind: Application
    metadata: { name: apps }
    spec:
      source:
        repoURL: https://git.example.com/fleet.git
        path: clusters/prod
        postBuild:
          substitute: { cluster_env: prod, cluster_region: eu-1 }
          substituteFrom:
            - { kind: ConfigMap, name: cluster-vars }
            - { kind: Secret, name: cluster-secrets, optional: true }
      destination: { cluster: local, namespace: flux-system }
";

#[test]
fn flux_post_build_is_read_under_the_source() {
    use driftless_core::application::{SubstituteKind, SubstituteReference};
    let config = parse(POST_BUILD, "driftless.yaml", Path::new("/etc/driftless")).expect("valid");
    let post_build = config.applications[0].post_build.clone().expect("postBuild");
    assert_eq!(post_build.substitute["cluster_env"], "prod");
    assert_eq!(
        post_build.substitute_from,
        [
            SubstituteReference {
                kind: SubstituteKind::ConfigMap,
                name: "cluster-vars".into(),
                optional: false,
            },
            SubstituteReference {
                kind: SubstituteKind::Secret,
                name: "cluster-secrets".into(),
                optional: true,
            },
        ]
    );
    assert!(!post_build.always);
}

#[test]
fn post_build_mistakes_are_reported_with_their_line() {
    let text = POST_BUILD
        .replace("cluster_region: eu-1", "cluster-region: eu-1")
        .replace(
            "kind: ConfigMap, name: cluster-vars",
            "kind: Pod, name: cluster-vars",
        )
        .replace("name: cluster-secrets", "name: Cluster_Secrets")
        .replace(", namespace: flux-system", "");
    let messages: Vec<String> = problems(&text).problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "driftless.yaml:15: applications[0].spec.source.postBuild.substitute: \"cluster-region\" is not a valid variable name (must match ^[_[:alpha:]][_[:alpha:][:digit:]]*$)",
            "driftless.yaml:17: applications[0].spec.source.postBuild.substituteFrom[0].kind: \"Pod\" is not ConfigMap or Secret",
            "driftless.yaml:18: applications[0].spec.source.postBuild.substituteFrom[1].name: \"Cluster_Secrets\" is not a valid object name",
            "driftless.yaml:18: applications[0].spec.source.postBuild.substituteFrom[1]: substituteFrom reads from the destination namespace: set spec.destination.namespace",
        ]
    );
}
