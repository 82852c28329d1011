//! The owner's word on what agents proposed: change sets of staged grants
//! (listed, shown with diffs, accepted whole or by path, rejected) and
//! access requests (approved or refused). `pincer changes` and the main
//! chat's `/changes …` commands both come here; the text returned is what
//! an agent wrote among the host's words, to be escaped by whoever prints it.

mod access;
mod command;
mod decide;
mod show;

use std::path::Path;

use pincer_core::staging::{ChangeKind, Manifest, StagingError};
use pincer_store::{ChangeSet, StoreError};

pub use access::answer_access;
pub use command::{COMMAND, owner_command};
pub use decide::decide;
pub use show::{list, no_such_set, show};

/// What the owner is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Done; what was done.
    Done(String),
    /// Refused, nothing done; why (and, for a conflict, both versions).
    Refused(String),
    /// The command named nothing that waits; what is wrong.
    Usage(String),
}

/// A decision could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation on the real folder or the copy failed.
    #[error(transparent)]
    Staging(#[from] StagingError),
    /// The record of what was copied cannot be read.
    #[error("change set {id}'s record {path}: {message}")]
    Record {
        /// The set.
        id: i64,
        /// The record file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// `2 added, 1 changed, 3 deleted` of the waiting entries.
fn counts(set: &ChangeSet) -> String {
    let count = |kind| {
        set.entries
            .iter()
            .filter(|e| e.decision.is_none() && e.change.kind == kind)
            .count()
    };
    format!(
        "{} added, {} changed, {} deleted",
        count(ChangeKind::Added),
        count(ChangeKind::Changed),
        count(ChangeKind::Deleted)
    )
}

/// What was copied for the set: the host's own file beside the copy.
fn manifest(set: &ChangeSet) -> Result<Manifest, ChangesError> {
    let file = Path::new(&set.folder).join(crate::invoke::staged::MANIFEST_FILE);
    let record = |message: String| ChangesError::Record {
        id: set.id,
        path: file.display().to_string(),
        message,
    };
    let text = std::fs::read(&file).map_err(|err| record(err.to_string()))?;
    serde_json::from_slice(&text).map_err(|err| record(err.to_string()))
}
