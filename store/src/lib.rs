//! The store: Pincer's state in SQLite (WAL). One module owns the schema.
//!
//! Groups, messages, scheduled tasks and their runs, model usage, and the
//! append-only audit table. Migrations are numbered and applied in order,
//! each in its own transaction, with `PRAGMA user_version` recording how far
//! the file has come; a crash in the middle of any write leaves the last
//! committed state (SQLite's journal guarantees it, `tests/store.rs` checks).
//!
//! The store knows nothing about containers or the protocol: it keeps rows.
//! Calls are short and synchronous; the connection sits behind a mutex.
#![allow(clippy::disallowed_types)] // the owner of rusqlite::Connection

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use pincer_core::group::{GroupName, MAIN_GROUP};

mod audit;
pub mod scheduler;
pub mod time;
mod usage;
pub use audit::{AuditEntry, AuditLimits, AuditRecord};
pub use usage::{Usage, UsageDay};

/// The chat id of the main group's built-in channel, the terminal.
pub const MAIN_CHAT: &str = "local:main";
/// The default trigger of a non-main group.
pub const DEFAULT_TRIGGER: &str = "@pincer";

/// The schema, one migration per entry; never edit a released one, append.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        chat_id TEXT NOT NULL UNIQUE,
        is_main INTEGER NOT NULL DEFAULT 0 CHECK (is_main IN (0, 1)),
        trigger TEXT,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX one_main_group ON groups (is_main) WHERE is_main = 1;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages (chat_id, id);
    CREATE TABLE sessions (
        group_name TEXT PRIMARY KEY REFERENCES groups (name) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        chat_id TEXT NOT NULL,
        prompt TEXT NOT NULL,
        schedule_kind TEXT NOT NULL CHECK (schedule_kind IN ('cron', 'interval', 'once')),
        schedule_value TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled', 'done')),
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE task_runs (
        id INTEGER PRIMARY KEY,
        task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT,
        result TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        group_name TEXT,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        allowed INTEGER CHECK (allowed IN (0, 1)),
        reason TEXT,
        detail TEXT
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;",
    // 2: per-group egress allowlists.
    "CREATE TABLE egress_rules (
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (group_name, rule)
    );",
    // 3: the daemon's queue: inbound messages wait, are claimed, and are
    // answered (by a reply's id); outbound ones wait for delivery. Tasks know
    // when they run next.
    "ALTER TABLE messages ADD COLUMN group_name TEXT;
    ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'delivered';
    ALTER TABLE messages ADD COLUMN answered_by INTEGER;
    CREATE INDEX messages_by_status ON messages (status, group_name, id);
    ALTER TABLE tasks ADD COLUMN next_run TEXT;
    ALTER TABLE tasks ADD COLUMN last_run TEXT;",
    // 4: the extra folders each group asks for (the mount allowlist decides).
    "CREATE TABLE group_mounts (
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        host_path TEXT NOT NULL,
        container_name TEXT,
        read_write INTEGER NOT NULL DEFAULT 0 CHECK (read_write IN (0, 1)),
        PRIMARY KEY (group_name, host_path)
    );",
    // 5: a task's run knows the message it became, so answering that message
    // finishes the run. Sessions live in each group's session folder (the
    // runner keeps them): the table the first schema planned goes.
    "ALTER TABLE task_runs ADD COLUMN message_id INTEGER;
    CREATE INDEX task_runs_by_message ON task_runs (message_id);
    DROP TABLE sessions;",
    // 6: group names are case-insensitive (`Main` is `main`; on a
    // case-insensitive file system two spellings would share a folder):
    // stored folded. Two groups that differ only in case stop the migration
    // by name; the owner removes one with an older Pincer and starts again.
    "CREATE TEMP TABLE fold_check (
        clashes INTEGER CONSTRAINT two_groups_differ_only_in_case_remove_one CHECK (clashes = 0)
    );
    INSERT INTO fold_check SELECT count(*) FROM
        (SELECT lower(name) FROM groups GROUP BY lower(name) HAVING count(*) > 1);
    DROP TABLE fold_check;
    PRAGMA defer_foreign_keys = ON;
    UPDATE groups SET name = lower(name) WHERE name <> lower(name);
    UPDATE group_mounts SET group_name = lower(group_name) WHERE group_name <> lower(group_name);
    UPDATE egress_rules SET group_name = lower(group_name) WHERE group_name <> lower(group_name);
    UPDATE tasks SET group_name = lower(group_name) WHERE group_name <> lower(group_name);
    UPDATE messages SET group_name = lower(group_name) WHERE group_name <> lower(group_name);",
    // 7: what each model request cost, counted by the host from the answer's
    // `usage` (never by the agent), and the budget warnings already given.
    "CREATE TABLE model_usage (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        group_name TEXT NOT NULL,
        invocation TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL
    );
    CREATE INDEX model_usage_by_time ON model_usage (at, group_name);
    CREATE TABLE budget_notices (
        scope TEXT NOT NULL,
        period TEXT NOT NULL,
        PRIMARY KEY (scope, period)
    );",
    // 8: an audit row counts repeats (a flood is one row), and the owner may
    // prune old rows: only rows older than a cut-off recorded in
    // `audit_pruned` can be deleted, and nothing but the count (upwards) and
    // the time of the last repeat can change.
    "ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN last_at TEXT;
    CREATE TABLE audit_pruned (before TEXT NOT NULL, at TEXT NOT NULL);
    DROP TRIGGER audit_is_append_only_update;
    DROP TRIGGER audit_is_append_only_delete;
    CREATE TRIGGER audit_is_append_only_update
        BEFORE UPDATE OF id, at, group_name, kind, action, target, allowed, reason, detail ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
    CREATE TRIGGER audit_count_only_grows BEFORE UPDATE OF count ON audit
        WHEN NEW.count < OLD.count
        BEGIN SELECT RAISE(ABORT, 'an audit row''s count only grows'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        WHEN OLD.at >= coalesce((SELECT max(before) FROM audit_pruned), '')
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only (the owner prunes old rows with pincer audit prune)'); END;",
];

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The file was written by a newer Pincer.
    #[error(
        "database {path} has schema version {found}, newer than this pincer knows ({known}): upgrade pincer"
    )]
    TooNew {
        /// The database file.
        path: String,
        /// Its version.
        found: i64,
        /// Ours.
        known: usize,
    },
    /// A request the store refuses (duplicate, missing, not allowed).
    #[error("{0}")]
    Refused(String),
}

/// A registered group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Its name (also its folder's name).
    pub name: String,
    /// The chat it belongs to.
    pub chat_id: String,
    /// Whether it is the owner's main group.
    pub is_main: bool,
    /// The trigger that wakes the agent (`None` for main: every message does).
    pub trigger: Option<String>,
}

/// An accepted inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    /// Its id.
    pub id: i64,
    /// The group of its chat.
    pub group: String,
    /// Whether it wakes the agent (main, or the trigger matched).
    pub wakes: bool,
}

/// An inbound message in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inbound {
    /// Its id.
    pub id: i64,
    /// Its chat.
    pub chat_id: String,
    /// Who wrote it.
    pub sender: String,
    /// What they wrote.
    pub text: String,
}

/// An outbound message waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outgoing {
    /// Its id.
    pub id: i64,
    /// The chat it goes to.
    pub chat_id: String,
    /// The group that wrote it.
    pub sender: String,
    /// The text.
    pub text: String,
}

/// Where an inbound message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundState {
    /// Its id.
    pub id: i64,
    /// Its group.
    pub group: Option<String>,
    /// `pending`, `context`, `processing`, `answered` or `failed`.
    pub status: String,
    /// The reply that answered it.
    pub answered_by: Option<i64>,
}

/// A scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Its id.
    pub id: i64,
    /// The group it runs in.
    pub group: String,
    /// Where its results go.
    pub chat_id: String,
    /// What it asks.
    pub prompt: String,
    /// `cron`, `interval` or `once`.
    pub schedule_kind: String,
    /// The cron expression, interval or instant.
    pub schedule_value: String,
    /// `active`, `paused`, `cancelled` or `done`.
    pub status: String,
    /// When it runs next (UTC), once the scheduler has seen it.
    pub next_run: Option<String>,
}

/// One run of a scheduled task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRun {
    /// When it fired (the scheduler's clock, UTC).
    pub started_at: String,
    /// When its answer was stored; `None` while it runs.
    pub finished_at: Option<String>,
    /// `ok` or `failed`, once finished.
    pub status: Option<String>,
    /// The answer (or what went wrong).
    pub result: Option<String>,
}

/// The database.
#[derive(Debug)]
pub struct Store {
    path: String,
    conn: Mutex<Connection>,
    audit_limits: AuditLimits,
    flood: Mutex<audit::Flood>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, and
    /// makes sure the main group exists.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let sqlite = |source| StoreError::Sqlite {
            path: name.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite)?;
        migrate(&mut conn).map_err(|err| match err {
            MigrateError::Sqlite(source) => sqlite(source),
            MigrateError::TooNew(found) => StoreError::TooNew {
                path: name.clone(),
                found,
                known: MIGRATIONS.len(),
            },
        })?;
        conn.execute(
            "INSERT OR IGNORE INTO groups (name, chat_id, is_main, trigger, created_at)
             VALUES (?1, ?2, 1, NULL, ?3)",
            params![MAIN_GROUP, MAIN_CHAT, crate::time::now()],
        )
        .map_err(sqlite)?;
        Ok(Self {
            path: name,
            conn: Mutex::new(conn),
            audit_limits: AuditLimits::default(),
            flood: Mutex::default(),
        })
    }

    /// The same store, holding what an agent can add to the audit to `limits`.
    pub fn with_audit_limits(mut self, limits: AuditLimits) -> Self {
        self.audit_limits = limits;
        self
    }

    /// The schema version this file is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| c.pragma_query_value(None, "user_version", |row| row.get(0)))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (uncommitted work rolls back), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        f(&self.lock()).map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    // --- groups ---------------------------------------------------------

    /// All groups, main first.
    pub fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT name, chat_id, is_main, trigger FROM groups ORDER BY is_main DESC, name",
            )?;
            let rows = statement.query_map([], group_from_row)?;
            rows.collect()
        })
    }

    /// One group by name.
    pub fn group(&self, name: &str) -> Result<Option<Group>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, chat_id, is_main, trigger FROM groups WHERE name = ?1",
                [name],
                group_from_row,
            )
            .optional()
        })
    }

    /// The group a chat belongs to.
    pub fn group_of_chat(&self, chat_id: &str) -> Result<Option<Group>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT name, chat_id, is_main, trigger FROM groups WHERE chat_id = ?1",
                [chat_id],
                group_from_row,
            )
            .optional()
        })
    }

    /// Registers a non-main group.
    pub fn add_group(
        &self,
        name: &GroupName,
        chat_id: &str,
        trigger: Option<&str>,
    ) -> Result<Group, StoreError> {
        if name.is_main() {
            return Err(StoreError::Refused(
                "the main group exists already and there is only one".into(),
            ));
        }
        validate_chat_id(chat_id)?;
        let trigger = trigger.unwrap_or(DEFAULT_TRIGGER).trim();
        if trigger.is_empty() || trigger.chars().any(char::is_control) || trigger.len() > 64 {
            return Err(StoreError::Refused(format!(
                "invalid trigger {trigger:?}: 1 to 64 printable characters"
            )));
        }
        if self.group(name.as_str())?.is_some() {
            return Err(StoreError::Refused(format!(
                "a group named {name} exists already"
            )));
        }
        if let Some(owner) = self.group_of_chat(chat_id)? {
            return Err(StoreError::Refused(format!(
                "chat {chat_id} belongs to group {} already",
                owner.name
            )));
        }
        self.with(|c| {
            c.execute(
                "INSERT INTO groups (name, chat_id, is_main, trigger, created_at) VALUES (?1, ?2, 0, ?3, ?4)",
                params![name.as_str(), chat_id, trigger, crate::time::now()],
            )
        })?;
        Ok(Group {
            name: name.to_string(),
            chat_id: chat_id.to_owned(),
            is_main: false,
            trigger: Some(trigger.to_owned()),
        })
    }

    /// Removes a non-main group (its tasks go with it; its folder stays on disk).
    pub fn remove_group(&self, name: &str) -> Result<(), StoreError> {
        self.removable(name)?;
        let removed = self.with(|c| c.execute("DELETE FROM groups WHERE name = ?1", [name]))?;
        if removed == 0 {
            return Err(StoreError::Refused(format!("no group named {name}")));
        }
        Ok(())
    }

    /// Whether [`Self::remove_group`] would remove `name` (a registered
    /// group other than main), refused with why if not: so that what goes
    /// with a group (its folders) can be taken away first.
    pub fn removable(&self, name: &str) -> Result<(), StoreError> {
        if name == MAIN_GROUP {
            return Err(StoreError::Refused(
                "the main group cannot be removed".into(),
            ));
        }
        if self.group(name)?.is_none() {
            return Err(StoreError::Refused(format!("no group named {name}")));
        }
        Ok(())
    }

    // --- messages ---------------------------------------------------------

    /// Stores an outgoing message for `chat_id`; the daemon delivers it.
    pub fn add_outgoing(&self, chat_id: &str, sender: &str, text: &str) -> Result<i64, StoreError> {
        self.with(|c| insert_outgoing(c, chat_id, sender, text))
    }

    /// Accepts an inbound message: stored before anyone is told it arrived.
    /// It wakes its group's agent if the group is main or the text starts with
    /// the group's trigger; otherwise it waits as context for the next batch.
    pub fn accept_message(
        &self,
        chat_id: &str,
        sender: &str,
        text: &str,
    ) -> Result<Accepted, StoreError> {
        let Some(group) = self.group_of_chat(chat_id)? else {
            return Err(StoreError::Refused(format!(
                "chat {chat_id} is not registered"
            )));
        };
        let wakes = group.is_main
            || group
                .trigger
                .as_deref()
                .is_some_and(|t| matches_trigger(text, t));
        let status = if wakes { "pending" } else { "context" };
        let id = self.with(|c| {
            c.execute(
                "INSERT INTO messages (chat_id, direction, sender, text, created_at, group_name, status)
                 VALUES (?1, 'in', ?2, ?3, ?4, ?5, ?6)",
                params![chat_id, sender, text, crate::time::now(), group.name, status],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        Ok(Accepted {
            id,
            group: group.name,
            wakes,
        })
    }

    /// Groups that have messages waiting to wake their agent.
    pub fn groups_with_pending(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT DISTINCT group_name FROM messages WHERE direction = 'in' AND status = 'pending'",
            )?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// Claims the group's waiting messages (context included) for one
    /// invocation, in order; nothing if none of them wakes the agent.
    pub fn claim_batch(&self, group: &str) -> Result<Vec<Inbound>, StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let wakes: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE direction = 'in' AND group_name = ?1 AND status = 'pending')",
                [group],
                |row| row.get(0),
            )?;
            if !wakes {
                return Ok(Vec::new());
            }
            let batch = {
                let mut statement = tx.prepare(
                    "SELECT id, chat_id, sender, text FROM messages
                     WHERE direction = 'in' AND group_name = ?1 AND status IN ('pending', 'context') ORDER BY id",
                )?;
                let rows = statement.query_map([group], |row| {
                    Ok(Inbound {
                        id: row.get(0)?,
                        chat_id: row.get(1)?,
                        sender: row.get(2)?,
                        text: row.get(3)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            tx.execute(
                "UPDATE messages SET status = 'processing'
                 WHERE direction = 'in' AND group_name = ?1 AND status IN ('pending', 'context')",
                [group],
            )?;
            tx.commit()?;
            Ok(batch)
        })
    }

    /// Stores the reply to a claimed batch and marks the batch answered by it,
    /// in one transaction: a crash leaves either both or neither.
    pub fn answer_batch(
        &self,
        batch: &[i64],
        chat_id: &str,
        sender: &str,
        text: &str,
        failed: bool,
    ) -> Result<i64, StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let reply = insert_outgoing(&tx, chat_id, sender, text)?;
            let status = if failed { "failed" } else { "answered" };
            let finished = crate::time::now();
            for id in batch {
                tx.execute(
                    "UPDATE messages SET status = ?2, answered_by = ?3 WHERE id = ?1 AND status = 'processing'",
                    params![id, status, reply],
                )?;
                // A task's run ends with the answer to its message.
                tx.execute(
                    "UPDATE task_runs SET finished_at = ?2, status = ?3, result = ?4
                     WHERE message_id = ?1 AND finished_at IS NULL",
                    params![id, finished, if failed { "failed" } else { "ok" }, text],
                )?;
            }
            tx.commit()?;
            Ok(reply)
        })
    }

    /// After a crash: claimed but unanswered messages wait again.
    pub fn requeue_unfinished(&self) -> Result<usize, StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE messages SET status = 'pending' WHERE direction = 'in' AND status = 'processing'",
                [],
            )
        })
    }

    /// Outgoing messages not yet delivered, oldest first.
    pub fn undelivered(&self) -> Result<Vec<Outgoing>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, chat_id, sender, text FROM messages WHERE direction = 'out' AND status = 'undelivered' ORDER BY id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Outgoing {
                    id: row.get(0)?,
                    chat_id: row.get(1)?,
                    sender: row.get(2)?,
                    text: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Marks an outgoing message delivered.
    pub fn mark_delivered(&self, id: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE messages SET status = 'delivered' WHERE id = ?1",
                [id],
            )
        })?;
        Ok(())
    }

    /// The inbound messages a reply answered.
    pub fn answered_by(&self, reply: i64) -> Result<Vec<i64>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT id FROM messages WHERE answered_by = ?1 ORDER BY id")?;
            let rows = statement.query_map([reply], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// Every inbound message with its status and the reply that answered it.
    pub fn inbound_states(&self) -> Result<Vec<InboundState>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, group_name, status, answered_by FROM messages WHERE direction = 'in' ORDER BY id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(InboundState {
                    id: row.get(0)?,
                    group: row.get(1)?,
                    status: row.get(2)?,
                    answered_by: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Outgoing messages to `chat_id`, oldest first: (sender, text).
    pub fn outgoing(&self, chat_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT sender, text FROM messages WHERE chat_id = ?1 AND direction = 'out' ORDER BY id",
            )?;
            let rows = statement.query_map([chat_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
            rows.collect()
        })
    }

    // --- tasks -----------------------------------------------------------------

    /// Adds a task; returns it.
    pub fn add_task(
        &self,
        group: &str,
        chat_id: &str,
        prompt: &str,
        kind: &str,
        value: &str,
        created_by: &str,
    ) -> Result<Task, StoreError> {
        let id = self.with(|c| {
            c.execute(
                "INSERT INTO tasks (group_name, chat_id, prompt, schedule_kind, schedule_value, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![group, chat_id, prompt, kind, value, created_by, crate::time::now()],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        self.task(id)?
            .ok_or_else(|| StoreError::Refused(format!("task {id} vanished")))
    }

    /// One task.
    pub fn task(&self, id: i64) -> Result<Option<Task>, StoreError> {
        self.with(|c| {
            c.query_row(&format!("{TASK_SELECT} WHERE id = ?1"), [id], task_from_row)
                .optional()
        })
    }

    /// Tasks, all or one group's, oldest first.
    pub fn tasks(&self, group: Option<&str>) -> Result<Vec<Task>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "{TASK_SELECT} WHERE ?1 IS NULL OR group_name = ?1 ORDER BY id"
            ))?;
            let rows = statement.query_map([group], task_from_row)?;
            rows.collect()
        })
    }

    /// A task's runs, oldest first.
    pub fn task_runs(&self, task_id: i64) -> Result<Vec<TaskRun>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT started_at, finished_at, status, result FROM task_runs WHERE task_id = ?1 ORDER BY id",
            )?;
            let rows = statement.query_map(params![task_id], |row| {
                Ok(TaskRun {
                    started_at: row.get(0)?,
                    finished_at: row.get(1)?,
                    status: row.get(2)?,
                    result: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Sets a task's status. Resuming (`active`) also forgets the planned
    /// run, so the scheduler plans the next one from now: a task paused over
    /// its slots does not fire the moment it is resumed.
    pub fn set_task_status(&self, id: i64, status: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE tasks SET status = ?2, next_run = CASE WHEN ?2 = 'active' THEN NULL ELSE next_run END WHERE id = ?1",
                params![id, status],
            )
        })?;
        Ok(())
    }

    /// Changes a task's prompt and/or schedule.
    pub fn update_task(
        &self,
        id: i64,
        prompt: Option<&str>,
        schedule: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            if let Some(prompt) = prompt {
                tx.execute(
                    "UPDATE tasks SET prompt = ?2 WHERE id = ?1",
                    params![id, prompt],
                )?;
            }
            if let Some((kind, value)) = schedule {
                tx.execute(
                    "UPDATE tasks SET schedule_kind = ?2, schedule_value = ?3, next_run = NULL WHERE id = ?1",
                    params![id, kind, value],
                )?;
            }
            tx.commit()
        })
    }

    /// Active tasks the scheduler has not planned yet.
    pub fn unplanned_tasks(&self) -> Result<Vec<Task>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "{TASK_SELECT} WHERE status = 'active' AND next_run IS NULL ORDER BY id"
            ))?;
            let rows = statement.query_map([], task_from_row)?;
            rows.collect()
        })
    }

    /// Active tasks due at `now` (a stored-format timestamp).
    pub fn due_tasks(&self, now: &str) -> Result<Vec<Task>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "{TASK_SELECT} WHERE status = 'active' AND next_run IS NOT NULL AND next_run <= ?1 ORDER BY next_run, id"
            ))?;
            let rows = statement.query_map([now], task_from_row)?;
            rows.collect()
        })
    }

    /// Plans a task's next run (`None`: it will not run again, it is done).
    pub fn plan_task(&self, id: i64, next_run: Option<&str>) -> Result<(), StoreError> {
        self.with(|c| match next_run {
            Some(next) => c.execute(
                "UPDATE tasks SET next_run = ?2 WHERE id = ?1",
                params![id, next],
            ),
            None => c.execute(
                "UPDATE tasks SET next_run = NULL, status = 'done' WHERE id = ?1",
                [id],
            ),
        })?;
        Ok(())
    }

    /// How many times `group`'s tasks fired since `since`.
    pub fn task_runs_since(&self, group: &str, since: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT count(*) FROM task_runs JOIN tasks ON tasks.id = task_runs.task_id
                 WHERE tasks.group_name = ?1 AND task_runs.started_at >= ?2",
                params![group, since],
                |row| row.get::<_, i64>(0),
            )
        })
        .map(|runs| runs.max(0) as u64)
    }

    /// Whether the task's last run is still waiting for its answer.
    pub fn task_run_waiting(&self, task_id: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM task_runs WHERE task_id = ?1 AND finished_at IS NULL)",
                [task_id],
                |row| row.get(0),
            )
        })
    }

    /// Moves a due task on without running it (a `once` task is done).
    pub fn skip_task(
        &self,
        task: &Task,
        now: &str,
        next_run: Option<&str>,
    ) -> Result<(), StoreError> {
        self.with(|c| match next_run {
            Some(next) => c.execute(
                "UPDATE tasks SET last_run = ?2, next_run = ?3 WHERE id = ?1",
                params![task.id, now, next],
            ),
            None => c.execute(
                "UPDATE tasks SET last_run = ?2, next_run = NULL, status = 'done' WHERE id = ?1",
                params![task.id, now],
            ),
        })?;
        Ok(())
    }

    /// Fires a due task: its prompt becomes a message that wakes its group,
    /// and its next run is planned, in one transaction.
    pub fn fire_task(
        &self,
        task: &Task,
        now: &str,
        next_run: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO messages (chat_id, direction, sender, text, created_at, group_name, status)
                 VALUES (?1, 'in', ?2, ?3, ?4, ?5, 'pending')",
                params![task.chat_id, format!("task:{}", task.id), task.prompt, now, task.group],
            )?;
            let message = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO task_runs (task_id, started_at, message_id) VALUES (?1, ?2, ?3)",
                params![task.id, now, message],
            )?;
            match next_run {
                Some(next) => tx.execute(
                    "UPDATE tasks SET last_run = ?2, next_run = ?3 WHERE id = ?1",
                    params![task.id, now, next],
                )?,
                None => tx.execute(
                    "UPDATE tasks SET last_run = ?2, next_run = NULL, status = 'done' WHERE id = ?1",
                    params![task.id, now],
                )?,
            };
            tx.commit()?;
            Ok(message)
        })
    }

    // --- extra mounts ---------------------------------------------------------------

    /// The extra folders a group asks for: (host path, container name, read-write).
    pub fn group_mounts(
        &self,
        group: &str,
    ) -> Result<Vec<(String, Option<String>, bool)>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT host_path, container_name, read_write FROM group_mounts WHERE group_name = ?1 ORDER BY rowid",
            )?;
            let rows = statement.query_map([group], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })
    }

    /// Records (or replaces) a group's request for an extra folder.
    pub fn add_group_mount(
        &self,
        group: &str,
        host_path: &str,
        container_name: Option<&str>,
        read_write: bool,
    ) -> Result<(), StoreError> {
        if self.group(group)?.is_none() {
            return Err(StoreError::Refused(format!("no group named {group}")));
        }
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO group_mounts (group_name, host_path, container_name, read_write) VALUES (?1, ?2, ?3, ?4)",
                params![group, host_path, container_name, read_write],
            )
        })?;
        Ok(())
    }

    /// Removes a group's request for an extra folder.
    pub fn remove_group_mount(&self, group: &str, host_path: &str) -> Result<(), StoreError> {
        let removed = self.with(|c| {
            c.execute(
                "DELETE FROM group_mounts WHERE group_name = ?1 AND host_path = ?2",
                params![group, host_path],
            )
        })?;
        if removed == 0 {
            return Err(StoreError::Refused(format!(
                "group {group} asks for no mount of {host_path}"
            )));
        }
        Ok(())
    }

    // --- egress ------------------------------------------------------------------

    /// A group's egress rules, in the order they were added.
    pub fn egress_rules(&self, group: &str) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            let mut statement =
                c.prepare("SELECT rule FROM egress_rules WHERE group_name = ?1 ORDER BY rowid")?;
            let rows = statement.query_map([group], |row| row.get(0))?;
            rows.collect()
        })
    }

    /// Adds a rule (already validated by the caller) to a group's allowlist.
    pub fn allow_egress(&self, group: &str, rule: &str) -> Result<(), StoreError> {
        if self.group(group)?.is_none() {
            return Err(StoreError::Refused(format!("no group named {group}")));
        }
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO egress_rules (group_name, rule, created_at) VALUES (?1, ?2, ?3)",
                params![group, rule, crate::time::now()],
            )
        })?;
        Ok(())
    }

    /// Removes a rule from a group's allowlist.
    pub fn revoke_egress(&self, group: &str, rule: &str) -> Result<(), StoreError> {
        let removed = self.with(|c| {
            c.execute(
                "DELETE FROM egress_rules WHERE group_name = ?1 AND rule = ?2",
                params![group, rule],
            )
        })?;
        if removed == 0 {
            return Err(StoreError::Refused(format!(
                "group {group} has no egress rule {rule:?}"
            )));
        }
        Ok(())
    }
}

fn insert_outgoing(
    c: &Connection,
    chat_id: &str,
    sender: &str,
    text: &str,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO messages (chat_id, direction, sender, text, created_at, status, group_name)
         VALUES (?1, 'out', ?2, ?3, ?4, 'undelivered', (SELECT name FROM groups WHERE chat_id = ?1))",
        params![chat_id, sender, text, crate::time::now()],
    )?;
    Ok(c.last_insert_rowid())
}

const TASK_SELECT: &str = "SELECT id, group_name, chat_id, prompt, schedule_kind, schedule_value, status, next_run FROM tasks";

fn task_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: row.get(0)?,
        group: row.get(1)?,
        chat_id: row.get(2)?,
        prompt: row.get(3)?,
        schedule_kind: row.get(4)?,
        schedule_value: row.get(5)?,
        status: row.get(6)?,
        next_run: row.get(7)?,
    })
}

fn group_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        name: row.get(0)?,
        chat_id: row.get(1)?,
        is_main: row.get(2)?,
        trigger: row.get(3)?,
    })
}

/// A chat id: 1 to 256 printable characters.
pub fn validate_chat_id(chat_id: &str) -> Result<(), StoreError> {
    if chat_id.is_empty() || chat_id.len() > 256 || chat_id.chars().any(char::is_control) {
        return Err(StoreError::Refused(format!(
            "invalid chat id {chat_id:?}: 1 to 256 printable characters"
        )));
    }
    Ok(())
}

/// Whether `text` wakes a non-main group with `trigger`: the trigger at the
/// start, in any case, followed by the end, a space or punctuation.
pub fn matches_trigger(text: &str, trigger: &str) -> bool {
    let text = text.trim_start();
    let Some(head) = text.get(..trigger.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(trigger)
        && text[trigger.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || c.is_ascii_punctuation())
}

enum MigrateError {
    Sqlite(rusqlite::Error),
    TooNew(i64),
}

fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(MigrateError::Sqlite)?;
    if version > MIGRATIONS.len() as i64 {
        return Err(MigrateError::TooNew(version));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(MigrateError::Sqlite)?;
        tx.execute_batch(sql).map_err(MigrateError::Sqlite)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(MigrateError::Sqlite)?;
        tx.commit().map_err(MigrateError::Sqlite)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_match_at_the_start_in_any_case() {
        assert!(matches_trigger("@pincer what's up", "@pincer"));
        assert!(matches_trigger("  @PINCER, hi", "@pincer"));
        assert!(matches_trigger("@pincer", "@pincer"));
        assert!(!matches_trigger("hey @pincer", "@pincer"));
        assert!(!matches_trigger("@pincerbot hi", "@pincer"));
        assert!(!matches_trigger("@pin", "@pincer"));
        assert!(!matches_trigger("é@pincer", "@pincer"));
    }
}
