//! Messages: accepted before they are acknowledged, claimed in batches per
//! group, answered in one transaction, and the outbox.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::{Store, StoreError};
use pincer_core::group::MAIN_GROUP;

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

impl Store {
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
        self.accept_message_from(None, chat_id, sender, text)?
            .ok_or_else(|| StoreError::Refused("a message without a source was a duplicate".into()))
    }

    /// [`accept_message`](Self::accept_message) for a message its channel's
    /// server names by `source` (a Matrix event id, an IMAP uid): `None`
    /// when that source was stored before, so that a message handed over
    /// again after a restart is neither stored nor answered twice.
    pub fn accept_message_from(
        &self,
        source: Option<&str>,
        chat_id: &str,
        sender: &str,
        text: &str,
    ) -> Result<Option<Accepted>, StoreError> {
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
            let added = c.execute(
                "INSERT INTO messages (chat_id, direction, sender, text, created_at, group_name, status, source)
                 VALUES (?1, 'in', ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (source) WHERE source IS NOT NULL DO NOTHING",
                params![chat_id, sender, text, crate::time::now(), group.name, status, source],
            )?;
            Ok((added == 1).then(|| c.last_insert_rowid()))
        })?;
        Ok(id.map(|id| Accepted {
            id,
            group: group.name,
            wakes,
        }))
    }

    /// Whether a message from `source` was stored.
    pub fn has_source(&self, source: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE source = ?1)",
                [source],
                |row| row.get(0),
            )
        })
    }

    /// A channel's own state under `key` (where it stopped reading).
    pub fn channel_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|c| {
            c.query_row(
                "SELECT value FROM channel_state WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()
        })
    }

    pub fn set_channel_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO channel_state (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![key, value, crate::time::now()],
            )?;
            Ok(())
        })
    }

    /// Stores an owner command the host answered itself (`/changes …` in
    /// the main chat) with its answer, in one transaction: the command is
    /// answered by `reply` and never reaches an agent; returns the ids of
    /// both.
    pub fn answer_owner_command(
        &self,
        chat_id: &str,
        sender: &str,
        text: &str,
        reply: &str,
        source: Option<&str>,
    ) -> Result<(i64, i64), StoreError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let answer = insert_outgoing(&tx, chat_id, "pincer", reply)?;
            tx.execute(
                "INSERT INTO messages (chat_id, direction, sender, text, created_at, group_name,
                     status, answered_by, source)
                 VALUES (?1, 'in', ?2, ?3, ?4, ?5, 'answered', ?6, ?7)",
                params![
                    chat_id,
                    sender,
                    text,
                    crate::time::now(),
                    MAIN_GROUP,
                    answer,
                    source
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok((id, answer))
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
}

pub(crate) fn insert_outgoing(
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

    #[test]
    fn a_message_from_a_source_is_stored_once_and_a_channel_keeps_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .add_group(
                &pincer_core::group::GroupName::new("family").unwrap(),
                "test:family",
                Some("@pincer"),
            )
            .unwrap();
        let first = store
            .accept_message_from(Some("$event"), "test:family", "ann", "@pincer hi")
            .unwrap();
        assert!(first.is_some_and(|a| a.wakes));
        assert!(store.has_source("$event").unwrap());
        // Handed over again (the server's word, after a restart): not stored.
        let again = store
            .accept_message_from(Some("$event"), "test:family", "ann", "@pincer hi")
            .unwrap();
        assert_eq!(again, None);
        assert_eq!(store.claim_batch("family").unwrap().len(), 1);
        // Messages without a source never collide.
        store.accept_message("test:family", "ann", "a").unwrap();
        store.accept_message("test:family", "ann", "a").unwrap();
        // An unregistered chat is refused whatever its source.
        assert!(
            store
                .accept_message_from(Some("$other"), "test:nobody", "x", "y")
                .is_err()
        );
        assert!(!store.has_source("$other").unwrap());

        assert_eq!(store.channel_state("matrix:me:next_batch").unwrap(), None);
        store
            .set_channel_state("matrix:me:next_batch", "s1")
            .unwrap();
        store
            .set_channel_state("matrix:me:next_batch", "s2")
            .unwrap();
        assert_eq!(
            store
                .channel_state("matrix:me:next_batch")
                .unwrap()
                .as_deref(),
            Some("s2")
        );
    }
}
