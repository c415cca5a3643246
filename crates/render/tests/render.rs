//! Rendering real repositories: plain directories and Kustomize (the real `kubectl kustomize`).

mod common;

use common::kind_names;

use driftless_core::application::{DirectoryOptions, Renderer};
use driftless_render::{Keys, RenderError, RenderLimits, RenderTarget, Rendered};

const TARGET: RenderTarget<'static> = RenderTarget {
    application: "test",
    namespace: Some("default"),
    kube_version: None,
    api_versions: &[],
    charts: None,
    allow_empty: false,
};
use driftless_testenv::git::TestRepo;

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: value\n")
}

async fn render_at(repo: &TestRepo, path: &str, renderer: Renderer) -> Result<Rendered, RenderError> {
    common::render_committed(
        repo,
        path,
        renderer,
        TARGET,
        &RenderLimits::default(),
        &Keys::new(),
    )
    .await
}

#[tokio::test]
async fn plain_directories_select_manifest_files() {
    let repo = TestRepo::new();
    repo.write("app/a.yaml", &config_map("a"))
        .write(
            "app/b.json",
            r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}"#,
        )
        .write("app/README.md", "# not a manifest\n")
        .write("app/nested/c.yml", &config_map("c"))
        .write("app/nested/skip-me.yaml", &config_map("skipped"))
        .write("other/d.yaml", &config_map("d"));

    let flat = render_at(&repo, "app", Renderer::Directory(DirectoryOptions::default()))
        .await
        .expect("flat");
    assert_eq!(kind_names(&flat), vec!["ConfigMap/a", "ConfigMap/b"]);
    assert_eq!(flat.renderer, "directory");

    let options = DirectoryOptions {
        recurse: true,
        include: None,
        exclude: Some("**/skip-*".into()),
        ..DirectoryOptions::default()
    };
    let recursive = render_at(&repo, "app", Renderer::Directory(options))
        .await
        .expect("recursive");
    assert_eq!(
        kind_names(&recursive),
        vec!["ConfigMap/a", "ConfigMap/b", "ConfigMap/c"]
    );
    let inputs = recursive.inputs.expect("directories know what they read");
    assert!(
        inputs.contains("app/nested/c.yml") && !inputs.contains("other/d.yaml"),
        "{inputs:?}"
    );

    let only_yaml = DirectoryOptions {
        recurse: true,
        include: Some("*.yaml".into()),
        exclude: None,
        ..DirectoryOptions::default()
    };
    let yaml = render_at(&repo, "app", Renderer::Directory(only_yaml))
        .await
        .expect("include");
    assert_eq!(kind_names(&yaml), vec!["ConfigMap/a", "ConfigMap/skipped"]);

    let err = render_at(&repo, "missing", Renderer::Detect)
        .await
        .expect_err("no such path");
    assert_eq!(
        err.to_string(),
        "path \"missing\" does not exist in the repository at this commit"
    );
}

#[tokio::test]
async fn symlinks_are_followed_inside_the_repository_and_refused_outside() {
    let repo = TestRepo::new();
    repo.write("shared/cm.yaml", &config_map("shared"))
        .symlink("app/link.yaml", "../shared/cm.yaml");
    let rendered = render_at(&repo, "app", Renderer::Detect).await.expect("inside");
    assert_eq!(kind_names(&rendered), vec!["ConfigMap/shared"]);

    repo.symlink("app/escape.yaml", "/etc/passwd");
    let err = render_at(&repo, "app", Renderer::Detect)
        .await
        .expect_err("escape");
    assert_eq!(
        err.to_string(),
        "app/escape.yaml: symlink to \"/etc/passwd\" points outside the repository"
    );
}

#[tokio::test]
async fn a_malformed_file_is_reported_with_its_line() {
    let repo = TestRepo::new();
    repo.write("app/good.yaml", &config_map("good")).write(
        "app/bad.yaml",
        &format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
            config_map("first")
        ),
    );
    let err = render_at(&repo, "app", Renderer::Detect)
        .await
        .expect_err("malformed");
    match err {
        RenderError::Unparsable { file, line, .. } => {
            assert_eq!((file.as_str(), line), ("app/bad.yaml", Some(11)));
        }
        other => panic!("expected Unparsable, got {other}"),
    }
}

fn kustomize_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("base/kustomization.yaml", "resources:\n  - deployment.yaml\n  - service.yaml\n")
        .write(
            "base/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: guestbook\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: guestbook}\n  template:\n    metadata:\n      labels: {app: guestbook}\n    spec:\n      containers:\n        - name: web\n          image: example.invalid/guestbook:1\n",
        )
        .write("base/service.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: guestbook\nspec:\n  selector: {app: guestbook}\n  ports: [{port: 80}]\n")
        .write(
            "overlays/prod/kustomization.yaml",
            "namePrefix: prod-\nresources:\n  - ../../base\npatches:\n  - target: {kind: Deployment}\n    patch: |\n      - op: replace\n        path: /spec/replicas\n        value: 3\n",
        )
        .write("overlays/dev/kustomization.yaml", "namePrefix: dev-\nresources:\n  - ../../base\n");
    repo
}

#[tokio::test]
async fn kustomize_overlays_render_with_bases_outside_their_path() {
    let repo = kustomize_repo();
    let prod = render_at(&repo, "overlays/prod", Renderer::Detect)
        .await
        .expect("prod");
    assert_eq!(prod.renderer, "kustomize");
    assert_eq!(
        kind_names(&prod),
        vec!["Service/prod-guestbook", "Deployment/prod-guestbook"]
    );
    assert_eq!(prod.manifests[1].manifest["spec"]["replicas"], 3);
    assert_eq!(prod.manifests[1].source.file, "kustomize build overlays/prod");
    let dev = render_at(&repo, "overlays/dev", Renderer::Kustomize)
        .await
        .expect("dev");
    insta::assert_snapshot!(kind_names(&dev).join("\n"), @r"
    Service/dev-guestbook
    Deployment/dev-guestbook
    ");
}

/// Plugin configuration written as kustomize's documentation shows it renders: a label `env` or
/// a `fieldSpecs` entry's `path` (a field path, not a file) is not a file to look for.
#[tokio::test]
async fn transformer_and_generator_configurations_without_files_render() {
    let repo = kustomize_repo();
    repo.write(
        "overlays/labelled/labels.yaml",
        "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: env}\nlabels: {env: prod, path: here}\nfieldSpecs:\n  - path: metadata/labels\n    create: true\n",
    )
    .write(
        "overlays/labelled/kustomization.yaml",
        "resources: [../../base]\ntransformers: [labels.yaml]\ngenerators:\n  - |\n    apiVersion: builtin\n    kind: ConfigMapGenerator\n    metadata: {name: settings}\n    options: {labels: {env: prod}}\n    literals: [mode=fast]\n",
    );
    let rendered = render_at(&repo, "overlays/labelled", Renderer::Detect)
        .await
        .expect("renders");
    assert!(
        kind_names(&rendered)
            .iter()
            .any(|name| name.starts_with("ConfigMap/settings")),
        "{:?}",
        kind_names(&rendered)
    );
    assert!(
        rendered
            .manifests
            .iter()
            .all(|m| m.manifest["metadata"]["labels"]["env"] == "prod"),
        "every object labelled"
    );
}

#[tokio::test]
async fn kustomize_errors_name_repository_paths_and_nothing_outside_is_read() {
    let repo = kustomize_repo();
    repo.write(
        "overlays/broken/kustomization.yaml",
        "resources:\n  - ../../base\n  - unnamed.yaml\n",
    )
    .write(
        "overlays/broken/unnamed.yaml",
        "apiVersion: v1\nkind: ConfigMap\n",
    );
    let err = render_at(&repo, "overlays/broken", Renderer::Detect)
        .await
        .expect_err("a resource without a name");
    let message = err.to_string();
    assert!(
        message.starts_with("kustomize build overlays/broken failed:"),
        "{message}"
    );
    assert!(
        message.contains("unnamed.yaml") && !message.contains("/tmp/"),
        "{message}"
    );

    // A path the repository does not hold is refused before kustomize could fetch it.
    repo.write(
        "overlays/missing/kustomization.yaml",
        "resources:\n  - ../../base\n  - missing.yaml\n",
    );
    let err = render_at(&repo, "overlays/missing", Renderer::Detect)
        .await
        .expect_err("missing resource");
    assert_eq!(
        err.to_string(),
        "overlays/missing/kustomization.yaml: resources: \"missing.yaml\" is not in the repository at this commit (kustomize would try to fetch it from elsewhere)"
    );

    repo.write(
        "overlays/escape/kustomization.yaml",
        "resources:\n  - ../../../../../../etc/hostname\n",
    );
    let err = render_at(&repo, "overlays/escape", Renderer::Detect)
        .await
        .expect_err("outside the root");
    assert_eq!(
        err.to_string(),
        "overlays/escape/kustomization.yaml: resources: \"../../../../../../etc/hostname\" leaves the repository"
    );

    repo.symlink("overlays/link/secret.yaml", "/etc/hostname").write(
        "overlays/link/kustomization.yaml",
        "resources:\n  - secret.yaml\n",
    );
    let err = render_at(&repo, "overlays/link", Renderer::Detect)
        .await
        .expect_err("escaping symlink");
    assert!(err.to_string().contains("points outside the repository"), "{err}");
}

/// A kustomization directory on the host, outside any repository, holding ConfigMap `stolen`.
fn host_kustomization() -> tempfile::TempDir {
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        outside.path().join("kustomization.yaml"),
        "resources: [cm.yaml]\n",
    )
    .expect("write");
    std::fs::write(outside.path().join("cm.yaml"), config_map("stolen")).expect("write");
    outside
}

#[tokio::test]
async fn kustomizations_may_not_reach_outside_the_repository_or_the_network() {
    // A kustomization directory on the host, outside any repository: kustomize itself would load
    // it even with LoadRestrictionsRootOnly (directories are not restricted, only files).
    let outside = host_kustomization();
    let climb = format!("../../../../../../../../../..{}", outside.path().display());

    let repo = kustomize_repo();
    let cases = [
        (
            "resources",
            format!("resources:\n  - {climb}\n"),
            "leaves the repository",
        ),
        (
            "resources",
            format!("resources:\n  - {}\n", outside.path().display()),
            "is an absolute path",
        ),
        (
            "components",
            "components:\n  - ../../../x\n".to_owned(),
            "leaves the repository",
        ),
        (
            "patches",
            "resources: [../../base]\npatches:\n  - path: ../../../../etc/passwd\n".to_owned(),
            "leaves the repository",
        ),
        (
            "secretGenerator",
            "secretGenerator:\n  - name: s\n    files: [key=../../../../root/.ssh/id_rsa]\n".to_owned(),
            "leaves the repository",
        ),
        (
            "configMapGenerator",
            "configMapGenerator:\n  - name: c\n    envs: [/proc/self/environ]\n".to_owned(),
            "is an absolute path",
        ),
        (
            "resources",
            "resources:\n  - https://github.com/example/repo//base?ref=main\n".to_owned(),
            "is a remote base",
        ),
        (
            "resources",
            "resources:\n  - github.com/example/repo/base\n".to_owned(),
            "is a remote base",
        ),
        (
            "helmCharts",
            "helmCharts:\n  - name: x\n    repo: https://charts.example.invalid\n".to_owned(),
            "inflates Helm charts",
        ),
    ];
    for (index, (field, kustomization, reason)) in cases.iter().enumerate() {
        let dir = format!("overlays/hostile{index}");
        repo.write(&format!("{dir}/kustomization.yaml"), kustomization);
        let err = render_at(&repo, &dir, Renderer::Detect)
            .await
            .expect_err("refused");
        let message = err.to_string();
        assert!(
            matches!(err, RenderError::KustomizeRefused { .. })
                && message.starts_with(&format!("{dir}/kustomization.yaml: {field}: "))
                && message.contains(reason),
            "case {index}: {message}"
        );
        assert!(!message.contains("stolen"), "{message}");
    }

    // Found in a base, too: the base is checked like the overlay.
    repo.write(
        "bases/sneaky/kustomization.yaml",
        &format!("resources:\n  - {climb}\n"),
    )
    .write(
        "overlays/nested/kustomization.yaml",
        "resources:\n  - ../../bases/sneaky\n",
    );
    let err = render_at(&repo, "overlays/nested", Renderer::Detect)
        .await
        .expect_err("refused in the base");
    assert!(
        err.to_string()
            .starts_with("bases/sneaky/kustomization.yaml: resources: "),
        "{err}"
    );

    // A cycle (A -> B -> A) ends with kustomize's own error, not a hang.
    repo.write("cycle/a/kustomization.yaml", "resources: [../b]\n")
        .write("cycle/b/kustomization.yaml", "resources: [../a]\n");
    let err = render_at(&repo, "cycle/a", Renderer::Detect)
        .await
        .expect_err("a cycle");
    assert!(matches!(err, RenderError::Kustomize { .. }), "{err}");

    // Bases elsewhere in the repository stay fine.
    let prod = render_at(&repo, "overlays/prod", Renderer::Detect)
        .await
        .expect("prod");
    assert_eq!(prod.manifests.len(), 2);
}

/// kustomize runs on the materialised copy, where a directory symlink is a copied directory: a
/// kustomization reached through `app -> deep/…` is read at `app/`, and its `../` chains count
/// from there, not from where the link points. Counted from the deep target, the chain below
/// stays inside the repository; counted from `app/`, it climbs past the file system's root
/// (extra `..` stay there) and lands on a kustomization on the host.
#[tokio::test]
async fn kustomizations_reached_through_directory_symlinks_are_judged_from_the_link() {
    const DEPTH: usize = 24;
    let outside = host_kustomization();
    // <temp>/.tmpXXXX/repo/app: the chain must climb at least that far to reach `/`.
    assert!(
        std::env::temp_dir().components().count() + 3 <= DEPTH,
        "the temporary directory {} is too deep for this test's chain of {DEPTH} '..'",
        std::env::temp_dir().display()
    );
    let host = outside.path().display().to_string();
    let chain = format!("{}{}", "../".repeat(DEPTH), host.trim_start_matches('/'));
    let deep: Vec<String> = (0..DEPTH).map(|level| format!("d{level}")).collect();
    let deep = format!("deep/{}", deep[1..].join("/"));
    let kustomization = format!("resources:\n  - {chain}\n");

    let repo = kustomize_repo();
    repo.write(&format!("{deep}/kustomization.yaml"), &kustomization)
        .symlink("app", &deep)
        // A base reached through a symlinked directory, from an overlay.
        .symlink("linked/base", &format!("../{deep}"))
        .write(
            "overlays/linked/kustomization.yaml",
            "resources:\n  - ../../linked/base\n",
        )
        // The same kustomization in a real directory.
        .write("plain/kustomization.yaml", &kustomization);
    for (path, file) in [
        ("app", "app/kustomization.yaml"),
        ("overlays/linked", "linked/base/kustomization.yaml"),
        ("plain", "plain/kustomization.yaml"),
    ] {
        let result = render_at(&repo, path, Renderer::Detect).await;
        let stolen = result
            .as_ref()
            .is_ok_and(|rendered| kind_names(rendered).contains(&"ConfigMap/stolen".to_owned()));
        assert!(!stolen, "{path}: the host's kustomization was rendered");
        let err = result.expect_err(path);
        assert_eq!(
            err.to_string(),
            format!("{file}: resources: {chain:?} leaves the repository"),
            "{path}"
        );
    }
}

/// Kustomize loads generators, transformers and validators like resources (directories, files
/// of plugin configuration, inline configuration), and fetches anything it cannot find locally
/// that looks like a repository: each of these ways to reach the network or the host is refused
/// before kustomize runs, naming the file, field and path.
#[tokio::test]
async fn generators_transformers_and_unknown_paths_cannot_reach_the_network() {
    let repo = TestRepo::new();
    repo.write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\n",
    )
    .write("base/kustomization.yaml", "resources: [cm.yaml]\n")
    .write(
        "gen/kustomization.yaml",
        "resources:\n  - https://evil.example.invalid/x.yaml\n",
    )
    .write(
        "plugins/patch.yaml",
        "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\npath: https://evil.example.invalid/patch.yaml\ntarget: {kind: ConfigMap}\n",
    )
    .write(
        "plugins/files.yaml",
        "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: stolen}\nfiles: [../../../../../../../../etc/hostname]\n",
    );
    let inline = "generators:\n  - |\n    apiVersion: builtin\n    kind: ConfigMapGenerator\n    metadata: {name: stolen}\n    files: [https://evil.example.invalid/p]\n";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "generators",
            "generators: [../../gen]\n".into(),
            "gen/kustomization.yaml: resources: ",
            "is a remote base",
        ),
        (
            "transformers",
            "transformers: [../../plugins/patch.yaml]\n".into(),
            "plugins/patch.yaml: path: ",
            "is a remote base",
        ),
        (
            "validators",
            "validators: [../../plugins/files.yaml]\n".into(),
            "plugins/files.yaml: files: ",
            "leaves the repository",
        ),
        (
            "inline",
            inline.into(),
            "kustomization.yaml: generators: ",
            "is a remote base",
        ),
        (
            "case",
            "resources: [GitHub.com/example/repo/base]\n".into(),
            "kustomization.yaml: resources: ",
            "is a remote base",
        ),
        (
            "scp",
            "resources: ['deploy@git.example.invalid:org/repo']\n".into(),
            "kustomization.yaml: resources: ",
            "is a remote base",
        ),
        (
            "missing",
            "resources: [../../base, ../../nowhere]\n".into(),
            "kustomization.yaml: resources: ",
            "not in the repository",
        ),
    ];
    for (name, kustomization, location, reason) in &cases {
        let dir = format!("overlays/{name}");
        let kustomization = if kustomization.starts_with("resources:") {
            kustomization.clone()
        } else {
            format!("resources: [../../base]\n{kustomization}")
        };
        repo.write(&format!("{dir}/kustomization.yaml"), &kustomization);
        let err = render_at(&repo, &dir, Renderer::Detect).await.expect_err(name);
        let message = err.to_string();
        assert!(
            matches!(err, RenderError::KustomizeRefused { .. })
                && message.contains(location)
                && message.contains(reason),
            "{name}: {message}"
        );
    }
}

#[tokio::test]
async fn a_render_that_outlives_its_timeout_is_killed_and_reported() {
    let repo = kustomize_repo();
    let limits = RenderLimits {
        timeout: std::time::Duration::from_millis(1),
        ..RenderLimits::default()
    };
    let err = common::render_committed(
        &repo,
        "overlays/prod",
        Renderer::Kustomize,
        TARGET,
        &limits,
        &Keys::new(),
    )
    .await
    .expect_err("cannot finish in 1 ms");
    assert_eq!(
        err.to_string(),
        "kustomize build overlays/prod did not finish within 1ms"
    );
}
