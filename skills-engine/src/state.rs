//! `.pincer/skills.toml`: which skills are applied on this branch, and the
//! blob id of every file each left behind (so that removing a skill can tell
//! whether the owner changed a file since).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SkillError;

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
}

/// The applied skills.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// In the order they were applied.
    #[serde(default)]
    pub applied: Vec<AppliedSkill>,
}

impl State {
    /// Reads the state of the working tree at `root` (none: nothing applied).
    pub fn load(root: &Path) -> Result<Self, SkillError> {
        let path = root.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|err| SkillError::Manifest {
                path,
                message: err.to_string(),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(SkillError::Io { path, source: err }),
        }
    }

    /// Writes it (sorted by name, so the order skills were applied in does
    /// not change the file).
    pub fn save(&self, root: &Path) -> Result<(), SkillError> {
        let mut sorted = self.clone();
        sorted.applied.sort_by(|a, b| a.name.cmp(&b.name));
        let path = root.join(STATE_FILE);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(SkillError::io(parent))?;
        }
        let text =
            toml::to_string_pretty(&sorted).map_err(|err| SkillError::Refused(err.to_string()))?;
        std::fs::write(
            &path,
            format!("# Written by `cargo xtask apply-skill`; do not edit by hand.\n{text}"),
        )
        .map_err(SkillError::io(&path))
    }

    /// The applied skill of that name.
    pub fn get(&self, name: &str) -> Option<&AppliedSkill> {
        self.applied.iter().find(|s| s.name == name)
    }
}
