//! Bringing an applied skill to the version in the tree (after an update
//! merged upstream's): what its old version put in and the new one does
//! not comes out, the new version's files and links go in, and the owner's
//! own changes stay. One commit per skill, on the update's branch.
//!
//! A skill that is a crate in place gets its code from the merge itself
//! (its folder is the same path upstream and here); what is left is its
//! links: `Cargo.toml` entries, registry lines, its `.env.example` block.
//! A skill whose old version was files merged into the fork (before skills
//! were crates) also has those files to take out: the files it added when
//! they are as it left them, its edits to other files by a reverse merge.
//! The old version's manifest and files are read from the commit that
//! applied (or last upgraded) it.

use std::collections::BTreeSet;
use std::path::Path;

use git2::Oid;

use super::{Engine, FileChange, PlannedFile, TRAILER, blob_id, read, read_optional, utf8};
use crate::SkillError;
use crate::env_example::{ENV_EXAMPLE, add_block, remove_block};
use crate::manifest::{SkillManifest, check_relative};
use crate::merge::merge3;
use crate::state::{AppliedSkill, CargoAdded, STATE_FILE, State};

/// What upgrading one skill writes, records and tells.
pub(super) struct UpgradePlan {
    pub(super) planned: Vec<PlannedFile>,
    pub(super) cargo: Vec<CargoAdded>,
    pub(super) notes: Vec<String>,
}

/// A skill's package as it was applied: its manifest and the commit's tree.
struct OldPackage<'r> {
    manifest: SkillManifest,
    tree: git2::Tree<'r>,
}

impl Engine {
    /// The applied skills whose record differs from the package in the
    /// tree: another version, other links, other files. A skill whose
    /// package is gone (or broken) is left alone: the report says so.
    pub(super) fn skills_behind(&self) -> Result<Vec<String>, SkillError> {
        let state = State::load(&self.root)?;
        let mut behind = Vec::new();
        for applied in &state.applied {
            let Ok(manifest) = SkillManifest::load(&self.root, &applied.name) else {
                continue;
            };
            let files: BTreeSet<&String> = manifest.adds.iter().chain(&manifest.modifies).collect();
            if manifest.version != applied.version
                || manifest.register != applied.register
                || manifest.env != applied.env
                || files != applied.files.keys().collect()
            {
                behind.push(applied.name.clone());
            }
        }
        Ok(behind)
    }

    /// Everything upgrading `name` writes, computed in memory.
    pub(super) fn plan_upgrade(&self, name: &str) -> Result<UpgradePlan, SkillError> {
        let state = State::load(&self.root)?;
        let applied = state
            .get(name)
            .cloned()
            .ok_or_else(|| SkillError::Refused(format!("{name} is not applied on this branch")))?;
        let manifest = SkillManifest::load(&self.root, name)?;
        let old = self.applied_package(&applied)?;
        let mut planned = Vec::new();
        let mut notes = Vec::new();
        if old.is_none() && !applied.files.is_empty() {
            notes.push(format!(
                "the commit that applied {name} {} is not in this branch's history: the files \
                 it recorded were left as they are ({})",
                applied.version,
                applied.files.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let new_files: BTreeSet<&String> = manifest.adds.iter().chain(&manifest.modifies).collect();
        if let Some(old) = &old {
            for (path, recorded) in &applied.files {
                if !new_files.contains(path) {
                    check_relative(path).map_err(|why| {
                        SkillError::Refused(format!("{STATE_FILE}: {name}'s file {path:?} {why}"))
                    })?;
                    self.check_target(path)?;
                    planned.extend(self.plan_drop(old, path, recorded, &mut notes)?);
                }
            }
        }
        for path in manifest.adds.iter().chain(&manifest.modifies) {
            self.check_target(path)?;
            planned.push(self.plan_carry(&manifest, old.as_ref(), path)?);
        }
        let cargo = self.relink_crates(&manifest, &applied, &state, &mut planned)?;
        self.relink_register(&manifest, &applied, &mut planned)?;
        self.relink_env(&manifest, &applied, &mut planned)?;
        planned.retain(|p| p.before != p.after);
        Ok(UpgradePlan {
            planned,
            cargo,
            notes,
        })
    }

    /// Records the upgraded skill and commits it (its files as they are
    /// now: the owner may have resolved them).
    pub(super) fn commit_upgrade(
        &self,
        name: &str,
        cargo: Vec<CargoAdded>,
        notes: &[String],
    ) -> Result<Oid, SkillError> {
        let manifest = SkillManifest::load(&self.root, name)?;
        let mut state = State::load(&self.root)?;
        let before = state
            .get(name)
            .map(|s| s.version.clone())
            .unwrap_or_default();
        let files = self.applied_files(&manifest, |file| read(&self.root.join(file)))?;
        state.record(AppliedSkill {
            name: name.to_owned(),
            version: manifest.version.clone(),
            files,
            cargo,
            register: manifest.register.clone(),
            env: manifest.env.clone(),
        });
        state.save(&self.root)?;
        let mut message = format!("Upgrade skill {name} {before} -> {}\n\n", manifest.version);
        for note in notes {
            message.push_str(&format!("- {note}\n"));
        }
        if !notes.is_empty() {
            message.push('\n');
        }
        // What the new version's code reaches stays with the merge, as an
        // apply's does.
        if let Ok(report) = self.capabilities(name) {
            message.push_str(&format!("{}\n", report.render()));
        }
        message.push_str(&format!("{TRAILER}: upgrade {name} {}\n", manifest.version));
        self.commit_all(&message, None)
    }

    /// The package as it was applied: from the newest commit on HEAD that
    /// applied or upgraded it (the engine's trailer), preferring the one of
    /// the recorded version.
    fn applied_package(
        &self,
        applied: &AppliedSkill,
    ) -> Result<Option<OldPackage<'_>>, SkillError> {
        let name = &applied.name;
        let mut walk = self.repo.revwalk()?;
        walk.push_head()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
        let exact = [
            format!("{TRAILER}: apply {name} {}", applied.version),
            format!("{TRAILER}: upgrade {name} {}", applied.version),
        ];
        let any = [
            format!("{TRAILER}: apply {name} "),
            format!("{TRAILER}: upgrade {name} "),
        ];
        let mut fallback = None;
        for id in walk {
            let commit = self.repo.find_commit(id?)?;
            let message = commit.message().unwrap_or_default();
            let lines: Vec<&str> = message.lines().map(str::trim).collect();
            if lines.iter().any(|l| exact.iter().any(|e| l == e)) {
                return self.package_at(&commit, name);
            }
            if fallback.is_none() && lines.iter().any(|l| any.iter().any(|a| l.starts_with(a))) {
                fallback = Some(commit.id());
            }
        }
        match fallback {
            Some(id) => self.package_at(&self.repo.find_commit(id)?, name),
            None => Ok(None),
        }
    }

    /// `skills/<name>/skill.toml` at `commit`, parsed (its paths checked).
    fn package_at<'r>(
        &'r self,
        commit: &git2::Commit<'r>,
        name: &str,
    ) -> Result<Option<OldPackage<'r>>, SkillError> {
        let tree = commit.tree()?;
        let Some(text) = self.blob_at(&tree, &format!("skills/{name}/skill.toml"))? else {
            return Ok(None);
        };
        let bad = |message: String| SkillError::Manifest {
            path: format!("skills/{name}/skill.toml at {}", commit.id()).into(),
            message,
        };
        let manifest: SkillManifest = toml::from_str(&String::from_utf8_lossy(&text))
            .map_err(|err| bad(err.to_string().trim().to_owned()))?;
        for file in manifest.adds.iter().chain(&manifest.modifies) {
            check_relative(file).map_err(|why| bad(format!("{file:?} {why}")))?;
        }
        Ok(Some(OldPackage { manifest, tree }))
    }

    /// A file's content in a tree (`None`: no such file).
    pub(super) fn blob_at(
        &self,
        tree: &git2::Tree<'_>,
        path: &str,
    ) -> Result<Option<Vec<u8>>, SkillError> {
        match tree.get_path(Path::new(path)) {
            Ok(entry) => Ok(Some(
                entry
                    .to_object(&self.repo)?
                    .peel_to_blob()?
                    .content()
                    .to_vec(),
            )),
            Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// A file the old version had and the new one does not: an added file
    /// goes if it is as the apply left it; an edit is merged back out.
    /// Whatever cannot be done safely stays, with a note.
    fn plan_drop(
        &self,
        old: &OldPackage<'_>,
        path: &str,
        recorded: &str,
        notes: &mut Vec<String>,
    ) -> Result<Option<PlannedFile>, SkillError> {
        let name = &old.manifest.name;
        let version = &old.manifest.version;
        let Some(current) = read_optional(&self.root.join(path))? else {
            return Ok(None);
        };
        if old.manifest.adds.iter().any(|a| a == path) {
            if blob_id(&current)? == recorded {
                return Ok(Some(PlannedFile {
                    path: path.to_owned(),
                    change: FileChange::Delete,
                    before: Some(current),
                    after: None,
                    conflicted: false,
                }));
            }
            notes.push(format!(
                "kept {path}: {name} {version} added it and it changed since; delete it if \
                 nothing of yours uses it"
            ));
            return Ok(None);
        }
        let skill = self.blob_at(&old.tree, &format!("skills/{name}/files/{path}"))?;
        let base = self.old_base(old, path)?;
        let (Some(skill), Some(base)) = (skill, base) else {
            notes.push(format!(
                "check {path}: {name} {version} edited it, and its version of the file is \
                 not in the commit that applied it"
            ));
            return Ok(None);
        };
        let merged = merge3(&skill, &current, &base, path)?;
        if !merged.conflicted {
            return Ok(Some(PlannedFile {
                path: path.to_owned(),
                change: FileChange::Modify,
                before: Some(current),
                after: Some(merged.content),
                conflicted: false,
            }));
        }
        // Upstream rewrote the file: when none of the lines the skill wrote
        // are left in it (the owner took upstream's side), there is nothing
        // to take out.
        if !its_lines_remain(&skill, &base, &current) {
            return Ok(None);
        }
        notes.push(format!(
            "check {path}: {name} {version} edited it, and its edit could not be taken out \
             automatically (the lines around it changed)"
        ));
        Ok(None)
    }

    /// The base version of a file an old version modified: at its `base`
    /// commit, else the copy its package kept.
    fn old_base(&self, old: &OldPackage<'_>, path: &str) -> Result<Option<Vec<u8>>, SkillError> {
        if let Ok(id) = Oid::from_str(&old.manifest.base)
            && let Ok(commit) = self.repo.find_commit(id)
            && let Some(content) = self.blob_at(&commit.tree()?, path)?
        {
            return Ok(Some(content));
        }
        self.blob_at(
            &old.tree,
            &format!("skills/{}/base/{path}", old.manifest.name),
        )
    }

    /// A file of the new version: merged from the old version's copy (so
    /// its changes between versions arrive over the owner's), or as a first
    /// apply does when the old version did not have it.
    fn plan_carry(
        &self,
        manifest: &SkillManifest,
        old: Option<&OldPackage<'_>>,
        path: &str,
    ) -> Result<PlannedFile, SkillError> {
        let adds = manifest.adds.iter().any(|a| a == path);
        let theirs = read(&manifest.theirs(&self.root, path))?;
        let had = old.filter(|o| {
            o.manifest
                .adds
                .iter()
                .chain(&o.manifest.modifies)
                .any(|f| f == path)
        });
        let base = match had {
            Some(old) => self
                .blob_at(&old.tree, &format!("skills/{}/files/{path}", manifest.name))?
                .unwrap_or_default(),
            None if adds => Vec::new(),
            None => self.base_version(manifest, path)?,
        };
        let current = read_optional(&self.root.join(path))?;
        let (after, conflicted) = match &current {
            None if adds => (theirs, false),
            None => {
                return Err(SkillError::Refused(format!(
                    "{path}: {} modifies it, but this fork has no such file",
                    manifest.name
                )));
            }
            Some(ours) => {
                let merged = merge3(&base, ours, &theirs, path)?;
                (merged.content, merged.conflicted)
            }
        };
        Ok(PlannedFile {
            path: path.to_owned(),
            change: if adds {
                FileChange::Add
            } else {
                FileChange::Modify
            },
            before: current,
            after: Some(after),
            conflicted,
        })
    }

    /// `Cargo.toml` entries: what the old version added and the new one
    /// does not want out (unless another applied skill added it too), the
    /// new version's in. Returns the new record: an entry is the skill's
    /// when it inserted it, or when its old version (or another skill) had.
    fn relink_crates(
        &self,
        manifest: &SkillManifest,
        applied: &AppliedSkill,
        state: &State,
        planned: &mut Vec<PlannedFile>,
    ) -> Result<Vec<CargoAdded>, SkillError> {
        for edit in &manifest.crates {
            self.check_target(&edit.manifest)?;
        }
        self.unplan_crates(state, applied, &manifest.crates, planned)?;
        self.plan_crates(manifest, state, &applied.cargo, planned)
    }

    /// Registry lines: the old version's the new one lacks out, the new
    /// ones in.
    fn relink_register(
        &self,
        manifest: &SkillManifest,
        applied: &AppliedSkill,
        planned: &mut Vec<PlannedFile>,
    ) -> Result<(), SkillError> {
        let gone: Vec<_> = applied
            .register
            .iter()
            .filter(|r| !manifest.register.contains(r))
            .cloned()
            .collect();
        self.unplan_register(&applied.name, &gone, planned)?;
        let mut new = manifest.clone();
        new.register.retain(|r| !applied.register.contains(r));
        self.plan_register(&new, planned)
    }

    /// The skill's `.env.example` block, rewritten when its variables changed.
    fn relink_env(
        &self,
        manifest: &SkillManifest,
        applied: &AppliedSkill,
        planned: &mut Vec<PlannedFile>,
    ) -> Result<(), SkillError> {
        if manifest.env == applied.env {
            return Ok(());
        }
        self.check_target(ENV_EXAMPLE)?;
        let before = read_optional(&self.root.join(ENV_EXAMPLE))?;
        let text = utf8(ENV_EXAMPLE, before.clone().unwrap_or_default())?;
        let mut after = remove_block(&text, &applied.name, &applied.env);
        if !manifest.env.is_empty() {
            after = add_block(&after, &manifest.name, &manifest.env)
                .map_err(|why| SkillError::Refused(format!("{ENV_EXAMPLE}: {why}")))?;
        }
        planned.push(PlannedFile {
            path: ENV_EXAMPLE.into(),
            change: FileChange::EnvExample,
            before,
            after: (!after.is_empty()).then(|| after.into_bytes()),
            conflicted: false,
        });
        Ok(())
    }
}

/// Whether any line the skill added to `base` (a line of `skill` that
/// `base` does not have, blank ones aside) is still in `current`.
fn its_lines_remain(skill: &[u8], base: &[u8], current: &[u8]) -> bool {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (skill, base, current) = (text(skill), text(base), text(current));
    let base: BTreeSet<&str> = base.lines().collect();
    let current: BTreeSet<&str> = current.lines().collect();
    skill
        .lines()
        .filter(|l| !l.trim().is_empty() && !base.contains(l))
        .any(|l| current.contains(l))
}
