//! What the owner's commands do to a group's folders on the host: reset its
//! session, archive or delete the folders of a removed group.
//!
//! The folders are the agent's to write, so everything here goes through
//! [`pincer_core::beneath`]: no link is followed, nothing leaves the folder, a
//! move never replaces anything. A link or a file where Pincer keeps a
//! folder of its own (`archive/`) is set aside, never followed and never
//! a reason to refuse the owner's command.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::config::Paths;
use pincer_core::beneath::{BeneathError, Folder, Kind};
use pincer_core::group::GroupName;

/// A folder command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// A file operation failed (and said where).
    #[error(transparent)]
    Beneath(#[from] BeneathError),
}

/// The disk space the group's folders (its own and its session's) take,
/// counted up to just past `stop_above`; a folder not there yet takes none.
pub fn usage(paths: &Paths, group: &GroupName, stop_above: u64) -> Result<u64, FolderError> {
    let mut total = 0u64;
    for dir in [
        paths.group_dir(group),
        paths.session_dir(group),
        paths.staging_dir(group),
    ] {
        if let Some(folder) = Folder::open_if_there(&dir)? {
            total = total.saturating_add(folder.disk_usage(stop_above.saturating_sub(total))?);
        }
        if total > stop_above {
            break;
        }
    }
    Ok(total)
}

/// Moves the group's transcript into its session's `archive/` as
/// `reset-<time>.json`; returns where, or `None` when there was none. A
/// transcript the agent replaced by a link or a folder is moved all the
/// same (a link is moved as a link).
pub fn reset_session(paths: &Paths, group: &GroupName) -> Result<Option<PathBuf>, FolderError> {
    let Some(session) = Folder::open_if_there(&paths.session_dir(group))? else {
        return Ok(None);
    };
    let transcript = OsStr::new("transcript.json");
    if session.kind(transcript)?.is_none() {
        return Ok(None);
    }
    let archive = own_folder(&session, "archive")?;
    let name = free_name(&archive, &format!("reset-{}", stamp()), ".json")?;
    session.rename(transcript, &archive, &name)?;
    Ok(Some(archive.path().join(name)))
}

/// What became of a removed group's folders.
#[derive(Debug, PartialEq, Eq)]
pub enum Retired {
    /// Moved, whole, under `removed/` in Pincer's data folder.
    Archived(PathBuf),
    /// Deleted.
    Purged,
    /// The group had no folders.
    Nothing,
}

/// Takes a removed group's folder and session folder out of the way, so a
/// new group of the same name starts empty: moved to
/// `removed/<name>-<time>/{group,session}`, or deleted with `purge`.
pub fn retire(paths: &Paths, group: &GroupName, purge: bool) -> Result<Retired, FolderError> {
    let folders = [
        (paths.groups_dir(), "group"),
        (paths.sessions_dir(), "session"),
    ];
    let name = OsStr::new(group.as_str());
    let mut found = Vec::new();
    for (parent, label) in folders {
        if let Some(parent) = Folder::open_if_there(&parent)?
            && parent.kind(name)?.is_some()
        {
            found.push((parent, label));
        }
    }
    if found.is_empty() {
        return Ok(Retired::Nothing);
    }
    if purge {
        for (parent, _) in &found {
            parent.remove_all(name)?;
        }
        return Ok(Retired::Purged);
    }
    let removed = Folder::create(&paths.home.join("removed"), 0o700)?;
    let slot = free_name(&removed, &format!("{group}-{}", stamp()), "")?;
    let slot = removed.ensure_dir(&slot.to_string_lossy(), 0o700)?;
    for (parent, label) in &found {
        parent.rename(name, &slot, OsStr::new(label))?;
    }
    Ok(Retired::Archived(slot.path().to_owned()))
}

/// The folder `name` in `parent`, created with the parent's owner if
/// missing; anything else there (a link, a file) is set aside first.
fn own_folder(parent: &Folder, name: &str) -> Result<Folder, FolderError> {
    match parent.kind(OsStr::new(name))? {
        None | Some(Kind::Dir) => {}
        Some(_) => {
            let aside = free_name(parent, &format!("{name}.set-aside"), "")?;
            parent.rename(OsStr::new(name), parent, &aside)?;
            tracing::warn!(
                "{} was not a folder; set aside as {}",
                parent.path().join(name).display(),
                aside.to_string_lossy()
            );
        }
    }
    let folder = parent.ensure_dir(name, 0o700)?;
    // Created by the host (root, perhaps): the agent must still write it.
    let (uid, gid) = parent.owner()?;
    if folder.owner()? != (uid, gid) {
        folder.chown_all(uid, gid)?;
    }
    Ok(folder)
}

/// Group names are folded to lowercase (store migration 6); folders made
/// before that keep their spelling. Each is renamed to its folded name when
/// that is free (else left, and said so): `groups/Work` becomes
/// `groups/work`, so the group `work` finds its folder and conversation.
pub fn fold_names(paths: &Paths) -> Result<Vec<String>, FolderError> {
    let mut renamed = Vec::new();
    for parent in [paths.groups_dir(), paths.sessions_dir()] {
        let Some(parent) = Folder::open_if_there(&parent)? else {
            continue;
        };
        for (name, kind) in parent.entries()? {
            let Some(text) = name.to_str() else { continue };
            let folded = text.to_ascii_lowercase();
            if kind != Kind::Dir || folded == text {
                continue;
            }
            match parent.rename(&name, &parent, OsStr::new(&folded)) {
                Ok(()) => renamed.push(parent.path().join(&folded).display().to_string()),
                Err(err) => tracing::warn!(
                    "{} keeps its spelling ({err}); the group {folded} does not see it",
                    parent.path().join(&name).display()
                ),
            }
        }
    }
    Ok(renamed)
}

/// `<stem><suffix>`, or `<stem>-<n><suffix>` with the first `n` free.
fn free_name(folder: &Folder, stem: &str, suffix: &str) -> Result<OsString, FolderError> {
    let mut name = OsString::from(format!("{stem}{suffix}"));
    let mut n = 1;
    while folder.kind(&name)?.is_some() {
        n += 1;
        name = OsString::from(format!("{stem}-{n}{suffix}"));
    }
    Ok(name)
}

fn stamp() -> String {
    pincer_store::time::now().replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_reset_moves_the_transcript_and_sets_a_planted_archive_link_aside() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let group = GroupName::new("family").unwrap();
        let session = paths.session_dir(&group);
        let canary = root.path().join("canary");
        std::fs::create_dir_all(&session).unwrap();
        std::fs::create_dir_all(&canary).unwrap();
        std::fs::write(session.join("transcript.json"), "{}").unwrap();
        symlink(&canary, session.join("archive")).unwrap();

        let moved = reset_session(&paths, &group).unwrap().unwrap();
        assert!(moved.starts_with(session.join("archive")), "{moved:?}");
        assert!(session.join("archive").symlink_metadata().unwrap().is_dir());
        assert!(
            session
                .join("archive.set-aside")
                .symlink_metadata()
                .unwrap()
                .is_symlink()
        );
        assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 0);
        assert_eq!(reset_session(&paths, &group).unwrap(), None);
    }

    #[test]
    fn folders_named_before_names_were_folded_are_renamed_when_free() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        for dir in ["groups/Work", "sessions/Work", "groups/Play", "groups/play"] {
            std::fs::create_dir_all(paths.home.join(dir)).unwrap();
        }
        std::fs::write(paths.home.join("groups/Work/MEMORY.md"), "kept").unwrap();
        let renamed = fold_names(&paths).unwrap();
        assert_eq!(renamed.len(), 2, "{renamed:?}");
        assert!(paths.home.join("groups/work/MEMORY.md").is_file());
        assert!(paths.home.join("sessions/work").is_dir());
        // `play` exists: `Play` is left as it is.
        assert!(paths.home.join("groups/Play").is_dir());
        assert!(fold_names(&paths).unwrap().is_empty());
    }

    #[test]
    fn a_removed_groups_folders_are_archived_or_purged_and_links_stay_links() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let group = GroupName::new("family").unwrap();
        let canary = root.path().join("canary");
        std::fs::create_dir_all(&canary).unwrap();
        std::fs::write(canary.join("keep"), "x").unwrap();
        std::fs::create_dir_all(paths.group_dir(&group)).unwrap();
        std::fs::write(paths.group_dir(&group).join("MEMORY.md"), "old").unwrap();
        symlink(&canary, paths.group_dir(&group).join("out")).unwrap();

        let Retired::Archived(slot) = retire(&paths, &group, false).unwrap() else {
            panic!("not archived")
        };
        assert!(slot.join("group/MEMORY.md").is_file());
        assert!(!paths.group_dir(&group).exists());
        assert_eq!(retire(&paths, &group, false).unwrap(), Retired::Nothing);

        std::fs::create_dir_all(paths.session_dir(&group)).unwrap();
        symlink(&canary, paths.session_dir(&group).join("out")).unwrap();
        assert_eq!(retire(&paths, &group, true).unwrap(), Retired::Purged);
        assert!(!paths.session_dir(&group).exists());
        assert!(canary.join("keep").is_file());
    }
}
