//! Which files of a skill the scan reads, and reading them: what links into
//! the owner's binary or runs when it builds.
//!
//! Every `.rs` file in the skill's folder, at any depth (`src/`, `files/`,
//! a build script's `mod` siblings, `#[path]` targets, path dependencies
//! kept inside the folder), plus the build script and the library's
//! `[lib] path` when they lie elsewhere. Not `tests/` nor `host.rs` at the
//! folder's top: the tests and the test-only host binary never link into
//! what the owner runs. Symlinks are not followed: one is a finding of its
//! own.

use std::collections::BTreeSet;
use std::path::Path;

use super::cargo::skill_cargo;
use super::scan::{Context, Declared, scan_file_in};
use super::{Finding, Kind};
use crate::SkillError;

/// The entries at the top of the skill's folder that are not scanned.
const NOT_SCANNED: &[&str] = &["tests", "host.rs"];

/// The largest source file the scan parses: `syn` recurses as deep as the
/// code nests, and a huge file is the easy way to nest deep enough to
/// overflow the stack.
const MAX_SOURCE_BYTES: u64 = 1024 * 1024;

/// Scans the skill in `declared.skill_dir` (relative to `root`).
pub(crate) fn scan_skill(root: &Path, declared: Declared<'_>) -> Result<Vec<Finding>, SkillError> {
    let dir = declared.skill_dir;
    let mut files = Vec::new();
    let mut findings = Vec::new();
    if root.join(dir).is_dir() {
        list_rs(root, dir, true, &mut files, &mut findings)?;
    }
    let cargo = skill_cargo(root, dir)?;
    for extra in cargo.extra {
        let path = root.join(&extra);
        match std::fs::symlink_metadata(&path) {
            // Listed already when it lies in the skill's folder.
            Ok(meta) if meta.file_type().is_symlink() && !findings.contains(&symlink(&extra)) => {
                findings.push(symlink(&extra));
            }
            Ok(meta) if meta.is_file() && !files.contains(&extra) => files.push(extra),
            _ => {}
        }
    }
    let context = Context {
        renames: cargo.renames,
        scanned: files.iter().cloned().collect::<BTreeSet<_>>(),
        root: Some(root.to_path_buf()),
    };
    for file in &files {
        let ast = parse(root, file)?;
        findings.extend(scan_file_in(declared, &context, file, &ast));
    }
    Ok(findings)
}

/// Reads and parses one source file, refusing one too large to parse
/// safely or that is not Rust.
fn parse(root: &Path, file: &str) -> Result<syn::File, SkillError> {
    let path = root.join(file);
    let size = std::fs::metadata(&path)
        .map_err(SkillError::io(&path))?
        .len();
    if size > MAX_SOURCE_BYTES {
        return Err(SkillError::Refused(format!(
            "{file}: cannot scan it, it is {size} bytes, over the {MAX_SOURCE_BYTES} a source file may have"
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(SkillError::io(&path))?;
    syn::parse_file(&text).map_err(|err| {
        let at = err.span().start();
        SkillError::Refused(format!(
            "{file}:{}:{}: cannot scan it, it does not parse as Rust: {err}",
            at.line,
            at.column + 1
        ))
    })
}

/// The `.rs` files under `folder` (relative to `root`), sorted; a symlink
/// is a finding instead. `top`: `folder` is the skill's own.
fn list_rs(
    root: &Path,
    folder: &str,
    top: bool,
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
        if top && NOT_SCANNED.contains(&name.as_str()) {
            continue;
        }
        let relative = format!("{folder}/{name}");
        let full = root.join(&relative);
        let meta = std::fs::symlink_metadata(&full).map_err(SkillError::io(&full))?;
        if meta.file_type().is_symlink() {
            if name.ends_with(".rs") || full.is_dir() {
                findings.push(symlink(&relative));
            }
        } else if meta.is_dir() {
            list_rs(root, &relative, false, files, findings)?;
        } else if meta.is_file() && name.ends_with(".rs") {
            files.push(relative);
        }
    }
    Ok(())
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
