//! The paths `upstream-diff` never sends: the skill packages (`skills/`),
//! the engine's record (`.pincer/`), the files applied skills added, and
//! what the owner lists in `.pincer/local` as theirs alone.
//!
//! `.pincer/local` is a text file the owner commits: one entry per line,
//! blank lines and lines starting with `#` ignored, surrounding spaces
//! trimmed. An entry is a path from the root of the fork (a leading `/` or
//! `./` is dropped; unlike `.gitignore`, a bare name does not match at every
//! depth). It matches that path and everything under it; an entry ending in
//! `/` matches only what is under it (a folder). `*` stands for any run of
//! characters within one path segment (never a `/`), so `config/*.toml` or
//! `deploy-*/` work; there is no `**`, `?` or `[...]`. An entry matching
//! more rather than less is the safe side: what it wrongly keeps out is
//! only not sent, and `--list` shows what would be.
//!
//! The file is read from the working tree, like the engine's state, so an
//! entry added a moment ago counts before it is committed.

use std::collections::BTreeSet;
use std::path::Path;

use crate::SkillError;
use crate::manifest::SkillManifest;
use crate::state::State;

/// The owner's list of paths that are theirs alone.
pub(super) const LOCAL_FILE: &str = ".pincer/local";

/// Folders never sent, whatever the owner lists.
const NEVER_SENT: [&str; 2] = ["skills/", ".pincer/"];

/// One entry of `.pincer/local`, split into path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalEntry {
    segments: Vec<String>,
    /// Ended in `/`: matches only what is under it.
    folder: bool,
}

impl LocalEntry {
    fn parse(line: &str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let folder = line.ends_with('/');
        let path = line.trim_start_matches("./").trim_start_matches('/');
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (!segments.is_empty()).then_some(Self { segments, folder })
    }

    fn matches(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let long_enough = if self.folder {
            parts.len() > self.segments.len()
        } else {
            parts.len() >= self.segments.len()
        };
        long_enough
            && self
                .segments
                .iter()
                .zip(&parts)
                .all(|(pattern, part)| glob(pattern.as_bytes(), part.as_bytes()))
    }
}

/// Whether one path segment matches a pattern where `*` is any run of
/// characters.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((first, rest)) => name.first() == Some(first) && glob(rest, &name[1..]),
    }
}

/// What is kept out of every patch.
#[derive(Debug, Default)]
pub(super) struct Exclusions {
    skill_files: BTreeSet<String>,
    local: Vec<LocalEntry>,
}

impl Exclusions {
    /// The exclusions of the fork at `root`: its applied skills' added files
    /// (from `.pincer/skills.toml`) and its `.pincer/local`.
    pub(super) fn load(root: &Path) -> Result<Self, SkillError> {
        let state = State::load(root)?;
        let mut skill_files = BTreeSet::new();
        for applied in &state.applied {
            // A skill whose package is gone from skills/ added nothing we
            // can name; its files are then the owner's to list in
            // .pincer/local.
            if let Ok(manifest) = SkillManifest::load(root, &applied.name) {
                skill_files.extend(manifest.adds);
            }
        }
        let path = root.join(LOCAL_FILE);
        let local = match std::fs::read_to_string(&path) {
            Ok(text) => parse_local(&text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(SkillError::Io { path, source }),
        };
        Ok(Self { skill_files, local })
    }

    /// Whether `path` (relative to the root) is never sent.
    pub(super) fn excludes(&self, path: &str) -> bool {
        NEVER_SENT.iter().any(|folder| path.starts_with(folder))
            || self.skill_files.contains(path)
            || self.local.iter().any(|entry| entry.matches(path))
    }
}

fn parse_local(text: &str) -> Vec<LocalEntry> {
    text.lines().filter_map(LocalEntry::parse).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn local(text: &str) -> Exclusions {
        Exclusions {
            skill_files: BTreeSet::new(),
            local: parse_local(text),
        }
    }

    #[test]
    fn local_entries_are_paths_folders_and_globs() {
        let excl = local(
            "# mine\n\n  config/site.toml  \ndeploy/\n/notes.md\n./ops\nsecrets/*.key\nbuild-*/\n",
        );
        for kept_out in [
            "config/site.toml",
            "deploy/run.sh",
            "deploy/a/b",
            "notes.md",
            "ops",
            "ops/x",
            "secrets/prod.key",
            "secrets/.key",
            "build-arm/out",
            "skills/demo/src/lib.rs",
            ".pincer/skills.toml",
        ] {
            assert!(excl.excludes(kept_out), "{kept_out}");
        }
        for sent in [
            "config/site.toml.example",
            "config/other.toml",
            "deploy",
            "src/notes.md",
            "opsx",
            "secrets/prod.keys",
            "secrets/a/b.key",
            "build-arm",
            "core/src/a.rs",
            "# mine",
        ] {
            assert!(!excl.excludes(sent), "{sent}");
        }
    }

    #[test]
    fn glob_stars_stay_within_a_segment() {
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"aXbYc"));
        assert!(glob(b"**.rs", b"x.rs"));
        assert!(!glob(b"a*c", b"ab"));
        assert!(!glob(b"abc", b"ab"));
    }
}
