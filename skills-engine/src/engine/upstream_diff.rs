//! `upstream-diff`: the owner's own changes, as patches upstream can take.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Engine, TRAILER, delta_path};
use crate::SkillError;
use crate::manifest::SkillManifest;
use crate::state::State;

/// The folder in the git directory where `upstream-diff` writes when not
/// told where: outside the working tree, so the patches never make it dirty.
const PATCH_DIR: &str = "pincer-upstream-patches";

impl Engine {
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
        let out = match out {
            Some(dir) => dir.to_path_buf(),
            None => {
                let dir = self.default_patch_dir();
                remove_patches(&dir)?;
                dir
            }
        };
        std::fs::create_dir_all(&out).map_err(SkillError::io(&out))?;
        let mut kept = Vec::new();
        for commit in self.own_commits(upstream.id())? {
            let body = self.patch_body(&commit, &skill_files)?;
            if !body.is_empty() {
                kept.push((commit, body));
            }
        }
        let total = kept.len();
        let mut written = Vec::new();
        for (number, (commit, body)) in kept.into_iter().enumerate() {
            written.push(write_patch(&out, &commit, &body, number + 1, total)?);
        }
        Ok((out, written))
    }

    /// The commits on HEAD since `upstream`, oldest first, less merges and
    /// the engine's own commits.
    fn own_commits(&self, upstream: git2::Oid) -> Result<Vec<git2::Commit<'_>>, SkillError> {
        let mut walk = self.repo.revwalk()?;
        walk.push_head()?;
        walk.hide(upstream)?;
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
        Ok(commits)
    }

    /// One commit's diff, less the skill packages, the engine's record and
    /// the files skills added.
    fn patch_body(
        &self,
        commit: &git2::Commit<'_>,
        skill_files: &BTreeSet<String>,
    ) -> Result<String, SkillError> {
        let parent = commit.parent(0)?;
        let diff =
            self.repo
                .diff_tree_to_tree(Some(&parent.tree()?), Some(&commit.tree()?), None)?;
        let mut body = String::new();
        for index in 0..diff.deltas().len() {
            let Some(mut patch) = git2::Patch::from_diff(&diff, index)? else {
                continue;
            };
            let path = delta_path(&patch.delta());
            if path.starts_with("skills/")
                || path.starts_with(".pincer/")
                || skill_files.contains(&path)
            {
                continue;
            }
            body.push_str(&String::from_utf8_lossy(&patch.to_buf()?));
        }
        Ok(body)
    }
}

/// Writes one commit's patch, `git format-patch` style, as
/// `<out>/<number>-<slug>.patch`.
fn write_patch(
    out: &Path,
    commit: &git2::Commit<'_>,
    body: &str,
    number: usize,
    total: usize,
) -> Result<PathBuf, SkillError> {
    let summary = commit
        .summary()
        .ok()
        .flatten()
        .unwrap_or("change")
        .to_owned();
    let slug = slug(&summary);
    let path = out.join(format!("{number:04}-{}.patch", &slug[..slug.len().min(50)]));
    let author = commit.author();
    let text = format!(
        "From {} Mon Sep 17 00:00:00 2001\nFrom: {} <{}>\nSubject: [PATCH {number}/{total}] {}\n\n{}\n---\n{body}--\npincer upstream-diff\n",
        commit.id(),
        author.name().unwrap_or("owner"),
        author.email().unwrap_or("owner@localhost"),
        summary,
        commit.body().ok().flatten().unwrap_or("").trim(),
    );
    std::fs::write(&path, text).map_err(SkillError::io(&path))?;
    Ok(path)
}

/// A commit summary as a file name: lowercase ASCII words joined by `-`.
fn slug(summary: &str) -> String {
    summary
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
        .join("-")
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
