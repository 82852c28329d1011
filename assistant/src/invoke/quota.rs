//! The group's folders against `[limits] group_folder_bytes`: measured
//! before an invocation (over it, nothing starts) and after it (over it, the
//! owner hears of it at once).

use super::{Host, InvokeError};
use pincer_core::group::GroupName;
use pincer_store::AuditRecord;

impl Host {
    /// Refuses an invocation of a group whose folders are over their quota
    /// (telling the main chat, once a day).
    pub(super) fn check_quota(&self, group: &GroupName) -> Result<(), InvokeError> {
        let quota = self.settings.limits.group_folder_bytes;
        if quota == 0 {
            return Ok(());
        }
        let used = crate::folders::usage(&self.paths, group, quota)?;
        if used <= quota {
            return Ok(());
        }
        let err = InvokeError::OverQuota {
            group: group.to_string(),
            used,
            quota,
        };
        self.tell_over_quota(group, &err.to_string());
        Err(err)
    }

    /// After an invocation: over the quota, the owner hears of it now (the
    /// group's next message is refused by [`Self::check_quota`]).
    pub(super) fn after(&self, group: &GroupName, invocation_id: &str) {
        let quota = self.settings.limits.group_folder_bytes;
        if quota == 0 {
            return;
        }
        match crate::folders::usage(&self.paths, group, quota) {
            Ok(used) if used > quota => {
                let note = format!(
                    "invocation {invocation_id} left group {group}'s folders at {used} bytes or \
                     more, over their quota of {quota}: its next messages are refused until there \
                     is room"
                );
                self.tell_over_quota(group, &note);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(group = %group, "cannot measure the group's folders: {err}"),
        }
    }

    fn tell_over_quota(&self, group: &GroupName, note: &str) {
        let store = &self.services.store;
        tracing::warn!(group = %group, "{note}");
        store.audit_or_log(AuditRecord {
            group: Some(group.as_str()),
            kind: "quota",
            action: "over_quota",
            allowed: Some(false),
            reason: Some(note),
            ..Default::default()
        });
        let day = &pincer_store::time::now()[..10];
        store.tell_main_once(&format!("over_quota:{group}"), day, note);
    }
}
