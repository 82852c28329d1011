//! `skills` and `show-skill`: what there is, and what one skill would touch.

use super::{Engine, SkillListing};
use crate::SkillError;
use crate::env_example::ENV_EXAMPLE;
use crate::manifest::{SkillManifest, walk_without_symlinks};
use crate::state::State;

impl Engine {
    /// The skills in `skills/`, and which are applied.
    pub fn list(&self) -> Result<Vec<SkillListing>, SkillError> {
        let state = State::load(&self.root)?;
        let mut listings = Vec::new();
        let dir = self.root.join("skills");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(listings);
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("skill.toml").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let manifest = SkillManifest::load(&self.root, &name)?;
            listings.push(SkillListing {
                applied: state.get(&name).map(|s| s.version.clone()),
                name,
                version: manifest.version,
                description: manifest.description,
            });
        }
        Ok(listings)
    }

    /// The SKILL.md and what the skill would touch.
    pub fn show(&self, name: &str) -> Result<String, SkillError> {
        let manifest = SkillManifest::load(&self.root, name)?;
        let skill_md = self.root.join("skills").join(name).join("SKILL.md");
        walk_without_symlinks(&self.root, &format!("skills/{name}/SKILL.md")).map_err(
            |message| SkillError::Manifest {
                path: skill_md.clone(),
                message,
            },
        )?;
        let mut text = std::fs::read_to_string(&skill_md).map_err(SkillError::io(&skill_md))?;
        let against = if manifest.base.is_empty() {
            String::new()
        } else {
            format!(" (written against {})", manifest.base)
        };
        text.push_str(&format!(
            "\n---\n{} {}{against}\n",
            manifest.name, manifest.version
        ));
        text.push_str(&touches(&manifest));
        if let Some(package) = self.package(name)? {
            for line in package.describe() {
                text.push_str(&line);
                text.push('\n');
            }
        }
        Ok(text)
    }
}

/// One line per thing the skill touches, as `show` lists them.
fn touches(manifest: &SkillManifest) -> String {
    let mut text = String::new();
    for file in &manifest.adds {
        text.push_str(&format!("  adds      {file}\n"));
    }
    for file in &manifest.modifies {
        text.push_str(&format!("  modifies  {file}\n"));
    }
    for edit in &manifest.crates {
        for dependency in edit.dependencies.keys() {
            text.push_str(&format!("  crate     {dependency} in {}\n", edit.manifest));
        }
        for member in &edit.members {
            text.push_str(&format!("  member    {member} in {}\n", edit.manifest));
        }
    }
    for entry in &manifest.register {
        text.push_str(&format!("  register  {} in {}\n", entry.line, entry.file));
    }
    if !manifest.env.is_empty() {
        text.push_str(&format!(
            "  env       {} (into {ENV_EXAMPLE})\n",
            manifest.env.join(" ")
        ));
    }
    if let Some(test) = &manifest.test {
        text.push_str(&format!("  test      {test}\n"));
    }
    text
}
