//! Staged writes: a read-write grant whose writes wait for the owner.
//!
//! The agent is given a copy of the granted folder, made by the host right
//! before its container starts ([`stage`]). When the container is gone the
//! copy is compared with what was copied ([`collect`]): what the agent added,
//! changed and deleted is a change set, and nothing of it reaches the real
//! folder until the owner accepts it, whole or in part ([`apply`]), each
//! file only if the real one is still what the agent was given
//! ([`conflicts`]).
//!
//! Every walk goes through [`crate::beneath`]: the real folder is read
//! without following a link, and the copy, which the agent shaped, is read
//! the same way. A link, a fifo or a device the agent left in the copy is a
//! change that is never applied; so is a file with a secret's name (the copy
//! never holds one: secrets are not copied) and anything inside `.git`
//! (git's own files, hooks among them, are the host's: they are copied for
//! the agent to read, and its changes to them are neither listed nor
//! applied).
//!
//! This module knows nothing about groups, invocations or the store: it
//! copies, compares and applies folders it is handed.

mod apply;
mod collect;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::beneath::{BeneathError, Folder, Identity, Kind};

pub use apply::{Conflict, apply, conflicts, read_below};
pub use collect::collect;

/// The folder inside a grant whose changes are never listed nor applied.
pub const GIT_DIR: &str = ".git";

/// Most entries a copy is made with, or compared in (as many as a mount's
/// scan for secrets takes).
pub const MAX_ENTRIES: usize = 100_000;

/// Whether a path below the folder (`/`-separated) names a secret: the
/// caller's policy, so that this module knows nothing of allowlists.
pub type Secret<'a> = &'a dyn Fn(&str) -> bool;

/// A folder could not be staged, compared or applied.
#[derive(Debug, thiserror::Error)]
pub enum StagingError {
    /// A file operation failed (a link in the way among them).
    #[error(transparent)]
    Beneath(#[from] BeneathError),
    /// The folder is larger than a staged copy may be.
    #[error(
        "{path} is larger than a staged copy may be ({limit} bytes or {entries} entries: [limits] \
         staged_copy_bytes): grant a narrower folder"
    )]
    TooLarge {
        /// The folder.
        path: PathBuf,
        /// The byte limit.
        limit: u64,
        /// The entry limit.
        entries: usize,
    },
    /// The folder nests deeper than a walk goes.
    #[error(
        "{path} nests folders more than {} deep: grant a narrower folder",
        crate::beneath::MAX_DEPTH
    )]
    TooDeep {
        /// The folder.
        path: PathBuf,
    },
    /// The granted folder is not the one that was checked (or copied).
    #[error("{0} is no longer the folder that was granted and copied")]
    Swapped(PathBuf),
    /// A file could not be read or hashed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A change asked for cannot be applied.
    #[error("{path}: {reason}")]
    Refused {
        /// The change's path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// What one path of the real folder was when it was copied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Base {
    /// A regular file.
    File {
        /// Its length.
        len: u64,
        /// Its content's SHA-256, in hex.
        sha256: String,
    },
    /// A link (copied as a link, never followed).
    Link {
        /// Its text.
        target: String,
    },
}

/// What was copied: every file and link by its path below the folder
/// (`/`-separated, UTF-8), and the folders.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Files and links.
    pub entries: BTreeMap<String, Base>,
    /// Folders.
    pub dirs: BTreeSet<String>,
    /// Paths not copied: secrets, names that are not UTF-8, fifos and devices.
    pub withheld: usize,
    /// The real folder that was copied: changes go to it or nowhere.
    #[serde(default)]
    pub real: Option<Identity>,
}

/// How a path differs between the real folder (when copied) and the copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// In the copy only.
    Added,
    /// In both, different.
    Changed,
    /// In the real folder only.
    Deleted,
}

/// One entry of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `/`-separated, below the folder.
    pub path: String,
    /// Added, changed or deleted.
    pub kind: ChangeKind,
    /// The new length (not for a deletion).
    pub len: Option<u64>,
    /// The new content's SHA-256 (a file added or changed): what the owner
    /// reviewed is what is applied.
    pub sha256: Option<String>,
    /// Why it can never be applied (a link, a special file, a secret's name).
    pub refused: Option<String>,
}

/// The limits of one staged copy.
#[derive(Debug, Clone, Copy)]
pub struct StageLimits {
    /// Bytes of file content.
    pub bytes: u64,
    /// Files, folders and links.
    pub entries: usize,
}

impl StageLimits {
    /// `bytes` of content, and [`MAX_ENTRIES`].
    pub fn with_bytes(bytes: u64) -> Self {
        Self {
            bytes,
            entries: MAX_ENTRIES,
        }
    }
}

/// Copies the folder `real` (which must still be `identity`) into `tree`
/// (created, mode 0700), leaving out secrets, names that are not UTF-8,
/// fifos and devices; links are copied as links. The copy is handed to
/// `owner` (uid, gid). Returns what was copied.
pub fn stage(
    real: &Path,
    identity: Identity,
    tree: &Path,
    owner: (u32, u32),
    secret: Secret<'_>,
    limits: StageLimits,
) -> Result<Manifest, StagingError> {
    let from = Folder::open(real)?;
    if from.identity()? != identity {
        return Err(StagingError::Swapped(real.to_owned()));
    }
    let to = Folder::create(tree, 0o700)?;
    let mut manifest = Manifest {
        real: Some(identity),
        ..Manifest::default()
    };
    let mut copied = Copied::default();
    let mut stack = vec![String::new()];
    while let Some(relative) = stack.pop() {
        if depth(&relative) > crate::beneath::MAX_DEPTH {
            return Err(StagingError::TooDeep {
                path: real.to_owned(),
            });
        }
        let (source, target) = (from.open_dir(&relative)?, to.open_dir(&relative)?);
        for (name, kind) in source.entries()? {
            if kind != Kind::File {
                copied.count(real, limits, 0)?;
            }
            let Some(path) = child(&relative, &name) else {
                manifest.withheld += 1;
                continue;
            };
            if secret(&path) {
                manifest.withheld += 1;
                continue;
            }
            match kind {
                Kind::Dir => {
                    let mode = source.stat(&name)?.map_or(0o700, |s| s.mode & 0o777);
                    target.ensure_dir(name_str(&name), mode | 0o700)?;
                    manifest.dirs.insert(path.clone());
                    stack.push(path);
                }
                Kind::File => {
                    let stat = source.stat(&name)?;
                    let (len, mode) = stat.map_or((0, 0o600), |s| (s.len, s.mode & 0o777));
                    copied.count(real, limits, len)?;
                    // Never more than was counted, should it grow meanwhile.
                    let file = std::io::Read::take(source.open_file(&name)?, len);
                    let mut reader = Hashing::new(file);
                    // A scratch copy: no sync, no rename (the owner's files
                    // get both, at accept).
                    let mut copy = target.create_file(&name, mode)?;
                    std::io::copy(&mut reader, &mut copy).map_err(|source| StagingError::Read {
                        path: real.join(&path),
                        source,
                    })?;
                    manifest.entries.insert(path, reader.base());
                }
                Kind::Link => {
                    let text = source.read_link(&name)?;
                    target.make_link(&name, &text)?;
                    let target = text.to_string_lossy().into_owned();
                    manifest.entries.insert(path, Base::Link { target });
                }
                Kind::Other => manifest.withheld += 1,
            }
        }
    }
    if to.owner()? != owner {
        to.chown_all(owner.0, owner.1)?;
    }
    Ok(manifest)
}

/// Removes the host folder `folder` that holds a copy, and everything in
/// it, never following a link the agent left there.
pub fn discard(folder: &Path) -> Result<(), StagingError> {
    let (Some(parent), Some(name)) = (folder.parent(), folder.file_name()) else {
        return Ok(());
    };
    if let Some(parent) = Folder::open_if_there(parent)? {
        parent.remove_all(name)?;
        // The invocation's folder, once its last copy went.
        if let (Some(above), Some(own)) = (parent.path().parent(), parent.path().file_name())
            && let Some(above) = Folder::open_if_there(above)?
        {
            above.remove_dir_if_empty(own)?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Copied {
    bytes: u64,
    entries: usize,
}

impl Copied {
    /// One more entry with `bytes` of content.
    fn count(&mut self, real: &Path, limits: StageLimits, bytes: u64) -> Result<(), StagingError> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.entries > limits.entries || self.bytes > limits.bytes {
            return Err(StagingError::TooLarge {
                path: real.to_owned(),
                limit: limits.bytes,
                entries: limits.entries,
            });
        }
        Ok(())
    }
}

/// `relative/name`, or `None` when the name is not UTF-8.
fn child(relative: &str, name: &OsStr) -> Option<String> {
    let name = name.to_str()?;
    Some(if relative.is_empty() {
        name.to_owned()
    } else {
        format!("{relative}/{name}")
    })
}

fn name_str(name: &OsStr) -> &str {
    name.to_str().unwrap_or_default()
}

fn depth(relative: &str) -> usize {
    if relative.is_empty() {
        0
    } else {
        relative.split('/').count()
    }
}

/// Whether `path` is inside git's own folder at any depth.
fn in_git_dir(path: &str) -> bool {
    path.split('/').any(|part| part == GIT_DIR)
}

/// The folder holding `path` and the last component.
fn split(path: &str) -> (&str, &OsStr) {
    match path.rsplit_once('/') {
        Some((parent, name)) => (parent, OsStr::new(name)),
        None => ("", OsStr::new(path)),
    }
}

/// A reader that hashes (SHA-256) and counts what passes through it.
struct Hashing<R> {
    inner: R,
    context: ring::digest::Context,
    len: u64,
}

impl<R: std::io::Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            context: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
        }
    }

    fn sha256(self) -> String {
        hex(self.context.finish().as_ref())
    }

    fn base(self) -> Base {
        let len = self.len;
        Base::File {
            len,
            sha256: self.sha256(),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.context.update(&buf[..read]);
        self.len += read as u64;
        Ok(read)
    }
}

/// The SHA-256 and length of everything `reader` gives.
fn hash_all(reader: impl std::io::Read, path: &Path) -> Result<(u64, String), StagingError> {
    let mut hashing = Hashing::new(reader);
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|source| StagingError::Read {
        path: path.to_owned(),
        source,
    })?;
    let len = hashing.len;
    Ok((len, hashing.sha256()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
