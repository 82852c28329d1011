//! Shadowing: secret files inside a mounted folder are covered by an empty,
//! read-only file or folder, so that mounting a project never mounts its
//! `.env` with it.
//!
//! The scan follows no symlinks (a link inside a bind mount resolves inside
//! the container, where the host's files are not); a link with a secret's
//! name that leads to a file inside the same folder gets that file covered,
//! so `.env -> config/prod` reads as empty too. The scan skips the bulky
//! folders `target`, `node_modules` and `.git`, which hold build output,
//! dependencies and history rather than the owner's secrets.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{MountError, ValidatedMount, policy::MountPolicy};
use crate::beneath::{Identity, identity_of};

/// Folders the scan does not enter.
const SKIPPED: &[&str] = &["target", "node_modules", ".git"];
/// Most entries scanned in one mounted folder.
pub(super) const SCAN_LIMIT: usize = 100_000;

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

    /// Read-only covers for every entry under `root` whose name the policy
    /// blocks, at `target` + the entry's relative path, sorted by path.
    pub(super) fn cover(
        &self,
        root: &Path,
        target: &str,
        policy: &MountPolicy,
    ) -> Result<Vec<ValidatedMount>, MountError> {
        let mut covers = Vec::new();
        let mut stack = vec![root.to_owned()];
        let mut scanned = 0usize;
        while let Some(dir) = stack.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                // An unreadable folder cannot be read from the container either.
                Err(_) => continue,
            };
            for entry in entries.flatten() {
                scanned += 1;
                if scanned > SCAN_LIMIT {
                    return Err(MountError::TooLargeToScan {
                        path: root.to_owned(),
                        limit: SCAN_LIMIT,
                    });
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name();
                let path = entry.path();
                if kind.is_symlink() {
                    if policy.blocked_name_in(Path::new(&name)).is_some()
                        && let Some(cover) = self.cover_link_target(&path, root, target)
                    {
                        covers.push(cover);
                    }
                    continue;
                }
                if policy.blocked_name_in(Path::new(&name)).is_some() {
                    let Ok(relative) = path.strip_prefix(root) else {
                        continue;
                    };
                    covers.push(self.cover_at(target, relative, kind.is_dir()));
                } else if kind.is_dir() && !SKIPPED.iter().any(|s| name == *s) {
                    stack.push(path);
                }
            }
        }
        covers.sort_by(|a, b| a.target.cmp(&b.target));
        covers.dedup_by(|a, b| a.target == b.target);
        Ok(covers)
    }

    /// The cover for what the link at `link` leads to, when that lies inside
    /// `root` (a link leading out of the mounted folder dangles inside the
    /// container: there is nothing to cover).
    fn cover_link_target(&self, link: &Path, root: &Path, target: &str) -> Option<ValidatedMount> {
        let resolved = link.canonicalize().ok()?;
        let relative = resolved.strip_prefix(root).ok()?;
        if relative.as_os_str().is_empty() {
            // A link to the folder itself: covering it would hide the whole mount.
            return None;
        }
        Some(self.cover_at(target, relative, resolved.is_dir()))
    }

    /// The empty, read-only folder or file over `target` + `relative`.
    fn cover_at(&self, target: &str, relative: &Path, is_dir: bool) -> ValidatedMount {
        let (source, identity) = if is_dir {
            (self.empty_dir.clone(), self.dir_identity)
        } else {
            (self.empty_file.clone(), self.file_identity)
        };
        ValidatedMount {
            source,
            target: format!("{target}/{}", relative.display()),
            read_only: true,
            identity,
        }
    }
}
