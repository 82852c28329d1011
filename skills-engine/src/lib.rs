//! The skills engine: `cargo xtask apply-skill` and its siblings.
//!
//! A skill is a folder `skills/<name>/` with `SKILL.md`, `skill.toml` and
//! the reference implementation (`files/<path>`, whole files; optionally
//! `base/<path>`, the upstream version it was written against). Applying it
//! creates a review branch `skill/<name>` from the owner's branch, adds its
//! files, three-way-merges each file it modifies (base: the file at the
//! skill's `base` commit or the kept copy; ours: the fork; theirs: the
//! skill's version), edits `Cargo.toml` files structurally (comments and
//! order kept), writes the skill's `env` variables into a block of
//! `.env.example` that names it, records the result in
//! `.pincer/skills.toml`, runs the skill's test and commits. The owner's
//! branch does not move until they merge.
//!
//! This crate knows nothing about Pincer's runtime: it works on any git
//! repository with a `skills/` folder.

mod engine;
mod env_example;
mod manifest;
mod merge;
mod state;

pub use engine::{
    ApplyOutcome, Engine, FileChange, NewDependencies, PlannedFile, SkillListing, SkillPackage,
    TRAILER, UpdateReport,
};
pub use env_example::ENV_EXAMPLE;
pub use manifest::{CrateEdit, RegisterLine, SkillManifest};
pub use merge::{BASE_LABEL, Merged, OURS_LABEL, THEIRS_LABEL, merge3};
pub use state::{AppliedSkill, CargoAdded, STATE_FILE, State};

use std::path::PathBuf;

/// What can go wrong; each says what and where.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// No such skill in `skills/`.
    #[error("no skill named {0:?} in skills/ (`cargo xtask skills` lists them)")]
    UnknownSkill(String),
    /// `skill.toml` is malformed.
    #[error("{path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong (names the key).
        message: String,
    },
    /// The working tree has changes.
    #[error("the working tree is not clean; commit or stash first:\n  {}", .0.join("\n  "))]
    Dirty(Vec<String>),
    /// Refused for a reason given.
    #[error("{0}")]
    Refused(String),
    /// The skill's test failed.
    #[error(
        "the skill's test `{command}` failed ({status}); fix it on the review branch and run `cargo xtask apply-skill --continue`"
    )]
    TestFailed {
        /// The command.
        command: String,
        /// How it ended.
        status: String,
    },
    /// Git said no.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl SkillError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SkillError {
        let path = path.into();
        move |source| SkillError::Io { path, source }
    }
}
