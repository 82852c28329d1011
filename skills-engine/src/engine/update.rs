//! `update`: upstream's new commits merged onto a review branch, with a
//! report per applied skill.

use std::collections::BTreeSet;

use git2::{BranchType, Oid};

use super::{Engine, Pending, TRAILER, UpdateReport};
use crate::SkillError;
use crate::manifest::SkillManifest;
use crate::state::State;

/// Where `update` fetches upstream's commit to.
const UPSTREAM_REF: &str = "refs/pincer/upstream";

/// One applied skill in an update's report: its name, the files it touches
/// that upstream changed, whether its test passed.
type SkillReport = (String, Vec<String>, Option<bool>);

/// What `update` checked and computed before it creates its branch.
struct UpdatePlan<'r> {
    theirs: git2::Commit<'r>,
    short: String,
    branch: String,
    upstream_changes: BTreeSet<String>,
    index: git2::Index,
}

/// The message of an update's merge commit.
pub(super) fn update_message(short: &str) -> String {
    format!("Update from upstream {short}\n\n{TRAILER}: update {short}\n")
}

impl Engine {
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
        self.check_no_pending()?;
        self.check_clean()?;
        let ours = self.repo.head()?.peel_to_commit()?;
        let current = self.current_branch()?;
        let previous = self.repo.refname_to_id(UPSTREAM_REF).ok();
        let checked = self
            .fetch_upstream(upstream, refname)
            .and_then(|theirs| self.check_update(upstream, refname, &current, &ours, theirs));
        let mut plan = match checked {
            Ok(plan) => plan,
            Err(err) => {
                self.restore_upstream_ref(previous);
                return Err(err);
            }
        };
        let from = self.start_branch(&plan.branch)?;
        if plan.index.has_conflicts() {
            return self.stop_at_conflicts(upstream, from, &mut plan);
        }
        let tree = self.repo.find_tree(plan.index.write_tree_to(&self.repo)?)?;
        let signature = self.signature();
        self.repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            &update_message(&plan.short),
            &tree,
            &[&ours, &plan.theirs],
        )?;
        self.repo
            .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;
        Ok(UpdateReport {
            skills: self.report_skills(&plan.upstream_changes, run_tests)?,
            branch: plan.branch,
            conflicts: Vec::new(),
        })
    }

    /// A merge with conflicts: written out with markers for the owner, and
    /// pending until `--continue` (or `--abort`).
    fn stop_at_conflicts(
        &self,
        upstream: &str,
        from: String,
        plan: &mut UpdatePlan<'_>,
    ) -> Result<UpdateReport, SkillError> {
        let conflicts: Vec<String> = plan
            .index
            .conflicts()?
            .flatten()
            .filter_map(|c| {
                c.our
                    .or(c.their)
                    .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            })
            .collect();
        self.repo.checkout_index(
            Some(&mut plan.index),
            Some(
                git2::build::CheckoutBuilder::new()
                    .force()
                    .allow_conflicts(true)
                    .conflict_style_merge(true),
            ),
        )?;
        let mut pending = Pending::new("update", upstream, &plan.short, plan.branch.clone());
        pending.from = from;
        pending.files = conflicts.clone();
        pending.upstream = Some(plan.theirs.id().to_string());
        self.save_pending(&pending)?;
        Ok(UpdateReport {
            branch: plan.branch.clone(),
            conflicts,
            skills: Vec::new(),
        })
    }

    /// Per applied skill: the files it touches that upstream changed, and
    /// whether its test passes on the merged tree.
    fn report_skills(
        &self,
        upstream_changes: &BTreeSet<String>,
        run_tests: bool,
    ) -> Result<Vec<SkillReport>, SkillError> {
        let state = State::load(&self.root)?;
        let mut skills = Vec::new();
        for applied in &state.applied {
            let manifest = SkillManifest::load(&self.root, &applied.name)?;
            // Its package (the crate lives there) and every file it edits.
            let package = format!("skills/{}/", applied.name);
            let touched: Vec<String> = upstream_changes
                .iter()
                .filter(|f| f.starts_with(&package))
                .chain(
                    manifest
                        .adds
                        .iter()
                        .chain(&manifest.modifies)
                        .chain(manifest.crates.iter().map(|c| &c.manifest))
                        .chain(manifest.register.iter().map(|r| &r.file))
                        .filter(|f| upstream_changes.contains(*f)),
                )
                .cloned()
                .collect::<std::collections::BTreeSet<String>>()
                .into_iter()
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
        Ok(skills)
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
            return Err(SkillError::UpToDate(format!(
                "{current} already has everything in {upstream} {refname}"
            )));
        }
        let base_tree = self.repo.find_commit(base)?.tree()?;
        let upstream_changes: BTreeSet<String> = self
            .repo
            .diff_tree_to_tree(Some(&base_tree), Some(&theirs.tree()?), None)?
            .deltas()
            .map(|d| super::delta_path(&d))
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
}
