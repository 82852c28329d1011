//! The copy against what was copied: the change set.

use std::collections::BTreeSet;
use std::path::Path;

use super::{
    Base, Change, ChangeKind, Hashing, MAX_ENTRIES, Manifest, Secret, StagingError, child, depth,
    in_git_dir,
};
use crate::beneath::{Folder, Kind};

/// What the agent added, changed and deleted in the copy at `tree`, by path;
/// links, fifos, devices, secrets' names and names with control characters
/// among them are marked refused. Nothing inside `.git` is listed. A copy
/// with more than [`MAX_ENTRIES`] entries, more than `limit` bytes of new
/// content (counted by length before anything is read), or nested deeper
/// than a walk goes, is an error: such a change set is not one an owner can
/// review, and the host does not read its way through it.
pub fn collect(
    tree: &Path,
    manifest: &Manifest,
    secret: Secret<'_>,
    limit: u64,
) -> Result<Vec<Change>, StagingError> {
    let mut new_bytes = 0u64;
    let top = Folder::open(tree)?;
    let mut changes = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![String::new()];
    let mut walked = 0usize;
    while let Some(relative) = stack.pop() {
        if depth(&relative) > crate::beneath::MAX_DEPTH {
            return Err(StagingError::TooDeep {
                path: tree.to_owned(),
            });
        }
        let folder = top.open_dir(&relative)?;
        for (name, kind) in folder.entries()? {
            walked += 1;
            if walked > MAX_ENTRIES {
                return Err(StagingError::TooLarge {
                    path: tree.to_owned(),
                    limit,
                    entries: MAX_ENTRIES,
                });
            }
            let Some(path) = child(&relative, &name) else {
                let shown = child(
                    &relative,
                    std::ffi::OsStr::new(&name.to_string_lossy().into_owned()),
                )
                .unwrap_or_default();
                changes.push(refused(shown, None, "its name is not UTF-8"));
                continue;
            };
            if in_git_dir(&path) {
                continue;
            }
            if kind == Kind::Dir {
                stack.push(path);
                continue;
            }
            seen.insert(path.clone());
            let base = manifest.entries.get(&path);
            let kind_of_change = if base.is_some() {
                ChangeKind::Changed
            } else {
                ChangeKind::Added
            };
            let change = match kind {
                Kind::File => {
                    let len = folder.stat(&name)?.map_or(0, |stat| stat.len);
                    let same_length =
                        matches!(base, Some(Base::File { len: was, .. }) if *was == len);
                    if !same_length {
                        // New content is counted before it is read: a sparse
                        // terabyte costs its length, not its blocks.
                        new_bytes = new_bytes.saturating_add(len);
                        if new_bytes > limit {
                            return Err(StagingError::TooLarge {
                                path: tree.to_owned(),
                                limit,
                                entries: MAX_ENTRIES,
                            });
                        }
                    }
                    // Never more than was counted, should it grow meanwhile.
                    let file = std::io::Read::take(folder.open_file(&name)?, len);
                    let mut reader = Hashing::new(file);
                    std::io::copy(&mut reader, &mut std::io::sink()).map_err(|source| {
                        StagingError::Read {
                            path: folder.path().join(&name),
                            source,
                        }
                    })?;
                    let now = reader.base();
                    if base == Some(&now) {
                        continue;
                    }
                    let Base::File { len, sha256 } = now else {
                        continue;
                    };
                    Change {
                        path,
                        kind: kind_of_change,
                        len: Some(len),
                        sha256: Some(sha256),
                        refused: None,
                    }
                }
                Kind::Link => {
                    let target = folder.read_link(&name)?.to_string_lossy().into_owned();
                    if base
                        == Some(&Base::Link {
                            target: target.clone(),
                        })
                    {
                        continue;
                    }
                    let mut change = refused(
                        path,
                        Some(kind_of_change),
                        "a link: links are never applied",
                    );
                    change.len = Some(target.len() as u64);
                    change
                }
                _ => refused(
                    path,
                    Some(kind_of_change),
                    "a fifo, socket or device: only files are applied",
                ),
            };
            changes.push(change);
        }
    }
    for path in manifest.entries.keys() {
        if !seen.contains(path) && !in_git_dir(path) {
            changes.push(Change {
                path: path.clone(),
                kind: ChangeKind::Deleted,
                len: None,
                sha256: None,
                refused: None,
            });
        }
    }
    for change in &mut changes {
        if change.refused.is_some() {
            continue;
        }
        if change.path.chars().any(char::is_control) {
            // A name that could print as more than one line of a listing.
            change.refused = Some("its name has control characters".into());
        } else if secret(&change.path) {
            change.refused = Some("a secret file's name: never applied".into());
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(changes)
}

fn refused(path: String, kind: Option<ChangeKind>, reason: &str) -> Change {
    Change {
        path,
        kind: kind.unwrap_or(ChangeKind::Added),
        len: None,
        sha256: None,
        refused: Some(reason.into()),
    }
}
