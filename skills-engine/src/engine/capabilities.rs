//! `Engine::capabilities`: a skill's declared capabilities next to what its
//! code and its new dependencies were found to use (see `crate::capabilities`).
//! Reads only: nothing is written, no branch is touched.

use super::Engine;
use super::package::NewDependencies;
use crate::SkillError;
use crate::capabilities::build_time::build_time;
use crate::capabilities::scan::Declared;
use crate::capabilities::sources::scan_skill;
use crate::capabilities::{CapabilityReport, Finding, Kind};
use crate::manifest::SkillManifest;

impl Engine {
    /// What the skill `name` declares and what was found: its source (what
    /// links into the owner's binary and its build script) and, for a skill
    /// that is a Cargo package, its new dependencies' build-time code.
    pub fn capabilities(&self, name: &str) -> Result<CapabilityReport, SkillError> {
        let manifest = SkillManifest::load(&self.root, name)?;
        let skill_dir = format!("skills/{name}");
        let declared = Declared {
            capabilities: &manifest.capabilities,
            manifest_env: &manifest.env,
            skill_dir: &skill_dir,
        };
        let mut findings = scan_skill(&self.root, declared)?;
        let package = self.package(name)?;
        let new = match package.as_ref().map(|p| &p.new_dependencies) {
            None => Ok(&[][..]),
            Some(NewDependencies::Known(new)) => Ok(new.as_slice()),
            Some(NewDependencies::Unknown(why)) => Err(why.clone()),
        };
        findings.extend(build_time(&self.root, new, &manifest.capabilities));
        let text = std::fs::read_to_string(self.root.join(&skill_dir).join("skill.toml"))
            .unwrap_or_default();
        findings.extend(test_command(&manifest, &skill_dir, &text));
        findings.extend(link_entries(&manifest, &skill_dir, &text));
        Ok(CapabilityReport::new(
            &manifest.name,
            &manifest.version,
            manifest.capabilities.clone(),
            findings,
        ))
    }
}

/// The line of `skill.toml` where `key` is set (0: not found), for the
/// findings about the manifest itself.
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| line.trim_start().starts_with(key))
        .map_or(0, |index| index + 1)
}

/// The skill's `test`, which `apply-skill` runs with `sh -c` on the
/// owner's machine before the review: plain `cargo build`/`cargo test` of
/// packages is what every skill needs; anything else is a process of its
/// own, declared only by `processes` naming `sh` (or "any").
fn test_command(manifest: &SkillManifest, skill_dir: &str, text: &str) -> Option<Finding> {
    let test = manifest.test.as_deref()?.trim();
    if test.is_empty() || plain_cargo(test) {
        return None;
    }
    let processes = &manifest.capabilities.processes;
    Some(Finding {
        kind: Kind::Process,
        file: format!("{skill_dir}/skill.toml"),
        line: line_of(text, "test"),
        what: format!("test: {test}"),
        declared: processes.iter().any(|p| p == "sh" || p == "any"),
    })
}

/// `cargo build|test (-p|--package) NAME…`, joined by `&&`, and nothing
/// else: no other program, no shell syntax.
fn plain_cargo(command: &str) -> bool {
    command.split("&&").all(|part| {
        let words: Vec<&str> = part.split_whitespace().collect();
        match words.as_slice() {
            ["cargo", "build" | "test", rest @ ..] => rest.chunks(2).all(|pair| match pair {
                ["-p" | "--package", name] => name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                _ => false,
            }),
            _ => false,
        }
    })
}

/// What its `[[crate]]` entries add to the owner's manifests besides its own
/// crate: another dependency (code in the owner's build from the moment it
/// is applied) or a workspace member outside its folder. Declared only by
/// `build` naming the dependency.
fn link_entries(manifest: &SkillManifest, skill_dir: &str, text: &str) -> Vec<Finding> {
    let line = line_of(text, "[[crate]]");
    let file = format!("{skill_dir}/skill.toml");
    let mut findings = Vec::new();
    for edit in &manifest.crates {
        for (name, spec) in &edit.dependencies {
            let own = spec
                .get("path")
                .and_then(|p| p.as_str())
                .is_some_and(|path| path.trim_end_matches('/').ends_with(skill_dir));
            if !own {
                findings.push(Finding {
                    kind: Kind::BuildTime,
                    file: file.clone(),
                    line,
                    what: format!("adds dependency {name} to {}", edit.manifest),
                    declared: manifest.capabilities.build.contains(name),
                });
            }
        }
        for member in &edit.members {
            if !member.starts_with(skill_dir) {
                findings.push(Finding {
                    kind: Kind::BuildTime,
                    file: file.clone(),
                    line,
                    what: format!("adds workspace member {member} to {}", edit.manifest),
                    declared: false,
                });
            }
        }
    }
    findings
}
