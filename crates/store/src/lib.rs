//! driftless's embedded database (SQLite, one file under the data directory): every sync with its
//! per-object outcome, each application's inventory (what it applied, for pruning), and revisions
//! pinned by a rollback.
//!
//! Beside identities, actions and messages, the last render of each application is kept (so a
//! new process need not render an unchanged commit again) — only renders without Secrets: a
//! Secret's value is never stored.
//! Calls are synchronous; async callers run them on a blocking thread. Timestamps are passed in
//! (Unix milliseconds), so behaviour does not depend on the clock in tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

mod state;
mod tokens;

pub use state::StateStore;
pub use tokens::{TOKEN_PREFIX, TokenRecord};

use driftless_core::ObjectRef;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r"
    CREATE TABLE syncs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        application TEXT NOT NULL,
        revision TEXT NOT NULL,
        requested_revision TEXT NOT NULL,
        trigger TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        result TEXT NOT NULL,
        owner_pid INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX syncs_by_application ON syncs (application, id DESC);
    CREATE TABLE sync_objects (
        sync_id INTEGER NOT NULL REFERENCES syncs (id) ON DELETE CASCADE,
        object TEXT NOT NULL,
        action TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX sync_objects_by_sync ON sync_objects (sync_id);
    CREATE TABLE inventory (
        application TEXT NOT NULL,
        object TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (application, object)
    );
    CREATE TABLE pins (
        application TEXT PRIMARY KEY,
        revision TEXT NOT NULL
    );
",
    r"
    CREATE TABLE applied (
        application TEXT NOT NULL,
        object TEXT NOT NULL,
        desired_hash TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (application, object)
    );
",
    r"
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        application TEXT NOT NULL,
        time INTEGER NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_application ON events (application, id);
",
    r"
    CREATE TABLE renders (
        application TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        revision TEXT NOT NULL,
        rendered_at INTEGER NOT NULL,
        body BLOB NOT NULL
    );
",
    r"
    ALTER TABLE applied ADD COLUMN resource_version TEXT;
    ALTER TABLE applied ADD COLUMN health TEXT;
",
    r"
    CREATE TABLE tokens (
        name TEXT PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL,
        applications TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
    );
",
    r"
    CREATE TABLE suspended (
        application TEXT PRIMARY KEY,
        since INTEGER NOT NULL
    );
",
    r"
    ALTER TABLE tokens ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
",
    r"
    CREATE TABLE declared_names (
        name TEXT PRIMARY KEY,
        root TEXT NOT NULL
    );
",
];

/// An application's last render, as the engine serialised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderRecord {
    /// What the render depended on besides the commit (the engine's digest of its inputs).
    pub key: String,
    pub revision: String,
    /// Milliseconds since the Unix epoch.
    pub rendered_at: i64,
    pub body: Vec<u8>,
}

/// Events kept per application; older ones are dropped as new ones arrive.
const EVENTS_KEPT: i64 = 500;

/// Something the controller noticed about an application, beside its syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Live objects stopped matching Git at the revision last synced.
    DriftDetected,
    /// Self-heal keeps reverting changes made again by another writer, and waits longer each time.
    SelfHealBackoff,
    /// A commit was not deployed: its signature (or an earlier one's) is not trusted.
    SignatureRefused,
}

/// One entry of an application's event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// Milliseconds since the Unix epoch.
    pub time: i64,
    pub kind: EventKind,
    pub message: String,
}

/// Returned by [`Store`] operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the database {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error while trying to {action}")]
    Sql {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("corrupt record while trying to {action}: {message}")]
    Corrupt { action: &'static str, message: String },
    #[error("{what} already exists")]
    Exists { what: String },
    #[error("failed to make {path} private to its user")]
    Permissions {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Creates `dir` (and its parents) if needed and makes it mode 0700: driftless's state (the
/// database with token hashes and history, Git mirrors, charts, the API socket) is its user's
/// alone, whatever the umask. An existing directory that others could read is tightened.
pub fn private_directory(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    let failed = |source| StoreError::Permissions {
        path: dir.display().to_string(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(failed(err)),
    }
    let mode = std::fs::metadata(dir).map_err(failed)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(())
}

/// Makes the database file (created empty if missing) and its `-wal`/`-shm` files, if present,
/// mode 0600. SQLite gives the `-wal` and `-shm` files it creates the database file's mode.
fn private_database_files(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let failed = |path: &Path| {
        let path = path.display().to_string();
        move |source| StoreError::Permissions { path, source }
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(failed(path))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        let Ok(metadata) = std::fs::metadata(file) else {
            continue;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).map_err(failed(file))?;
        }
    }
    Ok(())
}

fn sql(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sql { action, source }
}

/// What started a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    Automated,
    Manual,
    Rollback,
    SelfHeal,
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SyncResult {
    Running,
    Succeeded,
    Failed,
    /// The process stopped while the sync ran; found and marked on the next start.
    Interrupted,
}

/// What happened to one object in a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectAction {
    Created,
    Configured,
    Unchanged,
    Pruned,
    /// Left Git but stays (pruning off, `prune: "false"`, owned elsewhere).
    Kept,
    /// Not applied (ownership conflict, or an earlier wave failed).
    Skipped,
    Failed,
}

/// What a finished sync leaves behind besides its record (see [`Store::finish_sync`]).
#[derive(Debug, Clone, Copy)]
pub struct SyncEffects<'a> {
    pub application: &'a str,
    /// The application's inventory from now on; `None` when it did not change.
    pub inventory: Option<&'a BTreeMap<ObjectRef, String>>,
    /// Applied states to record (`Some`) or forget (`None`).
    pub applied: &'a BTreeMap<ObjectRef, Option<AppliedState>>,
}

/// The store records it; the core decides what it means.
pub use driftless_core::applied::AppliedState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectOutcome {
    pub object: ObjectRef,
    pub action: ObjectAction,
    pub message: String,
}

/// Counts per action, kept with each sync for listings. A sync that never finished has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Summary {
    pub created: usize,
    pub configured: usize,
    pub unchanged: usize,
    pub pruned: usize,
    pub kept: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl Summary {
    #[must_use]
    pub fn of(outcomes: &[ObjectOutcome]) -> Self {
        let mut summary = Self::default();
        for outcome in outcomes {
            *match outcome.action {
                ObjectAction::Created => &mut summary.created,
                ObjectAction::Configured => &mut summary.configured,
                ObjectAction::Unchanged => &mut summary.unchanged,
                ObjectAction::Pruned => &mut summary.pruned,
                ObjectAction::Kept => &mut summary.kept,
                ObjectAction::Skipped => &mut summary.skipped,
                ObjectAction::Failed => &mut summary.failed,
            } += 1;
        }
        summary
    }
}

/// One recorded sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRecord {
    pub id: i64,
    pub application: String,
    /// The commit applied.
    pub revision: String,
    /// The revision as configured (branch, tag, commit).
    pub requested_revision: String,
    pub trigger: Trigger,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub result: SyncResult,
    pub message: String,
    pub summary: Summary,
}

/// The database. Safe to share between threads; one connection, serialised.
pub struct Store {
    connection: Mutex<Connection>,
    migrations_applied: usize,
}

fn write_inventory(
    transaction: &rusqlite::Transaction<'_>,
    application: &str,
    objects: &BTreeMap<ObjectRef, String>,
) -> Result<(), StoreError> {
    transaction
        .execute(
            "DELETE FROM inventory WHERE application = ?1",
            params![application],
        )
        .map_err(sql("write the inventory"))?;
    let mut insert = transaction
        .prepare("INSERT INTO inventory (application, object, version) VALUES (?1, ?2, ?3)")
        .map_err(sql("write the inventory"))?;
    for (object, version) in objects {
        insert
            .execute(params![application, to_text(object), version])
            .map_err(sql("write the inventory"))?;
    }
    Ok(())
}

fn write_applied(
    transaction: &rusqlite::Transaction<'_>,
    application: &str,
    changes: &BTreeMap<ObjectRef, Option<AppliedState>>,
) -> Result<(), StoreError> {
    let mut upsert = transaction
        .prepare(
            "INSERT INTO applied (application, object, desired_hash, fingerprint, resource_version, health) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (application, object) DO UPDATE SET \
             desired_hash = ?3, fingerprint = ?4, resource_version = ?5, health = ?6",
        )
        .map_err(sql("write the applied state"))?;
    let mut delete = transaction
        .prepare("DELETE FROM applied WHERE application = ?1 AND object = ?2")
        .map_err(sql("write the applied state"))?;
    for (object, state) in changes {
        match state {
            Some(state) => upsert.execute(params![
                application,
                to_text(object),
                state.desired_hash,
                state.fingerprint,
                state.resource_version,
                state.health.as_ref().map(to_text),
            ]),
            None => delete.execute(params![application, to_text(object)]),
        }
        .map_err(sql("write the applied state"))?;
    }
    Ok(())
}

fn to_text<T: Serialize>(value: &T) -> String {
    // Plain enums and structs of strings and numbers always serialise.
    serde_json::to_string(value).expect("store records always serialise to JSON")
}

fn from_text<T: for<'de> Deserialize<'de>>(action: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt {
        action,
        message: err.to_string(),
    })
}

/// Enum columns hold the bare serde name (`succeeded`), not a JSON string.
fn enum_text<T: Serialize>(value: &T) -> String {
    to_text(value).trim_matches('"').to_owned()
}

fn enum_from<T: for<'de> Deserialize<'de>>(action: &'static str, text: &str) -> Result<T, StoreError> {
    from_text(action, &format!("\"{text}\""))
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, and marks syncs that were
    /// running when the last process stopped as interrupted.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|parent| !parent.exists()) {
            private_directory(parent)?;
        }
        private_database_files(path)?;
        let connection = Connection::open(path).map_err(open_error)?;
        // Before anything else: other processes (`serve`, CLI commands) may hold locks right now.
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_error)?;
        // Switching a new database to WAL while another process does the same can answer
        // "database is locked" at once, without waiting on the busy timeout: retry for as long.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match connection.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(failure, _))
                    if failure.code == rusqlite::ErrorCode::DatabaseBusy
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                result => break result.map_err(open_error)?,
            }
        }
        Self::prepare(connection)
    }

    /// A private in-memory database, for tests and dry runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory().map_err(|source| StoreError::Open {
            path: ":memory:".into(),
            source,
        })?;
        Self::prepare(connection)
    }

    fn prepare(mut connection: Connection) -> Result<Self, StoreError> {
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql("set the busy timeout"))?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(sql("enable foreign keys"))?;
        // Exclusive: two processes opening a new database at once must not both migrate it (the
        // second waits, then finds the schema current).
        let migration = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(sql("lock the database for migration"))?;
        let applied: i64 = migration
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql("read the schema version"))?;
        let applied = usize::try_from(applied).unwrap_or(0);
        let mut migrations_applied = 0;
        for (index, step) in (1_i64..).zip(MIGRATIONS).skip(applied) {
            migration.execute_batch(step).map_err(sql("migrate the schema"))?;
            migration
                .pragma_update(None, "user_version", index)
                .map_err(sql("record the schema version"))?;
            migrations_applied += 1;
        }
        migration.commit().map_err(sql("migrate the schema"))?;
        let store = Self {
            connection: Mutex::new(connection),
            migrations_applied,
        };
        store.recover_interrupted()?;
        Ok(store)
    }

    /// How many schema migration steps this open applied: all of them for a new database, none
    /// when the schema was already current (migrated earlier, or by another process opening it at
    /// the same time).
    #[must_use]
    pub fn migrations_applied(&self) -> usize {
        self.migrations_applied
    }

    /// Marks syncs as interrupted whose process is gone: it stopped (crashed, was killed) while
    /// they ran. Syncs of live processes, e.g. a running `driftless serve`, are left alone, so any
    /// number of processes may open the database. Returns how many were marked.
    pub fn recover_interrupted(&self) -> Result<usize, StoreError> {
        let connection = self.connection();
        let mut query = connection
            .prepare("SELECT id, owner_pid FROM syncs WHERE result = 'running'")
            .map_err(sql("find running syncs"))?;
        let running: Vec<(i64, i64)> = query
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(sql("find running syncs"))?
            .collect::<Result<_, _>>()
            .map_err(sql("find running syncs"))?;
        let mut marked = 0;
        for (id, pid) in running {
            if Path::new("/proc").join(pid.to_string()).exists() && pid != 0 {
                continue;
            }
            marked += connection
                .execute(
                    "UPDATE syncs SET result = 'interrupted', message = 'driftless stopped while this sync ran' WHERE id = ?1",
                    params![id],
                )
                .map_err(sql("mark an interrupted sync"))?;
        }
        Ok(marked)
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back), so a
        // poisoned lock is safe to keep using.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the start of a sync; returns its id.
    pub fn begin_sync(
        &self,
        application: &str,
        revision: &str,
        requested_revision: &str,
        trigger: Trigger,
        now: i64,
    ) -> Result<i64, StoreError> {
        let connection = self.connection();
        connection
            .execute(
                "INSERT INTO syncs (application, revision, requested_revision, trigger, started_at, result, owner_pid) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
                params![application, revision, requested_revision, enum_text(&trigger), now, std::process::id()],
            )
            .map_err(sql("record a sync"))?;
        Ok(connection.last_insert_rowid())
    }

    /// Records how a sync ended, with every object's outcome, and what it leaves behind
    /// (`effects`) in the same transaction: the record, the inventory and the applied states never
    /// disagree after a crash, and a sync costs one commit however much it changed.
    pub fn finish_sync(
        &self,
        id: i64,
        result: SyncResult,
        message: &str,
        outcomes: &[ObjectOutcome],
        now: i64,
        effects: Option<SyncEffects<'_>>,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(sql("finish a sync"))?;
        transaction
            .execute(
                "UPDATE syncs SET finished_at = ?2, result = ?3, message = ?4, summary = ?5 WHERE id = ?1",
                params![
                    id,
                    now,
                    enum_text(&result),
                    message,
                    to_text(&Summary::of(outcomes))
                ],
            )
            .map_err(sql("finish a sync"))?;
        {
            let mut insert = transaction
                .prepare(
                    "INSERT INTO sync_objects (sync_id, object, action, message) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(sql("record object outcomes"))?;
            // Unchanged objects are counted in the summary, not listed: a no-op sync of a large
            // application would otherwise add a row per object to the history every time.
            for outcome in outcomes.iter().filter(|o| o.action != ObjectAction::Unchanged) {
                insert
                    .execute(params![
                        id,
                        to_text(&outcome.object),
                        enum_text(&outcome.action),
                        outcome.message
                    ])
                    .map_err(sql("record object outcomes"))?;
            }
        }
        if let Some(effects) = effects {
            if let Some(inventory) = effects.inventory {
                write_inventory(&transaction, effects.application, inventory)?;
            }
            write_applied(&transaction, effects.application, effects.applied)?;
        }
        transaction.commit().map_err(sql("finish a sync"))
    }

    /// The latest syncs of `application`, newest first.
    pub fn history(&self, application: &str, limit: usize) -> Result<Vec<SyncRecord>, StoreError> {
        let connection = self.connection();
        let mut query = connection
            .prepare(
                "SELECT id, application, revision, requested_revision, trigger, started_at, finished_at, result, message, summary \
                 FROM syncs WHERE application = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(sql("read history"))?;
        let rows = query
            .query_map(
                params![application, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, String>(4)?,
                        row.get::<_, i64>(5)?,
                        row.get::<_, Option<i64>>(6)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, String>(8)?,
                        row.get::<_, String>(9)?,
                    ))
                },
            )
            .map_err(sql("read history"))?;
        let mut records = Vec::new();
        for row in rows {
            let (
                id,
                application,
                revision,
                requested_revision,
                trigger,
                started_at,
                finished_at,
                result,
                message,
                summary,
            ) = row.map_err(sql("read history"))?;
            records.push(SyncRecord {
                id,
                application,
                revision,
                requested_revision,
                trigger: enum_from("read history", &trigger)?,
                started_at,
                finished_at,
                result: enum_from("read history", &result)?,
                message,
                summary: from_text("read history", &summary)?,
            });
        }
        Ok(records)
    }

    /// Every object outcome of one sync, in the order recorded.
    pub fn sync_objects(&self, id: i64) -> Result<Vec<ObjectOutcome>, StoreError> {
        let connection = self.connection();
        let mut query = connection
            .prepare("SELECT object, action, message FROM sync_objects WHERE sync_id = ?1 ORDER BY rowid")
            .map_err(sql("read sync objects"))?;
        let rows = query
            .query_map(params![id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(sql("read sync objects"))?;
        rows.map(|row| {
            let (object, action, message) = row.map_err(sql("read sync objects"))?;
            Ok(ObjectOutcome {
                object: from_text("read sync objects", &object)?,
                action: enum_from("read sync objects", &action)?,
                message,
            })
        })
        .collect()
    }

    /// Whether `revision` (a commit) was ever synced successfully for `application`.
    pub fn was_synced(&self, application: &str, revision: &str) -> Result<bool, StoreError> {
        self.connection()
            .query_row(
                "SELECT 1 FROM syncs WHERE application = ?1 AND revision = ?2 AND result = 'succeeded' LIMIT 1",
                params![application, revision],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(sql("look up a synced revision"))
    }

    /// The commit of the application's latest successful sync.
    pub fn last_synced_revision(&self, application: &str) -> Result<Option<String>, StoreError> {
        self.connection()
            .query_row(
                "SELECT revision FROM syncs WHERE application = ?1 AND result = 'succeeded' ORDER BY id DESC LIMIT 1",
                params![application],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql("look up the last synced revision"))
    }

    /// What `application` applied last (for pruning), with the API version each was applied as,
    /// so objects whose manifests left Git can still be looked up.
    pub fn inventory(&self, application: &str) -> Result<BTreeMap<ObjectRef, String>, StoreError> {
        self.by_object(
            "SELECT object, version FROM inventory WHERE application = ?1",
            "read the inventory",
            application,
            |row| row.get(1),
        )
    }

    /// For each object `application` last brought in sync: the hash of the manifest from Git and
    /// the fingerprint of the live object right after (see `driftless_core::fingerprint`). Both
    /// unchanged means the object needs neither a read nor a write.
    pub fn applied(&self, application: &str) -> Result<BTreeMap<ObjectRef, AppliedState>, StoreError> {
        self.by_object(
            "SELECT object, desired_hash, fingerprint, resource_version, health FROM applied \
             WHERE application = ?1",
            "read the applied state",
            application,
            |row| {
                Ok(AppliedState {
                    desired_hash: row.get(1)?,
                    fingerprint: row.get(2)?,
                    resource_version: row.get(3)?,
                    // Unreadable (from another version) is as good as unknown: read the object.
                    health: row
                        .get::<_, Option<String>>(4)?
                        .and_then(|health| serde_json::from_str(&health).ok()),
                })
            },
        )
    }

    /// The rows `query` selects for `application`, keyed by their first column (an object
    /// reference as JSON); `value` reads the rest of a row.
    fn by_object<T>(
        &self,
        query: &str,
        action: &'static str,
        application: &str,
        value: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<BTreeMap<ObjectRef, T>, StoreError> {
        let connection = self.connection();
        let mut statement = connection.prepare(query).map_err(sql(action))?;
        let rows = statement
            .query_map(params![application], |row| {
                Ok((row.get::<_, String>(0)?, value(row)?))
            })
            .map_err(sql(action))?;
        rows.map(|row| {
            let (object, value) = row.map_err(sql(action))?;
            Ok((from_text(action, &object)?, value))
        })
        .collect()
    }

    /// Records (`Some`) or forgets (`None`) the applied state of some of `application`'s objects.
    pub fn update_applied(
        &self,
        application: &str,
        changes: &BTreeMap<ObjectRef, Option<AppliedState>>,
    ) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(sql("write the applied state"))?;
        write_applied(&transaction, application, changes)?;
        transaction.commit().map_err(sql("write the applied state"))
    }

    /// Pins `application` at `revision` (after a rollback): automated syncs stop until unpinned.
    pub fn pin(&self, application: &str, revision: &str) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "INSERT INTO pins (application, revision) VALUES (?1, ?2) ON CONFLICT (application) DO UPDATE SET revision = ?2",
                params![application, revision],
            )
            .map(drop)
            .map_err(sql("pin a revision"))
    }

    /// `true` if it was pinned.
    pub fn unpin(&self, application: &str) -> Result<bool, StoreError> {
        self.connection()
            .execute("DELETE FROM pins WHERE application = ?1", params![application])
            .map(|deleted| deleted > 0)
            .map_err(sql("unpin"))
    }

    /// Stops automated syncs of the application until [`Store::resume`]; `false` if it already
    /// was suspended.
    pub fn suspend(&self, application: &str, at: i64) -> Result<bool, StoreError> {
        self.connection()
            .execute(
                "INSERT INTO suspended (application, since) VALUES (?1, ?2) ON CONFLICT (application) DO NOTHING",
                params![application, at],
            )
            .map(|inserted| inserted > 0)
            .map_err(sql("suspend an application"))
    }

    /// `true` if it was suspended.
    pub fn resume(&self, application: &str) -> Result<bool, StoreError> {
        self.connection()
            .execute(
                "DELETE FROM suspended WHERE application = ?1",
                params![application],
            )
            .map(|deleted| deleted > 0)
            .map_err(sql("resume an application"))
    }

    /// The names under which Applications declared in Git were registered, and the root that
    /// declared each: a name stays its root's across restarts, whichever root renders first.
    pub fn declared_names(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT name, root FROM declared_names")
            .map_err(sql("read declared application names"))?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(sql("read declared application names"))
    }

    /// Records that `root` now declares exactly `names`, releasing those it no longer declares.
    pub fn set_declared_names(&self, root: &str, names: &[String]) -> Result<(), StoreError> {
        let mut connection = self.connection();
        let transaction = connection
            .transaction()
            .map_err(sql("record declared application names"))?;
        transaction
            .execute("DELETE FROM declared_names WHERE root = ?1", params![root])
            .map_err(sql("record declared application names"))?;
        for name in names {
            transaction
                .execute(
                    "INSERT OR REPLACE INTO declared_names (name, root) VALUES (?1, ?2)",
                    params![name, root],
                )
                .map_err(sql("record declared application names"))?;
        }
        transaction
            .commit()
            .map_err(sql("record declared application names"))
    }

    pub fn is_suspended(&self, application: &str) -> Result<bool, StoreError> {
        self.connection()
            .query_row(
                "SELECT 1 FROM suspended WHERE application = ?1",
                params![application],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(sql("read a suspension"))
    }

    /// Appends an event, keeping the newest [`EVENTS_KEPT`] of the application.
    pub fn record_event(&self, application: &str, event: &EventRecord) -> Result<(), StoreError> {
        let connection = self.connection();
        connection
            .execute(
                "INSERT INTO events (application, time, kind, message) VALUES (?1, ?2, ?3, ?4)",
                params![application, event.time, enum_text(&event.kind), event.message],
            )
            .map_err(sql("record an event"))?;
        connection
            .execute(
                "DELETE FROM events WHERE application = ?1 AND id <= (SELECT MAX(id) FROM events WHERE application = ?1) - ?2",
                params![application, EVENTS_KEPT],
            )
            .map(drop)
            .map_err(sql("drop old events"))
    }

    /// The newest events of `application`, newest first.
    pub fn events(&self, application: &str, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT time, kind, message FROM events WHERE application = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(sql("read events"))?;
        let rows = statement
            .query_map(
                params![application, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(sql("read events"))?;
        let mut events = Vec::new();
        for row in rows {
            let (time, kind, message) = row.map_err(sql("read events"))?;
            events.push(EventRecord {
                time,
                kind: enum_from("read an event", &kind)?,
                message,
            });
        }
        Ok(events)
    }

    /// Keeps `record` as the application's last render, replacing the one before.
    pub fn save_render(&self, application: &str, record: &RenderRecord) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "INSERT INTO renders (application, key, revision, rendered_at, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (application) DO UPDATE SET key = ?2, revision = ?3, rendered_at = ?4, body = ?5",
                params![
                    application,
                    record.key,
                    record.revision,
                    record.rendered_at,
                    record.body
                ],
            )
            .map(drop)
            .map_err(sql("keep a render"))
    }

    /// Marks the application's kept render (if there is one) as the render of `revision` too: a
    /// new commit that changed nothing it read.
    pub fn move_render(&self, application: &str, revision: &str, at: i64) -> Result<(), StoreError> {
        self.connection()
            .execute(
                "UPDATE renders SET revision = ?2, rendered_at = ?3 WHERE application = ?1",
                params![application, revision, at],
            )
            .map(drop)
            .map_err(sql("move a render"))
    }

    /// The application's last render, if one was kept.
    pub fn render(&self, application: &str) -> Result<Option<RenderRecord>, StoreError> {
        self.connection()
            .query_row(
                "SELECT key, revision, rendered_at, body FROM renders WHERE application = ?1",
                params![application],
                |row| {
                    Ok(RenderRecord {
                        key: row.get(0)?,
                        revision: row.get(1)?,
                        rendered_at: row.get(2)?,
                        body: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(sql("read a render"))
    }

    /// Forgets the application's render (its render changed into one that must not be kept).
    pub fn forget_render(&self, application: &str) -> Result<(), StoreError> {
        self.connection()
            .execute("DELETE FROM renders WHERE application = ?1", params![application])
            .map(drop)
            .map_err(sql("forget a render"))
    }

    pub fn pinned(&self, application: &str) -> Result<Option<String>, StoreError> {
        self.connection()
            .query_row(
                "SELECT revision FROM pins WHERE application = ?1",
                params![application],
                |row| row.get(0),
            )
            .optional()
            .map_err(sql("read a pin"))
    }
}
