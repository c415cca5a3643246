//! Charts pulled from real chart repositories on loopback: an HTTP repository whose archives and
//! `index.yaml` real Helm wrote (`helm package`, `helm repo index`), behind basic auth, and a real
//! OCI registry (`docker-registry`) the charts were pushed to with `helm push`.

use std::path::Path;
use std::time::Duration;

use driftless_charts::{ChartError, ChartLimits, ChartRef, Charts};
use driftless_core::application::{RepositoryCredentials, SecretSource};
use driftless_files::Entry;
use driftless_testenv::charts::{ChartRepositoryServer, Registry, package, push, repo_index};

/// `web` at `version`, whose ConfigMap says which version rendered it.
fn write_chart(dir: &Path, version: &str) -> std::path::PathBuf {
    let chart = dir.join(format!("src-{version}/web"));
    std::fs::create_dir_all(chart.join("templates")).expect("chart directory");
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: web\nversion: {version}\n"),
    )
    .expect("Chart.yaml");
    std::fs::write(
        chart.join("templates/cm.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  version: \"{version}\"\n"),
    )
    .expect("template");
    chart
}

/// A directory of packaged versions with Helm's index.
fn repository(versions: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("repository directory");
    for version in versions {
        let chart = write_chart(dir.path(), version);
        package(&chart, &dir.path().join("charts"));
    }
    repo_index(&dir.path().join("charts"));
    dir
}

fn chart(repository: &str, version: &str) -> ChartRef {
    ChartRef {
        repository: repository.to_owned(),
        name: "web".into(),
        version: version.into(),
        plain_http: repository.starts_with("oci://"),
    }
}

fn password_file(dir: &Path, password: &str) -> SecretSource {
    let path = dir.join("password");
    std::fs::write(&path, password).expect("password file");
    SecretSource::File(path)
}

fn credentials(prefix: String, password: SecretSource) -> RepositoryCredentials {
    RepositoryCredentials {
        url_prefix: prefix,
        username: Some("robot".into()),
        password: Some(password),
        ssh_private_key: None,
        known_hosts: None,
    }
}

fn template(pulled: &driftless_charts::PulledChart) -> String {
    match pulled.files.entries.get("templates/cm.yaml") {
        Some(Entry::File { contents, .. }) => String::from_utf8_lossy(contents).into_owned(),
        other => panic!("no template: {other:?}"),
    }
}

#[tokio::test]
async fn an_http_repository_behind_basic_auth_serves_ranges_and_exact_versions() {
    const PASSWORD: &str = "s3cret-canary-4b1d";
    let repo = repository(&["1.0.0", "1.2.0", "2.0.0"]);
    let server = ChartRepositoryServer::start(repo.path(), Some(("robot", PASSWORD))).await;
    let cache = tempfile::tempdir().expect("cache");
    let secrets = tempfile::tempdir().expect("secrets");
    let charts = Charts::new(
        Some(cache.path().to_owned()),
        vec![credentials(
            server.url("charts"),
            password_file(secrets.path(), PASSWORD),
        )],
        ChartLimits::default(),
    );
    let url = server.url("charts");

    let pulled = charts.pull(&chart(&url, "^1")).await.expect("a range");
    assert_eq!(pulled.version, "1.2.0");
    assert!(template(&pulled).contains("1.2.0"));
    let archive = std::fs::read(repo.path().join("charts/web-1.2.0.tgz")).expect("archive");
    let digest = format!("sha256:{}", sha256_hex(&archive));
    assert_eq!(pulled.digest, digest, "the digest is the archive's");
    let kept: Vec<String> = std::fs::read_dir(cache.path())
        .expect("cache")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .any(|name| name.starts_with(&format!("sha256-{}-", sha256_hex(&archive)))),
        "the archive is kept by digest and by the entry that fetched it: {kept:?}"
    );

    let exact = charts.pull(&chart(&url, "1.0.0")).await.expect("exact");
    assert_eq!(exact.version, "1.0.0");
    let requests = server.seen().len();
    charts.pull(&chart(&url, "1.0.0")).await.expect("again");
    charts.pull(&chart(&url, "^1")).await.expect("again");
    assert_eq!(
        server.seen().len(),
        requests,
        "an unchanged chart costs no request"
    );

    let err = charts
        .pull(&chart(&url, "3.x"))
        .await
        .expect_err("no such version");
    assert_eq!(
        err.to_string(),
        format!("no version of chart web in {url} matches \"3.x\" (it has 1.0.0, 1.2.0, 2.0.0)")
    );

    // Without the credentials the repository says no, and the error says who.
    let anonymous = Charts::new(None, Vec::new(), ChartLimits::default());
    let err = anonymous
        .pull(&chart(&url, "1.0.0"))
        .await
        .expect_err("unauthorized");
    assert!(matches!(err, ChartError::Status { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("/charts/index.yaml"), "{err}");
    assert!(!format!("{err} {err:?}").contains(PASSWORD), "{err:?}");

    // The kept archives hold the charts, never the password that fetched them.
    let searched = driftless_testenv::leaks::assert_no_file_holds(cache.path(), PASSWORD);
    assert!(
        searched >= 2,
        "both pulled archives were searched ({searched} files)"
    );
}

#[tokio::test]
async fn a_new_release_in_range_is_picked_up_once_the_index_is_renewed() {
    let repo = repository(&["1.0.0"]);
    let server = ChartRepositoryServer::start(repo.path(), None).await;
    let charts = Charts::new(
        None,
        Vec::new(),
        ChartLimits {
            index_lifetime: Duration::ZERO,
            ..ChartLimits::default()
        },
    );
    let reference = chart(&server.url("charts"), "1.x");
    let first = charts.pull(&reference).await.expect("first");
    assert_eq!(first.version, "1.0.0");
    let again = charts.pull(&reference).await.expect("unchanged");
    assert_eq!(again.digest, first.digest);

    let chart_dir = write_chart(repo.path(), "1.1.0");
    package(&chart_dir, &repo.path().join("charts"));
    repo_index(&repo.path().join("charts"));
    let newer = charts.pull(&reference).await.expect("renewed");
    assert_eq!(newer.version, "1.1.0");
    assert_ne!(newer.digest, first.digest, "a new archive, a new digest");
}

#[tokio::test]
async fn credentials_and_requests_stay_on_the_repositorys_origin() {
    let repo = repository(&["1.0.0", "1.1.0"]);
    let elsewhere_dir = tempfile::tempdir().expect("elsewhere");
    std::fs::create_dir_all(elsewhere_dir.path().join("charts")).expect("charts");
    std::fs::copy(
        repo.path().join("charts/web-1.0.0.tgz"),
        elsewhere_dir.path().join("charts/web-1.0.0.tgz"),
    )
    .expect("the same archive elsewhere");
    let elsewhere = ChartRepositoryServer::start(elsewhere_dir.path(), None).await;
    // The index names an archive on another origin (an internal address, say).
    let index_path = repo.path().join("charts/index.yaml");
    let index = std::fs::read_to_string(&index_path).expect("index");
    let other = elsewhere.url("charts/web-1.0.0.tgz");
    std::fs::write(
        &index_path,
        index.replace("- web-1.0.0.tgz", &format!("- {other}")),
    )
    .expect("index");
    let server = ChartRepositoryServer::start(repo.path(), None).await;
    // 1.1.0's archive redirects to the other origin.
    server.redirect("charts/web-1.1.0.tgz", &elsewhere.url("charts/web-1.0.0.tgz"));
    let secrets = tempfile::tempdir().expect("secrets");
    let charts = Charts::new(
        None,
        // Credentials for a private path only: the public index gets none.
        vec![credentials(
            server.url("private"),
            password_file(secrets.path(), "s3cret"),
        )],
        ChartLimits::default(),
    );
    let url = server.url("charts");

    let err = charts
        .pull(&chart(&url, "1.0.0"))
        .await
        .expect_err("another origin");
    assert!(
        err.to_string()
            .contains("points at another host; add it to repositories[]"),
        "{err}"
    );
    let err = charts
        .pull(&chart(&url, "1.1.0"))
        .await
        .expect_err("a redirect elsewhere");
    assert!(err.to_string().contains("redirected to another origin"), "{err}");
    assert!(
        elsewhere.seen().is_empty(),
        "nothing reached the other origin: {:?}",
        elsewhere.seen()
    );
    assert!(
        server.seen().iter().all(|seen| !seen.authorized),
        "no credentials outside their prefix: {:?}",
        server.seen()
    );

    // A repositories[] entry for the other origin allows it.
    let allowed = Charts::new(
        None,
        vec![RepositoryCredentials {
            url_prefix: elsewhere.url("charts"),
            username: None,
            password: None,
            ssh_private_key: None,
            known_hosts: None,
        }],
        ChartLimits::default(),
    );
    assert_eq!(
        allowed
            .pull(&chart(&url, "1.0.0"))
            .await
            .expect("allowed")
            .version,
        "1.0.0"
    );
}

#[tokio::test]
async fn a_tampered_or_oversized_archive_is_refused() {
    let repo = repository(&["1.0.0", "1.1.0"]);
    // 1.0.0's archive no longer matches the digest in the index.
    let tampered = write_chart(repo.path(), "1.0.0");
    std::fs::write(tampered.join("templates/evil.yaml"), "kind: ClusterRoleBinding\n").expect("evil");
    let staging = repo.path().join("staging");
    let archive = package(&tampered, &staging);
    std::fs::copy(&archive, repo.path().join("charts/web-1.0.0.tgz")).expect("swap the archive");
    let server = ChartRepositoryServer::start(repo.path(), None).await;
    let charts = Charts::new(
        None,
        Vec::new(),
        ChartLimits {
            max_archive_bytes: 64,
            ..ChartLimits::default()
        },
    );
    let url = server.url("charts");
    let err = charts.pull(&chart(&url, "1.1.0")).await.expect_err("too large");
    assert!(
        err.to_string().contains("larger than the limit of 64 bytes"),
        "{err}"
    );
    let charts = Charts::new(None, Vec::new(), ChartLimits::default());
    let err = charts.pull(&chart(&url, "1.0.0")).await.expect_err("tampered");
    assert!(matches!(err, ChartError::Digest { .. }), "{err}");
    assert!(err.to_string().starts_with("chart web 1.0.0 from"), "{err}");
}

#[tokio::test]
async fn an_oci_registry_serves_charts_pushed_by_helm() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().expect("charts");
    let mut archives = Vec::new();
    for version in ["1.0.0", "1.2.0"] {
        let archive = package(&write_chart(dir.path(), version), &dir.path().join("out"));
        push(&archive, &registry.url("charts"));
        archives.push(archive);
    }
    let cache = tempfile::tempdir().expect("cache");
    let charts = Charts::new(Some(cache.path().to_owned()), Vec::new(), ChartLimits::default());
    let url = registry.url("charts");

    let newest = charts.pull(&chart(&url, ">=1.0 <2")).await.expect("a range");
    assert_eq!(newest.version, "1.2.0");
    assert!(template(&newest).contains("1.2.0"));
    let expected = std::fs::read(&archives[1]).expect("archive");
    assert_eq!(newest.digest, format!("sha256:{}", sha256_hex(&expected)));

    let exact = charts.pull(&chart(&url, "1.0.0")).await.expect("exact");
    assert_eq!(exact.version, "1.0.0");
    assert!(template(&exact).contains("1.0.0"));

    let err = charts
        .pull(&chart(&url, "~1.1"))
        .await
        .expect_err("none in range");
    assert!(err.to_string().contains("(it has 1.0.0, 1.2.0)"), "{err}");
    let err = charts.pull(&chart(&url, "9.9.9")).await.expect_err("no such tag");
    assert!(err.to_string().contains("charts/web:9.9.9"), "{err}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

/// A digest is no secret: tenant A's own registry can serve a manifest naming the layer digest
/// of tenant B's chart, which B pulled with B's credentials. A gets what A's registry answers
/// for that layer (from memory and from the disk cache alike), never B's chart.
#[tokio::test]
async fn a_kept_oci_layer_goes_only_to_pulls_with_the_credentials_that_fetched_it() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().expect("charts");
    let archive = package(&write_chart(dir.path(), "1.0.0"), &dir.path().join("out"));
    push(&archive, &registry.url("b"));
    let layer = std::fs::read(&archive).expect("archive");
    let digest = format!("sha256:{}", sha256_hex(&layer));
    // A's "registry": a plain server with a Helm chart manifest and no blobs.
    let a_dir = tempfile::tempdir().expect("a");
    let manifests = a_dir.path().join("v2/a/web/manifests");
    std::fs::create_dir_all(&manifests).expect("manifests");
    std::fs::write(
        manifests.join("1.0.0"),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:{}","size":2}},"layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{digest}","size":{}}}]}}"#,
            sha256_hex(b"{}"),
            layer.len()
        ),
    )
    .expect("manifest");
    let a = ChartRepositoryServer::start(a_dir.path(), None).await;
    let a_url = a.url("a").replace("http://", "oci://");
    let secrets = tempfile::tempdir().expect("secrets");
    let cache = tempfile::tempdir().expect("cache");
    let charts = || {
        Charts::new(
            Some(cache.path().to_owned()),
            vec![credentials(
                registry.url("b"),
                password_file(secrets.path(), "b-secret"),
            )],
            ChartLimits::default(),
        )
    };
    let first = charts();
    let pulled = first
        .pull(&chart(&registry.url("b"), "1.0.0"))
        .await
        .expect("B's chart");
    assert_eq!(pulled.digest, digest);

    for (round, charts) in [("in memory", first), ("on disk", charts())] {
        let err = charts
            .pull(&chart(&a_url, "1.0.0"))
            .await
            .expect_err(&format!("{round}: B's chart is B's"));
        assert!(err.to_string().starts_with("127.0.0.1:"), "{round}: {err}");
    }
    let blobs = a
        .seen()
        .iter()
        .filter(|seen| seen.path == format!("/v2/a/web/blobs/{digest}"))
        .count();
    assert_eq!(blobs, 2, "A's registry was asked each time: {:?}", a.seen());
}
