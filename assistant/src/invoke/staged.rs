//! After an invocation: what its agent wrote to staged grants becomes a
//! change set for the owner, and a copy without changes goes.

use std::path::PathBuf;

use pincer_core::beneath::Folder;
use pincer_core::group::GroupName;
use pincer_core::mounts::{MountPolicy, StagedGrant};
use pincer_core::staging::{self, Change, ChangeKind};
use pincer_store::{AuditRecord, NewChangeSet};

use super::{Host, branch};

/// The file beside a staged copy that says what was copied.
pub const MANIFEST_FILE: &str = "manifest.json";

/// An invocation's staged copies; removed when dropped unless they were
/// compared (a failure before the container ran leaves nothing behind).
pub(super) struct StagedCopies {
    /// Each copy, and for a git repository its HEAD before the agent began.
    grants: Vec<(StagedGrant, Option<String>)>,
    folder: PathBuf,
}

impl StagedCopies {
    /// Made right after the copies, before the container starts.
    pub(super) fn new(grants: Vec<StagedGrant>, folder: PathBuf) -> Self {
        let grants = grants
            .into_iter()
            .map(|grant| {
                let head = branch::is_repository(&grant.real)
                    .then(|| branch::head(&grant.real))
                    .flatten();
                (grant, head)
            })
            .collect();
        Self { grants, folder }
    }

    fn take(&mut self) -> Vec<(StagedGrant, Option<String>)> {
        std::mem::take(&mut self.grants)
    }
}

impl Drop for StagedCopies {
    fn drop(&mut self) {
        for (grant, _) in &self.grants {
            let _ = staging::discard(&grant.folder);
        }
        // Empty once every copy went (or none was made).
        if let (Some(parent), Some(name)) = (self.folder.parent(), self.folder.file_name())
            && let Ok(Some(parent)) = Folder::open_if_there(parent)
        {
            let _ = parent.remove_dir_if_empty(name);
        }
    }
}

impl Host {
    /// Compares each staged copy with what was copied: a copy with changes
    /// is kept, recorded as a change set and told to the main chat; one
    /// without is removed. A copy that cannot be compared is kept where it
    /// is and the owner told so (nothing of it reaches the real folder).
    pub(super) fn record_changes(
        &self,
        group: &GroupName,
        invocation_id: &str,
        copies: &mut StagedCopies,
        policy: &MountPolicy,
    ) {
        let secret = |path: &str| policy.blocks_below(path);
        for (grant, head) in copies.take() {
            let limit = self.settings.limits.staged_copy_bytes;
            match staging::collect(&grant.tree(), &grant.manifest, &secret, limit) {
                Ok(changes) if changes.is_empty() => {
                    if let Err(err) = staging::discard(&grant.folder) {
                        tracing::warn!(group = %group, "cannot remove an unchanged copy: {err}");
                    }
                }
                Ok(changes) => {
                    let kept = self.keep(group, invocation_id, &grant, head.as_deref(), &changes);
                    if let Err(err) = kept {
                        self.cannot_keep(group, &grant, &err.to_string());
                    }
                }
                Err(err) => self.cannot_keep(group, &grant, &err.to_string()),
            }
        }
    }

    fn keep(
        &self,
        group: &GroupName,
        invocation_id: &str,
        grant: &StagedGrant,
        head: Option<&str>,
        changes: &[Change],
    ) -> Result<(), Box<dyn std::error::Error>> {
        let manifest = serde_json::to_vec(&grant.manifest)?;
        Folder::open(&grant.folder)?.write_file(
            std::ffi::OsStr::new(MANIFEST_FILE),
            &mut manifest.as_slice(),
            0o600,
            None,
        )?;
        let real = grant.real.display().to_string();
        let branch =
            head.and_then(|head| self.offer_branch(group, invocation_id, grant, head, changes));
        let as_branch = branch
            .as_ref()
            .map(|(name, _)| format!(", or merge the branch {name}"))
            .unwrap_or_default();
        let notice = format!(
            "Group {group}'s agent changed {real} ({}). Nothing of it reaches the folder until \
             you accept it: pincer changes show {{id}}{as_branch}",
            counts(changes)
        );
        let store = &self.services.store;
        let id = store.add_change_set(
            NewChangeSet {
                group: group.as_str(),
                invocation: invocation_id,
                real_path: &real,
                target: &grant.target,
                folder: &grant.folder.display().to_string(),
                changes,
                branch: branch.as_ref().map(|(n, c)| (n.as_str(), c.as_str())),
            },
            &notice,
        )?;
        store.audit_or_log(AuditRecord {
            group: Some(group.as_str()),
            kind: "changes",
            action: "stage_changes",
            target: Some(&real),
            allowed: None,
            detail: Some(format!("change set {id}: {}", counts(changes))),
            ..Default::default()
        });
        tracing::info!(group = %group, invocation = invocation_id, "change set {id} waits for the owner: {real}");
        Ok(())
    }

    /// For a grant that is a git repository (`head`: its HEAD before the
    /// agent began): the changes as a branch (its name and commit); `None`,
    /// logged, when git cannot make one.
    fn offer_branch(
        &self,
        group: &GroupName,
        invocation_id: &str,
        grant: &StagedGrant,
        head: &str,
        changes: &[Change],
    ) -> Option<(String, String)> {
        if changes.iter().all(|c| c.refused.is_some()) {
            return None;
        }
        let name = branch::branch_name(group.as_str(), invocation_id);
        let tree = grant.tree();
        match branch::make_branch(&grant.real, &tree, changes, &name, head, &grant.folder) {
            Ok(commit) => Some((name, commit)),
            Err(err) => {
                tracing::warn!(group = %group, "no branch for the changes to {}: {err}", grant.real.display());
                None
            }
        }
    }

    fn cannot_keep(&self, group: &GroupName, grant: &StagedGrant, why: &str) {
        let note = format!(
            "the changes group {group}'s agent made to {} cannot be listed ({why}); nothing of \
             them was applied, and the copy stays at {}",
            grant.real.display(),
            grant.tree().display()
        );
        tracing::warn!(group = %group, "{note}");
        let store = &self.services.store;
        store.audit_or_log(AuditRecord {
            group: Some(group.as_str()),
            kind: "changes",
            action: "stage_changes",
            target: Some(&grant.real.display().to_string()),
            allowed: Some(false),
            reason: Some(&note),
            ..Default::default()
        });
        if let Err(err) = store.add_outgoing(pincer_store::MAIN_CHAT, "pincer", &note) {
            tracing::error!("cannot tell the main chat: {err}");
        }
    }
}

/// `2 added, 1 changed, 3 deleted` (and how many can never be applied).
pub fn counts(changes: &[Change]) -> String {
    let count = |kind| changes.iter().filter(|c| c.kind == kind).count();
    let mut said = format!(
        "{} added, {} changed, {} deleted",
        count(ChangeKind::Added),
        count(ChangeKind::Changed),
        count(ChangeKind::Deleted)
    );
    let refused = changes.iter().filter(|c| c.refused.is_some()).count();
    if refused > 0 {
        said.push_str(&format!("; {refused} never applied"));
    }
    said
}
