//! New dependencies that run code when the owner builds: a build script or
//! a proc macro runs with the owner's rights at `cargo build`, before any
//! test, so each one a skill brings is a finding of its own.
//!
//! The new dependencies are those `Cargo.lock` says the skill brings (the
//! engine's `package` listing); whether one has build-time code comes from
//! `cargo metadata` (its targets of kind `custom-build` or `proc-macro`),
//! run once at the root, offline first. When it cannot run, that is a
//! finding too: never a silent skip.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use super::declared::Capabilities;
use super::{Finding, Kind};

/// Where build-time findings point: the lock file says what is new.
const LOCKFILE: &str = "Cargo.lock";

/// The part of `cargo metadata`'s output read here.
#[derive(Debug, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
struct Package {
    name: String,
    version: String,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    kind: Vec<String>,
}

/// The build-time findings for `new` (name, version) dependencies, or the
/// reason they are unknown (`Err`: a finding saying they were not checked).
pub(crate) fn build_time(
    root: &Path,
    new: Result<&[(String, String)], String>,
    capabilities: &Capabilities,
) -> Vec<Finding> {
    let unchecked = |why: String| Finding {
        kind: Kind::BuildTime,
        file: LOCKFILE.to_owned(),
        line: 0,
        what: format!("could not check the new dependencies' build scripts: {why}"),
        declared: false,
    };
    let new = match new {
        Ok([]) => return Vec::new(),
        Ok(new) => new,
        Err(why) => return vec![unchecked(why)],
    };
    let metadata = match metadata(root) {
        Ok(metadata) => metadata,
        Err(why) => return vec![unchecked(why)],
    };
    let mut findings = Vec::new();
    for (name, version) in new {
        let package = metadata
            .packages
            .iter()
            .find(|p| &p.name == name && &p.version == version);
        let kinds = package
            .iter()
            .flat_map(|p| &p.targets)
            .flat_map(|t| &t.kind);
        let mut what: Vec<&str> = kinds
            .filter_map(|kind| match kind.as_str() {
                "custom-build" => Some("build script"),
                "proc-macro" => Some("proc macro"),
                _ => None,
            })
            .collect();
        what.dedup();
        for what in what {
            findings.push(Finding {
                kind: Kind::BuildTime,
                file: LOCKFILE.to_owned(),
                line: 0,
                what: format!("{name} ({what})"),
                declared: capabilities.build.contains(name),
            });
        }
    }
    findings
}

/// `cargo metadata` at `root`, offline first; `--locked` so that it never
/// rewrites the owner's lock file.
fn metadata(root: &Path) -> Result<Metadata, String> {
    // Under cargo (the xtask, the tests) `CARGO` names the toolchain's own.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let base = ["metadata", "--format-version", "1", "--locked"];
    let mut last = String::new();
    for offline in [true, false] {
        let mut command = Command::new(&cargo);
        command.args(base).current_dir(root);
        if offline {
            command.arg("--offline");
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(err) => return Err(format!("cannot run cargo metadata: {err}")),
        };
        if output.status.success() {
            return serde_json::from_slice(&output.stdout)
                .map_err(|err| format!("cargo metadata printed what is not its JSON: {err}"));
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Cargo's first error line says what; the last one may be a hint.
        let why = stderr
            .lines()
            .find(|line| line.starts_with("error"))
            .or_else(|| stderr.trim().lines().last())
            .unwrap_or_default();
        last = format!("cargo metadata failed ({}): {why}", output.status);
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_new_needs_no_cargo_and_unknown_is_a_finding() {
        let caps = Capabilities::default();
        let root = Path::new("/nonexistent");
        assert!(build_time(root, Ok(&[]), &caps).is_empty());
        let found = build_time(root, Err("no lock".into()), &caps);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].what,
            "could not check the new dependencies' build scripts: no lock"
        );
        assert!(!found[0].declared && found[0].kind == Kind::BuildTime);
        let new = [("x".to_owned(), "1.0.0".to_owned())];
        let found = build_time(root, Ok(&new), &caps);
        assert!(
            found.len() == 1 && found[0].what.starts_with("could not check"),
            "{found:?}"
        );
    }
}
