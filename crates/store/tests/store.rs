//! The store on a real SQLite file: history, inventory, pins, and recovery after a crash.

use std::collections::BTreeMap;

use driftless_core::health::Health;
use driftless_core::{GroupVersionKind, HealthState, ObjectRef};
use driftless_store::{
    AppliedState, EventKind, EventRecord, ObjectAction, ObjectOutcome, RenderRecord, Store, SyncEffects,
    SyncResult, Trigger,
};

fn config_map(name: &str) -> ObjectRef {
    ObjectRef::new(
        &GroupVersionKind::from_api_version("v1", "ConfigMap").expect("valid"),
        Some("web"),
        name,
    )
}

#[test]
fn syncs_are_recorded_with_their_objects_newest_first() {
    let store = Store::open_in_memory().expect("open");
    let first = store
        .begin_sync("web", "aaaa", "main", Trigger::Automated, 1_000)
        .expect("begin");
    let outcomes = vec![
        ObjectOutcome {
            object: config_map("a"),
            action: ObjectAction::Created,
            message: String::new(),
        },
        ObjectOutcome {
            object: config_map("b"),
            action: ObjectAction::Failed,
            message: "rejected: field is immutable".into(),
        },
    ];
    store
        .finish_sync(
            first,
            SyncResult::Failed,
            "1 object failed",
            &outcomes,
            2_000,
            None,
        )
        .expect("finish");
    let second = store
        .begin_sync("web", "bbbb", "main", Trigger::Manual, 3_000)
        .expect("begin");
    store
        .finish_sync(second, SyncResult::Succeeded, "", &[], 4_000, None)
        .expect("finish");
    store
        .begin_sync("other", "cccc", "main", Trigger::Manual, 5_000)
        .expect("another application");

    let history = store.history("web", 10).expect("history");
    assert_eq!(
        history.iter().map(|r| r.revision.as_str()).collect::<Vec<_>>(),
        vec!["bbbb", "aaaa"]
    );
    assert_eq!(history[1].result, SyncResult::Failed);
    assert_eq!((history[1].summary.created, history[1].summary.failed), (1, 1));
    assert_eq!(history[1].finished_at, Some(2_000));
    assert_eq!(store.sync_objects(first).expect("objects"), outcomes);
    let unchanged = ObjectOutcome {
        object: config_map("same"),
        action: ObjectAction::Unchanged,
        message: String::new(),
    };
    let quiet = store
        .begin_sync("web", "c3", "main", Trigger::Automated, 5)
        .expect("begin");
    store
        .finish_sync(quiet, SyncResult::Succeeded, "", &[unchanged], 6, None)
        .expect("finish");
    assert!(
        store.sync_objects(quiet).expect("objects").is_empty(),
        "unchanged objects are counted, not listed"
    );
    assert_eq!(store.history("web", 1).expect("history")[0].summary.unchanged, 1);
    assert!(store.was_synced("web", "bbbb").expect("lookup"));
    assert!(
        !store.was_synced("web", "aaaa").expect("lookup"),
        "a failed sync is not a synced revision"
    );
    assert_eq!(store.history("web", 1).expect("limited").len(), 1);
}

#[test]
fn a_sync_running_when_the_process_died_is_marked_interrupted_on_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state/driftless.db");
    let id = {
        let store = Store::open(&path).expect("open");
        store
            .begin_sync("web", "aaaa", "main", Trigger::Automated, 1_000)
            .expect("begin")
    };
    // Another process (a CLI command) opening the database leaves a live owner's sync alone.
    let concurrent = Store::open(&path).expect("open while the sync runs");
    assert_eq!(
        concurrent.history("web", 1).expect("history")[0].result,
        SyncResult::Running
    );
    drop(concurrent);

    // The owner dies mid-sync: hand the record to a process that has exited.
    let mut child = std::process::Command::new("true").spawn().expect("spawn true");
    let dead_pid = child.id();
    child.wait().expect("reap");
    rusqlite::Connection::open(&path)
        .and_then(|db| {
            db.execute(
                "UPDATE syncs SET owner_pid = ?1 WHERE id = ?2",
                rusqlite::params![dead_pid, id],
            )
        })
        .expect("simulate a dead owner");
    let reopened = Store::open(&path).expect("reopen");
    let history = reopened.history("web", 10).expect("history");
    assert_eq!(history[0].result, SyncResult::Interrupted);
    assert_eq!(history[0].message, "driftless stopped while this sync ran");
}

#[test]
fn inventories_are_replaced_atomically_and_kept_per_application() {
    let store = Store::open_in_memory().expect("open");
    let versioned = |names: &[&str]| -> BTreeMap<ObjectRef, String> {
        names
            .iter()
            .map(|name| (config_map(name), "v1".to_owned()))
            .collect()
    };
    // Inventories are written by the sync that changed them.
    let set_inventory = |application: &str, objects: &BTreeMap<ObjectRef, String>| {
        let id = store
            .begin_sync(application, "abc", "main", Trigger::Manual, 1)
            .expect("begin");
        let effects = SyncEffects {
            application,
            inventory: Some(objects),
            applied: &BTreeMap::new(),
        };
        store
            .finish_sync(id, SyncResult::Succeeded, "", &[], 2, Some(effects))
            .expect("finish");
    };
    set_inventory("web", &versioned(&["a", "b"]));
    set_inventory("other", &versioned(&["z"]));
    assert_eq!(store.inventory("web").expect("read"), versioned(&["a", "b"]));
    set_inventory("web", &versioned(&["b", "c"]));
    assert_eq!(store.inventory("web").expect("read"), versioned(&["b", "c"]));
    assert_eq!(store.inventory("other").expect("read").len(), 1);
    assert!(store.inventory("unknown").expect("read").is_empty());
}

#[test]
fn applied_state_is_updated_and_forgotten_per_object() {
    let store = Store::open_in_memory().expect("open");
    // Version 2 carries what a later read recorded: the resourceVersion and health seen then.
    let state = |hash: &str| AppliedState {
        desired_hash: hash.to_owned(),
        fingerprint: format!("fp-{hash}"),
        resource_version: (hash == "2").then(|| "4711".to_owned()),
        health: (hash == "2").then(|| Health {
            state: HealthState::Progressing,
            message: "waiting for rollout".to_owned(),
        }),
    };
    let changes: BTreeMap<ObjectRef, Option<AppliedState>> = [
        (config_map("a"), Some(state("1"))),
        (config_map("b"), Some(state("1"))),
    ]
    .into();
    store.update_applied("web", &changes).expect("record");
    store
        .update_applied("other", &[(config_map("a"), Some(state("9")))].into())
        .expect("record other");
    store
        .update_applied(
            "web",
            &[(config_map("a"), Some(state("2"))), (config_map("b"), None)].into(),
        )
        .expect("update");
    let web = store.applied("web").expect("read");
    assert_eq!(web, [(config_map("a"), state("2"))].into());
    assert_eq!(
        store.applied("other").expect("read")[&config_map("a")],
        state("9")
    );
}

#[test]
fn a_finished_sync_records_its_inventory_and_applied_states_with_it() {
    let store = Store::open_in_memory().expect("open");
    let state = AppliedState {
        desired_hash: "h".to_owned(),
        fingerprint: "f".to_owned(),
        resource_version: Some("7".to_owned()),
        health: None,
    };
    let applied: BTreeMap<ObjectRef, Option<AppliedState>> = [(config_map("a"), Some(state.clone()))].into();
    let inventory: BTreeMap<ObjectRef, String> = [(config_map("a"), "v1".to_owned())].into();
    let id = store
        .begin_sync("web", "abc", "main", Trigger::Manual, 1)
        .expect("begin");
    let effects = SyncEffects {
        application: "web",
        inventory: Some(&inventory),
        applied: &applied,
    };
    store
        .finish_sync(id, SyncResult::Succeeded, "", &[], 2, Some(effects))
        .expect("finish");
    assert_eq!(store.inventory("web").expect("read"), inventory);
    assert_eq!(
        store.applied("web").expect("read"),
        [(config_map("a"), state)].into()
    );

    // An unchanged inventory (None) is left as it was.
    let id = store
        .begin_sync("web", "abc", "main", Trigger::Manual, 3)
        .expect("begin");
    let effects = SyncEffects {
        application: "web",
        inventory: None,
        applied: &BTreeMap::new(),
    };
    store
        .finish_sync(id, SyncResult::Succeeded, "", &[], 4, Some(effects))
        .expect("finish");
    assert_eq!(store.inventory("web").expect("read"), inventory);
}

#[test]
fn pins_persist_until_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("driftless.db");
    Store::open(&path).expect("open").pin("web", "aaaa").expect("pin");
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.pinned("web").expect("read").as_deref(), Some("aaaa"));
    store.pin("web", "bbbb").expect("re-pin");
    assert_eq!(store.pinned("web").expect("read").as_deref(), Some("bbbb"));
    assert!(store.unpin("web").expect("unpin"));
    assert!(!store.unpin("web").expect("unpin again"));
    assert_eq!(store.pinned("web").expect("read"), None);
}

/// Set in the children of the test below: the database each of them opens.
const OPENER: &str = "DRIFTLESS_TEST_STORE_OPENER";
const MIGRATED: &str = "migrations applied: ";

#[test]
fn processes_opening_a_new_database_at_once_do_not_both_migrate_it() {
    use std::io::{Read as _, Write as _};
    use std::process::{Command, Stdio};

    if let Some(path) = std::env::var_os(OPENER) {
        // A child: wait for the parent's word, so every child opens at about the same moment.
        let mut go = [0u8; 1];
        std::io::stdin().read_exact(&mut go).expect("the parent's go");
        let store = Store::open(std::path::Path::new(&path)).expect("every concurrent open succeeds");
        println!("{MIGRATED}{}", store.migrations_applied());
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("driftless.db");
    // Separate processes, as `driftless serve` and CLI commands are: SQLite's locks between
    // processes, not a mutex inside one, must keep them apart.
    let mut children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(std::env::current_exe().expect("this test binary"))
                .args([
                    "--exact",
                    "processes_opening_a_new_database_at_once_do_not_both_migrate_it",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(OPENER, &path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a child")
        })
        .collect();
    for child in &mut children {
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(b"g")
            .expect("tell a child to go");
    }
    let mut applied = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("wait for a child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "a child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let count: usize = stdout
            .lines()
            .find_map(|line| line.split_once(MIGRATED).map(|(_, count)| count))
            .unwrap_or_else(|| panic!("the child ran the test and said how many steps it applied:\n{stdout}"))
            .parse()
            .expect("a count");
        applied.push(count);
    }
    let every_step = Store::open_in_memory().expect("open").migrations_applied();
    assert!(every_step > 0);
    applied.sort_unstable();
    let mut expected = vec![0; 7];
    expected.push(every_step);
    assert_eq!(
        applied, expected,
        "one process migrated the new database, every other found it current"
    );
}

#[test]
fn events_are_kept_per_application_newest_first_and_bounded() {
    let store = Store::open_in_memory().expect("store");
    for time in 0..510 {
        let event = EventRecord {
            time,
            kind: EventKind::DriftDetected,
            message: format!("drift {time}"),
        };
        store.record_event("web", &event).expect("record");
    }
    let backoff = EventRecord {
        time: 1,
        kind: EventKind::SelfHealBackoff,
        message: "backing off".into(),
    };
    store.record_event("db", &backoff).expect("record");
    let web = store.events("web", 1000).expect("events");
    assert_eq!(web.len(), 500, "only the newest 500 are kept");
    assert_eq!(web[0].message, "drift 509");
    assert_eq!(web[499].message, "drift 10");
    assert_eq!(store.events("db", 10).expect("events"), vec![backoff]);
}

#[test]
fn the_last_render_is_kept_per_application_across_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let first = RenderRecord {
        key: "k1".into(),
        revision: "a".repeat(40),
        rendered_at: 1,
        body: b"[1]".to_vec(),
    };
    let second = RenderRecord {
        key: "k2".into(),
        revision: "b".repeat(40),
        rendered_at: 2,
        body: b"[2]".to_vec(),
    };
    {
        let store = Store::open(&path).expect("store");
        assert_eq!(store.render("web").expect("render"), None);
        store.save_render("web", &first).expect("save");
        store.save_render("web", &second).expect("replace");
        store.save_render("db", &first).expect("save");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.render("web").expect("render"), Some(second));
    store.forget_render("db").expect("forget");
    assert_eq!(store.render("db").expect("render"), None);
}

#[test]
fn a_kept_render_moves_to_a_new_revision_without_being_rewritten() {
    let store = Store::open_in_memory().expect("store");
    store
        .move_render("absent", "c".repeat(40).as_str(), 5)
        .expect("no render: nothing to move");
    assert_eq!(store.render("absent").expect("render"), None);
    let kept = RenderRecord {
        key: "k".into(),
        revision: "a".repeat(40),
        rendered_at: 1,
        body: b"[1]".to_vec(),
    };
    store.save_render("web", &kept).expect("save");
    store.move_render("web", &"b".repeat(40), 2).expect("move");
    let moved = store.render("web").expect("render").expect("kept");
    assert_eq!(
        (moved.revision, moved.rendered_at, moved.body),
        ("b".repeat(40), 2, kept.body)
    );
}
