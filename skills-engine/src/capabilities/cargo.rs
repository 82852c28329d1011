//! What the skill's own `Cargo.toml` tells the scan: its build script and
//! library root (scanned even when they lie outside its folder), and its
//! dependency renames (`net = { package = "reqwest" }` makes `net::…`
//! mean `reqwest::…` in every file of the skill).

use std::collections::BTreeMap;
use std::path::Path;

use crate::SkillError;

/// The tables that list dependencies (at the top or under `target.*`).
const DEPENDENCY_TABLES: &[&str] = &["dependencies", "build-dependencies", "dev-dependencies"];

/// The parts of the skill's `Cargo.toml` the scan uses.
#[derive(Debug, Default)]
pub(super) struct SkillCargo {
    /// The build script and the library's root, relative to the root.
    pub(super) extra: Vec<String>,
    /// Dependency name (as code writes it) → the crate it is.
    pub(super) renames: BTreeMap<String, String>,
}

/// Reads `dir/Cargo.toml` (relative to `root`); a missing one is empty.
pub(super) fn skill_cargo(root: &Path, dir: &str) -> Result<SkillCargo, SkillError> {
    let manifest = root.join(dir).join("Cargo.toml");
    let table: toml::Table = match std::fs::read_to_string(&manifest) {
        Ok(text) => toml::from_str(&text).map_err(|err| SkillError::Manifest {
            path: manifest.clone(),
            message: err.to_string().trim().to_owned(),
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(err) => return Err(SkillError::io(&manifest)(err)),
    };
    Ok(SkillCargo {
        extra: extra_files(&table, dir),
        renames: renames(&table),
    })
}

/// The build script (`build.rs` when the manifest names none) and the
/// library's `[lib] path`.
fn extra_files(table: &toml::Table, dir: &str) -> Vec<String> {
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
    build
        .into_iter()
        .chain(lib)
        .map(|file| format!("{dir}/{}", file.trim_start_matches("./")))
        .collect()
}

/// The renamed dependencies, in code's spelling (`-` as `_`).
fn renames(table: &toml::Table) -> BTreeMap<String, String> {
    let targets = table
        .get("target")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|targets| targets.values().filter_map(toml::Value::as_table));
    let code = |name: &str| name.replace('-', "_");
    std::iter::once(table)
        .chain(targets)
        .flat_map(|t| DEPENDENCY_TABLES.iter().filter_map(|name| t.get(*name)))
        .filter_map(toml::Value::as_table)
        .flatten()
        .filter_map(|(name, spec)| {
            let package = spec.get("package")?.as_str()?;
            Some((code(name), code(package)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_dependencies_are_aliases() {
        let table: toml::Table = toml::from_str(
            "[dependencies]\nnet = { package = \"reqwest\", version = \"0.12\" }\nserde = \"1\"\n\
             [target.'cfg(unix)'.dependencies]\nsh-run = { package = \"duct\" }\n",
        )
        .unwrap();
        let found = renames(&table);
        assert_eq!(found.get("net").map(String::as_str), Some("reqwest"));
        assert_eq!(found.get("sh_run").map(String::as_str), Some("duct"));
        assert_eq!(found.len(), 2);
    }
}
