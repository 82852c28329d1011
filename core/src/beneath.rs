//! Host file operations inside folders an agent can write: they never follow
//! a link and never leave the folder.
//!
//! A group's folder, its session folder, the global folder and every
//! read-write grant are the agent's to shape: it can put a link or a folder
//! where the host expects a file, or swap a folder for a link between two of
//! the host's steps. Every host operation below such a folder goes through a
//! [`Folder`], a descriptor of the folder opened without following links;
//! each path below it is resolved by `openat2(2)` with `RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`, so a link anywhere on the
//! way is an error (`ELOOP`), and so is `..` out of the folder (`EXDEV`).
//! Renames never replace what is at the target, removals unlink links
//! rather than follow them, ownership changes never follow a link.
//! `tests/tidy.rs` keeps the modules that touch agent-writable folders on
//! this path.
//!
//! This module also gives a directory's [`Identity`] (device and inode),
//! which is how a mount is tied to the folder that was checked.
//!
//! Needs Linux 5.6 or later (`openat2`).

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};

/// A host file operation under an agent-writable folder failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {}", path.display(), explain(source))]
pub struct BeneathError {
    action: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

impl BeneathError {
    fn new(action: &'static str, path: &Path, source: impl Into<std::io::Error>) -> Self {
        Self {
            action,
            path: path.to_owned(),
            source: source.into(),
        }
    }

    /// What the system said.
    pub fn kind(&self) -> std::io::ErrorKind {
        self.source.kind()
    }

    /// Whether the path was longer than the system resolves.
    pub fn is_name_too_long(&self) -> bool {
        self.source.raw_os_error() == Some(libc::ENAMETOOLONG)
    }

    /// Whether a link (or a way out of the folder) was in the path.
    pub fn is_link(&self) -> bool {
        matches!(
            self.source.raw_os_error(),
            Some(libc::ELOOP) | Some(libc::EXDEV)
        )
    }
}

fn explain(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ELOOP) => "a link is in the way (links are never followed here)".into(),
        Some(libc::EXDEV) => "the path leads out of its folder".into(),
        Some(libc::ENOSYS) => "this kernel has no openat2 (Pincer needs Linux 5.6 or later)".into(),
        _ => err.to_string(),
    }
}

/// The deepest a walk goes below a folder: a walk holds one descriptor per
/// level, and an agent can nest folders as deep as it likes.
pub const MAX_DEPTH: usize = 256;

/// A directory's device and inode: what a bind mount must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

impl Identity {
    fn of(fd: impl AsFd) -> std::io::Result<Self> {
        let stat = rustix::fs::fstat(fd)?;
        Ok(Self {
            dev: stat.st_dev,
            ino: stat.st_ino,
        })
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// The identity of what is at the absolute, already resolved `path`, reached
/// without following any link: a link on the way (the last component too:
/// `O_PATH` without `O_NOFOLLOW`) means the path changed since it was
/// resolved, and is an error.
pub fn identity_of(path: &Path) -> Result<Identity, BeneathError> {
    let fd = rustix::fs::openat2(
        rustix::fs::CWD,
        path,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|err| BeneathError::new("open", path, err))?;
    Identity::of(&fd).map_err(|err| BeneathError::new("inspect", path, err))
}

/// A directory reached the ordinary way, links followed — a container's
/// `/proc/<pid>/root` is itself a link into the container — below which
/// identities are read without following any link and without leaving it.
#[derive(Debug)]
pub struct View {
    fd: OwnedFd,
    path: PathBuf,
}

impl View {
    /// Opens `root` once, for any number of [`Self::identity`] calls.
    pub fn open(root: &Path) -> Result<Self, BeneathError> {
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| BeneathError::new("open", root, err))?;
        Ok(Self {
            fd,
            path: root.to_owned(),
        })
    }

    /// The identity of `relative` below the view.
    pub fn identity(&self, relative: &Path) -> Result<Identity, BeneathError> {
        let path = self.path.join(relative);
        let fd = rustix::fs::openat2(
            &self.fd,
            relative,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            beneath(),
        )
        .map_err(|err| BeneathError::new("open", &path, err))?;
        Identity::of(&fd).map_err(|err| BeneathError::new("inspect", &path, err))
    }
}

fn beneath() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// What is at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Link,
    /// Anything else (a socket, a fifo, a device).
    Other,
}

impl From<FileType> for Kind {
    fn from(kind: FileType) -> Self {
        match kind {
            FileType::RegularFile => Self::File,
            FileType::Directory => Self::Dir,
            FileType::Symlink => Self::Link,
            _ => Self::Other,
        }
    }
}

/// What [`Folder::stat`] saw at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// File, folder, link or other.
    pub kind: Kind,
    /// Its length in bytes.
    pub len: u64,
    /// Its permission bits (`0o7777`).
    pub mode: u32,
}

/// An open directory; every path given to its methods is relative to it and
/// stays inside it.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
    path: PathBuf,
}

impl Folder {
    /// Opens the host folder `path`. Its parent is the host's (resolved as
    /// usual); the folder itself must not be a link.
    pub fn open(path: &Path) -> Result<Self, BeneathError> {
        let fail = |err: std::io::Error| BeneathError::new("open", path, err);
        let (parent, name) = split(path).map_err(fail)?;
        let parent = rustix::fs::open(
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|err| fail(err.into()))?;
        let fd = rustix::fs::openat2(&parent, name, dir_flags(), Mode::empty(), beneath())
            .map_err(|err| fail(err.into()))?;
        Ok(Self {
            fd,
            path: path.to_owned(),
        })
    }

    /// [`Self::open`], or `None` when nothing is at `path`.
    pub fn open_if_there(path: &Path) -> Result<Option<Self>, BeneathError> {
        match Self::open(path) {
            Ok(folder) => Ok(Some(folder)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Creates the host folder `path` (and its missing parents, which are
    /// the host's) with `mode`, then opens it as [`Folder::open`] does.
    pub fn create(path: &Path, mode: u32) -> Result<Self, BeneathError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|err| BeneathError::new("create", path, err))?;
        Self::open(path)
    }

    /// The path it was opened at (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its device and inode.
    pub fn identity(&self) -> Result<Identity, BeneathError> {
        Identity::of(&self.fd).map_err(|err| BeneathError::new("inspect", &self.path, err))
    }

    /// Its owner.
    pub fn owner(&self) -> Result<(u32, u32), BeneathError> {
        let stat = rustix::fs::fstat(&self.fd)
            .map_err(|err| BeneathError::new("inspect", &self.path, err))?;
        Ok((stat.st_uid, stat.st_gid))
    }

    /// The folder `relative` below this one (an empty path: this one again,
    /// on a descriptor of its own).
    pub fn open_dir(&self, relative: impl AsRef<Path>) -> Result<Self, BeneathError> {
        let relative = relative.as_ref();
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let path = self.path.join(relative);
        let fd = rustix::fs::openat2(&self.fd, relative, dir_flags(), Mode::empty(), beneath())
            .map_err(|err| BeneathError::new("open", &path, err))?;
        Ok(Self { fd, path })
    }

    /// The folder `name` below this one, created with `mode` if missing.
    pub fn ensure_dir(&self, name: &str, mode: u32) -> Result<Self, BeneathError> {
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(err) => return Err(BeneathError::new("create", &self.path.join(name), err)),
        }
        self.open_dir(name)
    }

    /// What is at `name` (a single component), without following a link;
    /// `None` when nothing is.
    pub fn kind(&self, name: &OsStr) -> Result<Option<Kind>, BeneathError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode).into())),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(err) => Err(BeneathError::new("inspect", &self.path.join(name), err)),
        }
    }

    /// The entries of this folder (names and kinds; links are not followed).
    pub fn entries(&self) -> Result<Vec<(OsString, Kind)>, BeneathError> {
        let fail = |err| BeneathError::new("read", &self.path, err);
        // A fresh descriptor: reading moves the directory's offset.
        let fd = rustix::fs::openat(&self.fd, ".", dir_flags(), Mode::empty()).map_err(fail)?;
        let mut entries = Vec::new();
        for entry in rustix::fs::Dir::read_from(&fd).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_owned();
            let kind = match entry.file_type() {
                FileType::Unknown => self.kind(&name)?.unwrap_or(Kind::Other),
                known => known.into(),
            };
            entries.push((name, kind));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries)
    }

    /// The text of the link `name` (a single component).
    pub fn read_link(&self, name: &OsStr) -> Result<PathBuf, BeneathError> {
        let text = rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .map_err(|err| BeneathError::new("read the link", &self.path.join(name), err))?;
        Ok(PathBuf::from(OsStr::from_bytes(text.as_bytes())))
    }

    /// Moves `name` (a single component, never followed) to `new_name` in
    /// `to`; fails rather than replace anything there.
    pub fn rename(&self, name: &OsStr, to: &Folder, new_name: &OsStr) -> Result<(), BeneathError> {
        rustix::fs::renameat_with(&self.fd, name, &to.fd, new_name, RenameFlags::NOREPLACE)
            .map_err(|err| BeneathError::new("move", &self.path.join(name), err))
    }

    /// Removes `name` (a single component) and, for a folder, everything in
    /// it; a link is removed, never followed. Nothing there is not an error.
    /// One descriptor is open per level, so a tree deeper than [`MAX_DEPTH`]
    /// is refused (by name) rather than run out of descriptors.
    pub fn remove_all(&self, name: &OsStr) -> Result<(), BeneathError> {
        self.remove_at(name, 0)
    }

    fn remove_at(&self, name: &OsStr, depth: usize) -> Result<(), BeneathError> {
        let flags = match self.kind(name)? {
            None => return Ok(()),
            Some(Kind::Dir) => {
                let child = self.open_dir(name)?.deeper(depth)?;
                for (entry, _) in child.entries()? {
                    child.remove_at(&entry, depth + 1)?;
                }
                AtFlags::REMOVEDIR
            }
            Some(_) => AtFlags::empty(),
        };
        rustix::fs::unlinkat(&self.fd, name, flags)
            .map_err(|err| BeneathError::new("remove", &self.path.join(name), err))
    }

    /// Gives this folder, and everything in it, to `uid:gid`; links are
    /// changed themselves, never what they lead to. Deeper than
    /// [`MAX_DEPTH`] is refused, like [`Self::remove_all`].
    pub fn chown_all(&self, uid: u32, gid: u32) -> Result<(), BeneathError> {
        self.chown_at(uid, gid, 0)
    }

    fn chown_at(&self, uid: u32, gid: u32, depth: usize) -> Result<(), BeneathError> {
        let (owner, group) = (
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        rustix::fs::fchown(&self.fd, owner, group)
            .map_err(|err| BeneathError::new("change the owner of", &self.path, err))?;
        for (name, kind) in self.entries()? {
            if kind == Kind::Dir {
                self.open_dir(&name)?
                    .deeper(depth)?
                    .chown_at(uid, gid, depth + 1)?;
            } else {
                rustix::fs::chownat(&self.fd, &name, owner, group, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|err| {
                        BeneathError::new("change the owner of", &self.path.join(&name), err)
                    })?;
            }
        }
        Ok(())
    }

    /// The disk space this folder and everything in it take (allocated
    /// blocks: a sparse file counts for what it holds, not its length),
    /// walked without following links; the walk stops as soon as the sum
    /// passes `stop_above`. Deeper than [`MAX_DEPTH`] is refused.
    pub fn disk_usage(&self, stop_above: u64) -> Result<u64, BeneathError> {
        let mut total = 0;
        self.usage_at(stop_above, &mut total, 0)?;
        Ok(total)
    }

    fn usage_at(&self, stop_above: u64, total: &mut u64, depth: usize) -> Result<(), BeneathError> {
        for (name, kind) in self.entries()? {
            let stat = rustix::fs::statat(&self.fd, &name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| BeneathError::new("inspect", &self.path.join(&name), err))?;
            *total = total.saturating_add((stat.st_blocks as u64).saturating_mul(512));
            if *total > stop_above {
                return Ok(());
            }
            if kind == Kind::Dir {
                self.open_dir(&name)?
                    .deeper(depth)?
                    .usage_at(stop_above, total, depth + 1)?;
            }
        }
        Ok(())
    }

    /// This folder, if `depth` is still within [`MAX_DEPTH`].
    fn deeper(self, depth: usize) -> Result<Self, BeneathError> {
        if depth >= MAX_DEPTH {
            return Err(BeneathError::new(
                "walk",
                &self.path,
                std::io::Error::other(format!("it is more than {MAX_DEPTH} folders deep")),
            ));
        }
        Ok(self)
    }

    /// Sets this folder's permission bits.
    pub fn set_mode(&self, mode: u32) -> Result<(), BeneathError> {
        rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(mode))
            .map_err(|err| BeneathError::new("change the mode of", &self.path, err))
    }

    /// What is at `name` (a single component), without following a link:
    /// its kind, length and permission bits; `None` when nothing is.
    pub fn stat(&self, name: &OsStr) -> Result<Option<Stat>, BeneathError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Stat {
                kind: FileType::from_raw_mode(stat.st_mode).into(),
                len: stat.st_size as u64,
                mode: stat.st_mode & 0o7777,
            })),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(err) => Err(BeneathError::new("inspect", &self.path.join(name), err)),
        }
    }

    /// Opens the regular file `name` (a single component) for reading; a
    /// link, a folder, a fifo or a device there is an error, and opening it
    /// never blocks (a fifo is refused before anything waits on it).
    pub fn open_file(&self, name: &OsStr) -> Result<std::fs::File, BeneathError> {
        let path = self.path.join(name);
        let fd = rustix::fs::openat2(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
            beneath(),
        )
        .map_err(|err| BeneathError::new("open", &path, err))?;
        let stat =
            rustix::fs::fstat(&fd).map_err(|err| BeneathError::new("inspect", &path, err))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(BeneathError::new(
                "read",
                &path,
                std::io::Error::other("it is not a regular file"),
            ));
        }
        Ok(std::fs::File::from(fd))
    }

    /// Writes `name` (a single component) from `content` with permission
    /// bits `mode` (and `owner`, when given): into a fresh file beside it,
    /// then renamed over what was there (a file or a link, never followed),
    /// so a reader sees the old file or the new one, never half of one.
    pub fn write_file(
        &self,
        name: &OsStr,
        content: &mut dyn std::io::Read,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), BeneathError> {
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = self.path.join(name);
        let temporary = format!(
            ".pincer-write-{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let fail = |action, err: std::io::Error| BeneathError::new(action, &path, err);
        let fd = rustix::fs::openat(
            &self.fd,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map_err(|err| fail("create", err.into()))?;
        let mut file = std::fs::File::from(fd);
        // The umask must not decide the bits the caller asked for.
        let moded = rustix::fs::fchmod(&file, Mode::from_raw_mode(mode & 0o777))
            .map_err(std::io::Error::from);
        let owned = moded.and_then(|()| match owner {
            Some((uid, gid)) => rustix::fs::fchown(
                &file,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
            )
            .map_err(std::io::Error::from),
            None => Ok(()),
        });
        let written = owned
            .and_then(|()| std::io::copy(content, &mut file))
            .and_then(|_| file.sync_all())
            .map_err(|err| fail("write", err));
        let renamed = written.and_then(|()| {
            rustix::fs::renameat(&self.fd, temporary.as_str(), &self.fd, name)
                .map_err(|err| fail("replace", err.into()))
        });
        if renamed.is_err() {
            let _ = rustix::fs::unlinkat(&self.fd, temporary.as_str(), AtFlags::empty());
        }
        renamed
    }

    /// Creates the file `name` (a single component; nothing may be there)
    /// with permission bits `mode`, for writing: a scratch file, written
    /// once, that needs none of [`Self::write_file`]'s care (no sync, no
    /// rename).
    pub fn create_file(&self, name: &OsStr, mode: u32) -> Result<std::fs::File, BeneathError> {
        let fail = |err: std::io::Error| BeneathError::new("create", &self.path.join(name), err);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map_err(|err| fail(err.into()))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
            .map_err(|err| fail(err.into()))?;
        Ok(std::fs::File::from(fd))
    }

    /// Removes the file or link `name` (a single component; never a folder).
    pub fn remove_file(&self, name: &OsStr) -> Result<(), BeneathError> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
            .map_err(|err| BeneathError::new("remove", &self.path.join(name), err))
    }

    /// Removes the folder `name` if it is empty; `false` when it is not (or
    /// is gone).
    pub fn remove_dir_if_empty(&self, name: &OsStr) -> Result<bool, BeneathError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR) {
            Ok(()) => Ok(true),
            Err(
                rustix::io::Errno::NOTEMPTY | rustix::io::Errno::EXIST | rustix::io::Errno::NOENT,
            ) => Ok(false),
            Err(err) => Err(BeneathError::new("remove", &self.path.join(name), err)),
        }
    }

    /// Makes `name` (a single component) a link whose text is `target`; the
    /// link is never followed here.
    pub fn make_link(&self, name: &OsStr, target: &Path) -> Result<(), BeneathError> {
        rustix::fs::symlinkat(target, &self.fd, name)
            .map_err(|err| BeneathError::new("create the link", &self.path.join(name), err))
    }
}

/// No `O_NOFOLLOW`: with it a final link is "not a directory"; without it,
/// `RESOLVE_NO_SYMLINKS` makes it `ELOOP`, which says what happened.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn split(path: &Path) -> std::io::Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => Ok((parent, name)),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not an absolute path to a folder",
        )),
    }
}

#[cfg(test)]
mod tests;
