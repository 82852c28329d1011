//! `.pincer/skills.toml`: which skills are applied on this branch, the
//! blob id of every file each left behind (so that removing a skill can tell
//! whether the owner changed a file since), the `Cargo.toml` entries each
//! added, the lines it registered and the variables of its block in
//! `.env.example` (so that removing it takes out those and no others).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SkillError;
use crate::manifest::{RegisterLine, walk_without_symlinks};

/// The state file, relative to the repository's root.
pub const STATE_FILE: &str = ".pincer/skills.toml";

/// One applied skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedSkill {
    /// Its name.
    pub name: String,
    /// Its version when applied.
    pub version: String,
    /// Path → blob id: of an added file as the apply left it, of a modified
    /// file as the skill has it.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// The `Cargo.toml` entries that were not there before the apply (or
    /// that another applied skill had added): what removing it takes out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cargo: Vec<CargoAdded>,
    /// The lines it put into registry blocks (its `register`): what
    /// removing it takes out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub register: Vec<RegisterLine>,
    /// The variables of its block in `.env.example` (its `env`): the lines
    /// `NAME=` removing it takes out, with the block's first line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

/// What applying a skill added to one `Cargo.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CargoAdded {
    /// The manifest, relative to the repository's root.
    pub manifest: String,
    /// Names in `[dependencies]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Entries of `[workspace] members`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

impl CargoAdded {
    /// Nothing added.
    pub fn is_empty(&self) -> bool {
        self.dependencies.is_empty() && self.members.is_empty()
    }
}

/// The format of the state file this engine writes. Every engine reads
/// every older one: 1 (no `format` key) had only `name`, `version` and
/// `files` per skill, or also `cargo`, `register` and `env`; all default.
pub const STATE_FORMAT: u32 = 2;

/// The applied skills.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The file's format (1 when the file has none).
    #[serde(default = "format_one")]
    pub format: u32,
    /// In the order they were applied.
    #[serde(default)]
    pub applied: Vec<AppliedSkill>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            format: STATE_FORMAT,
            applied: Vec::new(),
        }
    }
}

/// What a file without a `format` is.
fn format_one() -> u32 {
    1
}

/// Just the format, read first: a newer file may hold fields this engine
/// does not know, and "written by a newer engine" is the useful error.
#[derive(Deserialize)]
struct Format {
    #[serde(default = "format_one")]
    format: u32,
}

impl State {
    /// Reads the state of the working tree at `root` (none: nothing applied).
    pub fn load(root: &Path) -> Result<Self, SkillError> {
        let path = root.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(err) => return Err(SkillError::Io { path, source: err }),
        };
        Self::parse(&text).map_err(|message| SkillError::Manifest { path, message })
    }

    /// Reads a state file's text, of this format or an older one.
    pub fn parse(text: &str) -> Result<Self, String> {
        let format: Format = toml::from_str(text).map_err(|err| err.to_string())?;
        if format.format > STATE_FORMAT {
            return Err(format!(
                "written by a newer skills engine (format {}; this one reads up to \
                 {STATE_FORMAT}): update this fork's engine first (`cargo xtask update`)",
                format.format
            ));
        }
        let mut state: Self = toml::from_str(text).map_err(|err| err.to_string())?;
        // An older engine's `--continue` after a failed test recorded a
        // skill twice: the later record is the one it finished with.
        let mut seen = std::collections::BTreeSet::new();
        let mut unique: Vec<AppliedSkill> = Vec::new();
        for skill in state.applied.into_iter().rev() {
            if seen.insert(skill.name.clone()) {
                unique.push(skill);
            }
        }
        unique.reverse();
        state.applied = unique;
        Ok(state)
    }

    /// The file's text (sorted by name, so the order skills were applied in
    /// does not change it).
    pub fn render(&self) -> Result<String, SkillError> {
        let mut sorted = self.clone();
        sorted.format = STATE_FORMAT;
        sorted.applied.sort_by(|a, b| a.name.cmp(&b.name));
        let text = toml::to_string_pretty(&sorted)
            .map_err(|err| SkillError::Refused(format!("could not write {STATE_FILE}: {err}")))?;
        Ok(format!(
            "# Written by `cargo xtask apply-skill`; do not edit by hand.\n{text}"
        ))
    }

    /// Writes it; never through a symlink.
    pub fn save(&self, root: &Path) -> Result<(), SkillError> {
        let path = root.join(STATE_FILE);
        walk_without_symlinks(root, STATE_FILE)
            .map_err(|why| SkillError::Refused(format!("{STATE_FILE}: {why}")))?;
        let text = self.render()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(SkillError::io(parent))?;
        }
        std::fs::write(&path, text).map_err(SkillError::io(&path))
    }

    /// Records `skill` as applied, in place of an earlier record of the same
    /// name (so finishing an apply twice, after a failed test, records it once).
    pub fn record(&mut self, skill: AppliedSkill) {
        match self.applied.iter_mut().find(|s| s.name == skill.name) {
            Some(earlier) => *earlier = skill,
            None => self.applied.push(skill),
        }
    }

    /// The applied skill of that name.
    pub fn get(&self, name: &str) -> Option<&AppliedSkill> {
        self.applied.iter().find(|s| s.name == name)
    }
}
