//! Change sets: what an agent wrote to a staged grant, and the owner's
//! decision on each entry.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use pincer_core::staging::Change;

use super::{MAIN_CHAT, Store, StoreError};

/// The owner's word on one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Accepted,
    Rejected,
}

/// One entry and its decision (none yet: pending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub change: Change,
    pub decision: Option<Decision>,
}

/// A change set as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSet {
    pub id: i64,
    pub group: String,
    pub invocation: String,
    /// The real folder on the host.
    pub real_path: String,
    /// Where the agent saw it.
    pub target: String,
    /// The host folder holding the staged copy and what was copied.
    pub folder: String,
    pub created_at: String,
    pub entries: Vec<Entry>,
    /// For a git repository: the branch with the changes, and its commit.
    pub branch: Option<(String, String)>,
}

impl ChangeSet {
    /// Whether an entry still waits for the owner.
    pub fn pending(&self) -> bool {
        self.entries.iter().any(|e| e.decision.is_none())
    }
}

/// What the host records when an invocation leaves changes.
#[derive(Debug, Clone, Copy)]
pub struct NewChangeSet<'a> {
    pub group: &'a str,
    pub invocation: &'a str,
    pub real_path: &'a str,
    pub target: &'a str,
    pub folder: &'a str,
    pub changes: &'a [Change],
    /// The git branch and commit made for it, if any.
    pub branch: Option<(&'a str, &'a str)>,
}

impl Store {
    /// Records a change set and tells the main chat of it (`notice`, with
    /// `{id}` replaced by its number), in one transaction: the owner hears
    /// of every set that waits, and of none that does not.
    pub fn add_change_set(&self, new: NewChangeSet<'_>, notice: &str) -> Result<i64, StoreError> {
        let entries: Vec<Entry> = new
            .changes
            .iter()
            .map(|change| Entry {
                change: change.clone(),
                decision: None,
            })
            .collect();
        let entries = to_json(&entries)?;
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO change_sets (group_name, invocation, real_path, target, folder,
                     created_at, entries, branch, branch_commit)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    new.group,
                    new.invocation,
                    new.real_path,
                    new.target,
                    new.folder,
                    crate::time::now(),
                    entries,
                    new.branch.map(|b| b.0),
                    new.branch.map(|b| b.1)
                ],
            )?;
            let id = tx.last_insert_rowid();
            let text = notice.replace("{id}", &id.to_string());
            crate::messages::insert_outgoing(&tx, MAIN_CHAT, "pincer", &text)?;
            tx.commit()?;
            Ok(id)
        })
    }

    /// Change sets, oldest first: of one group or all, waiting ones or all.
    pub fn change_sets(
        &self,
        group: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<ChangeSet>, StoreError> {
        let rows = self.with(|c| {
            let mut statement = c.prepare(
                "SELECT id, group_name, invocation, real_path, target, folder, created_at, entries,
                 branch, branch_commit FROM change_sets WHERE (?1 IS NULL OR group_name = ?1)
                 AND (?2 = 0 OR status = 'pending') ORDER BY id",
            )?;
            let rows = statement.query_map(params![group, pending_only], row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.into_iter().map(parse).collect()
    }

    /// One change set.
    pub fn change_set(&self, id: i64) -> Result<Option<ChangeSet>, StoreError> {
        let row = self.with(|c| {
            c.query_row(
                "SELECT id, group_name, invocation, real_path, target, folder, created_at, entries,
                 branch, branch_commit FROM change_sets WHERE id = ?1",
                params![id],
                row,
            )
            .optional()
        })?;
        row.map(parse).transpose()
    }

    /// Records `decision` on the entries of set `id` at `paths` that wait
    /// for one; returns the set as it now stands. An entry decided before
    /// keeps its decision.
    pub fn decide_changes(
        &self,
        id: i64,
        paths: &[&str],
        decision: Decision,
    ) -> Result<ChangeSet, StoreError> {
        // Read, decide, write only if nobody wrote in between (the owner's
        // terminal and chat may decide at once): else read again.
        for _ in 0..8 {
            let mut set = self
                .change_set(id)?
                .ok_or_else(|| StoreError::Refused(format!("no change set {id}")))?;
            let before = to_json(&set.entries)?;
            for entry in &mut set.entries {
                if entry.decision.is_none() && paths.contains(&entry.change.path.as_str()) {
                    entry.decision = Some(decision);
                }
            }
            let status = if set.pending() { "pending" } else { "decided" };
            let entries = to_json(&set.entries)?;
            let written = self.with(|c| {
                c.execute(
                    "UPDATE change_sets SET entries = ?2, status = ?3 WHERE id = ?1 AND entries = ?4",
                    params![id, entries, status, before],
                )
            })?;
            if written == 1 {
                return Ok(set);
            }
        }
        Err(StoreError::Refused(format!(
            "change set {id} keeps changing under this decision: try again"
        )))
    }
}

type Row = (
    (i64, String, String, String, String, String, String, String),
    Option<(String, String)>,
);

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let branch = match (row.get(8)?, row.get(9)?) {
        (Some(name), Some(commit)) => Some((name, commit)),
        _ => None,
    };
    Ok((
        (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
            row.get(5)?,
            row.get(6)?,
            row.get(7)?,
        ),
        branch,
    ))
}

fn parse(
    ((id, group, invocation, real_path, target, folder, created_at, entries), branch): Row,
) -> Result<ChangeSet, StoreError> {
    let entries = serde_json::from_str(&entries).map_err(|err| {
        StoreError::Refused(format!("change set {id}'s entries cannot be read: {err}"))
    })?;
    Ok(ChangeSet {
        id,
        group,
        invocation,
        real_path,
        target,
        folder,
        created_at,
        entries,
        branch,
    })
}

fn to_json(entries: &[Entry]) -> Result<String, StoreError> {
    serde_json::to_string(entries)
        .map_err(|err| StoreError::Refused(format!("cannot record a change set: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_core::staging::ChangeKind;

    fn change(path: &str, kind: ChangeKind) -> Change {
        Change {
            path: path.into(),
            kind,
            len: None,
            sha256: None,
            refused: None,
        }
    }

    #[test]
    fn a_set_is_told_to_main_and_decided_entry_by_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let changes = [
            change("a", ChangeKind::Added),
            change("b", ChangeKind::Deleted),
        ];
        let id = store
            .add_change_set(
                NewChangeSet {
                    group: "main",
                    invocation: "abc",
                    real_path: "/home/me/site",
                    target: "/workspace/extra/site",
                    folder: "/x",
                    changes: &changes,
                    branch: None,
                },
                "changes wait: pincer changes show {id}",
            )
            .unwrap();
        let told = store.outgoing(MAIN_CHAT).unwrap();
        assert_eq!(
            told,
            [(
                "pincer".into(),
                format!("changes wait: pincer changes show {id}")
            )]
        );
        assert_eq!(store.change_sets(None, true).unwrap().len(), 1);
        assert_eq!(store.change_sets(Some("family"), false).unwrap().len(), 0);
        let set = store
            .decide_changes(id, &["a"], Decision::Accepted)
            .unwrap();
        assert!(set.pending());
        // A decided entry keeps its decision.
        let set = store
            .decide_changes(id, &["a", "b"], Decision::Rejected)
            .unwrap();
        assert_eq!(set.entries[0].decision, Some(Decision::Accepted));
        assert_eq!(set.entries[1].decision, Some(Decision::Rejected));
        assert!(store.change_sets(None, true).unwrap().is_empty());
        assert_eq!(store.change_set(id).unwrap().unwrap(), set);
        assert!(
            store
                .decide_changes(id + 1, &[], Decision::Accepted)
                .is_err()
        );
    }
}
