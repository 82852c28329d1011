//! Scheduled tasks and their runs: planned, fired as a message of their
//! group, finished by the answer to it.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::{Store, StoreError};

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

impl Store {
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
