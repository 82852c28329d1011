//! Shadowing: secret files inside a mounted folder are covered by an empty,
//! read-only file or folder, so that mounting a project never mounts its
//! `.env` with it.
//!
//! The scan enters every folder — `node_modules`, `target` and `.git`
//! included: an agent with a read-write grant could otherwise move a
//! shadowed `.env` into one and read it on its next run — and follows no
//! link (it goes through [`crate::beneath`]). A name is matched as a path
//! below the mounted folder, so patterns with a `/` (`.git/config`) cover
//! what they name. A link with a secret's name is covered where it leads,
//! read as the container will read it: a relative link from where it is, an
//! absolute one inside the container's view of this mount; a link that
//! leads anywhere else dangles in the container, or into a mount with
//! covers of its own. A folder with more than [`SCAN_LIMIT`] entries is not
//! scanned at all, and the caller leaves that mount out.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{MountError, ValidatedMount, policy::MountPolicy};
use crate::beneath::{Folder, Identity, Kind, identity_of};

/// Most entries scanned in one mounted folder.
pub const SCAN_LIMIT: usize = 100_000;

/// The empty file and folder that cover secrets.
pub(super) struct Shadows {
    empty_file: PathBuf,
    empty_dir: PathBuf,
    file_identity: Identity,
    dir_identity: Identity,
}

impl Shadows {
    /// Creates (once) the empty file and folder under `dir`.
    pub(super) fn prepare(dir: &Path) -> Result<Self, MountError> {
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |source| MountError::Prepare { path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(fail(dir))?;
        let empty_dir = dir.join("empty-dir");
        let empty_file = dir.join("empty-file");
        match std::fs::DirBuilder::new().mode(0o555).create(&empty_dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(fail(&empty_dir)(err)),
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&empty_file)
        {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(fail(&empty_file)(err)),
        }
        // Never trust that they stayed empty: a shadow with content would leak nothing
        // of the host, but an empty one is what we promise.
        if std::fs::metadata(&empty_file)
            .map_err(fail(&empty_file))?
            .len()
            != 0
        {
            std::fs::set_permissions(&empty_file, std::fs::Permissions::from_mode(0o644))
                .map_err(fail(&empty_file))?;
            std::fs::write(&empty_file, b"").map_err(fail(&empty_file))?;
            std::fs::set_permissions(&empty_file, std::fs::Permissions::from_mode(0o444))
                .map_err(fail(&empty_file))?;
        }
        let empty_file = empty_file.canonicalize().map_err(fail(&empty_file))?;
        let empty_dir = empty_dir.canonicalize().map_err(fail(&empty_dir))?;
        Ok(Self {
            file_identity: identity_of(&empty_file)?,
            dir_identity: identity_of(&empty_dir)?,
            empty_file,
            empty_dir,
        })
    }

    /// Read-only covers for every secret [`scan`] finds under `root`, at
    /// `target` + its relative path.
    pub(super) fn cover(
        &self,
        mount: &ValidatedMount,
        policy: &MountPolicy,
    ) -> Result<Vec<ValidatedMount>, MountError> {
        let secrets = scan(&mount.source, &mount.target, policy, Some(mount.identity))?;
        Ok(secrets
            .into_iter()
            .map(|secret| self.cover_at(&mount.target, &secret))
            .collect())
    }

    /// The empty, read-only folder or file over `target` + `relative`.
    fn cover_at(&self, target: &str, secret: &Secret) -> ValidatedMount {
        let (source, identity) = if secret.is_dir {
            (self.empty_dir.clone(), self.dir_identity)
        } else {
            (self.empty_file.clone(), self.file_identity)
        };
        ValidatedMount {
            source,
            target: format!("{target}/{}", secret.relative.display()),
            read_only: true,
            identity,
            within: Some(secret.parent),
            staged: false,
        }
    }
}

/// A secret found below a mounted folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Its path below the folder (never through a link).
    pub relative: PathBuf,
    /// Whether it is a folder.
    pub is_dir: bool,
    /// The folder it lies in, as scanned: the container must show that
    /// folder around the cover (a parent swapped between the scan and the
    /// bind would leave the real secret elsewhere, uncovered).
    pub parent: Identity,
}

/// Links followed, one after another, before a chain is taken as a loop.
const MAX_HOPS: usize = 40;

/// Every entry below `root` (mounted at `target`) whose path the policy
/// blocks, sorted; never follows a link on the host. With `expected`,
/// `root` must still be that folder (the one the mount was decided on).
/// Folders are kept as paths and opened one at a time, so a wide tree
/// never holds more than a few descriptors.
pub fn scan(
    root: &Path,
    target: &str,
    policy: &MountPolicy,
    expected: Option<Identity>,
) -> Result<Vec<Secret>, MountError> {
    let blocked = |relative: &Path| policy.blocks_below(relative);
    let top = Folder::open(root)?;
    if let Some(expected) = expected
        && top.identity()? != expected
    {
        return Err(MountError::Prepare {
            path: root.to_owned(),
            source: std::io::Error::other("it was swapped for another folder while it was checked"),
        });
    }
    let mut secrets = Vec::new();
    let mut stack = vec![PathBuf::new()];
    let mut scanned = 0usize;
    let too_deep = || MountError::TooDeepToScan {
        path: root.to_owned(),
    };
    while let Some(relative) = stack.pop() {
        if relative.components().count() > crate::beneath::MAX_DEPTH {
            return Err(too_deep());
        }
        let folder = match top.open_dir(&relative) {
            Ok(folder) => folder,
            // Swapped for a link since it was listed: a link is not entered.
            Err(err) if err.is_link() => continue,
            Err(err) if err.is_name_too_long() => return Err(too_deep()),
            Err(err) => return Err(err.into()),
        };
        let parent = folder.identity()?;
        for (name, kind) in folder.entries()? {
            scanned += 1;
            if scanned > SCAN_LIMIT {
                return Err(MountError::TooLargeToScan {
                    path: root.to_owned(),
                    limit: SCAN_LIMIT,
                });
            }
            let path = relative.join(&name);
            match kind {
                Kind::Link if blocked(&path) => secrets.extend(resolve_link(&top, &path, target)),
                _ if blocked(&path) => secrets.push(Secret {
                    relative: path,
                    is_dir: kind == Kind::Dir,
                    parent,
                }),
                Kind::Dir => stack.push(path),
                _ => {}
            }
        }
    }
    secrets.sort_by(|a, b| a.relative.cmp(&b.relative));
    secrets.dedup_by(|a, b| a.relative == b.relative);
    Ok(secrets)
}

/// What the link at `link` (below `top`, mounted at `target`) leads to
/// inside the mount, read the way the container will resolve it — a
/// relative link from where it is, an absolute one in the container's view
/// of this mount, link after link — without following anything on the
/// host. `None` when it leads out of the mount (it dangles there, or lands
/// in a mount with covers of its own), nowhere, to the mount itself
/// (covering it would hide the whole mount), or round in circles.
fn resolve_link(top: &Folder, link: &Path, target: &str) -> Option<Secret> {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<std::ffi::OsString> = link
        .components()
        .rev()
        .map(|c| c.as_os_str().to_owned())
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some("..") => resolved.pop().then_some(())?,
            Some(".") | Some("") | Some("/") => {}
            _ => {
                let holder = top.open_dir(&resolved).ok()?;
                if holder.kind(&part).ok()?? != Kind::Link {
                    resolved.push(&part);
                    continue;
                }
                hops += 1;
                if hops > MAX_HOPS {
                    return None;
                }
                let text = holder.read_link(&part).ok()?;
                let rest = if text.is_absolute() {
                    resolved = PathBuf::new();
                    text.strip_prefix(target).ok()?.to_owned()
                } else {
                    text
                };
                pending.extend(rest.components().rev().map(|c| c.as_os_str().to_owned()));
            }
        }
    }
    let leaf = resolved.file_name()?.to_owned();
    let holder = top
        .open_dir(resolved.parent().unwrap_or(Path::new("")))
        .ok()?;
    let kind = holder.kind(&leaf).ok()??;
    Some(Secret {
        is_dir: kind == Kind::Dir,
        parent: holder.identity().ok()?,
        relative: resolved,
    })
}
