//! Access requests: an agent asks for an egress rule or a folder, with its
//! reason; the owner approves (the same rule the CLI writes) or refuses,
//! once, and a refusal is remembered.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{MAIN_CHAT, Store, StoreError};

/// One request as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessRequest {
    pub id: i64,
    pub group: String,
    /// `egress` or `folder`.
    pub kind: String,
    /// The egress rule, or the folder's host path.
    pub what: String,
    /// For a folder: whether it is asked read-write.
    pub read_write: bool,
    pub reason: String,
    /// `pending`, `approved` or `refused`.
    pub status: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

/// What an agent asks for.
#[derive(Debug, Clone, Copy)]
pub struct AccessAsk<'a> {
    pub group: &'a str,
    /// `egress` or `folder`.
    pub kind: &'a str,
    pub what: &'a str,
    pub read_write: bool,
    pub reason: &'a str,
}

/// What became of an agent's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Recorded, and the main chat told.
    New(i64),
    /// The same request waits already.
    Waiting(i64),
    /// The same request was refused before.
    Refused(AccessRequest),
    /// The group asked for more today than it may.
    TooMany,
}

impl Store {
    /// Records `group`'s request unless the same one waits or was refused,
    /// or the group has made `per_day` requests in the last day (`None`: no
    /// limit); a new one is told to the main chat (`notice`, `{id}`
    /// replaced) in the same transaction.
    pub fn ask_access(
        &self,
        ask: AccessAsk<'_>,
        per_day: Option<u32>,
        notice: &str,
    ) -> Result<Asked, StoreError> {
        let AccessAsk {
            group,
            kind,
            what,
            read_write,
            reason,
        } = ask;
        let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
        let since = crate::time::format(day_ago);
        let asked = self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let earlier = tx
                .query_row(
                    "SELECT id, status FROM access_requests WHERE group_name = ?1 AND kind = ?2
                     AND what = ?3 AND read_write = ?4 AND status IN ('pending', 'refused')
                     ORDER BY id DESC LIMIT 1",
                    params![group, kind, what, read_write],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()?;
            match earlier {
                Some((id, status)) if status == "pending" => return Ok(Ok(Asked::Waiting(id))),
                Some((id, _)) => return Ok(Err(id)),
                None => {}
            }
            if let Some(per_day) = per_day {
                let today: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM access_requests WHERE group_name = ?1 AND created_at >= ?2",
                    params![group, since],
                    |row| row.get(0),
                )?;
                if today >= i64::from(per_day) {
                    return Ok(Ok(Asked::TooMany));
                }
            }
            tx.execute(
                "INSERT INTO access_requests (group_name, kind, what, read_write, reason, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![group, kind, what, read_write, reason, crate::time::now()],
            )?;
            let id = tx.last_insert_rowid();
            let text = notice.replace("{id}", &id.to_string());
            crate::messages::insert_outgoing(&tx, MAIN_CHAT, "pincer", &text)?;
            tx.commit()?;
            Ok(Ok(Asked::New(id)))
        })?;
        match asked {
            Ok(asked) => Ok(asked),
            Err(refused) => Ok(Asked::Refused(self.access_request(refused)?.ok_or_else(
                || StoreError::Refused(format!("access request {refused} is gone")),
            )?)),
        }
    }

    /// Requests, oldest first: of one group or all, waiting ones or all.
    pub fn access_requests(
        &self,
        group: Option<&str>,
        pending_only: bool,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(&format!(
                "{SELECT} WHERE (?1 IS NULL OR group_name = ?1) AND (?2 = 0 OR status = 'pending')
                 ORDER BY id"
            ))?;
            let rows = statement.query_map(params![group, pending_only], row)?;
            rows.collect()
        })
    }

    /// One request.
    pub fn access_request(&self, id: i64) -> Result<Option<AccessRequest>, StoreError> {
        self.with(|c| {
            c.query_row(&format!("{SELECT} WHERE id = ?1"), params![id], row)
                .optional()
        })
    }

    /// Approves a waiting request: its rule (the group's egress rule, or
    /// its folder request) is written in the same transaction.
    pub fn approve_access(&self, id: i64) -> Result<AccessRequest, StoreError> {
        let request = self.waiting(id)?;
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            if request.kind == "egress" {
                tx.execute(
                    "INSERT OR IGNORE INTO egress_rules (group_name, rule, created_at)
                     VALUES (?1, ?2, ?3)",
                    params![request.group, request.what, crate::time::now()],
                )?;
            } else {
                tx.execute(
                    "INSERT OR REPLACE INTO group_mounts (group_name, host_path, container_name,
                     read_write) VALUES (?1, ?2, NULL, ?3)",
                    params![request.group, request.what, request.read_write],
                )?;
            }
            decide(&tx, id, "approved")?;
            tx.commit()
        })?;
        self.decided(id)
    }

    /// Refuses a waiting request; the same request is not asked again.
    pub fn refuse_access(&self, id: i64) -> Result<AccessRequest, StoreError> {
        self.waiting(id)?;
        self.with(|c| decide(c, id, "refused"))?;
        self.decided(id)
    }

    fn waiting(&self, id: i64) -> Result<AccessRequest, StoreError> {
        let request = self
            .access_request(id)?
            .ok_or_else(|| StoreError::Refused(format!("there is no access request {id}")))?;
        if request.status != "pending" {
            return Err(StoreError::Refused(format!(
                "access request {id} was {} already",
                request.status
            )));
        }
        if self.group(&request.group)?.is_none() {
            return Err(StoreError::Refused(format!(
                "group {} is no longer registered",
                request.group
            )));
        }
        Ok(request)
    }

    fn decided(&self, id: i64) -> Result<AccessRequest, StoreError> {
        self.access_request(id)?
            .ok_or_else(|| StoreError::Refused(format!("access request {id} is gone")))
    }
}

const SELECT: &str = "SELECT id, group_name, kind, what, read_write, reason, status, created_at,
    decided_at FROM access_requests";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccessRequest> {
    Ok(AccessRequest {
        id: row.get(0)?,
        group: row.get(1)?,
        kind: row.get(2)?,
        what: row.get(3)?,
        read_write: row.get(4)?,
        reason: row.get(5)?,
        status: row.get(6)?,
        created_at: row.get(7)?,
        decided_at: row.get(8)?,
    })
}

fn decide(c: &rusqlite::Connection, id: i64, status: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE access_requests SET status = ?2, decided_at = ?3 WHERE id = ?1 AND status = 'pending'",
        params![id, status, crate::time::now()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_core::group::GroupName;

    #[test]
    fn a_request_is_asked_once_decided_once_and_a_refusal_is_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .add_group(&GroupName::new("family").unwrap(), "test:family", None)
            .unwrap();
        let ask = |what: &str| {
            let ask = AccessAsk {
                group: "family",
                kind: "egress",
                what,
                read_write: false,
                reason: "docs",
            };
            store.ask_access(ask, Some(2), "asks: {id}").unwrap()
        };
        let Asked::New(first) = ask("example.org") else {
            panic!("not recorded")
        };
        assert_eq!(ask("example.org"), Asked::Waiting(first));
        assert_eq!(
            store.outgoing(MAIN_CHAT).unwrap(),
            [("pincer".to_owned(), format!("asks: {first}"))]
        );
        let refused = store.refuse_access(first).unwrap();
        assert_eq!(refused.status, "refused");
        assert_eq!(ask("example.org"), Asked::Refused(refused));
        assert!(store.approve_access(first).is_err(), "decided once");
        let Asked::New(second) = ask("github.com") else {
            panic!("not recorded")
        };
        assert_eq!(ask("gitlab.com"), Asked::TooMany);
        store.approve_access(second).unwrap();
        assert_eq!(store.egress_rules("family").unwrap(), ["github.com"]);
        assert!(store.access_requests(None, true).unwrap().is_empty());
        assert_eq!(
            store.access_requests(Some("family"), false).unwrap().len(),
            2
        );
    }
}
