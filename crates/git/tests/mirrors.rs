//! The Git source against real repositories over file://, git daemon and smart HTTP.

use std::sync::Arc;

use driftless_core::application::{RepositoryCredentials, SecretSource};
use driftless_files::{Entry, ReadLimits};
use driftless_git::{GitError, Mirrors};
use driftless_testenv::git::{GitDaemon, GitHttpServer, SshServer, TestRepo};

fn mirrors() -> (tempfile::TempDir, Mirrors) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mirrors = Mirrors::new(dir.path().join("git"), Vec::new());
    (dir, mirrors)
}

/// Fetches `url` and resolves `main` to its commit id; `what` names the step in a failure.
async fn main_of(mirrors: &Mirrors, url: &str, what: &str) -> String {
    mirrors
        .fetch_and_resolve(url, "main")
        .await
        .unwrap_or_else(|err| panic!("{what}: {err:?}"))
        .as_str()
        .to_owned()
}

fn sample_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("apps/web/deployment.yaml", "kind: Deployment\n")
        .write("apps/web/service.yaml", "kind: Service\n")
        .write("apps/db/statefulset.yaml", "kind: StatefulSet\n")
        .write("scripts/run.sh", "#!/bin/sh\n")
        .symlink("apps/web/shared.yaml", "../../shared/config.yaml")
        .write("shared/config.yaml", "kind: ConfigMap\n");
    std::fs::set_permissions(
        repo.work_tree().join("scripts/run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    repo
}

#[tokio::test]
async fn resolves_branches_tags_and_commits_over_file_urls() {
    let repo = sample_repo();
    let first = repo.commit("first");
    repo.tag("v1.0.0");
    repo.write("apps/web/deployment.yaml", "kind: Deployment # v2\n");
    let second = repo.commit("second");
    let (_dir, mirrors) = mirrors();
    let url = repo.file_url();

    assert_eq!(main_of(&mirrors, &url, "main").await, second);
    assert_eq!(
        mirrors.resolve(&url, "HEAD").await.expect("HEAD").as_str(),
        second
    );
    assert_eq!(
        mirrors.resolve(&url, "v1.0.0").await.expect("tag").as_str(),
        first
    );
    assert_eq!(
        mirrors.resolve(&url, &first).await.expect("full commit").as_str(),
        first
    );
    assert_eq!(
        mirrors
            .resolve(&url, &first[..8])
            .await
            .expect("short commit")
            .as_str(),
        first
    );
    match mirrors.resolve(&url, "no-such-branch").await {
        Err(GitError::RevisionNotFound { revision, .. }) => assert_eq!(revision, "no-such-branch"),
        other => panic!("expected RevisionNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn reads_a_path_at_a_commit_without_a_work_tree() {
    let repo = sample_repo();
    let first = repo.commit("first");
    repo.write("apps/web/deployment.yaml", "kind: Deployment # v2\n");
    repo.commit("second");
    let (_dir, mirrors) = mirrors();
    let url = repo.file_url();
    let head = mirrors.fetch_and_resolve(&url, "main").await.expect("resolve");
    let old = mirrors.resolve(&url, &first).await.expect("resolve first");

    // Two applications at two revisions read concurrently, each its own snapshot.
    let (now, then) = tokio::join!(
        mirrors.read_tree(&url, &head, "apps/web"),
        mirrors.read_tree(&url, &old, "apps/web")
    );
    let (now, then) = (now.expect("read head"), then.expect("read first"));
    assert_eq!(
        now.read("apps/web/deployment.yaml").expect("file"),
        b"kind: Deployment # v2\n"
    );
    assert_eq!(
        then.read("apps/web/deployment.yaml").expect("file"),
        b"kind: Deployment\n"
    );
    assert!(
        now.entries.keys().all(|path| path.starts_with("apps/web/")),
        "{:?}",
        now.entries.keys()
    );
    assert_eq!(
        now.entries.get("apps/web/shared.yaml"),
        Some(&Entry::Symlink {
            target: "../../shared/config.yaml".into()
        })
    );

    let whole = mirrors.read_tree(&url, &head, "").await.expect("read all");
    assert_eq!(
        whole
            .read("apps/web/shared.yaml")
            .expect("symlink inside the repository"),
        b"kind: ConfigMap\n"
    );
    assert!(matches!(
        whole.entries.get("scripts/run.sh"),
        Some(Entry::File { executable: true, .. })
    ));
}

#[tokio::test]
async fn fetches_are_incremental_and_follow_force_pushes() {
    let repo = sample_repo();
    let first = repo.commit("first");
    let (_dir, mirrors) = mirrors();
    let url = repo.file_url();
    assert_eq!(main_of(&mirrors, &url, "first fetch").await, first);

    repo.write("apps/db/statefulset.yaml", "kind: StatefulSet # v2\n");
    let second = repo.commit("second");
    assert_eq!(
        mirrors
            .resolve(&url, "main")
            .await
            .expect("before fetching")
            .as_str(),
        first,
        "no fetch, no change"
    );
    assert_eq!(main_of(&mirrors, &url, "second fetch").await, second);

    let first_id = mirrors.resolve(&url, &first).await.expect("first");
    let second_id = mirrors.resolve(&url, &second).await.expect("second");
    assert_eq!(
        mirrors
            .changed_paths(&url, &first_id, &second_id)
            .await
            .expect("diff"),
        vec!["apps/db/statefulset.yaml"]
    );

    repo.force_push(&first, "main");
    assert_eq!(main_of(&mirrors, &url, "after force push").await, first);
}

#[tokio::test]
async fn concurrent_first_fetches_share_one_mirror() {
    let repo = sample_repo();
    let head = repo.commit("first");
    let (_dir, mirrors) = mirrors();
    let mirrors = Arc::new(mirrors);
    let url = repo.file_url();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (mirrors, url) = (Arc::clone(&mirrors), url.clone());
            tokio::spawn(async move { mirrors.fetch_and_resolve(&url, "main").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("join").expect("fetch").as_str(), head);
    }
    assert_eq!(mirrors.clone_count(), 1, "one clone; the others fetched into it");
    let root = mirrors
        .mirror_dir(&url)
        .parent()
        .expect("the mirrors' root")
        .to_owned();
    let left: Vec<_> = std::fs::read_dir(&root)
        .expect("the mirrors' root")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert_eq!(
        left,
        vec![mirrors.mirror_dir(&url)],
        "one mirror, no clone left beside it"
    );
}

#[tokio::test]
async fn fetches_over_git_daemon() {
    let repo = sample_repo();
    let head = repo.commit("first");
    let daemon = GitDaemon::start(repo.root());
    let (_dir, mirrors) = mirrors();
    let url = daemon.url("origin.git");
    assert_eq!(main_of(&mirrors, &url, "fetch over git://").await, head);
}

#[tokio::test]
async fn fetches_over_http_with_basic_auth_and_never_leaks_the_password() {
    let repo = sample_repo();
    let head = repo.commit("first");
    let server = GitHttpServer::start(repo.root(), Some(("bot", "correct-horse"))).await;
    let url = server.url("origin.git");
    let dir = tempfile::tempdir().expect("tempdir");

    // No credentials: refused, with a clear error.
    let anonymous = Mirrors::new(dir.path().join("anonymous"), Vec::new());
    let err = anonymous
        .fetch(&url)
        .await
        .expect_err("authentication is required");
    assert!(err.to_string().contains("failed to clone"), "{err}");

    // Wrong password in the URL itself: the error must not repeat it.
    let inline = format!("http://bot:wrong-password@{}", url.trim_start_matches("http://"));
    let err = anonymous.fetch(&inline).await.expect_err("wrong password");
    assert!(!format!("{err} {err:?}").contains("wrong-password"), "{err:?}");

    // Configured credentials (password from a file) work.
    let password_file = dir.path().join("token");
    std::fs::write(&password_file, "correct-horse\n").expect("write");
    let credentials = RepositoryCredentials {
        url_prefix: "http://127.0.0.1".into(),
        username: Some("bot".into()),
        password: Some(SecretSource::File(password_file)),
        ssh_private_key: None,
        known_hosts: None,
    };
    let authorised = Mirrors::new(dir.path().join("authorised"), vec![credentials]);
    assert_eq!(main_of(&authorised, &url, "fetch with credentials").await, head);
    assert!(server.requests() > 0);

    // Nor is either password in any file of the mirrors: config, packed-refs, FETCH_HEAD, logs…
    for (mirrors, password) in [("anonymous", "wrong-password"), ("authorised", "correct-horse")] {
        let searched = driftless_testenv::leaks::assert_no_file_holds(&dir.path().join(mirrors), password);
        assert!(
            mirrors == "anonymous" || searched > 5,
            "the {mirrors} mirror was searched ({searched} files)"
        );
    }
}

#[tokio::test]
async fn fetches_over_ssh_with_a_key_and_checks_the_host_key() {
    let repo = sample_repo();
    let head = repo.commit("first");
    let server = SshServer::start(repo.root());
    let url = server.url("origin.git");
    let dir = tempfile::tempdir().expect("tempdir");
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, server.known_hosts()).expect("write");
    let key = std::fs::read_to_string(server.client_key_path()).expect("key");
    let with = |key: Option<SecretSource>, known_hosts: SecretSource| {
        vec![RepositoryCredentials {
            url_prefix: "ssh://".into(),
            username: None,
            password: None,
            ssh_private_key: key,
            known_hosts: Some(known_hosts),
        }]
    };

    // The right key and the server's host key: fetched.
    let good = Mirrors::new(
        dir.path().join("good"),
        with(
            Some(SecretSource::File(server.client_key_path())),
            SecretSource::File(known_hosts.clone()),
        ),
    );
    assert_eq!(
        good.fetch_and_resolve(&url, "main")
            .await
            .unwrap_or_else(|err| panic!("fetch over ssh: {err:?}\nsshd log:\n{}", server.log()))
            .as_str(),
        head
    );

    // A real host key that is not the server's (as a man in the middle would present): refused
    // before any authentication.
    let impostor = dir.path().join("impostor_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&impostor)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let impostor_public = std::fs::read_to_string(impostor.with_extension("pub")).expect("read");
    let port_prefix = server.known_hosts().split(' ').next().expect("host").to_owned();
    let impostor = dir.path().join("impostor_known_hosts");
    std::fs::write(&impostor, format!("{port_prefix} {impostor_public}")).expect("write");
    let spoofed = Mirrors::new(
        dir.path().join("spoofed"),
        with(
            Some(SecretSource::File(server.client_key_path())),
            SecretSource::File(impostor),
        ),
    );
    let err = spoofed.fetch(&url).await.expect_err("host key mismatch");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("Host key verification failed"), "{shown}");
    assert!(!shown.contains(key.trim()), "the private key leaked: {shown}");

    // No key: the server refuses.
    let keyless = Mirrors::new(
        dir.path().join("keyless"),
        with(None, SecretSource::File(known_hosts)),
    );
    let err = keyless.fetch(&url).await.expect_err("no key, no access");
    assert!(err.to_string().contains("Permission denied"), "{err}");
}

#[tokio::test]
async fn hostile_urls_and_revisions_run_nothing() {
    let repo = sample_repo();
    repo.commit("first");
    let (dir, mirrors) = mirrors();
    let marker = dir.path().join("pwned");

    let ext = format!("ext::sh -c touch% {}", marker.display());
    let err = mirrors.fetch(&ext).await.expect_err("ext:: transport is refused");
    assert!(err.to_string().contains("failed to clone"), "{err}");

    let url = repo.file_url();
    mirrors.fetch(&url).await.expect("fetch");
    let injected = format!("--upload-pack=touch {}", marker.display());
    assert!(matches!(
        mirrors.resolve(&url, &injected).await,
        Err(GitError::RevisionNotFound { .. })
    ));
    let option_url = format!("--upload-pack=touch {}", marker.display());
    assert!(mirrors.fetch(&option_url).await.is_err());
    assert!(!marker.exists(), "a hostile input ran a command");
}

#[tokio::test]
async fn oversized_reads_are_refused() {
    let repo = sample_repo();
    repo.commit("first");
    let dir = tempfile::tempdir().expect("tempdir");
    let mirrors = Mirrors::new(dir.path().join("git"), Vec::new()).with_limits(ReadLimits {
        max_files: 3,
        max_bytes: 1 << 20,
    });
    let url = repo.file_url();
    let head = mirrors.fetch_and_resolve(&url, "main").await.expect("fetch");
    let err = mirrors
        .read_tree(&url, &head, "")
        .await
        .expect_err("6 files exceed 3");
    assert!(matches!(err, GitError::TooLarge { .. }), "{err}");
    assert!(
        mirrors.read_tree(&url, &head, "apps/web").await.is_ok(),
        "3 files are within the limit"
    );
}
