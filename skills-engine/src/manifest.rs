//! `skill.toml`: what a skill is and what it touches, checked before anything
//! is written.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SkillError;
use crate::capabilities::Capabilities;
use crate::env_example::ENV_EXAMPLE;
use crate::names::{valid_name, valid_variable};

/// Edits to one `Cargo.toml`, applied structurally.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrateEdit {
    /// The manifest, relative to the repository's root.
    pub manifest: String,
    /// Entries to add to `[dependencies]` (name → a version string or an
    /// inline table, as Cargo takes them).
    #[serde(default)]
    pub dependencies: BTreeMap<String, toml::Value>,
    /// Members to add to `[workspace] members` (the root manifest).
    #[serde(default)]
    pub members: Vec<String>,
}

impl CrateEdit {
    /// An edit of `manifest` that adds one dependency, `spec` as Cargo
    /// takes it (`"1"`, `{ path = "../skills/x" }`).
    pub fn dependency(manifest: &str, name: &str, spec: &str) -> Result<Self, SkillError> {
        let parsed: toml::Table = toml::from_str(&format!("spec = {spec}")).map_err(|err| {
            SkillError::Refused(format!(
                "dependency {name}: {spec:?} is not a TOML value: {}",
                err.message()
            ))
        })?;
        let value = parsed.get("spec").cloned().ok_or_else(|| {
            SkillError::Refused(format!("dependency {name}: {spec:?} is not a TOML value"))
        })?;
        Ok(Self {
            manifest: manifest.to_owned(),
            dependencies: BTreeMap::from([(name.to_owned(), value)]),
            members: Vec::new(),
        })
    }
}

/// A line a skill registers in a source file of the owner's build
/// (`[[register]]`): apply-skill puts it into the block between the file's
/// `apply-skill: begin` and `apply-skill: end` lines, remove-skill takes it
/// out again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterLine {
    /// The file, relative to the repository's root.
    pub file: String,
    /// The line, without indentation (it gets the begin line's).
    pub line: String,
}

/// A skill's manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillManifest {
    /// Its name (the folder's name).
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// The upstream commit the skill was written against: its full id, 40
    /// hex digits (an abbreviation could name another commit, or none, in
    /// someone else's fork). Needed when it `modifies` files (their merge
    /// base); else optional, empty when not given.
    #[serde(default)]
    pub base: String,
    /// Files it adds.
    #[serde(default)]
    pub adds: Vec<String>,
    /// Files it modifies.
    #[serde(default)]
    pub modifies: Vec<String>,
    /// `Cargo.toml` edits.
    #[serde(default, rename = "crate")]
    pub crates: Vec<CrateEdit>,
    /// Lines it registers in source files of the owner's build.
    #[serde(default)]
    pub register: Vec<RegisterLine>,
    /// Environment variables it needs: `apply-skill` writes them into
    /// `.env.example`, in a block that names the skill.
    #[serde(default)]
    pub env: Vec<String>,
    /// Skills that must be applied first.
    #[serde(default)]
    pub depends: Vec<String>,
    /// Skills it cannot be applied with.
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// The command that proves it works once applied (run from the root).
    #[serde(default)]
    pub test: Option<String>,
    /// What it declares it needs (`[capabilities]`): nothing by default.
    #[serde(default)]
    pub capabilities: Capabilities,
}

impl SkillManifest {
    /// Reads and checks `skills/<name>/skill.toml` in `root`.
    pub fn load(root: &Path, name: &str) -> Result<Self, SkillError> {
        let dir = root.join("skills").join(name);
        let path = dir.join("skill.toml");
        if !valid_name(name) {
            return Err(SkillError::UnknownSkill(name.to_owned()));
        }
        let bad = |message: String| SkillError::Manifest {
            path: path.clone(),
            message,
        };
        // The package folder and its manifest are plain, in every component.
        match walk_without_symlinks(root, &format!("skills/{name}/skill.toml")) {
            Err(why) => return Err(bad(why)),
            Ok(Some(meta)) if meta.is_file() => {}
            Ok(_) => return Err(SkillError::UnknownSkill(name.to_owned())),
        }
        let text = std::fs::read_to_string(&path).map_err(SkillError::io(&path))?;
        let manifest: Self =
            toml::from_str(&text).map_err(|err| bad(err.to_string().trim().to_owned()))?;
        if manifest.name != name {
            return Err(bad(format!(
                "`name` is {:?} but the folder is {name:?}",
                manifest.name
            )));
        }
        manifest.check(&dir).map_err(bad)?;
        Ok(manifest)
    }

    /// Everything `load` checks once the file parsed; the error names the key.
    fn check(&self, dir: &Path) -> Result<(), String> {
        if self.version.trim().is_empty() {
            return Err("`version` is empty".into());
        }
        if self.base.is_empty() && !self.modifies.is_empty() {
            return Err(
                "`base` is missing: a skill that modifies files needs the full id of the \
                 commit they were written against (`git rev-parse <commit>` prints it)"
                    .into(),
            );
        }
        if !self.base.is_empty() && !full_commit_id(&self.base) {
            return Err(format!(
                "`base` is {:?}, but it must be a full commit id, 40 hex digits \
                 (`git rev-parse <commit>` prints it): an abbreviation may name \
                 another commit, or none, in someone else's fork",
                self.base
            ));
        }
        for (key, list) in [("adds", &self.adds), ("modifies", &self.modifies)] {
            for file in list {
                check_package_file(dir, key, file)?;
            }
        }
        // The kept copies of base versions, where the package has them.
        for file in &self.modifies {
            let kept = format!("base/{file}");
            match walk_without_symlinks(dir, &kept) {
                Err(why) => return Err(format!("`modifies`: {file:?}: {why}")),
                Ok(Some(meta)) if !meta.is_file() => {
                    return Err(format!(
                        "`modifies`: {} is not a regular file",
                        dir.join(&kept).display()
                    ));
                }
                Ok(_) => {}
            }
        }
        self.check_env()?;
        self.check_register()?;
        self.capabilities.check()?;
        for edit in &self.crates {
            check_relative(&edit.manifest)
                .map_err(|why| format!("`crate.manifest`: {:?} {why}", edit.manifest))?;
            if !edit.manifest.ends_with("Cargo.toml") {
                return Err(format!(
                    "`crate.manifest`: {:?} is not a Cargo.toml",
                    edit.manifest
                ));
            }
        }
        Ok(())
    }

    /// `register`: a file inside the repository, one plain line, each once.
    fn check_register(&self) -> Result<(), String> {
        for (index, entry) in self.register.iter().enumerate() {
            check_relative(&entry.file)
                .map_err(|why| format!("`register.file`: {:?} {why}", entry.file))?;
            if entry.file == ENV_EXAMPLE {
                return Err(format!(
                    "`register.file`: {:?} is written from `env`",
                    entry.file
                ));
            }
            check_line(&entry.line)
                .map_err(|why| format!("`register.line`: {:?} {why}", entry.line))?;
            if self.register[..index].contains(entry) {
                return Err(format!(
                    "`register`: {:?} in {:?} is listed twice",
                    entry.line, entry.file
                ));
            }
        }
        Ok(())
    }

    /// `env`: variable names, each once.
    fn check_env(&self) -> Result<(), String> {
        for (index, variable) in self.env.iter().enumerate() {
            if !valid_variable(variable) {
                return Err(format!(
                    "`env`: {variable:?} is not a variable name (ASCII letters, digits \
                     and `_`, not starting with a digit)"
                ));
            }
            if self.env[..index].contains(variable) {
                return Err(format!("`env`: {variable:?} is listed twice"));
            }
        }
        Ok(())
    }

    /// The skill's version of a file.
    pub(crate) fn theirs(&self, root: &Path, file: &str) -> PathBuf {
        root.join("skills")
            .join(&self.name)
            .join("files")
            .join(file)
    }

    /// The kept copy of a file's base version, if the package has one.
    pub(crate) fn kept_base(&self, root: &Path, file: &str) -> PathBuf {
        root.join("skills").join(&self.name).join("base").join(file)
    }
}

/// A path inside the repository: relative, no `..`, no root, no `.git`, not
/// the engine's own `.pincer/`.
pub(crate) fn check_relative(path: &str) -> Result<(), &'static str> {
    let p = Path::new(path);
    if path.is_empty() || p.is_absolute() || path.contains('\\') {
        return Err("must be a relative path");
    }
    for (index, component) in p.components().enumerate() {
        match component {
            Component::Normal(part) if part == ".git" => return Err("must not touch .git"),
            Component::Normal(part) if index == 0 && part == ".pincer" => {
                return Err("must not touch .pincer (the engine's record of applied skills)");
            }
            Component::Normal(_) => {}
            _ => return Err("must not contain `..` or `.`"),
        }
    }
    Ok(())
}

/// Walks `relative` (a path `check_relative` accepts) down from `dir`
/// without following a symlink: an error names the first component that is
/// one; `Ok(None)` when a component does not exist; else the metadata of the
/// last component (a file, a folder, never a symlink).
pub(crate) fn walk_without_symlinks(
    dir: &Path,
    relative: &str,
) -> Result<Option<std::fs::Metadata>, String> {
    let mut path = dir.to_path_buf();
    let mut walked = PathBuf::new();
    let mut last = None;
    for component in Path::new(relative).components() {
        path.push(component);
        walked.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "{} is a symlink (symlinks are refused)",
                    walked.display()
                ));
            }
            Ok(meta) => last = Some(meta),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("{}: {err}", path.display())),
        }
    }
    Ok(last)
}

/// One entry of `adds` or `modifies` (`key`): a path inside the repository,
/// not `.env.example`, with the skill's version a regular file in the package
/// (`files/<file>`) reached without a symlink.
fn check_package_file(dir: &Path, key: &str, file: &str) -> Result<(), String> {
    check_relative(file).map_err(|why| format!("`{key}`: {file:?} {why}"))?;
    if file == ENV_EXAMPLE {
        return Err(format!(
            "`{key}`: {file:?} is written from `env`: list the variables there"
        ));
    }
    // Every component inside the package, not only the file: a symlinked
    // folder (`files/core -> /`) would read from anywhere.
    let source = format!("files/{file}");
    match walk_without_symlinks(dir, &source) {
        Err(why) => Err(format!("`{key}`: {file:?}: {why}")),
        Ok(None) => Err(format!(
            "`{key}`: {file:?} is not in the package ({} is missing)",
            dir.join(&source).display()
        )),
        Ok(Some(meta)) if !meta.is_file() => Err(format!(
            "`{key}`: {} is not a regular file",
            dir.join(&source).display()
        )),
        Ok(Some(_)) => Ok(()),
    }
}

/// A full commit id: 40 hex digits.
fn full_commit_id(id: &str) -> bool {
    id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What the first line of the block contains.
pub(crate) const BEGIN: &str = "apply-skill: begin";
/// What the last line of the block contains.
pub(crate) const END: &str = "apply-skill: end";

/// A `[[register]]` line as skill.toml may have it: one line of text, not
/// empty, without surrounding spaces (the engine indents it) and without a
/// marker of the block.
pub(crate) fn check_line(line: &str) -> Result<(), &'static str> {
    if line.trim().is_empty() {
        return Err("is empty");
    }
    if line.contains(['\n', '\r']) {
        return Err("is more than one line");
    }
    if line.trim() != line {
        return Err("has spaces around it (the engine indents it like the block)");
    }
    if line.contains(BEGIN) || line.contains(END) {
        return Err("contains a marker of the block");
    }
    Ok(())
}
