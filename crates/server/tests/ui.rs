//! The web UI in real headless Chromium against a real server, controller and control plane:
//! tests/ui/flows.cjs signs in, filters, watches a live update, syncs and rolls back by clicking;
//! this test then checks the cluster and the screenshots it took. tests/ui/conversion_notes.cjs
//! reads a converted child's page.

mod common;

use std::path::Path;
use std::sync::Arc;

use driftless_core::access::{Grant, Role};
use driftless_engine::{Controller, SyncOptions};
use driftless_testenv::TestEnv;
use driftless_testenv::git::TestRepo;
use k8s_openapi::api::core::v1::ConfigMap;

const SECRET_VALUE: &str = "hunter2-never-in-the-browser";
/// The badge fills of style.css, as the screenshots hold them.
const OK: [u8; 3] = [0x1a, 0x7f, 0x37];
const WARN: [u8; 3] = [0xbf, 0x87, 0x00];

/// With a hostile value: markup from a repository must show as text, never run.
fn config_map(colour: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata: {{colour: {colour}, note: '<img src=x onerror=\"window.pwned=1\">'}}\n"
    )
}

fn application(name: &str, repo: &TestRepo, path: &str, namespace: &str, automated: bool) -> String {
    let policy = if automated { "automated: {}, " } else { "" };
    format!(
        "  - apiVersion: driftless.dev/v1alpha1\n    kind: Application\n    metadata: {{ name: {name} }}\n    spec:\n      source: {{ repoURL: '{}', path: {path} }}\n      destination: {{ cluster: local, namespace: '{namespace}' }}\n      syncPolicy: {{ {policy}interval: 1h }}\n",
        repo.file_url()
    )
}

/// Pixels of exactly `colour` in the PNG at `path`, and its width.
fn count_pixels(path: &Path, colour: [u8; 3]) -> (usize, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let channels = info.color_type.samples();
    assert!(
        channels >= 3,
        "{}: colour expected, got {:?}",
        path.display(),
        info.color_type
    );
    let count = pixels[..info.buffer_size()]
        .chunks_exact(channels)
        .filter(|pixel| pixel[..3] == colour)
        .count();
    (count, info.width)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_filter_sync_and_roll_back_by_clicking_in_chromium() {
    driftless_testenv::browser::assert_installed();
    let env = TestEnv::new("ui").await;
    let repo = TestRepo::new();
    repo.write("web/settings.yaml", &config_map("blue"));
    repo.write(
        "web/secret.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData: {{password: {SECRET_VALUE}}}\n"),
    );
    repo.write(
        "other/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other-settings}\ndata: {colour: red}\n",
    );
    repo.write(
        "workload/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: workload}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: workload}}\n  template:\n    metadata: {labels: {app: workload}}\n    spec: {containers: [{name: web, image: 'example.invalid/web:1'}]}\n",
    );
    repo.write(
        "broken/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, map\n",
    );
    let old = repo.commit("blue");
    let dir = tempfile::tempdir().expect("dir");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\napplications:\n{}{}{}{}",
        env.kubeconfig_path().display(),
        application("web", &repo, "web", &env.namespace, false),
        application("other", &repo, "other", &env.namespace, true),
        application("broken", &repo, "broken", &env.namespace, true),
        application("workload", &repo, "workload", &env.namespace, true),
    );
    let engine = common::engine(&text, dir.path());
    let controller = Controller::new(Arc::clone(&engine), 2);
    // One successful sync of the old commit, so that the history has something to roll back to.
    controller
        .sync_now("web", SyncOptions::default())
        .await
        .expect("first sync");
    repo.write("web/settings.yaml", &config_map("green"));
    let new = repo.commit("green");

    let token = |name: &str, role| {
        let grant = Grant {
            role,
            applications: Vec::new(),
            labels: std::collections::BTreeMap::new(),
        };
        engine.store().create_token(name, &grant, 0).expect("token")
    };
    let (admin, viewer) = (token("admin", Role::Admin), token("viewer", Role::Viewer));
    let running = Arc::clone(&controller);
    tokio::spawn(async move { running.run(std::future::pending()).await });
    let base = common::serve_tcp(&controller).await;

    let shots = dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/flows.cjs");
    let script_env: Vec<(String, String)> = [
        ("DRIFTLESS_URL", base),
        ("ADMIN_TOKEN", admin),
        ("VIEWER_TOKEN", viewer),
        ("SECRET_VALUE", SECRET_VALUE.to_owned()),
        ("OLD_REVISION", old),
        ("NEW_REVISION", new),
        ("SCREENSHOT_DIR", shots.display().to_string()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    // The browser blocks its thread for the whole flow; the server runs on the runtime's others.
    let output = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = script_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        driftless_testenv::browser::run_script(&script, &env)
    })
    .await
    .expect("the flow ran");
    println!("{output}");
    // The rollback the flow clicked put the old value back in the cluster.
    let settings = env.api::<ConfigMap>().get("settings").await.expect("settings");
    assert_eq!(
        settings
            .data
            .unwrap_or_default()
            .get("colour")
            .map(String::as_str),
        Some("blue")
    );

    check_screenshots(&shots);
}

/// The screenshots show what the page claimed: an out-of-sync badge before the sync, none after.
fn check_screenshots(shots: &Path) {
    // To look at them: DRIFTLESS_KEEP_SCREENSHOTS=/some/dir cargo test -p driftless-server --test ui
    if let Some(keep) = std::env::var_os("DRIFTLESS_KEEP_SCREENSHOTS") {
        for entry in std::fs::read_dir(shots).expect("screenshots") {
            let path = entry.expect("entry").path();
            std::fs::create_dir_all(&keep).expect("keep dir");
            std::fs::copy(&path, Path::new(&keep).join(path.file_name().expect("name"))).expect("copy");
        }
    }

    let overview = shots.join("overview.png");
    let (green, width) = count_pixels(&overview, OK);
    assert_eq!(width, 1280, "a laptop-width viewport");
    assert!(
        green > 200,
        "the overview shows Synced/Healthy badges: {green} pixels"
    );
    assert!(count_pixels(&overview, WARN).0 > 200, "and web's OutOfSync badge");
    assert!(count_pixels(&shots.join("app-out-of-sync.png"), WARN).0 > 200);
    let synced = shots.join("app-synced.png");
    assert!(count_pixels(&synced, OK).0 > 200);
    assert_eq!(
        count_pixels(&synced, WARN).0,
        0,
        "nothing out of sync once synced"
    );
    assert!(count_pixels(&shots.join("app-rolled-back.png"), OK).0 > 200);
}

/// A child converted from an Argo CD Application shows, on its page, the fields that only change
/// how Argo CD behaves (tests/ui/conversion_notes.cjs); its root shows none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converted_childs_page_lists_what_differs_from_argo_cd() {
    driftless_testenv::browser::assert_installed();
    let env = TestEnv::new("ui-notes").await;
    let repo = TestRepo::new();
    repo.write(
        "apps/history.yaml",
        &common::argo_application_keeping_history(&repo, &env.namespace),
    );
    repo.write("web/settings.yaml", &config_map("blue"));
    repo.commit("an Argo CD Application keeping a revision history");
    let dir = tempfile::tempdir().expect("dir");
    let text = format!(
        "apiVersion: driftless.dev/v1alpha1\nkind: Config\nclusters:\n  - {{ name: local, kubeconfig: '{}' }}\napplications:\n{}",
        env.kubeconfig_path().display(),
        application("root", &repo, "apps", &env.namespace, false),
    );
    let engine = common::engine(&text, dir.path());
    let grant = Grant {
        role: Role::Viewer,
        applications: Vec::new(),
        labels: std::collections::BTreeMap::new(),
    };
    let token = engine.store().create_token("viewer", &grant, 0).expect("token");
    let controller = Controller::new(engine, 1);
    let base = common::serve_tcp(&controller).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/conversion_notes.cjs");
    let note = common::HISTORY_NOTE;
    let output = tokio::task::spawn_blocking(move || {
        driftless_testenv::browser::run_script(
            &script,
            &[
                ("DRIFTLESS_URL", &base),
                ("VIEWER_TOKEN", &token),
                ("CONVERSION_NOTE", note),
            ],
        )
    })
    .await
    .expect("the flow ran");
    println!("{output}");
}
