//! Accepted changes into the real folder, each only if the real file is
//! still what the agent was given.

use std::path::Path;

use super::{Base, Change, ChangeKind, Manifest, StagingError, hash_all, split};
use crate::beneath::{Folder, Kind};

/// A change whose real file is no longer what the agent was given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// The change's path.
    pub path: String,
    /// What the real folder has there now.
    pub now: String,
}

/// The changes among `changes` that cannot be applied to `real` as they
/// stand: the real file changed, appeared or went away since the copy
/// was made, or a link or a file is in the way of its folder. A real file
/// that already is what the change makes it (an accept that stopped half
/// way, say) is no conflict: applying it again changes nothing.
pub fn conflicts(
    real: &Path,
    manifest: &Manifest,
    changes: &[&Change],
) -> Result<Vec<Conflict>, StagingError> {
    let top = same_folder(real, manifest)?;
    let mut found = Vec::new();
    for change in changes {
        let expected = match change.kind {
            ChangeKind::Added => None,
            ChangeKind::Changed | ChangeKind::Deleted => manifest.entries.get(&change.path),
        };
        let now = current(&top, &change.path)?;
        if already(&now, change) {
            continue;
        }
        let now = match (now, expected) {
            (Now::Nothing, None) => continue,
            (Now::Is(base, _), Some(expected)) if &base == expected => continue,
            (Now::Nothing, Some(_)) => "nothing: it was removed on the host".to_owned(),
            (Now::Is(_, described) | Now::Odd(described), _) => {
                format!("{described}, changed or made on the host")
            }
        };
        found.push(Conflict {
            path: change.path.clone(),
            now: format!("{now} since the agent began"),
        });
    }
    Ok(found)
}

/// The real folder, if it is still the one that was copied (a folder
/// removed and another put at its path is not the one the owner granted).
fn same_folder(real: &Path, manifest: &Manifest) -> Result<Folder, StagingError> {
    let folder = Folder::open(real)?;
    match manifest.real {
        Some(identity) if folder.identity()? != identity => {
            Err(StagingError::Swapped(real.to_owned()))
        }
        _ => Ok(folder),
    }
}

/// Whether the real folder already has what `change` would make.
fn already(now: &Now, change: &Change) -> bool {
    match (now, change.kind) {
        (Now::Nothing, ChangeKind::Deleted) => true,
        (Now::Is(Base::File { sha256, .. }, _), ChangeKind::Added | ChangeKind::Changed) => {
            change.sha256.as_ref() == Some(sha256)
        }
        _ => false,
    }
}

/// What a real folder has at a path.
enum Now {
    Nothing,
    /// A file or link, and in words.
    Is(Base, String),
    /// Something no change can replace: a folder, a fifo, a link on the way.
    Odd(String),
}

/// What is at `path` below `top` now.
fn current(top: &Folder, path: &str) -> Result<Now, StagingError> {
    let (parent, name) = split(path);
    let folder = match top.open_dir(parent) {
        Ok(folder) => folder,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Now::Nothing),
        Err(err) if err.is_link() || err.kind() == std::io::ErrorKind::NotADirectory => {
            return Ok(Now::Odd("a link or a file in the way of its folder".into()));
        }
        Err(err) => return Err(err.into()),
    };
    let Some(stat) = folder.stat(name)? else {
        return Ok(Now::Nothing);
    };
    Ok(match stat.kind {
        Kind::File => {
            let (len, sha256) = hash_all(folder.open_file(name)?, &folder.path().join(name))?;
            Now::Is(Base::File { len, sha256 }, format!("a file of {len} bytes"))
        }
        Kind::Link => {
            let target = folder.read_link(name)?.to_string_lossy().into_owned();
            let described = format!("a link to {target}");
            Now::Is(Base::Link { target }, described)
        }
        Kind::Dir => Now::Odd("a folder".into()),
        Kind::Other => Now::Odd("a fifo, socket or device".into()),
    })
}

/// Applies `changes` from the copy at `tree` to `real`: deletions first,
/// then files added and changed (each written beside its place and renamed
/// over it, with the copy's permission bits, owned like the folder it goes
/// in when this process may say so); folders emptied by deletions that the
/// copy no longer has go too. The caller checked [`conflicts`] first; a
/// refused change, or a copied file that is not what was reviewed, stops
/// before anything is written.
pub fn apply(
    real: &Path,
    manifest: &Manifest,
    tree: &Path,
    changes: &[&Change],
) -> Result<(), StagingError> {
    let (top, copy) = (same_folder(real, manifest)?, Folder::open(tree)?);
    for change in changes {
        if let Some(reason) = &change.refused {
            return Err(StagingError::Refused {
                path: change.path.clone(),
                reason: reason.clone(),
            });
        }
        if change.kind != ChangeKind::Deleted {
            let (parent, name) = split(&change.path);
            let folder = copy.open_dir(parent)?;
            let (_, sha256) = hash_all(folder.open_file(name)?, &folder.path().join(name))?;
            if Some(&sha256) != change.sha256.as_ref() {
                return Err(StagingError::Refused {
                    path: change.path.clone(),
                    reason: "the staged file is not the one that was listed".into(),
                });
            }
        }
    }
    for change in changes.iter().filter(|c| c.kind == ChangeKind::Deleted) {
        let (parent, name) = split(&change.path);
        // Gone already (an accept that stopped half way): nothing to do.
        let removed = top
            .open_dir(parent)
            .and_then(|folder| folder.remove_file(name));
        match removed {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            other => other?,
        }
        remove_emptied(&top, &copy, parent)?;
    }
    let root_owner = top.owner()?;
    let may_chown = rustix::process::geteuid().is_root();
    for change in changes.iter().filter(|c| c.kind != ChangeKind::Deleted) {
        let (parent, name) = split(&change.path);
        let folder = ensure_dirs(&top, parent)?;
        let source = copy.open_dir(parent)?;
        // Permission bits are not the agent's to choose (nor shown for
        // review): a changed file keeps the host's, a new one is 0644.
        let mode = match folder.stat(name)? {
            Some(stat) if stat.kind == Kind::File => stat.mode & 0o777,
            _ => 0o644,
        };
        let owner = may_chown.then_some(folder.owner().unwrap_or(root_owner));
        folder.write_file(name, &mut source.open_file(name)?, mode, owner)?;
    }
    Ok(())
}

/// The folder `parent` below `top`, made (0755, less the umask) where missing.
fn ensure_dirs(top: &Folder, parent: &str) -> Result<Folder, StagingError> {
    let mut folder = top.open_dir("")?;
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        folder = folder.ensure_dir(part, 0o755)?;
    }
    Ok(folder)
}

/// Removes `parent` and the folders above it, each if it is empty in the
/// real folder and gone from the copy.
fn remove_emptied(top: &Folder, copy: &Folder, parent: &str) -> Result<(), StagingError> {
    let mut path = parent.to_owned();
    while !path.is_empty() {
        let in_copy = match copy.open_dir(&path) {
            Ok(_) => true,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
            Err(_) => false,
        };
        if in_copy {
            return Ok(());
        }
        let (above, name) = split(&path);
        if !top.open_dir(above)?.remove_dir_if_empty(name)? {
            return Ok(());
        }
        path = above.to_owned();
    }
    Ok(())
}

/// The first `cap` bytes of the file at `path` below `root` (never through
/// a link), and whether there was more; `None` when no regular file is there.
pub fn read_below(
    root: &Path,
    path: &str,
    cap: u64,
) -> Result<Option<(Vec<u8>, bool)>, StagingError> {
    let (parent, name) = split(path);
    let folder = match Folder::open(root).and_then(|top| top.open_dir(parent)) {
        Ok(folder) => folder,
        // Nothing there, a file where a folder was, or a link on the way:
        // no regular file to show (and no reason to show nothing else).
        Err(err)
            if err.is_link()
                || matches!(
                    err.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
        {
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    if folder.stat(name)?.map(|s| s.kind) != Some(Kind::File) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    let file = folder.open_file(name)?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, cap + 1), &mut bytes).map_err(
        |source| StagingError::Read {
            path: folder.path().join(name),
            source,
        },
    )?;
    let more = bytes.len() as u64 > cap;
    bytes.truncate(cap as usize);
    Ok(Some((bytes, more)))
}
