//! Which files of a skill the scan reads, and reading them: what links into
//! the owner's binary or runs when it builds.
//!
//! Every `.rs` file under `src/` (and under `files/`, the code a skill that
//! carries files merges into the owner's tree), the library's `[lib] path`
//! when it lies elsewhere, and the build script (`build.rs`, or the
//! `Cargo.toml`'s `package.build`). Not `tests/` nor `host.rs`: the tests
//! and the test-only host binary never link into what the owner runs.
//! Symlinks are not followed: one is a finding of its own.

use std::path::Path;

use super::scan::{Declared, scan_file};
use super::{Finding, Kind};
use crate::SkillError;

/// The folders under the skill's folder whose `.rs` files are scanned.
const SOURCE_DIRS: &[&str] = &["src", "files"];

/// Scans the skill in `declared.skill_dir` (relative to `root`).
pub(crate) fn scan_skill(root: &Path, declared: Declared<'_>) -> Result<Vec<Finding>, SkillError> {
    let dir = declared.skill_dir;
    let mut files = Vec::new();
    let mut findings = Vec::new();
    for sub in SOURCE_DIRS {
        let folder = format!("{dir}/{sub}");
        if root.join(&folder).is_dir() {
            list_rs(root, &folder, &mut files, &mut findings)?;
        }
    }
    for extra in extra_files(root, dir)? {
        let path = root.join(&extra);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => findings.push(symlink(&extra)),
            Ok(meta) if meta.is_file() && !files.contains(&extra) => files.push(extra),
            _ => {}
        }
    }
    for file in &files {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path).map_err(SkillError::io(&path))?;
        let ast = syn::parse_file(&text).map_err(|err| {
            let at = err.span().start();
            SkillError::Refused(format!(
                "{file}:{}:{}: cannot scan it, it does not parse as Rust: {err}",
                at.line,
                at.column + 1
            ))
        })?;
        findings.extend(scan_file(declared, file, &ast));
    }
    Ok(findings)
}

/// The `.rs` files under `folder` (relative to `root`), sorted; a symlink
/// is a finding instead.
fn list_rs(
    root: &Path,
    folder: &str,
    files: &mut Vec<String>,
    findings: &mut Vec<Finding>,
) -> Result<(), SkillError> {
    let path = root.join(folder);
    let mut entries: Vec<String> = std::fs::read_dir(&path)
        .map_err(SkillError::io(&path))?
        .map(|entry| {
            entry
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .map_err(SkillError::io(&path))
        })
        .collect::<Result<_, _>>()?;
    entries.sort();
    for name in entries {
        let relative = format!("{folder}/{name}");
        let full = root.join(&relative);
        let meta = std::fs::symlink_metadata(&full).map_err(SkillError::io(&full))?;
        if meta.file_type().is_symlink() {
            if name.ends_with(".rs") || full.is_dir() {
                findings.push(symlink(&relative));
            }
        } else if meta.is_dir() {
            list_rs(root, &relative, files, findings)?;
        } else if meta.is_file() && name.ends_with(".rs") {
            files.push(relative);
        }
    }
    Ok(())
}

/// The build script and the library's root, from the skill's `Cargo.toml`
/// (`build.rs` when it names none), relative to the root.
fn extra_files(root: &Path, dir: &str) -> Result<Vec<String>, SkillError> {
    let manifest = root.join(dir).join("Cargo.toml");
    let table: toml::Table = match std::fs::read_to_string(&manifest) {
        Ok(text) => toml::from_str(&text).map_err(|err| SkillError::Manifest {
            path: manifest.clone(),
            message: err.to_string().trim().to_owned(),
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(err) => return Err(SkillError::io(&manifest)(err)),
    };
    let package = table.get("package");
    let build = match package.and_then(|p| p.get("build")) {
        Some(toml::Value::String(script)) => Some(script.clone()),
        Some(toml::Value::Boolean(false)) => None,
        _ => Some("build.rs".to_owned()),
    };
    let lib = table
        .get("lib")
        .and_then(|lib| lib.get("path"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned);
    Ok(build
        .into_iter()
        .chain(lib)
        .map(|file| format!("{dir}/{}", file.trim_start_matches("./")))
        .collect())
}

/// `path` (as `include!` takes it) from the folder `dir`, both relative to
/// the root, `..` resolved; `None` when it is absolute or leaves the root.
pub(super) fn resolve_relative(dir: &str, path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// A symlink where source files are: not followed, so not scanned.
fn symlink(relative: &str) -> Finding {
    Finding {
        kind: Kind::Include,
        file: relative.to_owned(),
        line: 0,
        what: "a symlink, not followed: its target is not scanned".to_owned(),
        declared: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_inside_the_root_or_not_at_all() {
        let resolve = |path| resolve_relative("skills/x/src", path);
        assert_eq!(
            resolve("../data/a.txt").as_deref(),
            Some("skills/x/data/a.txt")
        );
        assert_eq!(resolve("./b.rs").as_deref(), Some("skills/x/src/b.rs"));
        assert_eq!(resolve("../../../.ssh/id").as_deref(), Some(".ssh/id"));
        assert_eq!(resolve("../../../../etc/passwd"), None);
        assert_eq!(resolve("/etc/passwd"), None);
    }
}
