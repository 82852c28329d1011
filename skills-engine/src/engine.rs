//! The verbs: list, show, diff, apply (with --continue/--abort), remove,
//! update, upstream-diff, new-skill. Every verb that changes anything works
//! on a branch of its own and refuses a dirty tree; bad input changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{BranchType, IndexAddOption, Oid, Repository, Signature};
use serde::{Deserialize, Serialize};

use crate::SkillError;
use crate::env_example::{ENV_EXAMPLE, add_block, remove_block, valid_variable};
use crate::manifest::{
    CrateEdit, SkillManifest, check_relative, valid_name, walk_without_symlinks,
};
use crate::merge::{has_markers, merge3};
use crate::state::{AppliedSkill, CargoAdded, STATE_FILE, State};

/// The trailer that marks the commits the engine makes.
pub const TRAILER: &str = "Pincer-Skill";

/// Where `update` fetches upstream's commit to.
const UPSTREAM_REF: &str = "refs/pincer/upstream";

/// The folder in the git directory where `upstream-diff` writes when not
/// told where: outside the working tree, so the patches never make it dirty.
const PATCH_DIR: &str = "pincer-upstream-patches";

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
        /// `  A path (+n -m)` lines.
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

/// What `update` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateReport {
    /// The review branch.
    pub branch: String,
    /// Files the upstream merge left conflicted.
    pub conflicts: Vec<String>,
    /// Per applied skill: the files it touches that upstream changed, and
    /// whether its test passed on the merged tree (`None`: not run).
    pub skills: Vec<(String, Vec<String>, Option<bool>)>,
}

/// An operation waiting for the owner (conflicts, a failed test).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    op: String,
    name: String,
    version: String,
    from: String,
    branch: String,
    files: Vec<String>,
    /// For an update: the full id of the upstream commit it merges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
    /// For an apply: what it added to `Cargo.toml` files.
    #[serde(default)]
    cargo: Vec<CargoAdded>,
}

impl Pending {
    /// An operation about to land on `branch` (`from` and `files` are filled
    /// in when it does).
    fn new(op: &str, name: &str, version: &str, branch: String) -> Self {
        Self {
            op: op.into(),
            name: name.to_owned(),
            version: version.to_owned(),
            from: String::new(),
            branch,
            files: Vec::new(),
            upstream: None,
            cargo: Vec::new(),
        }
    }
}

/// The engine, on one repository.
pub struct Engine {
    repo: Repository,
    root: PathBuf,
}

impl Engine {
    /// Opens the repository containing `dir`.
    pub fn open(dir: &Path) -> Result<Self, SkillError> {
        let repo = Repository::discover(dir)?;
        let root = repo
            .workdir()
            .ok_or_else(|| SkillError::Refused("a bare repository has no working tree".into()))?
            .to_owned();
        Ok(Self { repo, root })
    }

    /// The working tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The skills in `skills/`, and which are applied.
    pub fn list(&self) -> Result<Vec<SkillListing>, SkillError> {
        let state = State::load(&self.root)?;
        let mut listings = Vec::new();
        let dir = self.root.join("skills");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(listings);
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("skill.toml").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let manifest = SkillManifest::load(&self.root, &name)?;
            listings.push(SkillListing {
                applied: state.get(&name).map(|s| s.version.clone()),
                name,
                version: manifest.version,
                description: manifest.description,
            });
        }
        Ok(listings)
    }

    /// The SKILL.md and what the skill would touch.
    pub fn show(&self, name: &str) -> Result<String, SkillError> {
        let manifest = SkillManifest::load(&self.root, name)?;
        let skill_md = self.root.join("skills").join(name).join("SKILL.md");
        walk_without_symlinks(&self.root, &format!("skills/{name}/SKILL.md")).map_err(
            |message| SkillError::Manifest {
                path: skill_md.clone(),
                message,
            },
        )?;
        let mut text = std::fs::read_to_string(&skill_md).map_err(SkillError::io(&skill_md))?;
        text.push_str(&format!(
            "\n---\n{} {} (written against {})\n",
            manifest.name, manifest.version, manifest.base
        ));
        for file in &manifest.adds {
            text.push_str(&format!("  adds      {file}\n"));
        }
        for file in &manifest.modifies {
            text.push_str(&format!("  modifies  {file}\n"));
        }
        for edit in &manifest.crates {
            for dependency in edit.dependencies.keys() {
                text.push_str(&format!("  crate     {dependency} in {}\n", edit.manifest));
            }
            for member in &edit.members {
                text.push_str(&format!("  member    {member} in {}\n", edit.manifest));
            }
        }
        if !manifest.env.is_empty() {
            text.push_str(&format!(
                "  env       {} (into {ENV_EXAMPLE})\n",
                manifest.env.join(" ")
            ));
        }
        if let Some(test) = &manifest.test {
            text.push_str(&format!("  test      {test}\n"));
        }
        Ok(text)
    }

    /// What applying `name` would do to the working tree, computed in
    /// memory: every file it writes, `.pincer/skills.toml` included.
    pub fn plan(&self, name: &str) -> Result<(SkillManifest, Vec<PlannedFile>), SkillError> {
        let (manifest, planned, _) = self.plan_apply(name)?;
        Ok((manifest, planned))
    }

    /// `plan`, and what the apply adds to `Cargo.toml` files.
    fn plan_apply(
        &self,
        name: &str,
    ) -> Result<(SkillManifest, Vec<PlannedFile>, Vec<CargoAdded>), SkillError> {
        let manifest = SkillManifest::load(&self.root, name)?;
        for path in manifest
            .adds
            .iter()
            .chain(&manifest.modifies)
            .chain(manifest.crates.iter().map(|c| &c.manifest))
        {
            self.check_target(path)?;
        }
        self.check_target(STATE_FILE)?;
        if !manifest.env.is_empty() {
            self.check_target(ENV_EXAMPLE)?;
        }
        let mut state = State::load(&self.root)?;
        let mut planned = Vec::new();
        for file in &manifest.adds {
            let theirs = read(&manifest.theirs(&self.root, file))?;
            let before = read_optional(&self.root.join(file))?;
            let (after, conflicted) = match &before {
                None => (theirs, false),
                Some(ours) if *ours == theirs => (theirs, false),
                Some(ours) => {
                    let merged = merge3(b"", ours, &theirs, file)?;
                    (merged.content, merged.conflicted)
                }
            };
            planned.push(PlannedFile {
                path: file.clone(),
                change: FileChange::Add,
                before,
                after: Some(after),
                conflicted,
            });
        }
        for file in &manifest.modifies {
            let base = self.base_version(&manifest, file)?;
            let ours = read_optional(&self.root.join(file))?.ok_or_else(|| {
                SkillError::Refused(format!(
                    "{file}: the skill modifies it, but this fork has no such file"
                ))
            })?;
            let theirs = read(&manifest.theirs(&self.root, file))?;
            let merged = merge3(&base, &ours, &theirs, file)?;
            planned.push(PlannedFile {
                path: file.clone(),
                change: FileChange::Modify,
                before: Some(ours),
                after: Some(merged.content),
                conflicted: merged.conflicted,
            });
        }
        let mut cargo: Vec<CargoAdded> = Vec::new();
        for edit in &manifest.crates {
            let path = self.root.join(&edit.manifest);
            // A manifest the skill also modifies is edited after its merge.
            let current = match planned.iter().position(|p| p.path == edit.manifest) {
                Some(index) => planned.remove(index).after.unwrap_or_default(),
                None => read(&path)?,
            };
            let text = String::from_utf8(current)
                .map_err(|_| SkillError::Refused(format!("{}: not UTF-8", edit.manifest)))?;
            let (edited, inserted) =
                add_to_manifest(&text, edit).map_err(|message| SkillError::Manifest {
                    path: path.clone(),
                    message,
                })?;
            // An entry that was there already is the owner's, and stays when
            // the skill goes, unless a skill added it (another applied one,
            // or an earlier entry of this one): then each of them records it,
            // and the last of them to be removed takes it out. So the record
            // does not depend on the order skills were applied in either.
            let record = {
                let by_skills: Vec<&CargoAdded> = state
                    .applied
                    .iter()
                    .filter(|s| s.name != manifest.name)
                    .flat_map(|s| s.cargo.iter())
                    .chain(cargo.iter())
                    .collect();
                CargoAdded {
                    manifest: edit.manifest.clone(),
                    dependencies: edit
                        .dependencies
                        .keys()
                        .filter(|d| {
                            inserted.dependencies.contains(d)
                                || recorded(&by_skills, &edit.manifest, Entry::Dependency, d)
                        })
                        .cloned()
                        .collect(),
                    members: edit
                        .members
                        .iter()
                        .filter(|m| {
                            inserted.members.contains(m)
                                || recorded(&by_skills, &edit.manifest, Entry::Member, m)
                        })
                        .cloned()
                        .collect(),
                }
            };
            if !record.is_empty() {
                cargo.push(record);
            }
            planned.push(PlannedFile {
                path: edit.manifest.clone(),
                change: FileChange::Manifest,
                before: read_optional(&path)?,
                after: Some(edited.into_bytes()),
                conflicted: false,
            });
        }
        if !manifest.env.is_empty() {
            if !self.tracked(ENV_EXAMPLE)? && self.repo.is_path_ignored(ENV_EXAMPLE)? {
                return Err(SkillError::Refused(format!(
                    "{ENV_EXAMPLE} is ignored by this fork's .gitignore, so the variables of \
                     {name} would not be committed with it: un-ignore it (a line \
                     `!{ENV_EXAMPLE}`) or commit it once with `git add -f {ENV_EXAMPLE}`"
                )));
            }
            let before = read_optional(&self.root.join(ENV_EXAMPLE))?;
            let text = utf8(ENV_EXAMPLE, before.clone().unwrap_or_default())?;
            let after = add_block(&text, &manifest.name, &manifest.env)
                .map_err(|why| SkillError::Refused(format!("{ENV_EXAMPLE}: {why}")))?;
            planned.push(PlannedFile {
                path: ENV_EXAMPLE.into(),
                change: FileChange::EnvExample,
                before,
                after: Some(after.into_bytes()),
                conflicted: false,
            });
        }
        // The state file, as a clean apply leaves it.
        let files = self.applied_files(&manifest, |file| {
            Ok(planned
                .iter()
                .find(|p| p.path == file)
                .and_then(|p| p.after.clone())
                .unwrap_or_default())
        })?;
        state.record(AppliedSkill {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            files,
            cargo: cargo.clone(),
            env: manifest.env.clone(),
        });
        planned.push(PlannedFile {
            path: STATE_FILE.into(),
            change: FileChange::State,
            before: read_optional(&self.root.join(STATE_FILE))?,
            after: Some(state.render()?.into_bytes()),
            conflicted: false,
        });
        Ok((manifest, planned, cargo))
    }

    /// The blob ids the state keeps for a skill. Added files: as `added`
    /// gives them (the apply's result; remove-skill deletes a file only if it
    /// is still that). Modified files: the skill's own version (the merge's
    /// result depends on what else is applied, and the state must not depend
    /// on the order skills were applied in).
    fn applied_files(
        &self,
        manifest: &SkillManifest,
        added: impl Fn(&str) -> Result<Vec<u8>, SkillError>,
    ) -> Result<BTreeMap<String, String>, SkillError> {
        let mut files = BTreeMap::new();
        for file in &manifest.adds {
            files.insert(file.clone(), blob_id(&added(file)?)?);
        }
        for file in &manifest.modifies {
            let content = read(&manifest.theirs(&self.root, file))?;
            files.insert(file.clone(), blob_id(&content)?);
        }
        Ok(files)
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

    /// The exact diff applying `name` would make, as unified diffs.
    pub fn diff(&self, name: &str, colour: bool) -> Result<String, SkillError> {
        let (_, planned) = self.plan(name)?;
        Ok(render_diff(&planned, colour))
    }

    fn base_version(&self, manifest: &SkillManifest, file: &str) -> Result<Vec<u8>, SkillError> {
        if let Ok(oid) = Oid::from_str(&manifest.base)
            && let Ok(commit) = self.repo.find_commit(oid)
        {
            let tree = commit.tree()?;
            return match tree.get_path(Path::new(file)) {
                Ok(entry) => Ok(self.repo.find_blob(entry.id())?.content().to_vec()),
                Err(_) => Err(SkillError::Refused(format!(
                    "{file} does not exist at the skill's base {}",
                    manifest.base
                ))),
            };
        }
        let kept = manifest.kept_base(&self.root, file);
        read_optional(&kept)?.ok_or_else(|| {
            SkillError::Refused(format!(
                "the skill's base commit {} is not in this repository and the package keeps no copy at {}",
                manifest.base,
                kept.display()
            ))
        })
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
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|err| SkillError::Manifest {
                    path,
                    message: err.to_string(),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(SkillError::Io { path, source: err }),
        }
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

    fn start_branch(&self, branch: &str) -> Result<String, SkillError> {
        if self.repo.find_branch(branch, BranchType::Local).is_ok() {
            return Err(SkillError::Refused(format!(
                "the branch {branch} exists already (merge or delete it first)"
            )));
        }
        let from = self.current_branch()?;
        let head = self.repo.head()?.peel_to_commit()?;
        self.repo.branch(branch, &head, false)?;
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

    /// Applies `name` on a new review branch `skill/<name>`.
    pub fn apply(&self, name: &str, run_test: bool) -> Result<ApplyOutcome, SkillError> {
        if let Some(pending) = self.load_pending()? {
            return Err(SkillError::Refused(format!(
                "an {} of {} is in progress: finish it with --continue or undo it with --abort",
                pending.op, pending.name
            )));
        }
        self.check_clean()?;
        let state = State::load(&self.root)?;
        let (manifest, planned, cargo) = self.plan_apply(name)?;
        if state.get(name).is_some() {
            return Err(SkillError::Refused(format!("{name} is applied already")));
        }
        for other in &manifest.conflicts {
            if state.get(other).is_some() {
                return Err(SkillError::Refused(format!(
                    "{name} conflicts with {other}, which is applied"
                )));
            }
        }
        for applied in &state.applied {
            if let Ok(theirs) = SkillManifest::load(&self.root, &applied.name)
                && theirs.conflicts.contains(&name.to_owned())
            {
                return Err(SkillError::Refused(format!(
                    "{} (applied) conflicts with {name}",
                    applied.name
                )));
            }
        }
        for dependency in &manifest.depends {
            if state.get(dependency).is_none() {
                return Err(SkillError::Refused(format!(
                    "{name} needs {dependency}: apply it first"
                )));
            }
        }
        let mut pending = Pending::new("apply", name, &manifest.version, format!("skill/{name}"));
        pending.cargo = cargo;
        self.land(pending, &planned, run_test)
    }

    /// Creates the review branch, writes the planned files, and either stops
    /// at the conflicts (exit 3 for the caller) or finishes the operation.
    fn land(
        &self,
        mut pending: Pending,
        planned: &[PlannedFile],
        run_test: bool,
    ) -> Result<ApplyOutcome, SkillError> {
        // Everything is checked before the branch is created.
        for file in planned {
            self.check_target(&file.path)?;
        }
        self.check_target(STATE_FILE)?;
        pending.files = planned
            .iter()
            .filter(|p| p.after.is_some() && p.change != FileChange::State)
            .map(|p| p.path.clone())
            .collect();
        pending.from = self.start_branch(&pending.branch)?;
        // Pending before the first write: whatever happens next, --abort
        // goes back.
        self.save_pending(&pending)?;
        self.write_planned(planned)?;
        let conflicted: Vec<&PlannedFile> = planned.iter().filter(|p| p.conflicted).collect();
        if !conflicted.is_empty() {
            return Ok(ApplyOutcome::Conflicts {
                branch: pending.branch,
                files: conflicted
                    .iter()
                    .map(|p| {
                        (
                            p.path.clone(),
                            conflict_hunks(p.after.as_deref().unwrap_or_default()),
                        )
                    })
                    .collect(),
            });
        }
        self.finish(pending, run_test)
    }

    fn save_pending(&self, pending: &Pending) -> Result<(), SkillError> {
        let path = self.pending_path();
        let text = toml::to_string(pending).map_err(|err| SkillError::Refused(err.to_string()))?;
        std::fs::write(&path, text).map_err(SkillError::io(&path))
    }

    /// After the owner resolved the conflicts: checks, tests, commits.
    pub fn continue_pending(&self, run_test: bool) -> Result<ApplyOutcome, SkillError> {
        let pending = self
            .load_pending()?
            .ok_or_else(|| SkillError::Refused("nothing to continue".into()))?;
        let marked: Vec<String> = pending
            .files
            .iter()
            .filter(|f| {
                read_optional(&self.root.join(f))
                    .ok()
                    .flatten()
                    .is_some_and(|c| has_markers(&c))
            })
            .cloned()
            .collect();
        if !marked.is_empty() {
            return Err(SkillError::Refused(format!(
                "conflict markers remain in: {}",
                marked.join(", ")
            )));
        }
        self.finish(pending, run_test)
    }

    /// Undoes a pending operation: back to the branch it started from.
    pub fn abort(&self) -> Result<String, SkillError> {
        let pending = self
            .load_pending()?
            .ok_or_else(|| SkillError::Refused("nothing to abort".into()))?;
        self.repo.set_head(&pending.from)?;
        self.repo.checkout_head(Some(
            git2::build::CheckoutBuilder::new()
                .force()
                .remove_untracked(true),
        ))?;
        if let Ok(mut branch) = self.repo.find_branch(&pending.branch, BranchType::Local) {
            branch.delete()?;
        }
        std::fs::remove_file(self.pending_path()).map_err(SkillError::io(self.pending_path()))?;
        Ok(pending.from)
    }

    /// Records the operation in the state, runs the skill's test, commits.
    /// It may run more than once for one operation (a failed test stops it
    /// after the state is written; `--continue` runs it again): it records a
    /// skill in place of an earlier record of the same name.
    fn finish(&self, pending: Pending, run_test: bool) -> Result<ApplyOutcome, SkillError> {
        if pending.op == "update" {
            return self.finish_update(pending);
        }
        let mut state = State::load(&self.root)?;
        let manifest = SkillManifest::load(&self.root, &pending.name)?;
        if pending.op == "apply" {
            // Added files as they are now: the owner may have fixed them.
            let files = self.applied_files(&manifest, |file| read(&self.root.join(file)))?;
            state.record(AppliedSkill {
                name: pending.name.clone(),
                version: pending.version.clone(),
                files,
                cargo: pending.cargo.clone(),
                env: manifest.env.clone(),
            });
        } else {
            state.applied.retain(|s| s.name != pending.name);
        }
        state.save(&self.root)?;
        if run_test
            && pending.op == "apply"
            && let Some(test) = manifest.test.as_deref().filter(|t| !t.trim().is_empty())
        {
            self.run_test(test)?;
        }
        let verb = if pending.op == "apply" {
            "Apply"
        } else {
            "Remove"
        };
        let message = format!(
            "{verb} skill {} {}\n\n{TRAILER}: {} {} {}\n",
            pending.name, pending.version, pending.op, pending.name, pending.version
        );
        let commit = self.commit_all(&message, None)?;
        std::fs::remove_file(self.pending_path()).map_err(SkillError::io(self.pending_path()))?;
        let summary = self.summary(&pending.from, commit)?;
        Ok(ApplyOutcome::Committed {
            branch: pending.branch,
            from: pending.from,
            commit: commit.to_string(),
            summary,
        })
    }

    /// An update whose conflicts the owner resolved: the merge commit, with
    /// upstream's commit as its second parent.
    fn finish_update(&self, pending: Pending) -> Result<ApplyOutcome, SkillError> {
        let theirs = pending
            .upstream
            .as_deref()
            .and_then(|id| Oid::from_str(id).ok())
            .ok_or_else(|| {
                SkillError::Refused(
                    "the pending update does not name the upstream commit it merges; \
                     --abort it and run the update again"
                        .into(),
                )
            })?;
        let theirs = self.repo.find_commit(theirs)?;
        let commit = self.commit_all(&update_message(&pending.version), Some(&theirs))?;
        std::fs::remove_file(self.pending_path()).map_err(SkillError::io(self.pending_path()))?;
        let summary = self.summary(&pending.from, commit)?;
        Ok(ApplyOutcome::Committed {
            branch: pending.branch,
            from: pending.from,
            commit: commit.to_string(),
            summary,
        })
    }

    fn run_test(&self, test: &str) -> Result<(), SkillError> {
        let status = Command::new("sh")
            .arg("-c")
            .arg(test)
            .current_dir(&self.root)
            .status()
            .map_err(SkillError::io("sh"))?;
        if status.success() {
            Ok(())
        } else {
            Err(SkillError::TestFailed {
                command: test.to_owned(),
                status: status.to_string(),
            })
        }
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
                let path = delta
                    .new_file()
                    .path()
                    .or(delta.old_file().path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                lines.push(format!("  {status} {path} (+{added} -{removed})"));
            }
        }
        Ok(lines)
    }

    /// Takes `name` out again on a review branch `skill/remove-<name>`,
    /// keeping what the owner changed since.
    pub fn remove(&self, name: &str) -> Result<ApplyOutcome, SkillError> {
        if self.load_pending()?.is_some() {
            return Err(SkillError::Refused(
                "an operation is in progress: --continue or --abort it".into(),
            ));
        }
        self.check_clean()?;
        let state = State::load(&self.root)?;
        let applied = state
            .get(name)
            .cloned()
            .ok_or_else(|| SkillError::Refused(format!("{name} is not applied on this branch")))?;
        for other in &state.applied {
            if let Ok(theirs) = SkillManifest::load(&self.root, &other.name)
                && theirs.depends.contains(&name.to_owned())
            {
                return Err(SkillError::Refused(format!(
                    "{} depends on {name}: remove it first",
                    other.name
                )));
            }
        }
        let manifest = SkillManifest::load(&self.root, name)?;
        for path in manifest.adds.iter().chain(&manifest.modifies) {
            self.check_target(path)?;
        }
        let mut planned = Vec::new();
        for file in &manifest.adds {
            let path = self.root.join(file);
            let Some(current) = read_optional(&path)? else {
                continue;
            };
            let now = Oid::hash_object(git2::ObjectType::Blob, &current)?.to_string();
            if applied.files.get(file) == Some(&now) {
                planned.push(PlannedFile {
                    path: file.clone(),
                    change: FileChange::Delete,
                    before: Some(current),
                    after: None,
                    conflicted: false,
                });
            } else {
                // The owner changed it since: reverse only the skill's part.
                let theirs = read(&manifest.theirs(&self.root, file))?;
                let merged = merge3(&theirs, &current, b"", file)?;
                planned.push(PlannedFile {
                    path: file.clone(),
                    change: FileChange::Add,
                    before: Some(current),
                    after: Some(merged.content),
                    conflicted: true,
                });
            }
        }
        for file in &manifest.modifies {
            let current = read(&self.root.join(file))?;
            let skill_version = read(&manifest.theirs(&self.root, file))?;
            let base = self.base_version(&manifest, file)?;
            // Reverse merge: from the skill's version back to the base, over the owner's.
            let merged = merge3(&skill_version, &current, &base, file)?;
            planned.push(PlannedFile {
                path: file.clone(),
                change: FileChange::Modify,
                before: Some(current),
                after: Some(merged.content),
                conflicted: merged.conflicted,
            });
        }
        // Only what the apply added, and not what another applied skill
        // added too (the last of them to go takes it out).
        let by_others: Vec<&CargoAdded> = state
            .applied
            .iter()
            .filter(|s| s.name != name)
            .flat_map(|s| s.cargo.iter())
            .collect();
        for record in &applied.cargo {
            check_relative(&record.manifest).map_err(|why| {
                SkillError::Refused(format!(
                    "{STATE_FILE}: {name}'s Cargo manifest {:?} {why}",
                    record.manifest
                ))
            })?;
            let dependencies: Vec<String> = record
                .dependencies
                .iter()
                .filter(|d| !recorded(&by_others, &record.manifest, Entry::Dependency, d))
                .cloned()
                .collect();
            let members: Vec<String> = record
                .members
                .iter()
                .filter(|m| !recorded(&by_others, &record.manifest, Entry::Member, m))
                .cloned()
                .collect();
            if dependencies.is_empty() && members.is_empty() {
                continue;
            }
            let path = self.root.join(&record.manifest);
            let current = match planned.iter().position(|p| p.path == record.manifest) {
                Some(index) => planned.remove(index).after.unwrap_or_default(),
                None => read(&path)?,
            };
            let text = String::from_utf8(current)
                .map_err(|_| SkillError::Refused(format!("{}: not UTF-8", record.manifest)))?;
            let edited =
                remove_from_manifest(&text, &dependencies, &members).map_err(|message| {
                    SkillError::Manifest {
                        path: path.clone(),
                        message,
                    }
                })?;
            planned.push(PlannedFile {
                path: record.manifest.clone(),
                change: FileChange::Manifest,
                before: read_optional(&path)?,
                after: Some(edited.into_bytes()),
                conflicted: false,
            });
        }
        // Its block in the committed `.env.example`, as the apply wrote it;
        // the file goes when nothing else is left in it.
        if !applied.env.is_empty() && self.tracked(ENV_EXAMPLE)? {
            self.check_target(ENV_EXAMPLE)?;
            let before = read(&self.root.join(ENV_EXAMPLE))?;
            let text = utf8(ENV_EXAMPLE, before.clone())?;
            let after = remove_block(&text, name, &applied.env);
            if after != text {
                planned.push(PlannedFile {
                    path: ENV_EXAMPLE.into(),
                    change: FileChange::EnvExample,
                    before: Some(before),
                    after: (!after.is_empty()).then(|| after.into_bytes()),
                    conflicted: false,
                });
            }
        }
        let pending = Pending::new(
            "remove",
            name,
            &applied.version,
            format!("skill/remove-{name}"),
        );
        self.land(pending, &planned, false)
    }

    /// Takes a new upstream (a remote's name, a path or a URL, and a ref)
    /// onto a review branch and reports, per applied skill, what upstream
    /// changed under it and whether its test still passes. Everything is
    /// checked (the fetch, a common history, the merge) before the branch is
    /// created: a bad upstream changes nothing.
    pub fn update(
        &self,
        upstream: &str,
        refname: &str,
        run_tests: bool,
    ) -> Result<UpdateReport, SkillError> {
        if self.load_pending()?.is_some() {
            return Err(SkillError::Refused(
                "an operation is in progress: --continue or --abort it".into(),
            ));
        }
        self.check_clean()?;
        let ours = self.repo.head()?.peel_to_commit()?;
        let current = self.current_branch()?;
        let previous = self.repo.refname_to_id(UPSTREAM_REF).ok();
        let checked = self
            .fetch_upstream(upstream, refname)
            .and_then(|theirs| self.check_update(upstream, refname, &current, &ours, theirs));
        let UpdatePlan {
            theirs,
            short,
            branch,
            upstream_changes,
            mut index,
        } = match checked {
            Ok(plan) => plan,
            Err(err) => {
                self.restore_upstream_ref(previous);
                return Err(err);
            }
        };
        let from = self.start_branch(&branch)?;

        if index.has_conflicts() {
            let conflicts: Vec<String> = index
                .conflicts()?
                .flatten()
                .filter_map(|c| {
                    c.our
                        .or(c.their)
                        .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                })
                .collect();
            self.repo.checkout_index(
                Some(&mut index),
                Some(
                    git2::build::CheckoutBuilder::new()
                        .force()
                        .allow_conflicts(true)
                        .conflict_style_merge(true),
                ),
            )?;
            let mut pending = Pending::new("update", upstream, &short, branch.clone());
            pending.from = from;
            pending.files = conflicts.clone();
            pending.upstream = Some(theirs.id().to_string());
            self.save_pending(&pending)?;
            return Ok(UpdateReport {
                branch,
                conflicts,
                skills: Vec::new(),
            });
        }
        let tree = self.repo.find_tree(index.write_tree_to(&self.repo)?)?;
        let signature = self.signature();
        self.repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            &update_message(&short),
            &tree,
            &[&ours, &theirs],
        )?;
        self.repo
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;

        let state = State::load(&self.root)?;
        let mut skills = Vec::new();
        for applied in &state.applied {
            let manifest = SkillManifest::load(&self.root, &applied.name)?;
            let touched: Vec<String> = manifest
                .adds
                .iter()
                .chain(&manifest.modifies)
                .chain(manifest.crates.iter().map(|c| &c.manifest))
                .filter(|f| upstream_changes.contains(*f))
                .cloned()
                .collect();
            let passed = match (
                run_tests,
                manifest.test.as_deref().filter(|t| !t.trim().is_empty()),
            ) {
                (true, Some(test)) => Some(self.run_test(test).is_ok()),
                _ => None,
            };
            skills.push((applied.name.clone(), touched, passed));
        }
        Ok(UpdateReport {
            branch,
            conflicts: Vec::new(),
            skills,
        })
    }

    /// Fetches `refname` of `upstream` (a remote's name, else a path or a
    /// URL) into `refs/pincer/upstream`; returns the commit.
    fn fetch_upstream(&self, upstream: &str, refname: &str) -> Result<Oid, SkillError> {
        let cannot = |err: git2::Error| {
            SkillError::Refused(format!(
                "could not fetch {refname} from {upstream}: {}",
                err.message()
            ))
        };
        let mut remote = match self.repo.find_remote(upstream) {
            Ok(remote) => remote,
            Err(_) => self.repo.remote_anonymous(upstream).map_err(cannot)?,
        };
        // A ref the remote lacks fetches nothing: no stale id may stand in.
        if let Ok(mut stale) = self.repo.find_reference(UPSTREAM_REF) {
            stale.delete()?;
        }
        remote
            .fetch(&[format!("+{refname}:{UPSTREAM_REF}")], None, None)
            .map_err(cannot)?;
        let fetched = self.repo.find_reference(UPSTREAM_REF).map_err(|_| {
            SkillError::Refused(format!(
                "{upstream} has no {refname} (`--ref` picks another)"
            ))
        })?;
        Ok(fetched.peel_to_commit()?.id())
    }

    /// Puts `refs/pincer/upstream` back as it was before a failed update.
    fn restore_upstream_ref(&self, previous: Option<Oid>) {
        // Best effort: the update's own error is the one to report, and the
        // ref is the engine's scratch space, read only by the next update.
        let _restored = match previous {
            Some(id) => self
                .repo
                .reference(UPSTREAM_REF, id, true, "pincer: a failed update")
                .map(|_| ()),
            None => self
                .repo
                .find_reference(UPSTREAM_REF)
                .and_then(|mut fetched| fetched.delete()),
        };
    }

    /// Everything an update checks before it creates its branch.
    fn check_update<'r>(
        &'r self,
        upstream: &str,
        refname: &str,
        current: &str,
        ours: &git2::Commit<'r>,
        theirs: Oid,
    ) -> Result<UpdatePlan<'r>, SkillError> {
        let theirs = self.repo.find_commit(theirs)?;
        let short = theirs.id().to_string()[..10].to_owned();
        let branch = format!("update/{short}");
        if self.repo.find_branch(&branch, BranchType::Local).is_ok() {
            return Err(SkillError::Refused(format!(
                "the branch {branch} exists already (merge or delete it first)"
            )));
        }
        let current = current.trim_start_matches("refs/heads/");
        let base = match self.repo.merge_base(ours.id(), theirs.id()) {
            Ok(base) => base,
            Err(err) if err.code() == git2::ErrorCode::NotFound => {
                return Err(SkillError::Refused(format!(
                    "{upstream} {refname} has no history in common with {current}: \
                     it is not this fork's upstream"
                )));
            }
            Err(err) => return Err(err.into()),
        };
        if base == theirs.id() {
            return Err(SkillError::Refused(format!(
                "{current} already has everything in {upstream} {refname}"
            )));
        }
        let base_tree = self.repo.find_commit(base)?.tree()?;
        let upstream_changes: BTreeSet<String> = self
            .repo
            .diff_tree_to_tree(Some(&base_tree), Some(&theirs.tree()?), None)?
            .deltas()
            .filter_map(|d| {
                d.new_file()
                    .path()
                    .or(d.old_file().path())
                    .map(|p| p.display().to_string())
            })
            .collect();
        let index = self.repo.merge_commits(ours, &theirs, None)?;
        Ok(UpdatePlan {
            theirs,
            short,
            branch,
            upstream_changes,
            index,
        })
    }

    /// Where `upstream_diff` writes when not told where: a folder in the git
    /// directory, outside the working tree.
    pub fn default_patch_dir(&self) -> PathBuf {
        self.repo.path().join(PATCH_DIR)
    }

    /// The owner's own changes since `upstream_ref` that came from neither
    /// upstream nor a skill, one patch per commit, written into `out` (by
    /// default `default_patch_dir`, emptied of earlier patches first). Returns
    /// the folder and the patches.
    pub fn upstream_diff(
        &self,
        upstream_ref: &str,
        out: Option<&Path>,
    ) -> Result<(PathBuf, Vec<PathBuf>), SkillError> {
        let upstream = self.repo.revparse_single(upstream_ref)?.peel_to_commit()?;
        let state = State::load(&self.root)?;
        let mut skill_files: BTreeSet<String> = BTreeSet::new();
        for applied in &state.applied {
            if let Ok(manifest) = SkillManifest::load(&self.root, &applied.name) {
                skill_files.extend(manifest.adds);
            }
        }
        let mut walk = self.repo.revwalk()?;
        walk.push_head()?;
        walk.hide(upstream.id())?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        let mut commits = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            let message = commit.message().unwrap_or_default();
            if commit.parent_count() != 1 || message.contains(&format!("{TRAILER}:")) {
                continue;
            }
            commits.push(commit);
        }
        let out = match out {
            Some(dir) => dir.to_path_buf(),
            None => {
                let dir = self.default_patch_dir();
                remove_patches(&dir)?;
                dir
            }
        };
        std::fs::create_dir_all(&out).map_err(SkillError::io(&out))?;
        let mut written = Vec::new();
        let mut kept = Vec::new();
        for commit in &commits {
            let parent = commit.parent(0)?;
            let diff =
                self.repo
                    .diff_tree_to_tree(Some(&parent.tree()?), Some(&commit.tree()?), None)?;
            let mut body = String::new();
            for index in 0..diff.deltas().len() {
                let Some(mut patch) = git2::Patch::from_diff(&diff, index)? else {
                    continue;
                };
                let delta = patch.delta();
                let path = delta
                    .new_file()
                    .path()
                    .or(delta.old_file().path())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                if path.starts_with("skills/")
                    || path.starts_with(".pincer/")
                    || skill_files.contains(&path)
                {
                    continue;
                }
                body.push_str(&String::from_utf8_lossy(&patch.to_buf()?));
            }
            if !body.is_empty() {
                kept.push((commit, body));
            }
        }
        let total = kept.len();
        for (number, (commit, body)) in kept.into_iter().enumerate() {
            let summary = commit
                .summary()
                .ok()
                .flatten()
                .unwrap_or("change")
                .to_owned();
            let slug: String = summary
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
                .split('-')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            let path = out.join(format!(
                "{:04}-{}.patch",
                number + 1,
                &slug[..slug.len().min(50)]
            ));
            let author = commit.author();
            let text = format!(
                "From {} Mon Sep 17 00:00:00 2001\nFrom: {} <{}>\nSubject: [PATCH {}/{}] {}\n\n{}\n---\n{}--\npincer upstream-diff\n",
                commit.id(),
                author.name().unwrap_or("owner"),
                author.email().unwrap_or("owner@localhost"),
                number + 1,
                total,
                summary,
                commit.body().ok().flatten().unwrap_or("").trim(),
                body
            );
            std::fs::write(&path, text).map_err(SkillError::io(&path))?;
            written.push(path);
        }
        Ok((out, written))
    }

    /// Scaffolds `skills/<name>/` from what changed between `base_rev` and HEAD.
    pub fn new_skill(&self, name: &str, base_rev: &str) -> Result<PathBuf, SkillError> {
        if !valid_name(name) {
            return Err(SkillError::Refused(format!(
                "{name:?}: a skill name is lowercase letters, digits and -"
            )));
        }
        let dir = self.root.join("skills").join(name);
        match walk_without_symlinks(&self.root, &format!("skills/{name}")) {
            Err(why) => return Err(SkillError::Refused(why)),
            Ok(Some(_)) => {
                return Err(SkillError::Refused(format!(
                    "{} exists already",
                    dir.display()
                )));
            }
            Ok(None) => {}
        }
        let base = self.repo.revparse_single(base_rev)?.peel_to_commit()?;
        let head = self.repo.head()?.peel_to_commit()?;
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&base.tree()?), Some(&head.tree()?), None)?;
        let (mut adds, mut modifies) = (Vec::new(), Vec::new());
        for delta in diff.deltas() {
            let path = delta
                .new_file()
                .path()
                .or(delta.old_file().path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            // `.env.example` is the engine's to write, from `env` (below).
            if path.starts_with("skills/") || path.starts_with(".pincer/") || path == ENV_EXAMPLE {
                continue;
            }
            check_relative(&path).map_err(|why| SkillError::Refused(format!("{path}: {why}")))?;
            match delta.status() {
                git2::Delta::Added => adds.push(path),
                git2::Delta::Modified => modifies.push(path),
                other => {
                    return Err(SkillError::Refused(format!(
                        "{path} is {other:?} since {base_rev}; a skill can add and modify files, not delete or rename them"
                    )));
                }
            }
        }
        if adds.is_empty() && modifies.is_empty() {
            return Err(SkillError::Refused(format!(
                "nothing changed since {base_rev}"
            )));
        }
        let head_tree = head.tree()?;
        let base_tree = base.tree()?;
        let env = added_variables(&self.repo, &base_tree, &head_tree);
        let copy = |tree: &git2::Tree<'_>, file: &str, to: PathBuf| -> Result<(), SkillError> {
            let blob = self.repo.find_blob(tree.get_path(Path::new(file))?.id())?;
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(SkillError::io(parent))?;
            }
            std::fs::write(&to, blob.content()).map_err(SkillError::io(&to))
        };
        for file in adds.iter().chain(&modifies) {
            copy(&head_tree, file, dir.join("files").join(file))?;
        }
        for file in &modifies {
            copy(&base_tree, file, dir.join("base").join(file))?;
        }
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| format!("{i:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let manifest = format!(
            "name = {name:?}\nversion = \"0.1.0\"\ndescription = \"TODO: one line about {name}\"\n\
             base = \"{}\"\nadds = [{}]\nmodifies = [{}]\nenv = [{}]\ndepends = []\nconflicts = []\n\
             # The command that proves it works once applied:\ntest = \"cargo test --workspace\"\n",
            base.id(),
            list(&adds),
            list(&modifies),
            list(&env)
        );
        std::fs::write(dir.join("skill.toml"), manifest)
            .map_err(SkillError::io(dir.join("skill.toml")))?;
        let skill_md = format!(
            "---\nname: {name}\ndescription: TODO\n---\n\n# {name}\n\n## What it adds\n\nTODO\n\n\
             ## Set-up\n\nTODO: keys to create, configuration to write.\n\n## Check that it works\n\nTODO\n\n\
             ## Remove it\n\n`cargo xtask remove-skill {name}`\n"
        );
        std::fs::write(dir.join("SKILL.md"), skill_md)
            .map_err(SkillError::io(dir.join("SKILL.md")))?;
        Ok(dir)
    }
}

/// The variables (`NAME=…` lines) in `.env.example` at `new` that it does
/// not have at `old`, in order: what `new-skill` puts in `env`.
fn added_variables(repo: &Repository, old: &git2::Tree<'_>, new: &git2::Tree<'_>) -> Vec<String> {
    let names = |tree: &git2::Tree<'_>| -> Vec<String> {
        let Some(blob) = tree
            .get_path(Path::new(ENV_EXAMPLE))
            .ok()
            .and_then(|entry| repo.find_blob(entry.id()).ok())
        else {
            return Vec::new();
        };
        String::from_utf8_lossy(blob.content())
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let line = line.strip_prefix("export ").unwrap_or(line);
                let name = line.split_once('=')?.0.trim();
                valid_variable(name).then(|| name.to_owned())
            })
            .collect()
    };
    let known = names(old);
    let mut added: Vec<String> = Vec::new();
    for name in names(new) {
        if !known.contains(&name) && !added.contains(&name) {
            added.push(name);
        }
    }
    added
}

/// What `update` checked and computed before it creates its branch.
struct UpdatePlan<'r> {
    theirs: git2::Commit<'r>,
    short: String,
    branch: String,
    upstream_changes: BTreeSet<String>,
    index: git2::Index,
}

fn update_message(short: &str) -> String {
    format!("Update from upstream {short}\n\n{TRAILER}: update {short}\n")
}

/// Empties the default patch folder of an earlier run's patches.
fn remove_patches(dir: &Path) -> Result<(), SkillError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SkillError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    for entry in entries {
        let path = entry.map_err(SkillError::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "patch") {
            std::fs::remove_file(&path).map_err(SkillError::io(&path))?;
        }
    }
    Ok(())
}

fn blob_id(content: &[u8]) -> Result<String, SkillError> {
    Ok(Oid::hash_object(git2::ObjectType::Blob, content)?.to_string())
}

/// A kind of `Cargo.toml` entry a skill adds.
#[derive(Clone, Copy)]
enum Entry {
    Dependency,
    Member,
}

/// Whether one of `records` lists `entry` (of that kind) for `manifest`.
fn recorded(records: &[&CargoAdded], manifest: &str, kind: Entry, entry: &str) -> bool {
    records.iter().any(|r| {
        r.manifest == manifest
            && match kind {
                Entry::Dependency => &r.dependencies,
                Entry::Member => &r.members,
            }
            .iter()
            .any(|e| e == entry)
    })
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

/// The conflicting regions of a merged file, for the owner to read.
fn conflict_hunks(content: &[u8]) -> String {
    let text = String::from_utf8_lossy(content);
    let mut hunks = String::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("<<<<<<< ") {
            inside = true;
        }
        if inside {
            hunks.push_str(line);
            hunks.push('\n');
        }
        if line.starts_with(">>>>>>> ") {
            inside = false;
        }
    }
    hunks
}

/// Unified diffs of planned changes.
fn render_diff(planned: &[PlannedFile], colour: bool) -> String {
    let mut out = String::new();
    for file in planned {
        let before =
            String::from_utf8_lossy(file.before.as_deref().unwrap_or_default()).into_owned();
        let after = String::from_utf8_lossy(file.after.as_deref().unwrap_or_default()).into_owned();
        if before == after {
            continue;
        }
        let diff = similar::TextDiff::from_lines(&before, &after);
        let old_name = if file.before.is_some() {
            format!("a/{}", file.path)
        } else {
            "/dev/null".into()
        };
        let new_name = if file.after.is_some() {
            format!("b/{}", file.path)
        } else {
            "/dev/null".into()
        };
        let text = diff
            .unified_diff()
            .context_radius(3)
            .header(&old_name, &new_name)
            .to_string();
        for line in text.lines() {
            let painted = match (colour, line.chars().next()) {
                (true, Some('+')) if !line.starts_with("+++") => format!("\x1b[32m{line}\x1b[0m"),
                (true, Some('-')) if !line.starts_with("---") => format!("\x1b[31m{line}\x1b[0m"),
                (true, Some('@')) => format!("\x1b[36m{line}\x1b[0m"),
                _ => line.to_owned(),
            };
            out.push_str(&painted);
            out.push('\n');
        }
        if file.conflicted {
            out.push_str(&format!(
                "(conflicts in {}: markers would be left for you to resolve)\n",
                file.path
            ));
        }
    }
    out
}

/// Adds a skill's entries to one `Cargo.toml`, keeping the rest of the file
/// as it is; returns the text and the entries that were not there before (an
/// identical entry there already is left alone; a different one is an error).
pub(crate) fn add_to_manifest(
    text: &str,
    edit: &CrateEdit,
) -> Result<(String, CargoAdded), String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err: toml_edit::TomlError| err.to_string())?;
    let mut inserted = CargoAdded {
        manifest: edit.manifest.clone(),
        ..CargoAdded::default()
    };
    if !edit.dependencies.is_empty() {
        if doc.get("dependencies").is_none() {
            doc["dependencies"] = toml_edit::table();
        }
        let table = doc
            .get_mut("dependencies")
            .and_then(|d| d.as_table_like_mut())
            .ok_or("[dependencies] is not a table")?;
        // A sorted table stays sorted, so that two skills give the same
        // file whichever is applied first; an unsorted one keeps its order.
        let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
        let was_sorted = keys.windows(2).all(|w| w[0] <= w[1]);
        for (name, value) in &edit.dependencies {
            let wanted = to_edit_value(value);
            match table.get(name) {
                Some(existing) if existing.to_string().trim() != wanted.to_string().trim() => {
                    return Err(format!(
                        "[dependencies] {name} is {} already; the skill wants {wanted}",
                        existing.to_string().trim(),
                    ));
                }
                Some(_) => {}
                None => {
                    table.insert(name, toml_edit::Item::Value(wanted));
                    inserted.dependencies.push(name.clone());
                }
            }
        }
        if was_sorted {
            table.sort_values();
        }
    }
    if !edit.members.is_empty() {
        let members = doc
            .get_mut("workspace")
            .and_then(|w| w.get_mut("members"))
            .and_then(|m| m.as_array_mut())
            .ok_or("there is no [workspace] members array to edit")?;
        for member in &edit.members {
            if !members.iter().any(|m| m.as_str() == Some(member.as_str())) {
                members.push(member.as_str());
                inserted.members.push(member.clone());
            }
        }
    }
    Ok((doc.to_string(), inserted))
}

/// Takes entries out of one `Cargo.toml`, keeping the rest of the file as it
/// is (an entry that is not there any more is no error).
pub(crate) fn remove_from_manifest(
    text: &str,
    dependencies: &[String],
    members: &[String],
) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err: toml_edit::TomlError| err.to_string())?;
    if let Some(table) = doc
        .get_mut("dependencies")
        .and_then(|d| d.as_table_like_mut())
    {
        for name in dependencies {
            table.remove(name);
        }
    }
    if let Some(list) = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(|m| m.as_array_mut())
    {
        list.retain(|m| !members.iter().any(|gone| m.as_str() == Some(gone.as_str())));
    }
    Ok(doc.to_string())
}

fn to_edit_value(value: &toml::Value) -> toml_edit::Value {
    match value {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(to_edit_value(item));
            }
            toml_edit::Value::Array(array)
        }
        toml::Value::Table(table) => {
            let mut inline = toml_edit::InlineTable::new();
            for (key, item) in table {
                inline.insert(key, to_edit_value(item));
            }
            toml_edit::Value::InlineTable(inline)
        }
    }
}
