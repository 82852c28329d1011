//! What waits, and one change set with a diff of each entry.

use std::path::Path;

use pincer_core::staging::{ChangeKind, read_below};
use pincer_store::{ChangeSet, Decision, Entry, Store};

use super::{ChangesError, Said, access, counts};

/// Most of a file read for a diff; past it, its size is said instead.
const DIFF_BYTES: u64 = 1024 * 1024;

/// The change sets and access requests that wait (`all`: decided ones too),
/// a line each.
pub fn list(store: &Store, group: Option<&str>, all: bool) -> Result<String, ChangesError> {
    let sets = store.change_sets(group, !all)?;
    let requests = store.access_requests(group, !all)?;
    if sets.is_empty() && requests.is_empty() {
        return Ok("nothing waits for you".into());
    }
    let mut lines = Vec::new();
    for set in &sets {
        let waiting = set.entries.iter().filter(|e| e.decision.is_none()).count();
        let bytes: u64 = set
            .entries
            .iter()
            .filter(|e| e.decision.is_none())
            .filter_map(|e| e.change.len)
            .sum();
        lines.push(format!(
            "{:>4}  {}  {:<12} {}  {} waiting ({}), {} bytes",
            set.id,
            &set.created_at[..16.min(set.created_at.len())],
            set.group,
            set.real_path,
            waiting,
            counts(set),
            bytes
        ));
    }
    lines.extend(requests.iter().map(access::line));
    Ok(lines.join("\n"))
}

/// Change set `id`: its entries, then a diff of each that waits and can be
/// applied.
pub fn show(store: &Store, id: i64) -> Result<Said, ChangesError> {
    let Some(set) = store.change_set(id)? else {
        return Ok(Said::Usage(no_such_set(id)));
    };
    let mut text = format!(
        "change set {} · group {} · {} (the agent saw {}) · {} · invocation {}\n",
        set.id, set.group, set.real_path, set.target, set.created_at, set.invocation
    );
    if let Some((name, commit)) = &set.branch {
        text.push_str(&format!(
            "also as the git branch {name} ({commit}): git diff HEAD...{name}\n"
        ));
    }
    for entry in &set.entries {
        text.push_str(&format!("  {}\n", entry_line(entry)));
    }
    // Only what still waits: a decided entry's copy may be gone.
    let waiting = set.entries.iter().filter(|e| e.decision.is_none());
    for entry in waiting.filter(|e| e.change.refused.is_none()) {
        text.push_str(&diff(&set, entry)?);
    }
    Ok(Said::Done(text))
}

/// What the owner is told of a change set number that names none.
pub fn no_such_set(id: i64) -> String {
    format!("there is no change set {id} (`pincer changes --all` lists them)")
}

pub(super) fn entry_line(entry: &Entry) -> String {
    let change = &entry.change;
    let kind = match change.kind {
        ChangeKind::Added => "added",
        ChangeKind::Changed => "changed",
        ChangeKind::Deleted => "deleted",
    };
    let mut line = format!("{kind:<8} {}", change.path);
    if let Some(len) = change.len {
        line.push_str(&format!(" ({len} bytes)"));
    }
    if let Some(reason) = &change.refused {
        line.push_str(&format!(" — never applied: {reason}"));
    }
    line.push_str(match entry.decision {
        Some(Decision::Accepted) => " [accepted]",
        Some(Decision::Rejected) => " [rejected]",
        None => "",
    });
    line
}

/// A unified diff of the real file now against the agent's version (text),
/// or a line saying how they differ (binary, too large).
pub(super) fn diff(set: &ChangeSet, entry: &Entry) -> Result<String, ChangesError> {
    let path = &entry.change.path;
    let real = read_below(Path::new(&set.real_path), path, DIFF_BYTES)?;
    let staged = match entry.change.kind {
        ChangeKind::Deleted => None,
        _ => read_below(&Path::new(&set.folder).join("tree"), path, DIFF_BYTES)?,
    };
    Ok(unified(path, real.as_ref(), staged.as_ref()))
}

/// `before` (the host's) against `after` (the agent's), each the bytes
/// read and whether there was more.
fn unified(
    path: &str,
    before: Option<&(Vec<u8>, bool)>,
    after: Option<&(Vec<u8>, bool)>,
) -> String {
    let text = |side: Option<&(Vec<u8>, bool)>| match side {
        None => Some(String::new()),
        Some((_, true)) => None,
        Some((bytes, false)) if bytes.contains(&0) => None,
        Some((bytes, false)) => String::from_utf8(bytes.clone()).ok(),
    };
    let size = |side: Option<&(Vec<u8>, bool)>| match side {
        None => "nothing".to_owned(),
        Some((bytes, true)) => format!("more than {} bytes", bytes.len()),
        Some((bytes, false)) => format!("{} bytes", bytes.len()),
    };
    match (text(before), text(after)) {
        (Some(old), Some(new)) => {
            let name = |side: Option<&(Vec<u8>, bool)>, prefix: &str| match side {
                Some(_) => format!("{prefix}/{path}"),
                None => "/dev/null".into(),
            };
            similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header(&name(before, "a"), &name(after, "b"))
                .to_string()
        }
        _ => format!(
            "binary or large file {path}: {} on the host, {} from the agent\n",
            size(before),
            size(after)
        ),
    }
}
