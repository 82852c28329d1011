//! The skills engine: `cargo xtask apply-skill` and its siblings.
//!
//! A skill is a folder `skills/<name>/` with `SKILL.md` and `skill.toml`.
//! Usually it is a Cargo package too (`Cargo.toml`, `src/`, `tests/`), a
//! member of the workspace upstream and in every fork, and applying it only
//! links it into the owner's build: `[[crate]]` entries edit `Cargo.toml`
//! files structurally (comments and order kept; a dependency on the skill's
//! crate), `[[register]]` entries put one line each into a registry block of
//! a source file (between `apply-skill: begin` and `apply-skill: end`), and
//! its `env` variables go into a block of `.env.example` that names it.
//! `show`, `diff` and the apply's summary list what the owner is about to
//! run: the crate's files and lines, and the dependencies it brings (from
//! `Cargo.lock`).
//!
//! A skill declares what it needs in `[capabilities]` (hosts, programs,
//! paths, variables, unsafe code, registration points, build-time code);
//! `Engine::capabilities` scans the code that links into the owner's binary
//! and reports what it uses next to what it declares (`capabilities`).
//!
//! A skill that truly must change other code may still carry a reference
//! implementation (`files/<path>`, whole files; optionally `base/<path>`,
//! the upstream version it was written against): `adds` are copied and
//! `modifies` three-way-merged (base: the file at the skill's `base` commit
//! or the kept copy; ours: the fork; theirs: the skill's version).
//!
//! Applying creates a review branch `skill/<name>` from the owner's branch,
//! makes those changes, records them in `.pincer/skills.toml` (so that
//! removing the skill takes out what it put in and nothing else), runs the
//! skill's test and commits. The owner's branch does not move until they
//! merge.
//!
//! This crate knows nothing of Pincer's runtime: it works on any git
//! repository with a `skills/` folder, and `new-skill` takes its scaffold
//! from the caller.

pub mod capabilities;
mod engine;
mod env_example;
mod manifest;
mod merge;
mod names;
mod state;

pub use capabilities::{Capabilities, CapabilityReport, Finding, Kind};
pub use engine::{
    ApplyOutcome, Engine, FileChange, NewDependencies, PlannedFile, Scaffold, SkillListing,
    SkillPackage, SkillUpdate, TRAILER, UpdateReport, UpstreamCommit, UpstreamDiffOptions,
    UpstreamPatches,
};
pub use env_example::ENV_EXAMPLE;
pub use manifest::{CrateEdit, RegisterLine, SkillManifest};
pub use merge::{BASE_LABEL, Merged, OURS_LABEL, THEIRS_LABEL, merge3};
pub use state::{AppliedSkill, CargoAdded, STATE_FILE, STATE_FORMAT, State};

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
    /// `update` found nothing to take: the branch has everything upstream
    /// has (not a failure: nothing changed).
    #[error("{0}")]
    UpToDate(String),
    /// A skill's test (or the build) failed: the operation waits on its
    /// review branch for a fix and `--continue`, or `--abort`.
    #[error(
        "{what} `{command}` failed ({status}); fix it on the review branch and run \
         `cargo xtask apply-skill --continue` (or `--abort`)\n\
         its output is in {}; it ends:\n{}",
        .log.display(),
        indented(.tail)
    )]
    TestFailed {
        /// What failed: "the skill's test", "the build", "irc's test".
        what: String,
        /// The command.
        command: String,
        /// How it ended.
        status: String,
        /// The log of its whole output (stdout and stderr).
        log: PathBuf,
        /// The log's last lines.
        tail: String,
    },
    /// The skill's code reaches what its `[capabilities]` do not declare:
    /// apply-skill stops until the owner accepts it (or the skill declares it).
    #[error(
        "{count} of what {skill} was found to reach is not declared in its skill.toml:\n{report}\nread it, then `--accept-undeclared` to apply it anyway",
        count = .0.undeclared().len(), skill = .0.skill, report = .0
    )]
    Undeclared(Box<CapabilityReport>),
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

/// Lines set off from the message around them (a placeholder when there are
/// none, so that an empty output reads as one).
fn indented(lines: &str) -> String {
    if lines.trim().is_empty() {
        return "  (no output)".to_owned();
    }
    lines
        .lines()
        .map(|line| format!("  | {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
