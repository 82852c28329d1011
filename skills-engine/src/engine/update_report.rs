//! `update`'s report: per applied skill, its version before the update and
//! now, the files of its package and of its links the update changed, and
//! its test on the result.

use std::collections::{BTreeMap, BTreeSet};

use git2::Oid;

use super::{Engine, Pending, SkillUpdate};
use crate::SkillError;
use crate::manifest::SkillManifest;
use crate::state::{STATE_FILE, State};

impl Engine {
    /// Per applied skill: its version before the update (from the state at
    /// the commit the update started from) and now, the files of its
    /// package and its links the update changed, and its test.
    pub(super) fn report_skills(
        &self,
        pending: &Pending,
        notes: &mut BTreeMap<String, Vec<String>>,
        run_tests: bool,
    ) -> Result<Vec<SkillUpdate>, SkillError> {
        let state = State::load(&self.root)?;
        let start = match pending.head.as_deref().map(Oid::from_str) {
            Some(Ok(id)) => Some(self.repo.find_commit(id)?.tree()?),
            _ => None,
        };
        let before_state = match &start {
            Some(tree) => match self.blob_at(tree, STATE_FILE)? {
                Some(text) => State::parse(&String::from_utf8_lossy(&text)).map_err(|message| {
                    SkillError::Manifest {
                        path: STATE_FILE.into(),
                        message,
                    }
                })?,
                None => State::default(),
            },
            None => State::default(),
        };
        let changed: BTreeSet<String> = match &start {
            Some(tree) => {
                let now = self.repo.head()?.peel_to_tree()?;
                self.repo
                    .diff_tree_to_tree(Some(tree), Some(&now), None)?
                    .deltas()
                    .map(|d| super::delta_path(&d))
                    .collect()
            }
            None => BTreeSet::new(),
        };
        let mut skills = Vec::new();
        for applied in &state.applied {
            let manifest = SkillManifest::load(&self.root, &applied.name).ok();
            let package = format!("skills/{}/", applied.name);
            let linked: BTreeSet<&String> = applied
                .register
                .iter()
                .map(|r| &r.file)
                .chain(applied.cargo.iter().map(|c| &c.manifest))
                .chain(applied.files.keys())
                .collect();
            let files = changed
                .iter()
                .filter(|f| f.starts_with(&package) || linked.contains(f))
                .cloned()
                .collect();
            let mut skill_notes = notes.remove(&applied.name).unwrap_or_default();
            let test = match (&manifest, run_tests) {
                (None, _) => {
                    skill_notes.push(format!(
                        "skills/{}/skill.toml is gone or broken in this tree: \
                         `cargo xtask remove-skill {}` takes it out",
                        applied.name, applied.name
                    ));
                    None
                }
                (Some(m), true) => match m.test.as_deref().filter(|t| !t.trim().is_empty()) {
                    Some(test) => {
                        Some(self.test_for_report(&applied.name, test, &mut skill_notes)?)
                    }
                    None => None,
                },
                (Some(_), false) => None,
            };
            let undeclared = match self.capabilities(&applied.name) {
                Ok(report) => report.undeclared().len(),
                Err(err) => {
                    skill_notes.push(format!("its capabilities could not be checked: {err}"));
                    1
                }
            };
            skills.push(SkillUpdate {
                name: applied.name.clone(),
                before: before_state.get(&applied.name).map(|s| s.version.clone()),
                after: applied.version.clone(),
                files,
                test,
                undeclared,
                notes: skill_notes,
            });
        }
        Ok(skills)
    }

    /// Runs a skill's test for the update's report; a failure keeps its
    /// log (the next skill's test replaces the shared one) and says where.
    fn test_for_report(
        &self,
        name: &str,
        test: &str,
        notes: &mut Vec<String>,
    ) -> Result<bool, SkillError> {
        match self.run_test(test) {
            Ok(()) => Ok(true),
            Err(SkillError::TestFailed { log, status, .. }) => {
                let kept = self
                    .repo
                    .path()
                    .join(format!("pincer-skill-test-{name}.log"));
                std::fs::copy(&log, &kept).map_err(SkillError::io(&kept))?;
                notes.push(format!(
                    "its test `{test}` failed ({status}); its whole output is in {}",
                    kept.display()
                ));
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}
