//! What an agent may see: the only module that builds a mount.
//!
//! A [`ValidatedMount`] can only be constructed here, after the host path was
//! created or resolved on the host, so the sandbox cannot be handed a path
//! string that nobody checked. This module also owns how a mount is expressed
//! to the engine ([`ValidatedMount::to_engine_mount`]), because the security of
//! a read-only mount depends on it: below engine API 1.44 a read-only bind is
//! not recursive, so a mount nested inside it would stay writable. Read-only
//! binds are therefore made *non-recursive*: nested mounts are not carried in
//! at all.
//!
//! This module knows nothing about the engine's connection or about containers'
//! lifetimes; the sandbox knows nothing about which paths are allowed.
#![allow(clippy::disallowed_types)] // the owner of bollard::models::Mount

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bollard::models::{Mount, MountBindOptions, MountType};

use crate::config::Paths;
use crate::group::GroupName;

/// Where the group's own folder appears in the container.
pub const GROUP_TARGET: &str = "/workspace/group";
/// Where the group's session folder appears in the container.
pub const SESSION_TARGET: &str = "/workspace/session";

/// A host folder could not be prepared for mounting.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// Creating, resolving or handing over a folder failed.
    #[error("cannot prepare {path} for mounting: {source}")]
    Prepare {
        /// The host path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The uid and gid the container's processes run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerUser {
    /// User id (never 0).
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl ContainerUser {
    /// The uid a container runs as when the host runs as root.
    pub const UNPRIVILEGED: Self = Self {
        uid: 1000,
        gid: 1000,
    };

    /// The host's own user when it is not root (so that files the agent
    /// writes belong to the owner), else [`Self::UNPRIVILEGED`].
    pub fn for_this_host() -> Self {
        #[allow(unsafe_code)]
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid == 0 {
            Self::UNPRIVILEGED
        } else {
            Self { uid, gid }
        }
    }

    /// `uid:gid`, as the engine wants it.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }
}

/// A bind mount whose host side was prepared and resolved by this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedMount {
    source: PathBuf,
    target: String,
    read_only: bool,
}

impl ValidatedMount {
    /// The resolved host path.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The absolute path inside the container.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the container may not write through it.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The engine's form of this mount. Read-only binds are non-recursive (see
    /// the module docs): a nested mount must not become a writable hole.
    pub fn to_engine_mount(&self) -> Mount {
        Mount {
            target: Some(self.target.clone()),
            source: Some(self.source.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(self.read_only),
            bind_options: Some(MountBindOptions {
                non_recursive: Some(self.read_only),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// The mounts of one invocation of `group`: its own folder and session folder
/// (read-write, created on first use and handed to `user`), and the host
/// socket at [`pincer_protocol::HOST_SOCKET_PATH`] (read-only; connecting to a
/// socket needs no write access to the mount).
pub fn invocation_mounts(
    paths: &Paths,
    group: &GroupName,
    user: ContainerUser,
    host_socket: &Path,
) -> Result<Vec<ValidatedMount>, MountError> {
    let group_dir = private_dir_for(&paths.group_dir(group), user)?;
    let session_dir = private_dir_for(&paths.session_dir(group), user)?;
    let socket = resolve(host_socket)?;
    Ok(vec![
        ValidatedMount {
            source: group_dir,
            target: GROUP_TARGET.into(),
            read_only: false,
        },
        ValidatedMount {
            source: session_dir,
            target: SESSION_TARGET.into(),
            read_only: false,
        },
        ValidatedMount {
            source: socket,
            target: pincer_protocol::HOST_SOCKET_PATH.into(),
            read_only: true,
        },
    ])
}

fn resolve(path: &Path) -> Result<PathBuf, MountError> {
    path.canonicalize().map_err(|source| MountError::Prepare {
        path: path.to_owned(),
        source,
    })
}

/// Creates `dir` (mode 0700) if needed, gives it to `user` when the host runs
/// as root, and returns its resolved path.
fn private_dir_for(dir: &Path, user: ContainerUser) -> Result<PathBuf, MountError> {
    let fail = |source| MountError::Prepare {
        path: dir.to_owned(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let resolved = resolve(dir)?;
    let meta = std::fs::metadata(&resolved).map_err(fail)?;
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != user.uid {
        // Only possible (and only needed) when the host runs as root.
        std::os::unix::fs::chown(&resolved, Some(user.uid), Some(user.gid)).map_err(fail)?;
        std::fs::set_permissions(&resolved, std::fs::Permissions::from_mode(0o700))
            .map_err(fail)?;
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_binds_are_non_recursive_and_writable_ones_are_not() {
        let ro = ValidatedMount {
            source: "/a".into(),
            target: "/b".into(),
            read_only: true,
        }
        .to_engine_mount();
        assert_eq!(ro.read_only, Some(true));
        assert_eq!(ro.bind_options.unwrap().non_recursive, Some(true));
        let rw = ValidatedMount {
            source: "/a".into(),
            target: "/b".into(),
            read_only: false,
        }
        .to_engine_mount();
        assert_eq!(rw.read_only, Some(false));
        assert_eq!(rw.bind_options.unwrap().non_recursive, Some(false));
    }

    #[test]
    fn invocation_mounts_create_private_group_folders() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let socket = root.path().join("sock");
        std::fs::write(&socket, "").unwrap();
        let group = GroupName::new("family").unwrap();
        let user = ContainerUser::for_this_host();
        let mounts = invocation_mounts(&paths, &group, user, &socket).unwrap();
        let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
        assert_eq!(
            targets,
            [
                (GROUP_TARGET, false),
                (SESSION_TARGET, false),
                (pincer_protocol::HOST_SOCKET_PATH, true)
            ]
        );
        let meta = std::fs::metadata(paths.group_dir(&group)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.uid(), user.uid);
        assert!(mounts[0].source().is_absolute());
    }
}
