//! Hostile repositories: trees whose entries are named `..`, `.git`, `.GIT` or hold a backslash,
//! built object by object (no work tree can hold them) and served over file:// and git daemon.
//! Fetching verifies objects (git's fsck refuses `..` and `.git`); a mirror that already holds
//! such a tree (fetched before that check existed) is refused again when a tree is read, with the
//! path named. And a credential in a repository URL never reaches the mirror on disk.

use driftless_git::Mirrors;
use driftless_testenv::git::{GitDaemon, GitHttpServer, RawEntry, TestRepo, git};

const PLAIN: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";

/// `apps/a/cm.yaml` and, beside it, `apps/a/<hostile…>/pwned.txt`.
fn repo_with(hostile: &[&str]) -> TestRepo {
    let repo = TestRepo::new();
    let mut components = vec!["apps", "a"];
    components.extend_from_slice(hostile);
    components.push("pwned.txt");
    repo.commit_raw_tree(
        "main",
        &[
            RawEntry::file(&["apps", "a", "cm.yaml"], PLAIN),
            RawEntry::file(&components, "pwned\n"),
        ],
    );
    repo
}

/// Each hostile shape, with what git's fsck says about it (None: fsck accepts it).
fn variants() -> Vec<(&'static str, Vec<&'static str>, Option<&'static str>)> {
    vec![
        (
            "nested ..",
            vec!["x", "..", "..", "..", "..", ".."],
            Some("hasDotdot"),
        ),
        ("lone ..", vec![".."], Some("hasDotdot")),
        (".git", vec![".git", "hooks"], Some("hasDotgit")),
        (".GIT", vec![".GIT"], Some("hasDotgit")),
        ("backslash", vec!["a\\b"], None),
        ("control character", vec!["a\u{1b}[31mb"], None),
    ]
}

fn mirrors() -> (tempfile::TempDir, Mirrors) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mirrors = Mirrors::new(dir.path().join("git"), Vec::new());
    (dir, mirrors)
}

#[tokio::test]
async fn fetches_verify_objects_and_refuse_dot_dot_and_dot_git_trees() {
    for (name, hostile, fsck) in variants() {
        let Some(fsck) = fsck else { continue };
        let repo = repo_with(&hostile);
        let daemon = GitDaemon::start(repo.root());
        for url in [repo.file_url(), daemon.url("origin.git")] {
            let (_dir, mirrors) = mirrors();
            let err = mirrors
                .fetch(&url)
                .await
                .expect_err(&format!("{name} over {url}: the fetch must be refused"));
            let text = err.to_string();
            assert!(text.contains(fsck), "{name} over {url}: {text}");
            assert!(
                !mirrors.mirror_dir(&url).exists(),
                "{name}: no half-made mirror is kept"
            );
        }
    }
}

/// A mirror made by a plain `git clone --mirror` (no object checks), where [`Mirrors`] keeps it.
fn unchecked_mirror(mirrors: &Mirrors, url: &str) {
    let dir = mirrors.mirror_dir(url);
    std::fs::create_dir_all(dir.parent().expect("parent")).expect("mirrors dir");
    git(
        dir.parent().expect("parent"),
        &[
            "clone",
            "--quiet",
            "--mirror",
            "--no-local",
            url,
            &dir.display().to_string(),
        ],
    );
}

#[tokio::test]
async fn reading_a_tree_leaves_out_hostile_paths_already_in_a_mirror_and_refuses_their_directory() {
    for (name, hostile, _) in variants() {
        let repo = repo_with(&hostile);
        let daemon = GitDaemon::start(repo.root());
        for url in [repo.file_url(), daemon.url("origin.git")] {
            let (_dir, mirrors) = mirrors();
            unchecked_mirror(&mirrors, &url);
            let commit = mirrors.resolve(&url, "main").await.expect("resolve");
            for path in ["", "apps", "apps/a"] {
                let tree = mirrors.read_tree(&url, &commit, path).await.expect("read");
                assert_eq!(
                    tree.entries.keys().collect::<Vec<_>>(),
                    vec!["apps/a/cm.yaml"],
                    "{name}: only the safe entry is kept"
                );
                let err = tree.check_under(path).expect_err(&format!(
                    "{name} over {url} at {path:?}: the directory must be refused"
                ));
                let text = err.to_string();
                let shown = format!("{:?}", format!("apps/a/{}/pwned.txt", hostile.join("/")));
                assert!(
                    text.contains(&shown),
                    "{name} over {url}: the error names the path {shown}: {text}"
                );
            }
            // Paths beside the hostile entry are still readable.
            let elsewhere = mirrors
                .read_tree(&url, &commit, "apps/a/cm.yaml")
                .await
                .expect("a file beside it");
            assert_eq!(elsewhere.entries.len(), 1, "{name}");
        }
    }
}

#[tokio::test]
async fn reading_a_tree_refuses_hostile_symlink_targets_when_followed() {
    let repo = TestRepo::new();
    repo.commit_raw_tree(
        "main",
        &[
            RawEntry::file(&["base", "cm.yaml"], PLAIN),
            RawEntry::symlink(&["app", "ok.yaml"], "../base/cm.yaml"),
            RawEntry::symlink(&["app", "one"], "..\\base\\cm.yaml"),
            RawEntry::symlink(&["app", "two"], "../.git/config"),
            RawEntry::symlink(&["app", "three"], "../base/cm.yaml\0x"),
            RawEntry::symlink(&["app", "four"], "../base//cm.yaml"),
        ],
    );
    let (_dir, mirrors) = mirrors();
    let url = repo.file_url();
    let commit = mirrors.fetch_and_resolve(&url, "main").await.expect("fetch");
    let tree = mirrors.read_tree(&url, &commit, "").await.expect("read");
    assert_eq!(tree.read("app/ok.yaml").expect("inside"), PLAIN.as_bytes());
    for (link, reason) in [
        ("app/one", "backslash"),
        ("app/two", ".git"),
        ("app/three", "control character"),
        ("app/four", "empty"),
    ] {
        let err = tree.resolve(link).expect_err(link).to_string();
        assert!(err.contains(link) && err.contains(reason), "{link}: {err}");
    }
}

#[tokio::test]
async fn a_credential_in_the_repository_url_never_reaches_the_mirror_on_disk() {
    const TOKEN: &str = "canarytoken-3f9a1c";
    let repo = TestRepo::new();
    repo.write("apps/a/cm.yaml", PLAIN);
    repo.commit("first");
    let server = GitHttpServer::start(repo.root(), Some(("user", TOKEN))).await;
    let url = server
        .url("origin.git")
        .replacen("http://", &format!("http://user:{TOKEN}@"), 1);
    let (dir, mirrors) = mirrors();
    let first = mirrors.fetch_and_resolve(&url, "main").await.expect("clone");
    // A mirror cloned by an earlier driftless held the URL as given: the next fetch cleans it.
    git(
        &mirrors.mirror_dir(&url),
        &["config", "remote.origin.url", url.as_str()],
    );
    repo.write("apps/a/cm.yaml", &format!("{PLAIN}data: {{a: b}}\n"));
    let second = repo.commit("second");
    let fetched = mirrors.fetch_and_resolve(&url, "main").await.expect("fetch");
    assert_ne!(first, fetched);
    assert_eq!(fetched.as_str(), second, "the incremental fetch worked");

    let files = driftless_testenv::leaks::assert_no_file_holds(dir.path(), TOKEN);
    assert!(files > 5, "the mirror was searched ({files} files)");
}

/// A loopback HTTP server answering each request with `respond(request head)` and keeping every
/// request head it saw.
fn recording_server(
    respond: impl Fn(&str) -> String + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let authority = listener.local_addr().expect("address").to_string();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let response = respond(&head);
            kept.lock().expect("lock").push(head);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (authority, seen)
}

#[tokio::test]
async fn a_redirect_to_another_host_never_receives_the_credential() {
    let (other, seen) = recording_server(|_| {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"other\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_owned()
    });
    let location = format!("http://{other}/stolen.git/info/refs?service=git-upload-pack");
    let (first, _) = recording_server(move |_| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let (_dir, mirrors) = mirrors();
    let url = format!("http://bot:canary-secret@{first}/origin.git");
    let err = mirrors.fetch(&url).await.expect_err("the other host refuses");
    let heads = seen.lock().expect("lock").clone();
    assert!(!heads.is_empty(), "git followed the redirect: {err}");
    for head in &heads {
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "the other host received a credential:\n{head}"
        );
    }
}

/// Writes `raw` as a commit object as it is (no checks) and points `main` at it.
fn raw_commit(repo: &TestRepo, raw: &str) -> String {
    let origin = repo.root().join("origin.git");
    let file = origin.join("raw-commit");
    std::fs::write(&file, raw).expect("raw commit");
    let id = git(
        &origin,
        &["hash-object", "-t", "commit", "--literally", "-w", "raw-commit"],
    );
    let id = id.trim().to_owned();
    git(&origin, &["update-ref", "refs/heads/main", &id]);
    id
}

#[tokio::test]
async fn histories_with_harmless_quirks_of_old_tools_are_fetched() {
    let repo = TestRepo::new();
    repo.write("apps/a/cm.yaml", PLAIN);
    let mut parent = repo.commit("first");
    let origin = repo.root().join("origin.git");
    let tree = git(&origin, &["rev-parse", &format!("{parent}^{{tree}}")]);
    let tree = tree.trim();
    // Each a quirk real histories hold (git's fsck ids): badTimezone, zeroPaddedDate,
    // missingSpaceBeforeDate, badEmail.
    for (author, committer) in [
        (
            "A <a@example.com> 1234567890 +0000",
            "C <c@example.com> 1234567890 +15",
        ),
        (
            "A <a@example.com> 01234567890 +0000",
            "C <c@example.com> 1234567890 +0000",
        ),
        (
            "A <a@example.com>1234567890 +0000",
            "C <c@example.com> 1234567890 +0000",
        ),
        (
            "A <a@example.com> 1234567890 +0000",
            "C <c@exa>mple.com> 1234567890 +0000",
        ),
    ] {
        parent = raw_commit(
            &repo,
            &format!("tree {tree}\nparent {parent}\nauthor {author}\ncommitter {committer}\n\nold\n"),
        );
    }
    let daemon = GitDaemon::start(repo.root());
    for url in [repo.file_url(), daemon.url("origin.git")] {
        let (_dir, mirrors) = mirrors();
        let fetched = mirrors
            .fetch_and_resolve(&url, "main")
            .await
            .unwrap_or_else(|err| panic!("{url}: an old history is fetched: {err}"));
        assert_eq!(fetched.as_str(), parent);
    }
    // Path checks stay errors: `fetches_verify_objects_and_refuse_dot_dot_and_dot_git_trees`.
}

/// Hostile entries in an unrelated directory of a monorepo.
fn monorepo_with_junk() -> TestRepo {
    let repo = TestRepo::new();
    repo.commit_raw_tree(
        "main",
        &[
            RawEntry::file(&["apps", "web", "kustomization.yaml"], "resources: [cm.yaml]\n"),
            RawEntry::file(&["apps", "web", "cm.yaml"], PLAIN),
            RawEntry::file(&["junk", "a\\b"], "x\n"),
            RawEntry::file(&["junk", "Icon\r"], ""),
            RawEntry::symlink(&["junk", "self"], "."),
        ],
    );
    repo
}

#[tokio::test]
async fn hostile_entries_in_another_directory_do_not_stop_a_whole_repository_read() {
    let repo = monorepo_with_junk();
    let (_dir, mirrors) = mirrors();
    let url = repo.file_url();
    let commit = mirrors.fetch_and_resolve(&url, "main").await.expect("fetch");
    let tree = mirrors
        .read_tree(&url, &commit, "")
        .await
        .expect("read the whole repository");
    let copy = tempfile::tempdir().expect("tempdir");
    tree.materialize(copy.path(), driftless_files::ReadLimits::default())
        .expect("the repository is written for kustomize");
    assert!(copy.path().join("apps/web/kustomization.yaml").is_file());
    assert_eq!(tree.check_under("apps/web"), Ok(()), "apps/web is unaffected");
    for (named, reason) in [
        (r#""junk/a\\b""#, "backslash"),
        (r#""junk/Icon\r""#, "control character"),
        (r#""junk/self""#, "loop"),
    ] {
        assert!(
            tree.refused
                .iter()
                .any(|e| e.to_string().contains(named) && e.to_string().contains(reason)),
            "{named} is left out: {:?}",
            tree.refused
        );
    }
    let err = tree.check_under("junk").expect_err("junk holds them").to_string();
    assert!(err.contains("junk/"), "{err}");
}
