//! The audit table: append-only for everything an agent can cause, bounded
//! in what an agent can make it hold, prunable by the owner.
//!
//! An agent chooses much of what is audited (a host-API path, an egress
//! target) and how often. So each text field is cut at
//! `[limits] audit_field_bytes`; the same refusal again within a minute adds
//! to its row's `count` instead of a new row; and past
//! `[limits] audit_rows_per_minute` rows of one group in a minute, the rest
//! of that minute is counted in one `flood` row. What an agent can add is
//! then at most about `rows_per_minute × (4 × field_bytes + detail)` a minute,
//! however fast it asks.
//!
//! The owner may drop old rows (`pincer audit prune --before DATE`): the
//! cut-off goes into `audit_pruned`, the table's delete trigger allows only
//! rows older than the latest cut-off, and the prune writes a row saying so.

use std::collections::HashMap;

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Its id (the order of writing).
    pub id: i64,
    /// When (UTC).
    pub at: String,
    /// The group concerned.
    pub group: Option<String>,
    /// `spawn`, `host_api`, `model`, `egress`, …
    pub kind: String,
    /// What was attempted.
    pub action: String,
    /// On what.
    pub target: Option<String>,
    /// Allowed (`Some(true)`), denied (`Some(false)`), or not a decision.
    pub allowed: Option<bool>,
    /// Why.
    pub reason: Option<String>,
    /// Details (JSON): the container spec, sizes, statuses. Never a secret.
    pub detail: Option<String>,
    /// How many times it happened (a flood is one row with a count).
    pub count: i64,
    /// When it last happened, if more than once.
    pub last_at: Option<String>,
}

/// What to write in the audit table.
#[derive(Debug, Clone, Default)]
pub struct AuditRecord<'a> {
    /// The group concerned.
    pub group: Option<&'a str>,
    /// The kind of event.
    pub kind: &'a str,
    /// What was attempted.
    pub action: &'a str,
    /// On what.
    pub target: Option<&'a str>,
    /// The decision, if it was one.
    pub allowed: Option<bool>,
    /// Why.
    pub reason: Option<&'a str>,
    /// Details as JSON.
    pub detail: Option<String>,
}

/// The kinds of event an agent's requests cause (as opposed to the host's
/// own: spawns, mounts): the ones a group's per-minute cap counts.
const AGENT_KINDS: &[&str] = &["host_api", "egress", "gateway", "model"];
/// The longest `detail`: host-written JSON, but it can quote an agent.
const MAX_DETAIL_BYTES: usize = 16 * 1024;

/// How much the audit takes from one group (`[limits]`).
#[derive(Debug, Clone, Copy)]
pub struct AuditLimits {
    /// The longest action, target or reason.
    pub field_bytes: usize,
    /// Rows one group's agent may cause in a minute.
    pub rows_per_minute: u32,
}

impl Default for AuditLimits {
    fn default() -> Self {
        Self {
            field_bytes: 1024,
            rows_per_minute: 60,
        }
    }
}

/// What the audit remembers of the current minute.
#[derive(Debug, Default)]
pub(super) struct Flood {
    minute: String,
    /// Refusals written this minute, by what they said: the row to count on.
    refusals: HashMap<String, i64>,
    /// Rows each group caused this minute, and its `flood` row once past the cap.
    groups: HashMap<String, (u32, Option<i64>)>,
}

/// `text` cut to `limit` bytes (at a character boundary), saying how long it was.
fn cut(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len()).into()
}

impl Store {
    /// Appends to the audit table (or counts on a row already there: see
    /// the module's documentation).
    pub fn audit(&self, record: AuditRecord<'_>) -> Result<(), StoreError> {
        let limit = self.audit_limits.field_bytes;
        let action = cut(record.action, limit);
        let target = record.target.map(|t| cut(t, limit));
        let reason = record.reason.map(|r| cut(r, limit));
        let detail = record.detail.map(|d| match d.len() > MAX_DETAIL_BYTES {
            true => serde_json::json!({"truncated_bytes": d.len()}).to_string(),
            false => d,
        });
        let now = crate::time::now();
        let mut flood = self.flood.lock().unwrap_or_else(|p| p.into_inner());
        let minute = &now[..16];
        if flood.minute != minute {
            *flood = Flood {
                minute: minute.to_owned(),
                ..Flood::default()
            };
        }
        let agent_caused = record.group.is_some() && AGENT_KINDS.contains(&record.kind);
        let key =
            serde_json::json!([record.group, record.kind, action, target, reason]).to_string();
        if record.allowed == Some(false)
            && let Some(&row) = flood.refusals.get(&key)
        {
            return self.count_on(row, &now);
        }
        if let (true, Some(group)) = (agent_caused, record.group) {
            let (rows, flood_row) = flood.groups.entry(group.to_owned()).or_default();
            if *rows >= self.audit_limits.rows_per_minute {
                if let Some(row) = *flood_row {
                    return self.count_on(row, &now);
                }
                let reason = format!(
                    "more than {} events of this group in a minute: the rest of the minute is \
                     counted here, not written one by one",
                    self.audit_limits.rows_per_minute
                );
                let row = self.insert_audit(
                    &now,
                    Some(group),
                    "flood",
                    "events coalesced",
                    None,
                    None,
                    Some(&reason),
                    None,
                )?;
                *flood_row = Some(row);
                return Ok(());
            }
            *rows += 1;
        }
        let row = self.insert_audit(
            &now,
            record.group,
            record.kind,
            &action,
            target.as_deref(),
            record.allowed,
            reason.as_deref(),
            detail.as_deref(),
        )?;
        if record.allowed == Some(false) {
            flood.refusals.insert(key, row);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // one per column
    fn insert_audit(
        &self,
        at: &str,
        group: Option<&str>,
        kind: &str,
        action: &str,
        target: Option<&str>,
        allowed: Option<bool>,
        reason: Option<&str>,
        detail: Option<&str>,
    ) -> Result<i64, StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (at, group_name, kind, action, target, allowed, reason, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![at, group, kind, action, target, allowed, reason, detail],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    fn count_on(&self, row: i64, now: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE audit SET count = count + 1, last_at = ?2 WHERE id = ?1",
                params![row, now],
            )
        })?;
        Ok(())
    }

    /// Appends to the audit table, for a refusal that stands whether or not
    /// it is written down: a failed write is logged, not returned.
    pub fn audit_or_log(&self, record: AuditRecord<'_>) {
        if let Err(err) = self.audit(record) {
            tracing::error!("cannot write the audit: {err}");
        }
    }

    /// Audit entries, oldest first, optionally of one group and since a time.
    pub fn audit_entries(
        &self,
        group: Option<&str>,
        since: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, at, group_name, kind, action, target, allowed, reason, detail, count, last_at
                 FROM audit
                 WHERE (?1 IS NULL OR group_name = ?1) AND (?2 IS NULL OR at >= ?2) ORDER BY id",
            )?;
            let rows = statement.query_map(params![group, since], |row| {
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    group: row.get(2)?,
                    kind: row.get(3)?,
                    action: row.get(4)?,
                    target: row.get(5)?,
                    allowed: row.get(6)?,
                    reason: row.get(7)?,
                    detail: row.get(8)?,
                    count: row.get(9)?,
                    last_at: row.get(10)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The owner's prune: removes the rows written before `before` (a stored
    /// timestamp), writes a row saying how many went, and gives the file's
    /// space back. Returns how many rows went.
    pub fn prune_audit(&self, before: &str) -> Result<usize, StoreError> {
        let removed = self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let now = crate::time::now();
            tx.execute(
                "INSERT INTO audit_pruned (before, at) VALUES (?1, ?2)",
                params![before, now],
            )?;
            let removed = tx.execute("DELETE FROM audit WHERE at < ?1", [before])?;
            tx.execute(
                "INSERT INTO audit (at, group_name, kind, action, target, allowed, reason)
                 VALUES (?1, NULL, 'audit', 'prune', ?2, NULL, ?3)",
                params![
                    now,
                    before,
                    format!("the owner removed {removed} rows written before {before}")
                ],
            )?;
            tx.commit()?;
            Ok(removed)
        })?;
        self.with(|c| c.execute_batch("VACUUM"))?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(rows_per_minute: u32) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("pincer.db"))
            .unwrap()
            .with_audit_limits(AuditLimits {
                field_bytes: 64,
                rows_per_minute,
            });
        (dir, store)
    }

    fn refusal<'a>(action: &'a str) -> AuditRecord<'a> {
        AuditRecord {
            group: Some("family"),
            kind: "host_api",
            action,
            allowed: Some(false),
            reason: Some("unknown action"),
            ..Default::default()
        }
    }

    #[test]
    fn fields_are_cut_and_say_how_long_they_were() {
        let (_dir, store) = store(100);
        store.audit(refusal(&"é".repeat(1000))).unwrap();
        let entry = &store.audit_entries(None, None).unwrap()[0];
        assert!(entry.action.len() < 100, "{}", entry.action);
        assert!(entry.action.ends_with("(2000 bytes)"), "{}", entry.action);
    }

    #[test]
    fn the_same_refusal_again_is_counted_not_written() {
        let (_dir, store) = store(100);
        for _ in 0..50 {
            store.audit(refusal("nope")).unwrap();
        }
        store.audit(refusal("other")).unwrap();
        let entries = store.audit_entries(None, None).unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].count, 50);
        assert!(entries[0].last_at.is_some());
        assert_eq!(entries[1].count, 1);
    }

    #[test]
    fn a_group_past_its_rows_per_minute_is_counted_in_one_row() {
        let (_dir, store) = store(10);
        for i in 0..500 {
            store.audit(refusal(&format!("path-{i}"))).unwrap();
        }
        // The host's own events are not the agent's to crowd out.
        store
            .audit(AuditRecord {
                group: Some("family"),
                kind: "spawn",
                action: "create_container",
                ..Default::default()
            })
            .unwrap();
        let entries = store.audit_entries(None, None).unwrap();
        // The minute can turn during the loop: then the cap starts again.
        assert!(entries.len() <= 2 * 11 + 1, "{}", entries.len());
        let flood: i64 = entries
            .iter()
            .filter(|e| e.kind == "flood")
            .map(|e| e.count)
            .sum();
        let written = entries.iter().filter(|e| e.kind == "host_api").count() as i64;
        assert_eq!(flood + written, 500, "{entries:?}");
        assert!(entries.iter().any(|e| e.kind == "spawn"));
    }

    #[test]
    fn rows_are_kept_from_everyone_but_the_owners_prune() {
        let (_dir, store) = store(100);
        store.audit(refusal("old")).unwrap();
        let err = store
            .with(|c| c.execute("DELETE FROM audit", []))
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");
        let err = store
            .with(|c| c.execute("UPDATE audit SET action = 'x'", []))
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");
        let err = store
            .with(|c| c.execute("UPDATE audit SET count = 0", []))
            .unwrap_err()
            .to_string();
        assert!(err.contains("only grows"), "{err}");

        assert_eq!(store.prune_audit("9999-01-01T00:00:00Z").unwrap(), 1);
        let entries = store.audit_entries(None, None).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            (entries[0].kind.as_str(), entries[0].action.as_str()),
            ("audit", "prune")
        );
        assert!(
            entries[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("removed 1 rows")
        );
    }
}
