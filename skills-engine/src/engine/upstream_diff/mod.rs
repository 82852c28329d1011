//! `upstream-diff`: what the owner would send upstream, as a patch series
//! that `git am` applies, in order, on the upstream ref.
//!
//! The candidates are the commits on HEAD that the upstream ref does not
//! have (a revwalk from HEAD hiding the ref: everything from the merge base
//! on), oldest first, less merges and the engine's own commits (its
//! trailer), each less the paths never sent (`exclude`: skill packages, the
//! engine's record, files skills added, the owner's `.pincer/local`). A
//! commit left with nothing is no candidate. `--list` numbers them, `--pick`
//! chooses among them (the series keeps their order, whatever the order
//! picked); by default all go.
//!
//! The chosen commits are made again on the upstream ref's tree one after
//! another (`rebase`), so each patch is against upstream as the patches
//! before it leave it, with upstream's own lines as context; one that upstream has
//! already (it took an earlier patch) is left out and reported. One that
//! cannot be made there refuses the whole series, naming the commit and
//! its files: nothing is written. Each patch keeps the commit's author, author
//! date and message (`patch`).
//!
//! A remote-tracking upstream ref is checked against its remote first
//! (`fresh`), unless `offline`.

mod exclude;
mod fresh;
mod patch;
mod rebase;

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{Engine, TRAILER, delta_path};
use crate::SkillError;
use exclude::Exclusions;
use patch::Patch;
use rebase::Rebased;

/// The folder in the git directory where `upstream-diff` writes when not
/// told where: outside the working tree, so the patches never make it dirty.
const PATCH_DIR: &str = "pincer-upstream-patches";

/// How `upstream_diff` runs, beyond the upstream ref.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamDiffOptions {
    /// Where to write (`None`: `Engine::default_patch_dir`, emptied of an
    /// earlier run's patches first).
    pub out: Option<PathBuf>,
    /// The numbers (from `upstream_commits`, 1-based) of the commits to send
    /// (`None`: all of them).
    pub pick: Option<Vec<usize>>,
    /// Take a remote-tracking upstream ref as it is, without asking the
    /// remote whether it moved on.
    pub offline: bool,
}

/// A commit `upstream-diff` would send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCommit {
    /// Its number for `--pick`, from 1, oldest first.
    pub number: usize,
    /// The full commit id.
    pub id: String,
    /// The message's first line.
    pub summary: String,
    /// The files it would send (relative to the root; the excluded ones left out).
    pub files: Vec<String>,
}

/// What `upstream_diff` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamPatches {
    /// The folder.
    pub dir: PathBuf,
    /// The patches, in the order to apply them.
    pub patches: Vec<PathBuf>,
    /// Chosen commits left out because the upstream ref has their change already.
    pub already_upstream: Vec<UpstreamCommit>,
}

/// A candidate commit and what it would send.
struct Candidate<'r> {
    commit: git2::Commit<'r>,
    listing: UpstreamCommit,
}

impl Engine {
    /// Where `upstream_diff` writes when not told where: a folder in the git
    /// directory, outside the working tree.
    pub fn default_patch_dir(&self) -> PathBuf {
        self.repo.path().join(PATCH_DIR)
    }

    /// The commits `upstream_diff` would send to `upstream_ref`, numbered
    /// for `UpstreamDiffOptions::pick`; writes nothing.
    pub fn upstream_commits(
        &self,
        upstream_ref: &str,
        offline: bool,
    ) -> Result<Vec<UpstreamCommit>, SkillError> {
        let upstream = self.upstream_commit(upstream_ref, offline)?;
        Ok(self
            .candidates(&upstream)?
            .into_iter()
            .map(|candidate| candidate.listing)
            .collect())
    }

    /// The owner's own changes since `upstream_ref` (the chosen candidates),
    /// rebased onto it and written one patch per commit. Everything is
    /// computed before anything is written: a refusal writes nothing.
    pub fn upstream_diff(
        &self,
        upstream_ref: &str,
        options: &UpstreamDiffOptions,
    ) -> Result<UpstreamPatches, SkillError> {
        let upstream = self.upstream_commit(upstream_ref, options.offline)?;
        let chosen = choose(self.candidates(&upstream)?, options.pick.as_deref())?;
        let (patches, already_upstream) = self.rebase_series(upstream_ref, &upstream, chosen)?;
        let dir = match &options.out {
            Some(dir) => dir.clone(),
            None => {
                let dir = self.default_patch_dir();
                patch::remove_patches(&dir)?;
                dir
            }
        };
        let patches = patch::write_series(&dir, &patches)?;
        Ok(UpstreamPatches {
            dir,
            patches,
            already_upstream,
        })
    }

    /// The upstream ref's commit, checked: it shares history with HEAD and,
    /// unless `offline`, is not behind its remote.
    fn upstream_commit(
        &self,
        upstream_ref: &str,
        offline: bool,
    ) -> Result<git2::Commit<'_>, SkillError> {
        let upstream = self
            .repo
            .revparse_single(upstream_ref)
            .and_then(|object| object.peel_to_commit())
            .map_err(|err| {
                SkillError::Refused(format!(
                    "{upstream_ref}: no such commit in this repository ({})",
                    err.message()
                ))
            })?;
        let head = self.repo.head()?.peel_to_commit()?;
        match self.repo.merge_base(head.id(), upstream.id()) {
            Ok(_) => {}
            Err(err) if err.code() == git2::ErrorCode::NotFound => {
                return Err(SkillError::Refused(format!(
                    "{upstream_ref} has no history in common with HEAD: it is not this fork's upstream"
                )));
            }
            Err(err) => return Err(err.into()),
        }
        if !offline {
            self.check_fresh(upstream_ref, upstream.id())?;
        }
        Ok(upstream)
    }

    /// The commits on HEAD that `upstream` lacks, oldest first, less merges,
    /// the engine's own commits and those that would send nothing.
    fn candidates(&self, upstream: &git2::Commit<'_>) -> Result<Vec<Candidate<'_>>, SkillError> {
        let exclusions = Exclusions::load(&self.root)?;
        let mut walk = self.repo.revwalk()?;
        walk.push_head()?;
        walk.hide(upstream.id())?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        let mut candidates = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            let message = commit.message().unwrap_or_default();
            if commit.parent_count() != 1 || message.contains(&format!("{TRAILER}:")) {
                continue;
            }
            let files = self.files_sent(&commit, &exclusions)?;
            if files.is_empty() {
                continue;
            }
            let listing = UpstreamCommit {
                number: candidates.len() + 1,
                id: commit.id().to_string(),
                summary: summary(&commit),
                files,
            };
            candidates.push(Candidate { commit, listing });
        }
        Ok(candidates)
    }

    /// The files `commit` changes that are not excluded, sorted.
    fn files_sent(
        &self,
        commit: &git2::Commit<'_>,
        exclusions: &Exclusions,
    ) -> Result<Vec<String>, SkillError> {
        let parent = commit.parent(0)?;
        let diff =
            self.repo
                .diff_tree_to_tree(Some(&parent.tree()?), Some(&commit.tree()?), None)?;
        let files: BTreeSet<String> = diff
            .deltas()
            .map(|delta| delta_path(&delta))
            .filter(|path| !exclusions.excludes(path))
            .collect();
        Ok(files.into_iter().collect())
    }

    /// The chosen commits made one after another on `upstream`'s tree: the
    /// patches, and the commits upstream has already.
    fn rebase_series(
        &self,
        upstream_ref: &str,
        upstream: &git2::Commit<'_>,
        chosen: Vec<Candidate<'_>>,
    ) -> Result<(Vec<Patch>, Vec<UpstreamCommit>), SkillError> {
        let mut tree = upstream.tree()?;
        let mut patches = Vec::new();
        let mut already_upstream = Vec::new();
        for Candidate { commit, listing } in chosen {
            let rebased = self.rebase_commit(&tree, &commit, &listing.files, upstream_ref)?;
            let new_tree = match rebased {
                Rebased::Onto(id) => self.repo.find_tree(id)?,
                Rebased::Conflicts(files) => {
                    return Err(refuse_conflicts(upstream_ref, &listing, &files));
                }
            };
            if new_tree.id() == tree.id() {
                already_upstream.push(listing);
                continue;
            }
            let (stat, diff) = patch::diff_text(&self.repo, &tree, &new_tree)?;
            let author = commit.author();
            patches.push(Patch {
                id: commit.id(),
                author_name: String::from_utf8_lossy(author.name_bytes()).into_owned(),
                author_email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
                author_time: author.when(),
                summary: listing.summary,
                body: String::from_utf8_lossy(commit.body_bytes().unwrap_or_default()).into_owned(),
                stat,
                diff,
            });
            tree = new_tree;
        }
        Ok((patches, already_upstream))
    }
}

/// The candidates `pick` names (all when `None`), in their own order.
fn choose<'r>(
    candidates: Vec<Candidate<'r>>,
    pick: Option<&[usize]>,
) -> Result<Vec<Candidate<'r>>, SkillError> {
    let Some(pick) = pick else {
        return Ok(candidates);
    };
    if pick.is_empty() {
        return Err(SkillError::Refused(
            "--pick takes the numbers of the commits to send, as `--list` shows them".into(),
        ));
    }
    if let Some(missing) = pick
        .iter()
        .find(|number| **number == 0 || **number > candidates.len())
    {
        return Err(SkillError::Refused(format!(
            "--pick {missing}: there is no commit {missing} to send (there are {}; `--list` shows them)",
            candidates.len()
        )));
    }
    Ok(candidates
        .into_iter()
        .filter(|candidate| pick.contains(&candidate.listing.number))
        .collect())
}

/// The refusal for a commit that cannot be made on the upstream ref.
fn refuse_conflicts(upstream_ref: &str, commit: &UpstreamCommit, files: &[String]) -> SkillError {
    SkillError::Refused(format!(
        "commit {} \"{}\" does not apply onto {upstream_ref}:\n  {}\n\
         no patches written; leave it out (`--list`, then `--pick`), list the files that are \
         yours alone in .pincer/local, or rebase it onto {upstream_ref} yourself",
        &commit.id[..10],
        commit.summary,
        files.join("\n  ")
    ))
}

/// The commit's first paragraph on one line, as `git format-patch` takes
/// the subject.
fn summary(commit: &git2::Commit<'_>) -> String {
    commit
        .summary_bytes()
        .map(|summary| String::from_utf8_lossy(summary).into_owned())
        .filter(|summary| !summary.is_empty())
        .unwrap_or_else(|| "change".to_owned())
}
