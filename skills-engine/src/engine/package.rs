//! What the owner is about to run, for a skill whose folder is a Cargo
//! package: its files (with their line counts) and its new dependencies,
//! the packages `Cargo.lock` says it brings into the build that the packages
//! it is linked into (those its `[[crate]]` entries edit) do not use already.
//! Read from the lock file as it is: nothing here runs cargo.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

use serde::Deserialize;

use super::Engine;
use crate::SkillError;
use crate::manifest::{SkillManifest, walk_without_symlinks};

/// The lock file, relative to the repository's root.
const LOCKFILE: &str = "Cargo.lock";

/// A skill package's new dependencies, as far as `Cargo.lock` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewDependencies {
    /// The packages (name, version), sorted; none: it brings nothing new.
    Known(Vec<(String, String)>),
    /// Why they are not known (no lock file, the package not in it).
    Unknown(String),
}

/// A skill whose folder is a Cargo package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillPackage {
    /// The skill's folder, relative to the root (`skills/<name>`).
    pub dir: String,
    /// The package's name, from its `Cargo.toml`.
    pub name: String,
    /// Each regular file in the folder (relative to it, sorted; files git
    /// ignores left out) and its number of lines.
    pub files: Vec<(String, usize)>,
    /// Symlinks in the folder, relative to it (never followed here).
    pub symlinks: Vec<String>,
    /// The packages it is linked into: those whose manifests its `[[crate]]`
    /// entries edit.
    pub linked_into: Vec<String>,
    /// What it brings into the build.
    pub new_dependencies: NewDependencies,
}

impl SkillPackage {
    /// The lines of all its files.
    pub fn total_lines(&self) -> usize {
        self.files.iter().map(|(_, lines)| lines).sum()
    }

    /// What `show`, `diff` and the apply's summary print.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!(
            "  package   {} in {}/: {} lines in {} files",
            self.name,
            self.dir,
            self.total_lines(),
            self.files.len()
        )];
        for (file, lines) in &self.files {
            out.push(format!("  {lines:>8}  {file}"));
        }
        for link in &self.symlinks {
            out.push(format!("         -  {link} (a symlink)"));
        }
        let into = if self.linked_into.is_empty() {
            "no package it is linked into".to_owned()
        } else {
            self.linked_into.join(", ")
        };
        out.push(match &self.new_dependencies {
            NewDependencies::Known(packages) if packages.is_empty() => format!(
                "  new deps  none ({into} uses everything {} uses, says {LOCKFILE})",
                self.name
            ),
            NewDependencies::Known(packages) => format!(
                "  new deps  {} ({} of them: in {LOCKFILE}, used by {} and not by {into})",
                packages
                    .iter()
                    .map(|(name, version)| format!("{name} {version}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                packages.len(),
                self.name
            ),
            NewDependencies::Unknown(why) => format!("  new deps  unknown: {why}"),
        });
        out
    }
}

/// A package folder's regular files (with their line counts) and symlinks.
type Listed = (Vec<(String, usize)>, Vec<String>);

/// One `[[package]]` of `Cargo.lock`.
#[derive(Debug, Deserialize)]
struct Locked {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    /// `name`, `name version` or `name version (source)`.
    #[serde(default)]
    dependencies: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Lockfile {
    #[serde(default)]
    package: Vec<Locked>,
}

impl Engine {
    /// For a skill whose folder is a Cargo package (`skills/<name>/Cargo.toml`):
    /// its files and new dependencies; `None` for any other skill.
    pub fn package(&self, name: &str) -> Result<Option<SkillPackage>, SkillError> {
        let manifest = SkillManifest::load(&self.root, name)?;
        let dir = format!("skills/{name}");
        let Some(package) = self.package_name(&format!("{dir}/Cargo.toml"))? else {
            return Ok(None);
        };
        let package = package.ok_or_else(|| SkillError::Manifest {
            path: self.root.join(&dir).join("Cargo.toml"),
            message: "it has no [package] name".into(),
        })?;
        let mut linked_into = Vec::new();
        for edit in &manifest.crates {
            if let Some(Some(host)) = self.package_name(&edit.manifest)?
                && !linked_into.contains(&host)
            {
                linked_into.push(host);
            }
        }
        let (files, symlinks) = self.package_files(&dir)?;
        let new_dependencies = self.new_dependencies(&package, &linked_into)?;
        Ok(Some(SkillPackage {
            dir,
            name: package,
            files,
            symlinks,
            linked_into,
            new_dependencies,
        }))
    }

    /// `package`'s description, for a summary printed after the fact: a
    /// line saying why when it cannot be had.
    pub(super) fn package_lines(&self, name: &str) -> Vec<String> {
        match self.package(name) {
            Ok(Some(package)) => package.describe(),
            Ok(None) => Vec::new(),
            Err(err) => vec![format!("  package   not described: {err}")],
        }
    }

    /// The `[package] name` of a `Cargo.toml` (relative to the root):
    /// `None` when there is no such file, `Some(None)` when it has no
    /// package (a virtual workspace's).
    fn package_name(&self, manifest: &str) -> Result<Option<Option<String>>, SkillError> {
        let path = self.root.join(manifest);
        match walk_without_symlinks(&self.root, manifest) {
            Err(why) => return Err(SkillError::Refused(format!("{manifest}: {why}"))),
            Ok(Some(meta)) if meta.is_file() => {}
            Ok(_) => return Ok(None),
        }
        let text = std::fs::read_to_string(&path).map_err(SkillError::io(&path))?;
        let table: toml::Table = toml::from_str(&text).map_err(|err| SkillError::Manifest {
            path: path.clone(),
            message: err.to_string().trim().to_owned(),
        })?;
        Ok(Some(
            table
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .map(str::to_owned),
        ))
    }

    /// The regular files under `dir` with their line counts, and the
    /// symlinks, sorted; what git ignores is left out.
    fn package_files(&self, dir: &str) -> Result<Listed, SkillError> {
        let (mut files, mut symlinks) = (Vec::new(), Vec::new());
        let mut folders = vec![self.root.join(dir)];
        let base = self.root.join(dir);
        while let Some(folder) = folders.pop() {
            let entries = std::fs::read_dir(&folder).map_err(SkillError::io(&folder))?;
            for entry in entries {
                let path = entry.map_err(SkillError::io(&folder))?.path();
                let relative = relative_to(&path, &base);
                if self.ignored(&path)? {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&path).map_err(SkillError::io(&path))?;
                if meta.file_type().is_symlink() {
                    symlinks.push(relative);
                } else if meta.is_dir() {
                    folders.push(path);
                } else if meta.is_file() {
                    let content = std::fs::read(&path).map_err(SkillError::io(&path))?;
                    files.push((relative, line_count(&content)));
                }
            }
        }
        files.sort();
        symlinks.sort();
        Ok((files, symlinks))
    }

    /// Whether git ignores `path` (a path under the root).
    fn ignored(&self, path: &Path) -> Result<bool, SkillError> {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        Ok(self.repo.is_path_ignored(relative)?)
    }

    /// What `Cargo.lock` says `package` brings that `hosts` do not use.
    fn new_dependencies(
        &self,
        package: &str,
        hosts: &[String],
    ) -> Result<NewDependencies, SkillError> {
        let path = self.root.join(LOCKFILE);
        match walk_without_symlinks(&self.root, LOCKFILE) {
            Err(why) => return Err(SkillError::Refused(format!("{LOCKFILE}: {why}"))),
            Ok(Some(meta)) if meta.is_file() => {}
            Ok(_) => {
                return Ok(NewDependencies::Unknown(format!(
                    "there is no {LOCKFILE} at the repository's root"
                )));
            }
        }
        let text = std::fs::read_to_string(&path).map_err(SkillError::io(&path))?;
        let lock: Lockfile = toml::from_str(&text).map_err(|err| SkillError::Manifest {
            path,
            message: err.to_string().trim().to_owned(),
        })?;
        Ok(new_in_lock(&lock.package, package, hosts))
    }
}

/// The packages reachable from `package` in the lock that are not reachable
/// from `hosts` (without going through `package`: in a fork where it is
/// linked already, the hosts reach everything it uses through it).
fn new_in_lock(locked: &[Locked], package: &str, hosts: &[String]) -> NewDependencies {
    let own = local(locked, package);
    if own.is_empty() {
        return NewDependencies::Unknown(format!(
            "{package} is not in {LOCKFILE} (build once, and commit the lock file)"
        ));
    }
    let skill = reachable(locked, &own, &[]);
    let host_roots: Vec<usize> = hosts.iter().flat_map(|h| local(locked, h)).collect();
    let theirs = reachable(locked, &host_roots, &own);
    let mut new: Vec<(String, String)> = skill
        .difference(&theirs)
        .filter(|index| !own.contains(index))
        .map(|&index| (locked[index].name.clone(), locked[index].version.clone()))
        .collect();
    new.sort();
    new.dedup();
    NewDependencies::Known(new)
}

/// The lock's entries for a workspace package: those of that name without
/// a source (path packages), else any of that name.
fn local(locked: &[Locked], name: &str) -> Vec<usize> {
    let named: Vec<usize> = (0..locked.len())
        .filter(|&i| locked[i].name == name)
        .collect();
    let path_only: Vec<usize> = named
        .iter()
        .copied()
        .filter(|&i| locked[i].source.is_none())
        .collect();
    if path_only.is_empty() {
        named
    } else {
        path_only
    }
}

/// Everything reachable from `roots` along dependencies, not entering
/// `blocked`.
fn reachable(locked: &[Locked], roots: &[usize], blocked: &[usize]) -> BTreeSet<usize> {
    let mut seen: BTreeSet<usize> = BTreeSet::new();
    let mut queue: VecDeque<usize> = roots.iter().copied().collect();
    while let Some(index) = queue.pop_front() {
        if blocked.contains(&index) || !seen.insert(index) {
            continue;
        }
        for entry in &locked[index].dependencies {
            let mut words = entry.split_whitespace();
            let name = words.next().unwrap_or_default();
            let version = words.next();
            queue.extend((0..locked.len()).filter(|&i| {
                locked[i].name == name && version.is_none_or(|v| locked[i].version == v)
            }));
        }
    }
    seen
}

/// Lines in a file: its newlines, and a last line without one.
fn line_count(content: &[u8]) -> usize {
    let newlines = content.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(content.last().is_some_and(|&b| b != b'\n'))
}

/// `path` relative to `base`, with `/` between components.
fn relative_to(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(text: &str) -> Vec<Locked> {
        toml::from_str::<Lockfile>(text).unwrap().package
    }

    #[test]
    fn new_dependencies_are_those_only_the_skill_reaches() {
        let packages = lock(
            r#"
            version = 4
            [[package]]
            name = "host"
            version = "0.1.0"
            dependencies = ["serde", "chat-skill"]
            [[package]]
            name = "chat-skill"
            version = "0.1.0"
            dependencies = ["serde", "reqwest 0.12.1", "host-api"]
            [[package]]
            name = "host-api"
            version = "0.1.0"
            [[package]]
            name = "serde"
            version = "1.0.0"
            source = "registry+https://github.com/rust-lang/crates.io-index"
            [[package]]
            name = "reqwest"
            version = "0.12.1"
            source = "registry+https://github.com/rust-lang/crates.io-index"
            dependencies = ["url"]
            [[package]]
            name = "reqwest"
            version = "0.11.0"
            source = "registry+https://github.com/rust-lang/crates.io-index"
            dependencies = ["old-thing"]
            [[package]]
            name = "url"
            version = "2.5.0"
            source = "registry+https://github.com/rust-lang/crates.io-index"
            [[package]]
            name = "old-thing"
            version = "1.0.0"
            "#,
        );
        // The host links the skill already (an applied fork): what it uses
        // through the skill is still the skill's.
        let new = new_in_lock(&packages, "chat-skill", &["host".to_owned()]);
        assert_eq!(
            new,
            NewDependencies::Known(vec![
                ("host-api".into(), "0.1.0".into()),
                ("reqwest".into(), "0.12.1".into()),
                ("url".into(), "2.5.0".into()),
            ])
        );
        assert!(matches!(
            new_in_lock(&packages, "nope", &[]),
            NewDependencies::Unknown(why) if why.contains("nope is not in Cargo.lock")
        ));
        assert_eq!(line_count(b""), 0);
        assert_eq!(line_count(b"a\nb"), 2);
        assert_eq!(line_count(b"a\nb\n"), 2);
    }
}
