//! Each group at a glance, for `pincer status`: what waits, when it last
//! answered, what runs next, what the model cost since a point in time.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// One group, as the store sees it (the daemon adds what runs now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOverview {
    pub group: String,
    pub chat: String,
    /// Messages that will wake its agent and have not been claimed yet.
    pub queued: u64,
    /// When the last message to its chat (a reply, or one an agent sent) was stored.
    pub last_answer: Option<String>,
    /// The earliest next run of its active tasks.
    pub next_task: Option<String>,
    /// Model tokens since the point asked for (today, for `status`).
    pub tokens: u64,
}

impl Store {
    /// Every group, main first, with its model tokens since `since` (a stored timestamp).
    pub fn group_overview(&self, since: &str) -> Result<Vec<GroupOverview>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT g.name, g.chat_id,
                     (SELECT COUNT(*) FROM messages m WHERE m.direction = 'in'
                         AND m.group_name = g.name AND m.status = 'pending'),
                     (SELECT MAX(m.created_at) FROM messages m WHERE m.direction = 'out'
                         AND m.chat_id = g.chat_id),
                     (SELECT MIN(t.next_run) FROM tasks t WHERE t.group_name = g.name
                         AND t.status = 'active'),
                     (SELECT COALESCE(SUM(u.input_tokens + u.output_tokens
                         + u.cache_read_tokens + u.cache_write_tokens), 0)
                         FROM model_usage u WHERE u.group_name = g.name AND u.at >= ?1)
                 FROM groups g ORDER BY g.is_main DESC, g.name",
            )?;
            let rows = statement.query_map(params![since], |row| {
                let count = |i| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                Ok(GroupOverview {
                    group: row.get(0)?,
                    chat: row.get(1)?,
                    queued: count(2)?,
                    last_answer: row.get(3)?,
                    next_task: row.get(4)?,
                    tokens: count(5)?,
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_shows_what_waits_what_answered_and_what_runs_next() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        store
            .add_group(
                &pincer_core::group::GroupName::new("family").unwrap(),
                "test:family",
                Some("@pincer"),
            )
            .unwrap();
        store
            .accept_message("test:family", "ann", "@pincer hello")
            .unwrap();
        store
            .accept_message("test:family", "ann", "just chatting")
            .unwrap();
        let task = store
            .add_task(
                "main",
                "local:main",
                "water",
                "once",
                "2030-01-01T09:00:00Z",
                "owner",
            )
            .unwrap();
        store
            .plan_task(task.id, Some("2030-01-01T09:00:00Z"))
            .unwrap();
        store.add_outgoing("local:main", "pincer", "hi").unwrap();
        let usage = crate::Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Default::default()
        };
        store.record_usage("main", "inv", "m", usage).unwrap();

        let overview = store.group_overview("2000-01-01T00:00:00Z").unwrap();
        let names: Vec<&str> = overview.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["main", "family"]);
        let (main, family) = (&overview[0], &overview[1]);
        assert_eq!(family.queued, 1, "the untriggered message wakes nobody");
        assert_eq!(family.last_answer, None);
        assert_eq!(main.next_task.as_deref(), Some("2030-01-01T09:00:00Z"));
        assert!(main.last_answer.is_some());
        assert_eq!((main.tokens, family.tokens), (15, 0));
        let later = store.group_overview("2999-01-01T00:00:00Z").unwrap();
        assert_eq!(later[0].tokens, 0, "only usage since the point asked for");
    }
}
