//! The verbs: list, show, diff, apply (with --continue/--abort), remove,
//! update, upstream-diff, new-skill, one file each (or close group). Every
//! verb that changes anything works on a branch of its own and refuses a
//! dirty tree; bad input changes nothing.
//!
//! This file holds the engine itself, the types its verbs share and the git
//! and file helpers they all use.

mod apply;
mod capabilities;
mod cargo_edit;
mod list;
mod new_skill;
mod package;
mod plan;
pub(crate) mod register;
mod remove;
mod test_run;
mod update;
mod update_report;
mod upgrade;
mod upstream_diff;

pub use new_skill::Scaffold;
pub use package::{NewDependencies, SkillPackage};
pub use upstream_diff::{UpstreamCommit, UpstreamDiffOptions, UpstreamPatches};

use std::path::{Path, PathBuf};

use git2::{BranchType, IndexAddOption, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

use crate::SkillError;
use crate::manifest::walk_without_symlinks;
use crate::state::CargoAdded;

/// The trailer that marks the commits the engine makes.
pub const TRAILER: &str = "Pincer-Skill";

/// What a planned change to one file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    /// A file the skill adds.
    Add,
    /// A file the skill modifies (three-way merged).
    Modify,
    /// A `Cargo.toml` edited structurally.
    Manifest,
    /// `.env.example`: the skill's block of variables put in (by apply-skill)
    /// or taken out (by remove-skill; when nothing else is left, the file goes).
    EnvExample,
    /// A file removed (by remove-skill).
    Delete,
    /// `.pincer/skills.toml`, the record of what is applied.
    State,
    /// A source file of the owner's build: the skill's `[[register]]` line
    /// put into (or taken out of) the block between its `apply-skill: begin`
    /// and `apply-skill: end` lines.
    Register,
}

/// One file's planned content.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    /// Relative to the root.
    pub path: String,
    /// What kind of change.
    pub change: FileChange,
    /// The content now (`None`: no such file).
    pub before: Option<Vec<u8>>,
    /// The content after (`None`: the file goes).
    pub after: Option<Vec<u8>>,
    /// Whether the merge left conflict markers.
    pub conflicted: bool,
}

/// A skill in `skills/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillListing {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// Whether it is applied on this branch (and at which version).
    pub applied: Option<String>,
}

/// How an apply (or remove) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Committed on the review branch.
    Committed {
        /// The review branch.
        branch: String,
        /// The branch it started from.
        from: String,
        /// The commit.
        commit: String,
        /// `  A path (+n -m)` lines, then what the owner is about to run (an
        /// apply), the tests run (a remove) and notes.
        summary: Vec<String>,
    },
    /// Conflicts left in the working tree of the review branch.
    Conflicts {
        /// The review branch.
        branch: String,
        /// Each conflicted file and its conflicting hunks.
        files: Vec<(String, String)>,
    },
}

/// What `update` (or its `--continue`) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateReport {
    /// The review branch.
    pub branch: String,
    /// The branch it started from.
    pub from: String,
    /// The upstream commit merged (short id); `None` when upstream had
    /// nothing new and only skills were brought to their versions.
    pub merged: Option<String>,
    /// Files left conflicted, by the merge or by the upgrade of `upgrading`:
    /// resolve them, then `--continue`.
    pub conflicts: Vec<String>,
    /// The skill whose upgrade stopped at `conflicts`.
    pub upgrading: Option<String>,
    /// Per applied skill, when the update finished.
    pub skills: Vec<SkillUpdate>,
}

/// One applied skill after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillUpdate {
    /// Its name.
    pub name: String,
    /// The version applied before the update (`None`: it was not applied).
    pub before: Option<String>,
    /// The version applied now.
    pub after: String,
    /// Files of its package, and files it links into, that the update
    /// changed.
    pub files: Vec<String>,
    /// Whether its test passed on the result (`None`: not run, or it has none).
    pub test: Option<bool>,
    /// How many of its capability findings its `[capabilities]` do not
    /// declare, as its code is now (the update brought new code: the owner
    /// reviews it before merging, `show-skill` has the report).
    pub undeclared: usize,
    /// What the owner should look at (a file the old version added that
    /// the owner changed since, so it was kept…).
    pub notes: Vec<String>,
}

/// The format of the pending file this engine writes. Every engine reads
/// every older format (1: before the field existed; it had no `upstream`,
/// `head` or `cargo`), and refuses a newer one by name.
const PENDING_FORMAT: u32 = 2;

/// An operation waiting for the owner (conflicts, a failed test). An update
/// keeps its merge in git's own state (`MERGE_HEAD`): this file only says
/// where it started, so `--abort` can go back and the report can say what
/// changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    #[serde(default = "format_one")]
    format: u32,
    op: String,
    name: String,
    version: String,
    from: String,
    branch: String,
    files: Vec<String>,
    /// For an update: the full id of the upstream commit it merges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    /// For an update: the commit it started from (the report compares the
    /// skills with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    /// For an apply: what it added to `Cargo.toml` files.
    #[serde(default)]
    cargo: Vec<CargoAdded>,
}

impl Pending {
    /// An operation about to land on `branch` (`from` and `files` are filled
    /// in when it does).
    fn new(op: &str, name: &str, version: &str, branch: String) -> Self {
        Self {
            format: PENDING_FORMAT,
            op: op.into(),
            name: name.to_owned(),
            version: version.to_owned(),
            from: String::new(),
            branch,
            files: Vec::new(),
            upstream: None,
            head: None,
            cargo: Vec::new(),
        }
    }
}

/// What a file without a `format` is: written before formats were numbered.
fn format_one() -> u32 {
    1
}

/// The engine, on one repository.
pub struct Engine {
    repo: Repository,
    root: PathBuf,
    /// The command that builds the owner's program, from the caller (the
    /// engine knows no project's layout): run by `remove` before the other
    /// skills' tests.
    build: Option<String>,
}

impl Engine {
    /// Opens the repository containing `dir`.
    pub fn open(dir: &Path) -> Result<Self, SkillError> {
        let repo = Repository::discover(dir)?;
        let root = repo
            .workdir()
            .ok_or_else(|| SkillError::Refused("a bare repository has no working tree".into()))?
            .to_owned();
        Ok(Self {
            repo,
            root,
            build: None,
        })
    }

    /// The same engine with a build command: after a removal, the fork must
    /// still build (run with `sh -c` at the root, before the tests of the
    /// skills still applied).
    pub fn with_build(mut self, command: impl Into<String>) -> Self {
        self.build = Some(command.into());
        self
    }

    /// The working tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` is in the index (tracked; the tree is clean when it
    /// matters, so as in HEAD).
    fn tracked(&self, path: &str) -> Result<bool, SkillError> {
        Ok(self.repo.index()?.get_path(Path::new(path), 0).is_some())
    }

    /// Refuses to write (or delete) `path` through a symlink in the fork: a
    /// symlinked folder on the way, or a symlink where the file is. (`path`
    /// is relative and has no `..`: the manifest was checked.)
    fn check_target(&self, path: &str) -> Result<(), SkillError> {
        walk_without_symlinks(&self.root, path)
            .map_err(|why| SkillError::Refused(format!("{path} in this fork: {why}")))?;
        Ok(())
    }

    /// Refuses to start while another operation waits for the owner, or
    /// while git itself is in the middle of one (a merge, a rebase…). An
    /// update the owner finished (or gave up) with git leaves a pending file
    /// behind that means nothing any more: it goes.
    fn check_no_pending(&self) -> Result<(), SkillError> {
        if let Some(pending) = self.load_pending()? {
            if !self.finished_by_git(&pending) {
                return Err(SkillError::Refused(match pending.op.as_str() {
                    "update" | "upgrade" => format!(
                        "an update is in progress on {}: resolve its conflicts, then `git commit` \
                         (or `cargo xtask update --continue`); `cargo xtask update --abort` goes back",
                        pending.branch
                    ),
                    op => format!(
                        "an {op} of {} is in progress: finish it with --continue or undo it with --abort",
                        pending.name
                    ),
                }));
            }
            self.remove_pending()?;
        }
        if self.repo.state() != git2::RepositoryState::Clean {
            return Err(SkillError::Refused(format!(
                "git has an operation in progress ({:?}): finish it or abort it first",
                self.repo.state()
            )));
        }
        Ok(())
    }

    /// An update whose merge is in git's own state, and no longer is: the
    /// owner committed it (or ran `git merge --abort`).
    fn finished_by_git(&self, pending: &Pending) -> bool {
        pending.op == "update"
            && pending.format >= 2
            && self.repo.state() == git2::RepositoryState::Clean
    }

    fn check_clean(&self) -> Result<(), SkillError> {
        let mut options = git2::StatusOptions::new();
        options
            .include_untracked(true)
            .include_ignored(false)
            .recurse_untracked_dirs(true);
        let statuses = self.repo.statuses(Some(&mut options))?;
        let dirty: Vec<String> = statuses
            .iter()
            .filter(|s| s.status() != git2::Status::CURRENT)
            .filter_map(|s| s.path().ok().map(str::to_owned))
            .collect();
        if dirty.is_empty() {
            Ok(())
        } else {
            Err(SkillError::Dirty(dirty))
        }
    }

    fn pending_path(&self) -> PathBuf {
        self.repo.path().join("pincer-skill-pending.toml")
    }

    fn load_pending(&self) -> Result<Option<Pending>, SkillError> {
        let path = self.pending_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(SkillError::Io { path, source: err }),
        };
        // The format first, alone: a newer file may have fields this engine
        // does not know, and "written by a newer engine" is the useful error.
        #[derive(Deserialize)]
        struct Format {
            #[serde(default = "format_one")]
            format: u32,
        }
        let bad = |message: String| SkillError::Manifest {
            path: path.clone(),
            message,
        };
        let format: Format = toml::from_str(&text).map_err(|err| bad(err.to_string()))?;
        if format.format > PENDING_FORMAT {
            return Err(bad(format!(
                "written by a newer skills engine (format {}; this one reads up to {PENDING_FORMAT}): \
                 finish the operation with that engine, or `git merge --abort` and delete this file",
                format.format
            )));
        }
        toml::from_str(&text)
            .map(Some)
            .map_err(|err| bad(err.to_string()))
    }

    fn save_pending(&self, pending: &Pending) -> Result<(), SkillError> {
        let path = self.pending_path();
        let text = toml::to_string(pending).map_err(|err| SkillError::Refused(err.to_string()))?;
        std::fs::write(&path, text).map_err(SkillError::io(&path))
    }

    fn remove_pending(&self) -> Result<(), SkillError> {
        std::fs::remove_file(self.pending_path()).map_err(SkillError::io(self.pending_path()))
    }

    fn current_branch(&self) -> Result<String, SkillError> {
        let head = self.repo.head()?;
        if !head.is_branch() {
            return Err(SkillError::Refused(
                "HEAD is detached; check out your branch first".into(),
            ));
        }
        Ok(head.name().unwrap_or_default().to_owned())
    }

    /// Creates the review branch `branch` at HEAD and checks it out; returns
    /// the branch it starts from. A `branch` left over from an earlier
    /// operation and merged since (its tip is HEAD or an ancestor of it)
    /// holds nothing HEAD lacks: it is moved to HEAD and reused. One with
    /// commits HEAD lacks is the owner's unmerged work, and is refused.
    fn start_branch(&self, branch: &str) -> Result<String, SkillError> {
        let from = self.current_branch()?;
        let head = self.repo.head()?.peel_to_commit()?;
        if let Ok(existing) = self.repo.find_branch(branch, BranchType::Local) {
            if from == format!("refs/heads/{branch}") {
                return Err(SkillError::Refused(format!(
                    "you are on {branch}, the review branch itself; check out your branch first"
                )));
            }
            let tip = existing.get().peel_to_commit()?.id();
            if tip != head.id() && !self.repo.graph_descendant_of(head.id(), tip)? {
                return Err(SkillError::Refused(format!(
                    "the branch {branch} exists already and has commits {} lacks \
                     (merge or delete it first)",
                    from.trim_start_matches("refs/heads/")
                )));
            }
        }
        // Forced: a merged leftover moves to HEAD (nothing of it is lost).
        self.repo.branch(branch, &head, true)?;
        self.repo.set_head(&format!("refs/heads/{branch}"))?;
        Ok(from)
    }

    fn write_planned(&self, planned: &[PlannedFile]) -> Result<(), SkillError> {
        for file in planned {
            let path = self.root.join(&file.path);
            match &file.after {
                Some(content) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(SkillError::io(parent))?;
                    }
                    std::fs::write(&path, content).map_err(SkillError::io(&path))?;
                }
                None => {
                    if path.exists() {
                        std::fs::remove_file(&path).map_err(SkillError::io(&path))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn signature(&self) -> Signature<'static> {
        self.repo
            .signature()
            .or_else(|_| Signature::now("pincer skills", "skills@pincer.invalid"))
            .unwrap_or_else(|_| unreachable_signature())
    }

    /// Commits the whole working tree on HEAD (and `merged`, a second parent).
    fn commit_all(
        &self,
        message: &str,
        merged: Option<&git2::Commit<'_>>,
    ) -> Result<Oid, SkillError> {
        let mut index = self.repo.index()?;
        index.add_all(["*"].iter(), IndexAddOption::DEFAULT, None)?;
        index.update_all(["*"].iter(), None)?;
        index.write()?;
        let tree = self.repo.find_tree(index.write_tree()?)?;
        let parent = self.repo.head()?.peel_to_commit()?;
        let mut parents = vec![&parent];
        parents.extend(merged);
        let signature = self.signature();
        Ok(self.repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )?)
    }

    /// `  A path (+n -m)` for each file that differs between `from` and `commit`.
    fn summary(&self, from: &str, commit: Oid) -> Result<Vec<String>, SkillError> {
        let old = self.repo.revparse_single(from)?.peel_to_tree()?;
        let new = self.repo.find_commit(commit)?.tree()?;
        let diff = self.repo.diff_tree_to_tree(Some(&old), Some(&new), None)?;
        let mut lines = Vec::new();
        for index in 0..diff.deltas().len() {
            if let Some(patch) = git2::Patch::from_diff(&diff, index)? {
                let delta = patch.delta();
                let (_, added, removed) = patch.line_stats()?;
                let status = match delta.status() {
                    git2::Delta::Added => "A",
                    git2::Delta::Deleted => "D",
                    _ => "M",
                };
                lines.push(format!(
                    "  {status} {} (+{added} -{removed})",
                    delta_path(&delta)
                ));
            }
        }
        Ok(lines)
    }
}

/// The path a diff's delta is about (the new one, or the old one when the
/// file went).
fn delta_path(delta: &git2::DiffDelta<'_>) -> String {
    delta
        .new_file()
        .path()
        .or(delta.old_file().path())
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn blob_id(content: &[u8]) -> Result<String, SkillError> {
    Ok(Oid::hash_object(git2::ObjectType::Blob, content)?.to_string())
}

fn unreachable_signature() -> Signature<'static> {
    // Signature::now only fails on a name or e-mail with `<`/`>` or a clock
    // before 1970; ours are constants, and time is what it is.
    #[allow(clippy::expect_used)]
    Signature::new(
        "pincer skills",
        "skills@pincer.invalid",
        &git2::Time::new(0, 0),
    )
    .expect("a constant, valid signature")
}

/// A file's content as text.
fn utf8(path: &str, content: Vec<u8>) -> Result<String, SkillError> {
    String::from_utf8(content).map_err(|_| SkillError::Refused(format!("{path}: not UTF-8")))
}

fn read(path: &Path) -> Result<Vec<u8>, SkillError> {
    std::fs::read(path).map_err(SkillError::io(path))
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, SkillError> {
    match std::fs::read(path) {
        Ok(content) => Ok(Some(content)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SkillError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The content a planned edit starts from: the file as an earlier step of
/// the same plan left it (taken out of `planned`, the new step replaces it),
/// else as it is on disk.
fn take_planned(
    planned: &mut Vec<PlannedFile>,
    root: &Path,
    path: &str,
) -> Result<Vec<u8>, SkillError> {
    match planned.iter().position(|p| p.path == path) {
        Some(index) => Ok(planned.remove(index).after.unwrap_or_default()),
        None => read(&root.join(path)),
    }
}
