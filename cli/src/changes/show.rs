//! `pincer changes show ID`: the entries and a diff of each.

use std::path::Path;
use std::process::ExitCode;

use pincer_assistant::escape;
use pincer_core::staging::{ChangeKind, read_below};
use pincer_store::{ChangeSet, Decision, Entry, Store};

use super::load;

/// Most of a file read for a diff; past it, its size is said instead.
const DIFF_BYTES: u64 = 1024 * 1024;

pub(super) fn show(store: &Store, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let set = load(store, id)?;
    if json {
        println!("{}", serde_json::to_string(&set)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "change set {} · group {} · {} (the agent saw {}) · {} · invocation {}",
        set.id,
        set.group,
        escape::line(&set.real_path),
        escape::line(&set.target),
        set.created_at,
        set.invocation
    );
    if let Some((name, commit)) = &set.branch {
        println!("also as the git branch {name} ({commit}): git diff HEAD...{name}");
    }
    for entry in &set.entries {
        println!("  {}", entry_line(entry));
    }
    for entry in set.entries.iter().filter(|e| e.change.refused.is_none()) {
        print!("{}", escape::text(&diff(&set, entry)?));
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn entry_line(entry: &Entry) -> String {
    let change = &entry.change;
    let kind = match change.kind {
        ChangeKind::Added => "added",
        ChangeKind::Changed => "changed",
        ChangeKind::Deleted => "deleted",
    };
    let mut line = format!("{kind:<8} {}", escape::line(&change.path));
    if let Some(len) = change.len {
        line.push_str(&format!(" ({len} bytes)"));
    }
    if let Some(reason) = &change.refused {
        line.push_str(&format!(" — never applied: {reason}"));
    }
    if let Some(decision) = entry.decision {
        line.push_str(match decision {
            Decision::Accepted => " [accepted]",
            Decision::Rejected => " [rejected]",
        });
    }
    line
}

/// A unified diff of the real file now against the agent's version (text),
/// or a line saying how they differ (binary, too large).
pub(super) fn diff(set: &ChangeSet, entry: &Entry) -> anyhow::Result<String> {
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
pub(super) fn unified(
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
            let names = (
                if before.is_some() {
                    format!("a/{path}")
                } else {
                    "/dev/null".into()
                },
                if after.is_some() {
                    format!("b/{path}")
                } else {
                    "/dev/null".into()
                },
            );
            similar::TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(3)
                .header(&names.0, &names.1)
                .to_string()
        }
        _ => format!(
            "binary or large file {path}: {} on the host, {} from the agent\n",
            size(before),
            size(after)
        ),
    }
}
