//! One commit's change made again on top of upstream, file by file, the
//! way `git cherry-pick` makes it: a three-way merge of each file the commit
//! sends, with the commit's parent as the base, the tree being built (the
//! upstream ref's, plus the patches before) as ours and the commit as
//! theirs. The trees are built in the object database only; no ref, index
//! or working file changes.
//!
//! Why not `Repository::apply_to_tree` with the commit's diff: libgit2's
//! apply places each hunk at exactly the line number the diff gives and
//! requires its three lines of context to match, so any line upstream (or a
//! local commit left out) added or removed above the change, or changed
//! within those three lines, refuses it. The merge places the change by
//! content, and its context in the patch is then upstream's own. Like git,
//! it still refuses a change whose lines touch lines that differ on
//! upstream (no unchanged line between them).

use std::path::Path;

use git2::{FileMode, Oid};

use super::super::Engine;
use crate::SkillError;
use crate::merge::merge3;

/// A file as one tree has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Side {
    id: Oid,
    mode: i32,
}

impl Side {
    /// The file at `path` in `tree` (`None`: no such file).
    fn of(tree: &git2::Tree<'_>, path: &str) -> Result<Option<Self>, SkillError> {
        match tree.get_path(Path::new(path)) {
            Ok(entry) => Ok(Some(Self {
                id: entry.id(),
                mode: entry.filemode(),
            })),
            Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// A regular file (not a link, a submodule or a folder): what a text
    /// merge can take.
    fn is_file(self) -> bool {
        matches!(
            file_mode(self.mode),
            Some(FileMode::Blob | FileMode::BlobExecutable | FileMode::BlobGroupWritable)
        )
    }
}

/// What the rebase does with one file.
enum FileRebase {
    /// The tree has it as the commit leaves it already.
    Keep,
    /// Written with this content and mode.
    Set(Oid, FileMode),
    /// Removed.
    Remove,
    /// Cannot be made on upstream; why.
    Conflict(String),
}

/// How a commit went onto the tree.
pub(super) enum Rebased {
    /// The new tree (the same as before when upstream has the change already).
    Onto(Oid),
    /// `path (why)` for each file that cannot be made on upstream.
    Conflicts(Vec<String>),
}

impl Engine {
    /// `commit`'s change to `files`, made on `onto`.
    pub(super) fn rebase_commit(
        &self,
        onto: &git2::Tree<'_>,
        commit: &git2::Commit<'_>,
        files: &[String],
        upstream_ref: &str,
    ) -> Result<Rebased, SkillError> {
        let base_tree = commit.parent(0)?.tree()?;
        let theirs_tree = commit.tree()?;
        let mut update = git2::build::TreeUpdateBuilder::new();
        let mut conflicts = Vec::new();
        for path in files {
            let sides = [
                Side::of(&base_tree, path)?,
                Side::of(onto, path)?,
                Side::of(&theirs_tree, path)?,
            ];
            match self.rebase_file(path, sides, upstream_ref)? {
                FileRebase::Keep => {}
                FileRebase::Set(id, mode) => {
                    update.upsert(path.as_str(), id, mode);
                }
                FileRebase::Remove => {
                    update.remove(path.as_str());
                }
                FileRebase::Conflict(why) => conflicts.push(format!("{path} ({why})")),
            }
        }
        if !conflicts.is_empty() {
            return Ok(Rebased::Conflicts(conflicts));
        }
        Ok(Rebased::Onto(update.create_updated(&self.repo, onto)?))
    }

    /// One file: `[base, ours, theirs]` as the commit's parent, the tree
    /// being built and the commit have it.
    fn rebase_file(
        &self,
        path: &str,
        [base, ours, theirs]: [Option<Side>; 3],
        upstream_ref: &str,
    ) -> Result<FileRebase, SkillError> {
        if ours == theirs {
            return Ok(FileRebase::Keep);
        }
        if ours == base {
            return Ok(match theirs {
                Some(theirs) => FileRebase::Set(theirs.id, checked_mode(path, theirs.mode)?),
                None => FileRebase::Remove,
            });
        }
        let (Some(base), Some(ours), Some(theirs)) = (base, ours, theirs) else {
            let why = match (base, ours) {
                (_, None) => {
                    format!("not in {upstream_ref}: a file of this fork's, or one upstream removed")
                }
                (None, Some(_)) => format!("the commit adds it, and {upstream_ref} has another"),
                (Some(_), Some(_)) => {
                    format!("the commit deletes it, and {upstream_ref} changed it")
                }
            };
            return Ok(FileRebase::Conflict(why));
        };
        if ![base, ours, theirs].into_iter().all(Side::is_file) {
            return Ok(FileRebase::Conflict(format!(
                "{upstream_ref} changed it too"
            )));
        }
        let [base_blob, ours_blob, theirs_blob] =
            [base, ours, theirs].map(|side| self.repo.find_blob(side.id));
        let (base_blob, ours_blob, theirs_blob) = (base_blob?, ours_blob?, theirs_blob?);
        if [&base_blob, &ours_blob, &theirs_blob]
            .iter()
            .any(|blob| blob.is_binary())
        {
            return Ok(FileRebase::Conflict(format!(
                "a binary file {upstream_ref} changed too"
            )));
        }
        let merged = merge3(
            base_blob.content(),
            ours_blob.content(),
            theirs_blob.content(),
            path,
        )?;
        if merged.conflicted {
            return Ok(FileRebase::Conflict(format!(
                "the lines it changes, or lines right next to them, differ on {upstream_ref}"
            )));
        }
        // The commit's own change of mode wins, as its change of content does.
        let mode = if theirs.mode == base.mode {
            ours.mode
        } else {
            theirs.mode
        };
        Ok(FileRebase::Set(
            self.repo.blob(&merged.content)?,
            checked_mode(path, mode)?,
        ))
    }
}

/// A tree entry's raw mode as git2's `FileMode`.
fn file_mode(mode: i32) -> Option<FileMode> {
    [
        FileMode::Blob,
        FileMode::BlobExecutable,
        FileMode::BlobGroupWritable,
        FileMode::Link,
        FileMode::Commit,
    ]
    .into_iter()
    .find(|known| i32::from(*known) == mode)
}

fn checked_mode(path: &str, mode: i32) -> Result<FileMode, SkillError> {
    file_mode(mode).ok_or_else(|| {
        SkillError::Refused(format!("{path}: a tree entry of unknown mode {mode:o}"))
    })
}
