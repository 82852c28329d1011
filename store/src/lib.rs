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

use rusqlite::{Connection, params};

use pincer_core::group::MAIN_GROUP;

mod access;
mod audit;
mod changes;
mod groups;
mod messages;
mod overview;
pub mod scheduler;
mod schema;
mod tasks;
pub mod time;
mod usage;
pub use access::{AccessAsk, AccessRequest, Asked};
pub use audit::{AuditEntry, AuditLimits, AuditRecord};
pub use changes::{ChangeSet, Decision, Entry, NewChangeSet};
pub use groups::{Group, validate_chat_id};
pub use messages::{Accepted, Inbound, InboundState, Outgoing, matches_trigger};
pub use overview::GroupOverview;
pub use tasks::{Task, TaskRun};
pub use usage::{Usage, UsageDay};

use schema::MIGRATIONS;

/// The chat id of the main group's built-in channel, the terminal.
pub const MAIN_CHAT: &str = "local:main";
/// The default trigger of a non-main group.
pub const DEFAULT_TRIGGER: &str = "@pincer";

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
