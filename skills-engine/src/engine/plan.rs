//! `diff-skill` and the plan behind apply-skill: every file an apply writes,
//! computed in memory before anything is touched.

use std::collections::BTreeMap;
use std::path::Path;

use git2::Oid;

use super::cargo_edit::{add_to_manifest, record_added};
use super::{Engine, FileChange, PlannedFile, blob_id, read, read_optional, take_planned, utf8};
use crate::SkillError;
use crate::env_example::{ENV_EXAMPLE, add_block};
use crate::manifest::SkillManifest;
use crate::merge::merge3;
use crate::state::{AppliedSkill, CargoAdded, STATE_FILE, State};

impl Engine {
    /// What applying `name` would do to the working tree, computed in
    /// memory: every file it writes, `.pincer/skills.toml` included.
    pub fn plan(&self, name: &str) -> Result<(SkillManifest, Vec<PlannedFile>), SkillError> {
        let (manifest, planned, _) = self.plan_apply(name)?;
        Ok((manifest, planned))
    }

    /// The exact diff applying `name` would make, as unified diffs. For a
    /// skill that is a Cargo package, what it runs comes first (its files
    /// and new dependencies, `SkillPackage::describe`), as text before the
    /// first file's header, which `git apply` and `patch` skip.
    pub fn diff(&self, name: &str, colour: bool) -> Result<String, SkillError> {
        let (_, planned) = self.plan(name)?;
        let mut text = String::new();
        if let Some(package) = self.package(name)? {
            for line in package.describe() {
                text.push_str(&line);
                text.push('\n');
            }
            text.push('\n');
        }
        text.push_str(&render_diff(&planned, colour));
        Ok(text)
    }

    /// `plan`, and what the apply adds to `Cargo.toml` files.
    pub(super) fn plan_apply(
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
        let mut planned = self.plan_adds(&manifest)?;
        planned.extend(self.plan_modifies(&manifest)?);
        let cargo = self.plan_crates(&manifest, &state, &[], &mut planned)?;
        self.plan_register(&manifest, &mut planned)?;
        if !manifest.env.is_empty() {
            planned.push(self.plan_env(&manifest)?);
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
            register: manifest.register.clone(),
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

    /// The files the skill adds: its version, or merged with the fork's
    /// (from an empty base) when the fork has a different one.
    fn plan_adds(&self, manifest: &SkillManifest) -> Result<Vec<PlannedFile>, SkillError> {
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
        Ok(planned)
    }

    /// The files the skill modifies, three-way merged.
    fn plan_modifies(&self, manifest: &SkillManifest) -> Result<Vec<PlannedFile>, SkillError> {
        let mut planned = Vec::new();
        for file in &manifest.modifies {
            let base = self.base_version(manifest, file)?;
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
        Ok(planned)
    }

    /// The `Cargo.toml` edits (a manifest the skill also modifies is edited
    /// after its merge); returns what the state records of them. `earlier`:
    /// what an earlier version of the skill added (an upgrade), recorded
    /// again where the new version keeps it.
    pub(super) fn plan_crates(
        &self,
        manifest: &SkillManifest,
        state: &State,
        earlier: &[CargoAdded],
        planned: &mut Vec<PlannedFile>,
    ) -> Result<Vec<CargoAdded>, SkillError> {
        let mut cargo: Vec<CargoAdded> = Vec::new();
        for edit in &manifest.crates {
            let path = self.root.join(&edit.manifest);
            let current = take_planned(planned, &self.root, &edit.manifest)?;
            let text = utf8(&edit.manifest, current)?;
            let (edited, inserted) =
                add_to_manifest(&text, edit).map_err(|message| SkillError::Manifest {
                    path: path.clone(),
                    message,
                })?;
            let by_skills: Vec<&CargoAdded> = state
                .applied
                .iter()
                .filter(|s| s.name != manifest.name)
                .flat_map(|s| s.cargo.iter())
                .chain(earlier)
                .chain(cargo.iter())
                .collect();
            let record = record_added(edit, &inserted, &by_skills);
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
        Ok(cargo)
    }

    /// `.env.example` with the skill's block of variables.
    fn plan_env(&self, manifest: &SkillManifest) -> Result<PlannedFile, SkillError> {
        if !self.tracked(ENV_EXAMPLE)? && self.repo.is_path_ignored(ENV_EXAMPLE)? {
            return Err(SkillError::Refused(format!(
                "{ENV_EXAMPLE} is ignored by this fork's .gitignore, so the variables of \
                 {} would not be committed with it: un-ignore it (a line \
                 `!{ENV_EXAMPLE}`) or commit it once with `git add -f {ENV_EXAMPLE}`",
                manifest.name
            )));
        }
        let before = read_optional(&self.root.join(ENV_EXAMPLE))?;
        let text = utf8(ENV_EXAMPLE, before.clone().unwrap_or_default())?;
        let after = add_block(&text, &manifest.name, &manifest.env)
            .map_err(|why| SkillError::Refused(format!("{ENV_EXAMPLE}: {why}")))?;
        Ok(PlannedFile {
            path: ENV_EXAMPLE.into(),
            change: FileChange::EnvExample,
            before,
            after: Some(after.into_bytes()),
            conflicted: false,
        })
    }

    /// The blob ids the state keeps for a skill. Added files: as `added`
    /// gives them (the apply's result; remove-skill deletes a file only if it
    /// is still that). Modified files: the skill's own version (the merge's
    /// result depends on what else is applied, and the state must not depend
    /// on the order skills were applied in).
    pub(super) fn applied_files(
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

    /// A modified file as it was at the skill's base: from the fork's
    /// history when it has the commit, else the package's kept copy.
    pub(super) fn base_version(
        &self,
        manifest: &SkillManifest,
        file: &str,
    ) -> Result<Vec<u8>, SkillError> {
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
            out.push_str(&paint(line, colour));
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

/// A diff line, coloured for a terminal when `colour`.
fn paint(line: &str, colour: bool) -> String {
    match (colour, line.chars().next()) {
        (true, Some('+')) if !line.starts_with("+++") => format!("\x1b[32m{line}\x1b[0m"),
        (true, Some('-')) if !line.starts_with("---") => format!("\x1b[31m{line}\x1b[0m"),
        (true, Some('@')) => format!("\x1b[36m{line}\x1b[0m"),
        _ => line.to_owned(),
    }
}
