//! Structural `Cargo.toml` edits (`[[crate]]` in skill.toml): dependencies
//! and workspace members go in and come out, the owner's comments and order
//! kept. An entry two skills add is recorded by both, and goes with the last
//! of them.

use crate::manifest::CrateEdit;
use crate::state::CargoAdded;

/// A kind of `Cargo.toml` entry a skill adds.
#[derive(Clone, Copy)]
enum Entry {
    Dependency,
    Member,
}

/// Whether one of `records` lists `entry` (of that kind) for `manifest`.
fn recorded(records: &[&CargoAdded], manifest: &str, kind: Entry, entry: &str) -> bool {
    records.iter().any(|r| {
        r.manifest == manifest
            && match kind {
                Entry::Dependency => &r.dependencies,
                Entry::Member => &r.members,
            }
            .iter()
            .any(|e| e == entry)
    })
}

/// What an apply records of one edit. An entry that was there already is
/// the owner's, and stays when the skill goes, unless a skill added it
/// (another applied one, or an earlier entry of this one, in `by_skills`):
/// then each of them records it, and the last of them to be removed takes it
/// out. So the record does not depend on the order skills were applied in.
pub(super) fn record_added(
    edit: &CrateEdit,
    inserted: &CargoAdded,
    by_skills: &[&CargoAdded],
) -> CargoAdded {
    CargoAdded {
        manifest: edit.manifest.clone(),
        dependencies: edit
            .dependencies
            .keys()
            .filter(|d| {
                inserted.dependencies.contains(d)
                    || recorded(by_skills, &edit.manifest, Entry::Dependency, d)
            })
            .cloned()
            .collect(),
        members: edit
            .members
            .iter()
            .filter(|m| {
                inserted.members.contains(m)
                    || recorded(by_skills, &edit.manifest, Entry::Member, m)
            })
            .cloned()
            .collect(),
    }
}

/// What removing a skill takes out of one manifest: what its apply added,
/// less what another applied skill (in `by_others`) added too.
pub(super) fn to_take_out(record: &CargoAdded, by_others: &[&CargoAdded]) -> CargoAdded {
    CargoAdded {
        manifest: record.manifest.clone(),
        dependencies: record
            .dependencies
            .iter()
            .filter(|d| !recorded(by_others, &record.manifest, Entry::Dependency, d))
            .cloned()
            .collect(),
        members: record
            .members
            .iter()
            .filter(|m| !recorded(by_others, &record.manifest, Entry::Member, m))
            .cloned()
            .collect(),
    }
}

/// Adds a skill's entries to one `Cargo.toml`, keeping the rest of the file
/// as it is; returns the text and the entries that were not there before (an
/// identical entry there already is left alone; a different one is an error).
pub(crate) fn add_to_manifest(
    text: &str,
    edit: &CrateEdit,
) -> Result<(String, CargoAdded), String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err: toml_edit::TomlError| err.to_string())?;
    let mut inserted = CargoAdded {
        manifest: edit.manifest.clone(),
        ..CargoAdded::default()
    };
    if !edit.dependencies.is_empty() {
        add_dependencies(&mut doc, edit, &mut inserted)?;
    }
    if !edit.members.is_empty() {
        let members = doc
            .get_mut("workspace")
            .and_then(|w| w.get_mut("members"))
            .and_then(|m| m.as_array_mut())
            .ok_or("there is no [workspace] members array to edit")?;
        for member in &edit.members {
            if !members.iter().any(|m| m.as_str() == Some(member.as_str())) {
                members.push(member.as_str());
                inserted.members.push(member.clone());
            }
        }
    }
    Ok((doc.to_string(), inserted))
}

/// The `[dependencies]` part of `add_to_manifest`.
fn add_dependencies(
    doc: &mut toml_edit::DocumentMut,
    edit: &CrateEdit,
    inserted: &mut CargoAdded,
) -> Result<(), String> {
    if doc.get("dependencies").is_none() {
        doc["dependencies"] = toml_edit::table();
    }
    let table = doc
        .get_mut("dependencies")
        .and_then(|d| d.as_table_like_mut())
        .ok_or("[dependencies] is not a table")?;
    // A sorted table stays sorted, so that two skills give the same
    // file whichever is applied first; an unsorted one keeps its order.
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    let was_sorted = keys.windows(2).all(|w| w[0] <= w[1]);
    for (name, value) in &edit.dependencies {
        let wanted = to_edit_value(value);
        match table.get(name) {
            Some(existing) if existing.to_string().trim() != wanted.to_string().trim() => {
                return Err(format!(
                    "[dependencies] {name} is {} already; the skill wants {wanted}",
                    existing.to_string().trim(),
                ));
            }
            Some(_) => {}
            None => {
                table.insert(name, toml_edit::Item::Value(wanted));
                inserted.dependencies.push(name.clone());
            }
        }
    }
    if was_sorted {
        table.sort_values();
    }
    Ok(())
}

/// Takes entries out of one `Cargo.toml`, keeping the rest of the file as it
/// is (an entry that is not there any more is no error).
pub(crate) fn remove_from_manifest(
    text: &str,
    dependencies: &[String],
    members: &[String],
) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|err: toml_edit::TomlError| err.to_string())?;
    if let Some(table) = doc
        .get_mut("dependencies")
        .and_then(|d| d.as_table_like_mut())
    {
        for name in dependencies {
            table.remove(name);
        }
    }
    if let Some(list) = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(|m| m.as_array_mut())
    {
        list.retain(|m| !members.iter().any(|gone| m.as_str() == Some(gone.as_str())));
    }
    Ok(doc.to_string())
}

pub(super) fn to_edit_value(value: &toml::Value) -> toml_edit::Value {
    match value {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items {
                array.push(to_edit_value(item));
            }
            toml_edit::Value::Array(array)
        }
        toml::Value::Table(table) => {
            let mut inline = toml_edit::InlineTable::new();
            for (key, item) in table {
                inline.insert(key, to_edit_value(item));
            }
            toml_edit::Value::InlineTable(inline)
        }
    }
}
