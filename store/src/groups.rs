//! Groups: their chats and triggers, the extra folders they ask for, and
//! their egress rules.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use pincer_core::group::{GroupName, MAIN_GROUP};

use crate::{DEFAULT_TRIGGER, Store, StoreError};

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

impl Store {
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
