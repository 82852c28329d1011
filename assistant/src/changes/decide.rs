//! Accepting or rejecting a change set's entries, whole or by path.

use std::path::Path;

use pincer_core::staging::{self, Change};
use pincer_store::{AuditRecord, ChangeSet, Decision, Store};

use super::show::{diff, entry_line, no_such_set};
use super::{ChangesError, Said, manifest};
use crate::invoke::branch;

/// Accepts or rejects the waiting entries of set `id` at `paths` (a path
/// ending in `/`: everything below it; none: all waiting ones). An accept is refused whole, and
/// nothing applied, when an entry can never be applied or a real file
/// changed since the agent began.
pub fn decide(
    store: &Store,
    id: i64,
    paths: &[String],
    decision: Decision,
) -> Result<Said, ChangesError> {
    let Some(set) = store.change_set(id)? else {
        return Ok(Said::Usage(no_such_set(id)));
    };
    let chosen = match chosen(&set, paths) {
        Ok(chosen) => chosen,
        Err(message) => return Ok(Said::Usage(message)),
    };
    if chosen.is_empty() {
        return Ok(Said::Done(format!("change set {id} has nothing waiting")));
    }
    let real = Path::new(&set.real_path);
    if decision == Decision::Accepted
        && let Some(refusal) = accept(&set, &chosen, real)?
    {
        return Ok(Said::Refused(refusal));
    }
    let names: Vec<&str> = chosen.iter().map(|c| c.path.as_str()).collect();
    let now = store.decide_changes(id, &names, decision)?;
    let (verb, action) = match decision {
        Decision::Accepted => ("accepted", "accept_changes"),
        Decision::Rejected => ("rejected", "reject_changes"),
    };
    store.audit_or_log(AuditRecord {
        group: Some(&set.group),
        kind: "changes",
        action,
        target: Some(&set.real_path),
        allowed: Some(decision == Decision::Accepted),
        detail: Some(format!("change set {id}: {}", names.join(", "))),
        ..Default::default()
    });
    let mut said: Vec<String> = chosen
        .iter()
        .map(|c| format!("{verb} {}", c.path))
        .collect();
    let none_accepted = !now
        .entries
        .iter()
        .any(|e| e.decision == Some(Decision::Accepted));
    if decision == Decision::Rejected
        && none_accepted
        && !now.pending()
        && let Some((name, commit)) = &set.branch
    {
        // Rejected whole: the branch offered with it goes too, unless the
        // owner moved it (then it is theirs).
        said.push(match branch::drop_branch(real, name, commit) {
            Ok(()) => format!("removed the branch {name}"),
            Err(err) => format!("the branch {name} stays: {err}"),
        });
    }
    if now.pending() {
        let left = now.entries.iter().filter(|e| e.decision.is_none()).count();
        said.push(format!("change set {id}: {left} entries still wait"));
    } else {
        // Decided whole: the copy has served its purpose.
        said.push(match staging::discard(Path::new(&set.folder)) {
            Ok(()) => format!("change set {id} is decided"),
            Err(err) => format!("change set {id} is decided; its copy stays: {err}"),
        });
    }
    Ok(Said::Done(said.join("\n")))
}

/// The waiting entries at `paths` (all waiting ones when none is given): a
/// path names its own entry, and one ending in `/` everything below it (so
/// that `notes` never picks up an agent's `notes/evil`); a path that names
/// no waiting entry is an error.
fn chosen<'a>(set: &'a ChangeSet, paths: &[String]) -> Result<Vec<&'a Change>, String> {
    let waiting: Vec<&Change> = set
        .entries
        .iter()
        .filter(|e| e.decision.is_none())
        .map(|e| &e.change)
        .collect();
    if paths.is_empty() {
        return Ok(waiting);
    }
    let mut chosen: Vec<&Change> = Vec::new();
    for path in paths {
        let path = path.trim_start_matches("./");
        let matched: Vec<&Change> = waiting
            .iter()
            .filter(|c| match path.strip_suffix('/') {
                Some("") => true,
                Some(folder) => c.path.starts_with(&format!("{folder}/")),
                None => c.path == path,
            })
            .copied()
            .collect();
        if matched.is_empty() {
            return Err(format!(
                "change set {} has no waiting entry at {path} (`pincer changes show {}` lists them)",
                set.id, set.id
            ));
        }
        for change in matched {
            if !chosen.iter().any(|c| c.path == change.path) {
                chosen.push(change);
            }
        }
    }
    Ok(chosen)
}

/// Applies `chosen` when none is refused and none conflicts; else says why
/// (with both versions of each conflicting file), and nothing is applied.
fn accept(
    set: &ChangeSet,
    chosen: &[&Change],
    real: &Path,
) -> Result<Option<String>, ChangesError> {
    let refused: Vec<String> = chosen
        .iter()
        .filter_map(|c| {
            let reason = c.refused.as_deref()?;
            Some(format!("cannot accept {}: {reason}", c.path))
        })
        .collect();
    if !refused.is_empty() {
        return Ok(Some(format!(
            "{}\nnothing was applied; reject these entries, or accept the others by path",
            refused.join("\n")
        )));
    }
    let manifest = manifest(set)?;
    let conflicts = staging::conflicts(real, &manifest, chosen)?;
    if !conflicts.is_empty() {
        let mut said = String::new();
        for conflict in &conflicts {
            said.push_str(&format!(
                "cannot accept {}: the host has {}\n",
                conflict.path, conflict.now
            ));
            if let Some(entry) = set.entries.iter().find(|e| e.change.path == conflict.path) {
                said.push_str(&format!("  {}\n{}", entry_line(entry), diff(set, entry)?));
            }
        }
        said.push_str(
            "nothing was applied: the host's files above changed since the agent began; \
             accept the others by path, or reject these",
        );
        return Ok(Some(said));
    }
    let tree = Path::new(&set.folder).join("tree");
    staging::apply(real, &manifest, &tree, chosen)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_core::staging::ChangeKind;
    use pincer_store::Entry;

    #[test]
    fn a_path_names_its_entry_and_a_path_with_a_slash_what_is_below() {
        let entry = |path: &str| Entry {
            change: Change {
                path: path.into(),
                kind: ChangeKind::Added,
                len: Some(1),
                sha256: None,
                refused: None,
            },
            decision: None,
        };
        let set = ChangeSet {
            id: 1,
            group: "main".into(),
            invocation: "x".into(),
            real_path: "/r".into(),
            target: "/t".into(),
            folder: "/f".into(),
            created_at: "now".into(),
            entries: vec![entry("notes"), entry("notes/evil"), entry("old/a")],
            branch: None,
        };
        let paths = |given: &[&str]| -> Result<Vec<String>, String> {
            let given: Vec<String> = given.iter().map(|p| (*p).to_owned()).collect();
            chosen(&set, &given).map(|c| c.iter().map(|c| c.path.clone()).collect())
        };
        assert_eq!(paths(&["notes"]).unwrap(), ["notes"]);
        assert_eq!(paths(&["notes/"]).unwrap(), ["notes/evil"]);
        assert_eq!(paths(&["./old/", "notes"]).unwrap(), ["old/a", "notes"]);
        assert_eq!(paths(&[]).unwrap().len(), 3);
        assert!(
            paths(&["old"])
                .unwrap_err()
                .contains("no waiting entry at old")
        );
    }
}
