//! `new-skill`: a skill package scaffolded from what changed since a commit.

use std::path::{Path, PathBuf};

use git2::Repository;

use super::{Engine, delta_path};
use crate::SkillError;
use crate::env_example::{ENV_EXAMPLE, valid_variable};
use crate::manifest::{check_relative, valid_name, walk_without_symlinks};

impl Engine {
    /// Scaffolds `skills/<name>/` from what changed between `base_rev` and HEAD.
    pub fn new_skill(&self, name: &str, base_rev: &str) -> Result<PathBuf, SkillError> {
        let dir = self.new_skill_dir(name)?;
        let base = self.repo.revparse_single(base_rev)?.peel_to_commit()?;
        let head = self.repo.head()?.peel_to_commit()?;
        let (adds, modifies) = self.changes_since(&base, &head, base_rev)?;
        if adds.is_empty() && modifies.is_empty() {
            return Err(SkillError::Refused(format!(
                "nothing changed since {base_rev}"
            )));
        }
        let head_tree = head.tree()?;
        let base_tree = base.tree()?;
        let env = added_variables(&self.repo, &base_tree, &head_tree);
        for file in adds.iter().chain(&modifies) {
            self.copy_blob(&head_tree, file, &dir.join("files").join(file))?;
        }
        for file in &modifies {
            self.copy_blob(&base_tree, file, &dir.join("base").join(file))?;
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

    /// The folder of a new skill: a good name, and nothing there yet.
    fn new_skill_dir(&self, name: &str) -> Result<PathBuf, SkillError> {
        if !valid_name(name) {
            return Err(SkillError::Refused(format!(
                "{name:?}: a skill name is lowercase letters, digits and -"
            )));
        }
        let dir = self.root.join("skills").join(name);
        match walk_without_symlinks(&self.root, &format!("skills/{name}")) {
            Err(why) => Err(SkillError::Refused(why)),
            Ok(Some(_)) => Err(SkillError::Refused(format!(
                "{} exists already",
                dir.display()
            ))),
            Ok(None) => Ok(dir),
        }
    }

    /// The files added and modified between `base` and `head`, less the
    /// skill packages, the engine's record and `.env.example` (the engine's
    /// to write, from `env`).
    fn changes_since(
        &self,
        base: &git2::Commit<'_>,
        head: &git2::Commit<'_>,
        base_rev: &str,
    ) -> Result<(Vec<String>, Vec<String>), SkillError> {
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&base.tree()?), Some(&head.tree()?), None)?;
        let (mut adds, mut modifies) = (Vec::new(), Vec::new());
        for delta in diff.deltas() {
            let path = delta_path(&delta);
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
        Ok((adds, modifies))
    }

    /// Writes `file` as `tree` has it to `to`.
    fn copy_blob(&self, tree: &git2::Tree<'_>, file: &str, to: &Path) -> Result<(), SkillError> {
        let blob = self.repo.find_blob(tree.get_path(Path::new(file))?.id())?;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(SkillError::io(parent))?;
        }
        std::fs::write(to, blob.content()).map_err(SkillError::io(to))
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
