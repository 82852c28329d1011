//! `new-skill`: a skill package scaffolded from what its caller gives (the
//! engine knows no project's layout), and optionally from what changed since
//! a commit (the files it adds and modifies, its variables).

use std::path::{Path, PathBuf};

use git2::Repository;

use super::cargo_edit::to_edit_value;
use super::{Engine, delta_path};
use crate::SkillError;
use crate::env_example::ENV_EXAMPLE;
use crate::manifest::{
    CrateEdit, RegisterLine, SkillManifest, check_relative, walk_without_symlinks,
};
use crate::names::{valid_name, valid_variable};
use crate::state::State;

/// What `new-skill` writes into `skills/<name>/` besides what it derives
/// itself. In every string, `{name}` stands for the skill's name,
/// `{name_snake}` for the name with `_` for `-` (a Rust crate's name), and
/// `{base}` for the full id of the commit it is written against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scaffold {
    /// Files (a path relative to `skills/<name>/`, and the content). Not
    /// `skill.toml`, nor under `files/` or `base/`: the engine writes those.
    /// Without a `SKILL.md`, the engine writes one to fill in.
    pub files: Vec<(String, String)>,
    /// The skill's `[[crate]]` entries.
    pub crates: Vec<CrateEdit>,
    /// The skill's `[[register]]` entries.
    pub register: Vec<RegisterLine>,
    /// The skill's `test` command.
    pub test: Option<String>,
}

impl Scaffold {
    /// The scaffold for one skill: its placeholders filled in.
    fn filled(&self, name: &str, base: &str) -> Self {
        let fill = |text: &str| {
            text.replace("{name_snake}", &name.replace('-', "_"))
                .replace("{name}", name)
                .replace("{base}", base)
        };
        Self {
            files: self
                .files
                .iter()
                .map(|(path, content)| (fill(path), fill(content)))
                .collect(),
            crates: self
                .crates
                .iter()
                .map(|edit| CrateEdit {
                    manifest: fill(&edit.manifest),
                    dependencies: edit
                        .dependencies
                        .iter()
                        .map(|(key, value)| (fill(key), fill_value(value, &fill)))
                        .collect(),
                    members: edit.members.iter().map(|m| fill(m)).collect(),
                })
                .collect(),
            register: self
                .register
                .iter()
                .map(|r| RegisterLine {
                    file: fill(&r.file),
                    line: fill(&r.line),
                })
                .collect(),
            test: self.test.as_deref().map(fill),
        }
    }

    /// Refuses a file the engine writes itself, a path outside the package,
    /// a path twice.
    fn check(&self) -> Result<(), SkillError> {
        for (index, (path, _)) in self.files.iter().enumerate() {
            check_relative(path)
                .map_err(|why| SkillError::Refused(format!("scaffold file {path:?} {why}")))?;
            let first = path.split('/').next().unwrap_or_default();
            if path == "skill.toml" || first == "files" || first == "base" {
                return Err(SkillError::Refused(format!(
                    "scaffold file {path:?}: skill.toml, files/ and base/ are the engine's to write"
                )));
            }
            if self.files[..index].iter().any(|(other, _)| other == path) {
                return Err(SkillError::Refused(format!(
                    "scaffold file {path:?} is given twice"
                )));
            }
        }
        Ok(())
    }
}

/// A TOML value with the placeholders of its strings filled in.
fn fill_value(value: &toml::Value, fill: &impl Fn(&str) -> String) -> toml::Value {
    match value {
        toml::Value::String(s) => toml::Value::String(fill(s)),
        toml::Value::Array(items) => {
            toml::Value::Array(items.iter().map(|v| fill_value(v, fill)).collect())
        }
        toml::Value::Table(table) => toml::Value::Table(
            table
                .iter()
                .map(|(k, v)| (fill(k), fill_value(v, fill)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// What a new skill takes from the fork's history: the commit it is written
/// against, and the files and variables added or modified since then.
struct Captured {
    base: String,
    adds: Vec<String>,
    modifies: Vec<String>,
    env: Vec<String>,
}

impl Engine {
    /// Scaffolds `skills/<name>/` from `scaffold`; with `from` (a revision),
    /// also from what changed between it and HEAD: the files added and
    /// modified (into `files/`, with the base versions of modified ones in
    /// `base/`) and the variables added to `.env.example`. Without `from`,
    /// the skill is written against HEAD. The result must load as a skill;
    /// when anything fails, nothing is left behind.
    pub fn new_skill(
        &self,
        name: &str,
        scaffold: &Scaffold,
        from: Option<&str>,
    ) -> Result<PathBuf, SkillError> {
        let dir = self.new_skill_dir(name)?;
        let captured = self.capture(from)?;
        let scaffold = scaffold.filled(name, &captured.base);
        scaffold.check()?;
        let written = self
            .write_skill(name, &dir, &scaffold, &captured, from)
            .and_then(|()| SkillManifest::load(&self.root, name));
        if let Err(err) = written {
            // Best effort: the error to report is the one that stopped it,
            // and the folder is new, all of it written here.
            let _removed = std::fs::remove_dir_all(&dir);
            return Err(err);
        }
        Ok(dir)
    }

    /// The folder of a new skill: a name no applied skill has (said first:
    /// the owner may have meant another verb), a good name, and nothing
    /// there yet.
    fn new_skill_dir(&self, name: &str) -> Result<PathBuf, SkillError> {
        if let Some(applied) = State::load(&self.root)?.get(name) {
            return Err(SkillError::Refused(format!(
                "{name} is applied (version {}); a new skill needs another name",
                applied.version
            )));
        }
        if !valid_name(name) {
            return Err(SkillError::Refused(format!(
                "{name:?}: a skill name is lowercase letters, digits and -"
            )));
        }
        let dir = self.root.join("skills").join(name);
        match walk_without_symlinks(&self.root, &format!("skills/{name}")) {
            Err(why) => Err(SkillError::Refused(why)),
            Ok(Some(_)) => Err(SkillError::Refused(format!(
                "skills/{name} exists already; a new skill needs another name"
            ))),
            Ok(None) => Ok(dir),
        }
    }

    /// HEAD alone, or what changed since `from`.
    fn capture(&self, from: Option<&str>) -> Result<Captured, SkillError> {
        let head = self.repo.head()?.peel_to_commit()?;
        let Some(base_rev) = from else {
            return Ok(Captured {
                base: head.id().to_string(),
                adds: Vec::new(),
                modifies: Vec::new(),
                env: Vec::new(),
            });
        };
        let base = self.repo.revparse_single(base_rev)?.peel_to_commit()?;
        let (adds, modifies) = self.changes_since(&base, &head, base_rev)?;
        if adds.is_empty() && modifies.is_empty() {
            return Err(SkillError::Refused(format!(
                "nothing changed since {base_rev}"
            )));
        }
        Ok(Captured {
            base: base.id().to_string(),
            adds,
            modifies,
            env: added_variables(&self.repo, &base.tree()?, &head.tree()?),
        })
    }

    /// Writes the package: the captured files, the scaffold's, SKILL.md and
    /// skill.toml.
    fn write_skill(
        &self,
        name: &str,
        dir: &Path,
        scaffold: &Scaffold,
        captured: &Captured,
        from: Option<&str>,
    ) -> Result<(), SkillError> {
        if let Some(base_rev) = from {
            let head_tree = self.repo.head()?.peel_to_tree()?;
            let base_tree = self.repo.revparse_single(base_rev)?.peel_to_tree()?;
            for file in captured.adds.iter().chain(&captured.modifies) {
                self.copy_blob(&head_tree, file, &dir.join("files").join(file))?;
            }
            for file in &captured.modifies {
                self.copy_blob(&base_tree, file, &dir.join("base").join(file))?;
            }
        }
        for (path, content) in &scaffold.files {
            write_new(&dir.join(path), content.as_bytes())?;
        }
        if !scaffold.files.iter().any(|(path, _)| path == "SKILL.md") {
            write_new(&dir.join("SKILL.md"), skill_md(name).as_bytes())?;
        }
        let manifest = render_manifest(name, scaffold, captured);
        write_new(&dir.join("skill.toml"), manifest.as_bytes())
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
        write_new(to, blob.content())
    }
}

/// Writes a file of the new package, and the folders on its way.
fn write_new(path: &Path, content: &[u8]) -> Result<(), SkillError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(SkillError::io(parent))?;
    }
    std::fs::write(path, content).map_err(SkillError::io(path))
}

/// The SKILL.md to fill in, when the scaffold has none.
fn skill_md(name: &str) -> String {
    format!(
        "---\nname: {name}\ndescription: TODO\n---\n\n# {name}\n\n## What it adds\n\nTODO\n\n\
         ## Set-up\n\nTODO: keys to create, configuration to write.\n\n## Check that it works\n\nTODO\n\n\
         ## Remove it\n\n`cargo xtask remove-skill {name}`\n"
    )
}

/// The new skill's `skill.toml` (written with `toml_edit`, so every string
/// is quoted as TOML wants it).
fn render_manifest(name: &str, scaffold: &Scaffold, captured: &Captured) -> String {
    use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, value};
    let list =
        |items: &[String]| -> Item { value(items.iter().map(String::as_str).collect::<Array>()) };
    let mut doc = DocumentMut::new();
    doc["name"] = value(name);
    doc["version"] = value("0.1.0");
    doc["description"] = value(format!("TODO: one line about {name}"));
    doc["base"] = value(captured.base.as_str());
    doc["adds"] = list(&captured.adds);
    doc["modifies"] = list(&captured.modifies);
    doc["env"] = list(&captured.env);
    doc["depends"] = list(&[]);
    doc["conflicts"] = list(&[]);
    if let Some(test) = &scaffold.test {
        doc["test"] = value(test.as_str());
        if let Some(mut key) = doc.key_mut("test") {
            key.leaf_decor_mut().set_prefix(
                "# The command that proves it works once applied (run from the root):\n",
            );
        }
    }
    let mut crates = ArrayOfTables::new();
    for edit in &scaffold.crates {
        let mut table = Table::new();
        table["manifest"] = value(edit.manifest.as_str());
        if !edit.dependencies.is_empty() {
            let mut dependencies = InlineTable::new();
            for (key, spec) in &edit.dependencies {
                dependencies.insert(key, to_edit_value(spec));
            }
            table["dependencies"] = value(dependencies);
        }
        if !edit.members.is_empty() {
            table["members"] = list(&edit.members);
        }
        crates.push(table);
    }
    if !crates.is_empty() {
        doc["crate"] = Item::ArrayOfTables(crates);
    }
    let mut register = ArrayOfTables::new();
    for entry in &scaffold.register {
        let mut table = Table::new();
        table["file"] = value(entry.file.as_str());
        table["line"] = value(entry.line.as_str());
        register.push(table);
    }
    if !register.is_empty() {
        doc["register"] = Item::ArrayOfTables(register);
    }
    // Nothing declared: what the code reaches is filled in as it is written
    // (apply-skill stops at anything found but not declared).
    let mut capabilities = Table::new();
    for key in ["network", "processes", "files", "env", "registers", "build"] {
        capabilities[key] = list(&[]);
    }
    capabilities["unsafe"] = value(false);
    capabilities.decor_mut().set_prefix(
        "\n# What its code reaches on the host, checked against the code by\n\
         # apply-skill (CONTRIBUTING.md says what to declare).\n",
    );
    doc["capabilities"] = Item::Table(capabilities);
    doc.to_string()
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
