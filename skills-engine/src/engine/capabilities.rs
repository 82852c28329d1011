//! `Engine::capabilities`: a skill's declared capabilities next to what its
//! code and its new dependencies were found to use (see `crate::capabilities`).
//! Reads only: nothing is written, no branch is touched.

use super::Engine;
use super::package::NewDependencies;
use crate::SkillError;
use crate::capabilities::CapabilityReport;
use crate::capabilities::build_time::build_time;
use crate::capabilities::scan::Declared;
use crate::capabilities::sources::scan_skill;
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
        Ok(CapabilityReport::new(
            &manifest.name,
            &manifest.version,
            manifest.capabilities.clone(),
            findings,
        ))
    }
}
