//! `apply-skill`, and finishing (or undoing) whatever operation waits for
//! the owner: `--continue`, `--abort`.

use git2::{BranchType, Oid};

use super::{ApplyOutcome, Engine, FileChange, Pending, PlannedFile, TRAILER, read};
use crate::SkillError;
use crate::manifest::SkillManifest;
use crate::state::{AppliedSkill, STATE_FILE, State};

impl Engine {
    /// Applies `name` on a new review branch `skill/<name>`.
    ///
    /// Without the capability check: `apply-skill` runs `apply_reviewed`,
    /// which stops at undeclared findings; this is for callers that showed
    /// the report themselves or apply their own fixtures (tests, benches).
    pub fn apply(&self, name: &str, run_test: bool) -> Result<ApplyOutcome, SkillError> {
        self.apply_reviewed(name, run_test, true)
    }

    /// `apply`, after the skill's capability report: what its code was
    /// found to reach that its `[capabilities]` do not declare stops it
    /// (`SkillError::Undeclared`, the report attached), unless the owner
    /// read the report and accepts it.
    pub fn apply_reviewed(
        &self,
        name: &str,
        run_test: bool,
        accept_undeclared: bool,
    ) -> Result<ApplyOutcome, SkillError> {
        self.check_not_applied(name)?;
        if !accept_undeclared {
            let report = self.capabilities(name)?;
            if !report.undeclared().is_empty() {
                return Err(SkillError::Undeclared(Box::new(report)));
            }
        }
        self.check_no_pending()?;
        self.check_clean()?;
        let state = State::load(&self.root)?;
        let (manifest, planned, cargo) = self.plan_apply(name)?;
        self.check_relations(&manifest, &state)?;
        let mut pending = Pending::new("apply", name, &manifest.version, format!("skill/{name}"));
        pending.cargo = cargo;
        self.land(pending, &planned, run_test)
    }

    /// Refuses a skill the state records as applied, before any other
    /// complaint: a dirty tree, its own lines (its block in `.env.example`,
    /// its registry line) or its package would each say something less to
    /// the point. Not while an operation on the same skill waits for the
    /// owner: the record may be that operation's, not yet committed, and
    /// `check_no_pending` says what to do.
    fn check_not_applied(&self, name: &str) -> Result<(), SkillError> {
        if self
            .load_pending()?
            .is_some_and(|pending| pending.name == name)
        {
            return Ok(());
        }
        match State::load(&self.root)?.get(name) {
            Some(applied) => Err(SkillError::Refused(format!(
                "{name} is applied (version {}); remove-skill {name} first, or update",
                applied.version
            ))),
            None => Ok(()),
        }
    }

    /// Refuses a skill that conflicts with an applied one (either way), or
    /// that needs one that is not applied.
    fn check_relations(&self, manifest: &SkillManifest, state: &State) -> Result<(), SkillError> {
        let name = &manifest.name;
        for other in &manifest.conflicts {
            if state.get(other).is_some() {
                return Err(SkillError::Refused(format!(
                    "{name} conflicts with {other}, which is applied"
                )));
            }
        }
        for applied in &state.applied {
            if let Ok(theirs) = SkillManifest::load(&self.root, &applied.name)
                && theirs.conflicts.contains(name)
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
        Ok(())
    }

    /// Creates the review branch, writes the planned files, and either stops
    /// at the conflicts (exit 3 for the caller) or finishes the operation.
    pub(super) fn land(
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
        // A review branch there already is reused only when merged.
        let reused = self
            .repo
            .find_branch(&pending.branch, BranchType::Local)
            .is_ok();
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
        let note = reused.then(|| {
            format!(
                "  note: {} was merged already; it was moved to {} and reused",
                pending.branch,
                pending.from.trim_start_matches("refs/heads/")
            )
        });
        let mut outcome = self.finish(pending, run_test)?;
        if let (Some(note), ApplyOutcome::Committed { summary, .. }) = (note, &mut outcome) {
            summary.push(note);
        }
        Ok(outcome)
    }

    /// Whether what waits for the owner is an update (its merge, or a
    /// skill's upgrade after it): `continue_update` finishes it.
    pub fn update_pending(&self) -> Result<bool, SkillError> {
        Ok(match self.load_pending()? {
            Some(pending) => matches!(pending.op.as_str(), "update" | "upgrade"),
            None => false,
        })
    }

    /// After the owner resolved the conflicts: checks, tests, commits.
    pub fn continue_pending(&self, run_test: bool) -> Result<ApplyOutcome, SkillError> {
        let pending = self
            .load_pending()?
            .ok_or_else(|| SkillError::Refused("nothing to continue".into()))?;
        if matches!(pending.op.as_str(), "update" | "upgrade") {
            return Err(SkillError::Refused(
                "an update is in progress: `cargo xtask update --continue` finishes it".into(),
            ));
        }
        self.check_markers(&pending.files)?;
        self.finish(pending, run_test)
    }

    /// Undoes a pending operation: back to the branch it started from.
    pub fn abort(&self) -> Result<String, SkillError> {
        let pending = self
            .load_pending()?
            .ok_or_else(|| SkillError::Refused("nothing to abort".into()))?;
        // An update's merge is in git's state: gone with it, as with
        // `git merge --abort`.
        if self.repo.state() != git2::RepositoryState::Clean {
            self.repo.cleanup_state()?;
        }
        self.repo.set_head(&pending.from)?;
        self.repo.checkout_head(Some(
            git2::build::CheckoutBuilder::new()
                .force()
                .remove_untracked(true),
        ))?;
        if let Ok(mut branch) = self.repo.find_branch(&pending.branch, BranchType::Local) {
            branch.delete()?;
        }
        self.remove_pending()?;
        Ok(pending.from)
    }

    /// Records the operation in the state, runs the skill's test, commits.
    /// It may run more than once for one operation (a failed test stops it
    /// after the state is written; `--continue` runs it again): it records a
    /// skill in place of an earlier record of the same name.
    fn finish(&self, pending: Pending, run_test: bool) -> Result<ApplyOutcome, SkillError> {
        let mut state = State::load(&self.root)?;
        let manifest = SkillManifest::load(&self.root, &pending.name)?;
        let applying = pending.op == "apply";
        if applying {
            // Added files as they are now: the owner may have fixed them.
            let files = self.applied_files(&manifest, |file| read(&self.root.join(file)))?;
            state.record(AppliedSkill {
                name: pending.name.clone(),
                version: pending.version.clone(),
                files,
                cargo: pending.cargo.clone(),
                register: manifest.register.clone(),
                env: manifest.env.clone(),
            });
        } else {
            state.applied.retain(|s| s.name != pending.name);
        }
        state.save(&self.root)?;
        if run_test
            && applying
            && let Some(test) = manifest.test.as_deref().filter(|t| !t.trim().is_empty())
        {
            self.run_test(test)?;
        }
        // A removal: the fork still builds, and the other skills still work.
        let tested = if applying {
            Vec::new()
        } else {
            self.test_remaining(&state, run_test)?
        };
        let verb = if applying { "Apply" } else { "Remove" };
        // What the owner reviewed stays with the merge: the capability
        // report, as the skill is now (a skill whose source cannot be
        // scanned has none to give).
        let review = match self.capabilities(&pending.name) {
            Ok(report) if applying => format!("{}\n", report.render()),
            _ => String::new(),
        };
        let message = format!(
            "{verb} skill {} {}\n\n{review}{TRAILER}: {} {} {}\n",
            pending.name, pending.version, pending.op, pending.name, pending.version
        );
        let commit = self.commit_all(&message, None)?;
        let name = pending.name.clone();
        let mut outcome = self.committed(pending, commit)?;
        // What the owner is about to run, with what the apply changed.
        if let ApplyOutcome::Committed { summary, .. } = &mut outcome {
            if applying {
                summary.extend(self.package_lines(&name));
            }
            summary.extend(tested);
        }
        Ok(outcome)
    }

    /// The end of an operation: no longer pending, and what it committed.
    fn committed(&self, pending: Pending, commit: Oid) -> Result<ApplyOutcome, SkillError> {
        self.remove_pending()?;
        let summary = self.summary(&pending.from, commit)?;
        Ok(ApplyOutcome::Committed {
            branch: pending.branch,
            from: pending.from,
            commit: commit.to_string(),
            summary,
        })
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
