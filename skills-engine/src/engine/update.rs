//! `update`: upstream's new commits merged onto a review branch with git's
//! own merge, then every applied skill upstream moved on brought to its new
//! version (`upgrade.rs`), the skills' tests run, and a report per skill.
//!
//! The merge is git's, not the engine's: `MERGE_HEAD` and a conflicted index,
//! so `git add` and `git commit` finish it, and so does `--continue` of any
//! later engine (the tree after the merge holds upstream's engine, not the
//! one that started the update). The pending file only remembers where the
//! update started; every engine reads every older one (`Pending::format`).

use std::collections::BTreeSet;

use git2::{Oid, RepositoryState};

use super::{Engine, Pending, TRAILER, UpdateReport, read_optional};
use crate::SkillError;
use crate::merge::has_markers;

/// Where `update` fetches upstream's commit to (and, for a named remote,
/// on to its remote-tracking ref).
const UPSTREAM_REF: &str = "refs/pincer/upstream";

/// The message of an update's merge commit.
pub(super) fn update_message(short: &str) -> String {
    format!("Update from upstream {short}\n\n{TRAILER}: update {short}\n")
}

/// The upstream commit a pending update merges, as its report names it.
fn merged(pending: &Pending) -> Option<String> {
    pending
        .upstream
        .as_deref()
        .map(|id| id.chars().take(10).collect())
}

/// The first ten hex digits of a commit id: branch names and messages.
fn short(id: Oid) -> String {
    id.to_string()[..10].to_owned()
}

impl Engine {
    /// Takes a new upstream (a remote's name, a path or a URL, and a ref)
    /// onto a review branch, brings the applied skills to upstream's
    /// versions, and reports per skill. Everything is checked (the fetch, a
    /// common history) before the branch is created: a bad upstream changes
    /// nothing. Nothing new upstream and every skill current:
    /// `SkillError::UpToDate`.
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
        let theirs = match checked {
            Ok(theirs) => theirs,
            Err(err) => {
                self.restore_upstream_ref(previous);
                return Err(err);
            }
        };
        let Some(theirs) = theirs else {
            let upgraded = self.upgrade_only(upstream, refname, &current, &ours, run_tests);
            if upgraded.is_err() {
                self.restore_upstream_ref(previous);
            }
            return upgraded;
        };
        let short = short(theirs.id());
        let mut pending = Pending::new("update", upstream, &short, format!("update/{short}"));
        pending.from = self.start_branch(&pending.branch)?;
        pending.upstream = Some(theirs.id().to_string());
        pending.head = Some(ours.id().to_string());
        self.save_pending(&pending)?;
        self.git_merge(&theirs, &update_message(&short))?;
        let conflicts = self.merge_conflicts()?;
        if !conflicts.is_empty() {
            pending.files = conflicts.clone();
            self.save_pending(&pending)?;
            return Ok(UpdateReport {
                branch: pending.branch,
                from: pending.from,
                merged: Some(short),
                conflicts,
                upgrading: None,
                skills: Vec::new(),
            });
        }
        self.commit_git_merge(&[])?;
        self.after_merge(pending, run_tests)
    }

    /// Upstream has nothing new, but skills of this branch are behind the
    /// versions in its tree (an update finished with `git commit`, or a
    /// `git merge` of upstream): their upgrades, on a review branch.
    fn upgrade_only(
        &self,
        upstream: &str,
        refname: &str,
        current: &str,
        ours: &git2::Commit<'_>,
        run_tests: bool,
    ) -> Result<UpdateReport, SkillError> {
        if self.skills_behind()?.is_empty() {
            return Err(SkillError::UpToDate(format!(
                "{} already has everything in {upstream} {refname}, and every applied \
                 skill is at the version in its tree",
                current.trim_start_matches("refs/heads/")
            )));
        }
        let short = short(ours.id());
        let mut pending =
            Pending::new("update", upstream, &short, format!("update/skills-{short}"));
        pending.from = self.start_branch(&pending.branch)?;
        pending.head = Some(ours.id().to_string());
        self.after_merge(pending, run_tests)
    }

    /// Finishes an update that stopped: the merge's conflicts resolved (or
    /// committed already with `git commit`), or an upgrade's. Also finishes
    /// an update an older engine started, whose merge is not in git's state.
    pub fn continue_update(&self, run_tests: bool) -> Result<UpdateReport, SkillError> {
        let Some(mut pending) = self.load_pending()? else {
            return Err(SkillError::Refused(
                if self.repo.state() == RepositoryState::Merge {
                    "the merge in progress was not started by `cargo xtask update`: finish it \
                 with `git commit`, then `cargo xtask update` brings the skills along"
                        .into()
                } else {
                    "no update to continue".into()
                },
            ));
        };
        match pending.op.as_str() {
            "update" => {
                if self.repo.state() == RepositoryState::Merge {
                    self.commit_git_merge(&pending.files)?;
                } else if pending.format < 2 {
                    let theirs = self.commit_older_engines_merge(&pending)?;
                    pending.upstream = Some(theirs.to_string());
                } else if !self.has_upstream(&pending)? {
                    self.remove_pending()?;
                    return Err(SkillError::Refused(
                        "the update's merge was undone (`git merge --abort`?): nothing to \
                         continue; run the update again"
                            .into(),
                    ));
                }
                if pending.head.is_none() {
                    let merge = self.repo.head()?.peel_to_commit()?;
                    pending.head = Some(merge.parent_id(0)?.to_string());
                }
                pending.op = "update".into();
                self.after_merge(pending, run_tests)
            }
            "upgrade" => {
                self.check_markers(&pending.files)?;
                self.commit_upgrade(&pending.name, pending.cargo.clone(), &[])?;
                pending.op = "update".into();
                self.after_merge(pending, run_tests)
            }
            op => Err(SkillError::Refused(format!(
                "an {op} of {} is pending, not an update: `cargo xtask apply-skill --continue`",
                pending.name
            ))),
        }
    }

    /// After the merge: each skill upstream moved on upgraded (one commit
    /// each; conflicts stop it, pending as an `upgrade`), then the tests and
    /// the report.
    pub(super) fn after_merge(
        &self,
        mut pending: Pending,
        run_tests: bool,
    ) -> Result<UpdateReport, SkillError> {
        let mut notes = std::collections::BTreeMap::new();
        for name in self.skills_behind()? {
            let plan = self.plan_upgrade(&name)?;
            let conflicted: Vec<String> = plan
                .planned
                .iter()
                .filter(|p| p.conflicted)
                .map(|p| p.path.clone())
                .collect();
            for file in &plan.planned {
                self.check_target(&file.path)?;
            }
            self.write_planned(&plan.planned)?;
            if !conflicted.is_empty() {
                pending.op = "upgrade".into();
                pending.name = name.clone();
                pending.files = conflicted.clone();
                pending.cargo = plan.cargo;
                self.save_pending(&pending)?;
                return Ok(UpdateReport {
                    merged: merged(&pending),
                    branch: pending.branch,
                    from: pending.from,
                    conflicts: conflicted,
                    upgrading: Some(name),
                    skills: Vec::new(),
                });
            }
            self.commit_upgrade(&name, plan.cargo, &plan.notes)?;
            notes.insert(name, plan.notes);
        }
        if self.load_pending()?.is_some() {
            self.remove_pending()?;
        }
        let skills = self.report_skills(&pending, &mut notes, run_tests)?;
        self.commit_test_changes()?;
        Ok(UpdateReport {
            merged: merged(&pending),
            branch: pending.branch,
            from: pending.from,
            conflicts: Vec::new(),
            upgrading: None,
            skills,
        })
    }

    /// What the skills' tests changed in the tree (a build brings
    /// `Cargo.lock` up to date with the new links), committed on the
    /// review branch as an apply commits it with the skill: the owner
    /// finds the tree clean for the next step.
    fn commit_test_changes(&self) -> Result<(), SkillError> {
        let changed = match self.check_clean() {
            Ok(()) => return Ok(()),
            Err(SkillError::Dirty(paths)) => paths,
            Err(err) => return Err(err),
        };
        let message = format!(
            "What the skills' tests updated after the update\n\n{}\n\n{TRAILER}: update tests\n",
            changed
                .iter()
                .map(|p| format!("- {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        self.commit_all(&message, None)?;
        Ok(())
    }

    /// git's own merge of `theirs` into HEAD: the index (with conflicts, if
    /// any), the working tree (with markers), `MERGE_HEAD` and the message
    /// `git commit` will take.
    fn git_merge(&self, theirs: &git2::Commit<'_>, message: &str) -> Result<(), SkillError> {
        let annotated = self.repo.find_annotated_commit(theirs.id())?;
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout
            .safe()
            .allow_conflicts(true)
            .conflict_style_merge(true);
        self.repo.merge(&[&annotated], None, Some(&mut checkout))?;
        let path = self.repo.path().join("MERGE_MSG");
        std::fs::write(&path, message).map_err(SkillError::io(&path))
    }

    /// The files git's index holds as conflicted.
    fn merge_conflicts(&self) -> Result<Vec<String>, SkillError> {
        let index = self.repo.index()?;
        let mut paths = BTreeSet::new();
        for conflict in index.conflicts()? {
            let conflict = conflict?;
            if let Some(entry) = conflict.our.or(conflict.their).or(conflict.ancestor) {
                paths.insert(String::from_utf8_lossy(&entry.path).into_owned());
            }
        }
        Ok(paths.into_iter().collect())
    }

    /// Commits git's merge in progress, as `git commit` would. A conflicted
    /// file the owner fixed without `git add` is staged for them (deleted:
    /// removed); a file with markers left (among the index's conflicts and
    /// `known`, the ones the merge stopped at) refuses.
    fn commit_git_merge(&self, known: &[String]) -> Result<Oid, SkillError> {
        let conflicted = self.merge_conflicts()?;
        let all: BTreeSet<&String> = conflicted.iter().chain(known).collect();
        self.check_markers(all.iter().copied())?;
        let mut index = self.repo.index()?;
        for path in &conflicted {
            let file = std::path::Path::new(path);
            if self.root.join(path).exists() {
                index.add_path(file)?;
            } else {
                index.remove_path(file)?;
            }
        }
        index.write()?;
        let tree = self.repo.find_tree(index.write_tree()?)?;
        let head = self.repo.head()?.peel_to_commit()?;
        // `MERGE_HEAD`, one id per line, as git writes it (git2's reader
        // wants the repository mutably).
        let path = self.repo.path().join("MERGE_HEAD");
        let text = std::fs::read_to_string(&path).map_err(SkillError::io(&path))?;
        let theirs: Vec<git2::Commit<'_>> = text
            .split_whitespace()
            .map(|id| Oid::from_str(id).and_then(|id| self.repo.find_commit(id)))
            .collect::<Result<_, _>>()?;
        let message = self
            .repo
            .message()
            .unwrap_or_else(|_| update_message(&short(head.id())));
        let mut parents = vec![&head];
        parents.extend(theirs.iter());
        let signature = self.signature();
        let commit = self.repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            &message,
            &tree,
            &parents,
        )?;
        self.repo.cleanup_state()?;
        Ok(commit)
    }

    /// An update an engine from before git's merge state left: the merged
    /// files in the working tree, the index at HEAD, and a pending file that
    /// may not name the upstream commit (it is then `refs/pincer/upstream`,
    /// where those engines fetched it, checked against the short id they
    /// kept as the pending `version`); returns upstream's commit. Their
    /// index may hold the conflicts or not: committing the whole working
    /// tree resolves either.
    fn commit_older_engines_merge(&self, pending: &Pending) -> Result<Oid, SkillError> {
        let named = pending
            .upstream
            .as_deref()
            .and_then(|id| Oid::from_str(id).ok());
        let fetched = self.repo.refname_to_id(UPSTREAM_REF).ok().filter(|id| {
            !pending.version.is_empty() && id.to_string().starts_with(&pending.version)
        });
        let theirs = named.or(fetched).ok_or_else(|| {
            SkillError::Refused(format!(
                "the pending update (from an older engine) does not name the upstream commit \
                 {} it merges, and {UPSTREAM_REF} no longer holds it: `cargo xtask update \
                 --abort`, then run the update again",
                pending.version
            ))
        })?;
        let theirs = self.repo.find_commit(theirs)?;
        self.check_markers(pending.files.iter())?;
        self.commit_all(&update_message(&short(theirs.id())), Some(&theirs))?;
        Ok(theirs.id())
    }

    /// Refuses while one of `files` still has conflict markers.
    pub(super) fn check_markers<'a>(
        &self,
        files: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), SkillError> {
        let mut marked = Vec::new();
        for file in files {
            if read_optional(&self.root.join(file))?.is_some_and(|c| has_markers(&c)) {
                marked.push(file.clone());
            }
        }
        if marked.is_empty() {
            Ok(())
        } else {
            Err(SkillError::Refused(format!(
                "conflict markers remain in: {}",
                marked.join(", ")
            )))
        }
    }

    /// Whether HEAD has the commit the pending update merges.
    fn has_upstream(&self, pending: &Pending) -> Result<bool, SkillError> {
        let Some(theirs) = pending
            .upstream
            .as_deref()
            .and_then(|id| Oid::from_str(id).ok())
        else {
            return Ok(false);
        };
        let head = self.repo.head()?.peel_to_commit()?.id();
        Ok(head == theirs || self.repo.graph_descendant_of(head, theirs)?)
    }

    /// Fetches `refname` of `upstream` (a remote's name, else a path or a
    /// URL) into `refs/pincer/upstream`, and for a remote's branch on to its
    /// remote-tracking ref (`upstream/main` is current after an update, as
    /// after `git fetch`); returns the commit.
    fn fetch_upstream(&self, upstream: &str, refname: &str) -> Result<Oid, SkillError> {
        let cannot = |err: git2::Error| {
            SkillError::Refused(format!(
                "could not fetch {refname} from {upstream}: {}",
                err.message()
            ))
        };
        let (mut remote, named) = match self.repo.find_remote(upstream) {
            Ok(remote) => (remote, true),
            Err(_) => (self.repo.remote_anonymous(upstream).map_err(cannot)?, false),
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
        let id = fetched.peel_to_commit()?.id();
        if let (true, Some(branch)) = (named, refname.strip_prefix("refs/heads/")) {
            self.repo.reference(
                &format!("refs/remotes/{upstream}/{branch}"),
                id,
                true,
                "pincer update: fetch",
            )?;
        }
        Ok(id)
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

    /// Everything an update checks before it creates its branch; `None`:
    /// the branch has everything upstream has.
    fn check_update<'r>(
        &'r self,
        upstream: &str,
        refname: &str,
        current: &str,
        ours: &git2::Commit<'r>,
        theirs: Oid,
    ) -> Result<Option<git2::Commit<'r>>, SkillError> {
        let theirs = self.repo.find_commit(theirs)?;
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
            return Ok(None);
        }
        Ok(Some(theirs))
    }
}
