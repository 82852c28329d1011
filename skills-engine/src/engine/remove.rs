//! `remove-skill`: takes out what an apply put in, keeping what the owner
//! changed since.

use git2::Oid;

use super::cargo_edit::{remove_from_manifest, to_take_out};
use super::{
    ApplyOutcome, Engine, FileChange, Pending, PlannedFile, read, read_optional, take_planned, utf8,
};
use crate::SkillError;
use crate::env_example::{ENV_EXAMPLE, remove_block};
use crate::manifest::{CrateEdit, SkillManifest, check_relative, walk_without_symlinks};
use crate::merge::merge3;
use crate::state::{AppliedSkill, CargoAdded, STATE_FILE, State};

impl Engine {
    /// Takes `name` out again on a review branch `skill/remove-<name>`,
    /// keeping what the owner changed since. With `run_tests`, the fork must
    /// then build (the command from `with_build`) and every other applied
    /// skill's test pass before the commit; a failure stops it on the review
    /// branch, as a failed apply test does.
    pub fn remove(&self, name: &str, run_tests: bool) -> Result<ApplyOutcome, SkillError> {
        self.check_no_pending()?;
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
        let mut planned = self.unplan_adds(&manifest, &applied)?;
        planned.extend(self.unplan_modifies(&manifest)?);
        self.unplan_crates(&state, &applied, &[], &mut planned)?;
        self.unplan_register(name, &applied.register, &mut planned)?;
        planned.extend(self.unplan_env(&applied)?);
        let pending = Pending::new(
            "remove",
            name,
            &applied.version,
            format!("skill/remove-{name}"),
        );
        self.land(pending, &planned, run_tests)
    }

    /// After a removal (`state`: what is still applied): the build, then
    /// each remaining skill's test, in the state's order; the first failure
    /// stops it. A summary line for each command run (or for none).
    pub(super) fn test_remaining(
        &self,
        state: &State,
        run_tests: bool,
    ) -> Result<Vec<String>, SkillError> {
        if !run_tests {
            return Ok(vec![
                "  not run   the build and the other skills' tests".into(),
            ]);
        }
        let mut ran = Vec::new();
        if let Some(build) = self.build.as_deref().filter(|b| !b.trim().is_empty()) {
            self.run_logged("the build", build)?;
            ran.push(format!("  passed    the build: {build}"));
        }
        for applied in &state.applied {
            let manifest = SkillManifest::load(&self.root, &applied.name)?;
            if let Some(test) = manifest.test.as_deref().filter(|t| !t.trim().is_empty()) {
                let what = format!("{}'s test", applied.name);
                self.run_logged(&what, test)?;
                ran.push(format!("  passed    {what}: {test}"));
            }
        }
        if ran.is_empty() {
            ran.push("  passed    nothing to run: no build command, no other skill's test".into());
        }
        Ok(ran)
    }

    /// The files the skill added: deleted when they are as the apply left
    /// them, else the skill's part reversed (left for the owner to check).
    fn unplan_adds(
        &self,
        manifest: &SkillManifest,
        applied: &AppliedSkill,
    ) -> Result<Vec<PlannedFile>, SkillError> {
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
        Ok(planned)
    }

    /// The files the skill modified, merged back from its version to the base.
    fn unplan_modifies(&self, manifest: &SkillManifest) -> Result<Vec<PlannedFile>, SkillError> {
        let mut planned = Vec::new();
        for file in &manifest.modifies {
            let current = read(&self.root.join(file))?;
            let skill_version = read(&manifest.theirs(&self.root, file))?;
            let base = self.base_version(manifest, file)?;
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
        Ok(planned)
    }

    /// Only what the apply added to `Cargo.toml` files, and not what another
    /// applied skill added too (the last of them to go takes it out), nor
    /// what `keep` adds (an upgrade's new version wants it still). A
    /// manifest that is gone has nothing to take out.
    pub(super) fn unplan_crates(
        &self,
        state: &State,
        applied: &AppliedSkill,
        keep: &[CrateEdit],
        planned: &mut Vec<PlannedFile>,
    ) -> Result<(), SkillError> {
        let by_others: Vec<&CargoAdded> = state
            .applied
            .iter()
            .filter(|s| s.name != applied.name)
            .flat_map(|s| s.cargo.iter())
            .collect();
        for record in &applied.cargo {
            check_relative(&record.manifest).map_err(|why| {
                SkillError::Refused(format!(
                    "{STATE_FILE}: {}'s Cargo manifest {:?} {why}",
                    applied.name, record.manifest
                ))
            })?;
            let kept = keep.iter().find(|e| e.manifest == record.manifest);
            let unwanted = CargoAdded {
                manifest: record.manifest.clone(),
                dependencies: record
                    .dependencies
                    .iter()
                    .filter(|d| !kept.is_some_and(|k| k.dependencies.contains_key(*d)))
                    .cloned()
                    .collect(),
                members: record
                    .members
                    .iter()
                    .filter(|m| !kept.is_some_and(|k| k.members.contains(m)))
                    .cloned()
                    .collect(),
            };
            let gone = to_take_out(&unwanted, &by_others);
            let here = walk_without_symlinks(&self.root, &record.manifest).map_err(|why| {
                SkillError::Refused(format!("{} in this fork: {why}", record.manifest))
            })?;
            if gone.is_empty()
                || (here.is_none() && !planned.iter().any(|p| p.path == record.manifest))
            {
                continue;
            }
            let path = self.root.join(&record.manifest);
            let current = take_planned(planned, &self.root, &record.manifest)?;
            let text = utf8(&record.manifest, current)?;
            let edited = remove_from_manifest(&text, &gone.dependencies, &gone.members).map_err(
                |message| SkillError::Manifest {
                    path: path.clone(),
                    message,
                },
            )?;
            planned.push(PlannedFile {
                path: record.manifest.clone(),
                change: FileChange::Manifest,
                before: read_optional(&path)?,
                after: Some(edited.into_bytes()),
                conflicted: false,
            });
        }
        Ok(())
    }

    /// Its block in the committed `.env.example`, as the apply wrote it; the
    /// file goes when nothing else is left in it.
    fn unplan_env(&self, applied: &AppliedSkill) -> Result<Option<PlannedFile>, SkillError> {
        if applied.env.is_empty() || !self.tracked(ENV_EXAMPLE)? {
            return Ok(None);
        }
        self.check_target(ENV_EXAMPLE)?;
        let before = read(&self.root.join(ENV_EXAMPLE))?;
        let text = utf8(ENV_EXAMPLE, before.clone())?;
        let after = remove_block(&text, &applied.name, &applied.env);
        if after == text {
            return Ok(None);
        }
        Ok(Some(PlannedFile {
            path: ENV_EXAMPLE.into(),
            change: FileChange::EnvExample,
            before: Some(before),
            after: (!after.is_empty()).then(|| after.into_bytes()),
            conflicted: false,
        }))
    }
}
