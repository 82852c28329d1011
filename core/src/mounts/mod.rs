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
//! What a group gets:
//!
//! | container path | host | main | other groups |
//! |---|---|---|---|
//! | `/workspace/group` | the group's own folder | rw | rw |
//! | `/workspace/session` | the group's session folder | rw | rw |
//! | `/workspace/global` | the shared memory folder | rw | ro |
//! | `/workspace/project` | the project's code, secrets shadowed | ro | — |
//! | `/workspace/extra/<name>` | what the allowlist grants ([`policy`]) | as granted | ro unless the allowlist says otherwise |
//! | `/run/pincer/host.sock` | the invocation's own socket | ro | ro |
//!
//! Nothing of one group is ever mounted into another group's container: the
//! only per-group paths come from the group's own name.
//!
//! This module knows nothing about the engine's connection or about containers'
//! lifetimes; the sandbox knows nothing about which paths are allowed.
#![allow(clippy::disallowed_types)] // the owner of bollard::models::Mount

pub mod policy;
mod shadow;

use std::path::{Path, PathBuf};

use bollard::models::{Mount, MountBindOptions, MountType};

use crate::beneath::{BeneathError, Folder, Identity, identity_of};
use crate::group::GroupName;
use crate::paths::Paths;
use crate::staging::{self, Manifest, StageLimits, StagingError};

pub use policy::{Denial, HostFacts, MountPolicy, MountRequest, PolicyError, Writes};
pub use shadow::{SCAN_LIMIT, Secret, scan as scan_secrets};

/// Where the group's own folder appears in the container.
pub const GROUP_TARGET: &str = "/workspace/group";
/// Where the group's session folder appears in the container.
pub const SESSION_TARGET: &str = "/workspace/session";
/// Where the shared memory folder appears in the container.
pub const GLOBAL_TARGET: &str = "/workspace/global";
/// Where the project's code appears in the main group's container.
pub const PROJECT_TARGET: &str = "/workspace/project";
/// Where extra mounts appear in the container.
pub const EXTRA_TARGET: &str = "/workspace/extra";

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
    /// A folder could not be prepared without following a link.
    #[error(transparent)]
    Beneath(#[from] BeneathError),
    /// The allowlist could not be read.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// An extra mount was refused; the invocation does not start.
    #[error("extra mount refused: {0}")]
    Denied(#[from] Denial),
    /// Two extra mounts want the same container path.
    #[error("two extra mounts want the same container path {0}")]
    DuplicateTarget(String),
    /// A folder to mount is too large to scan for secret files.
    #[error(
        "{path} has more than {limit} entries to scan for secret files: mount a narrower folder"
    )]
    TooLargeToScan {
        /// The folder.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// A read-write grant could not be copied for staging.
    #[error("cannot stage a copy: {0}")]
    Staging(StagingError),
    /// A folder to mount nests deeper than can be scanned for secret files.
    #[error("{path} nests folders too deep to scan for secret files: mount a narrower folder")]
    TooDeepToScan {
        /// The folder.
        path: PathBuf,
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
    /// The uid and gid a container runs as when the host runs as root: one
    /// that no host account has, so that no login shares the agent's
    /// identity (and with it `/proc/<pid>/root` of a running agent, or the
    /// files it writes). 65530 lies in 65000–65533, which Debian's policy
    /// reserves and never hands out, above systemd's dynamic users
    /// (61184–65519), and below 65536, so that a user namespace of the usual
    /// 65536 ids can map it. [`Self::host_account`] checks that it is free
    /// here, through the system's user database (files, LDAP, systemd).
    pub const UNPRIVILEGED: Self = Self {
        uid: 65_530,
        gid: 65_530,
    };

    /// The host's own user when it is not root (so that files the agent
    /// writes belong to the owner), else [`Self::UNPRIVILEGED`].
    pub fn for_this_host() -> Self {
        let me = Self::effective();
        if me.uid == 0 { Self::UNPRIVILEGED } else { me }
    }

    /// This process's own effective uid and gid.
    pub fn effective() -> Self {
        #[allow(unsafe_code)]
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        Self { uid, gid }
    }

    /// The host account or group that has this uid or gid, as `"user NAME"`
    /// or `"group NAME"`, asked of the system's user database (NSS: files,
    /// LDAP, SSSD, systemd's dynamic users alike).
    pub fn host_account(&self) -> Option<String> {
        lookup_user(self.uid)
            .map(|name| format!("user {name}"))
            .or_else(|| lookup_group(self.gid).map(|name| format!("group {name}")))
    }

    /// `uid:gid`, as the engine wants it.
    pub fn spec(&self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }
}

/// The name of the account with `uid`, if the user database has one.
#[allow(unsafe_code)]
fn lookup_user(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: `passwd` is plain data that getpwuid_r fills in; the buffer and
    // the out-pointer live across the call, and `found` is null or points at
    // `entry`, whose strings point into `buffer`, read before either is dropped.
    unsafe {
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        );
        (rc == 0 && !found.is_null() && !entry.pw_name.is_null()).then(|| {
            std::ffi::CStr::from_ptr(entry.pw_name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// The name of the group with `gid`, if the user database has one.
#[allow(unsafe_code)]
fn lookup_group(gid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 64 * 1024];
    // SAFETY: as in `lookup_user`, with getgrgid_r and `group`.
    unsafe {
        let mut entry: libc::group = std::mem::zeroed();
        let mut found: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(
            gid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        );
        (rc == 0 && !found.is_null() && !entry.gr_name.is_null()).then(|| {
            std::ffi::CStr::from_ptr(entry.gr_name)
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// A bind mount whose host side was prepared and resolved by this module.
///
/// `identity` is the device and inode of what was checked, taken without
/// following any link: the engine binds a path, and a path can be swapped
/// (by an agent that can write one of its parents) between the check and
/// the bind. The sandbox compares what the container really got with it
/// before the agent is given anything (SECURITY.md, "Side doors").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ValidatedMount {
    source: PathBuf,
    target: String,
    read_only: bool,
    identity: Identity,
    /// For a cover: the folder its target lies in, as the scan saw it.
    within: Option<Identity>,
    /// A read-write grant whose writes go to a staged copy: `source` is
    /// the real folder until [`invocation_mounts`] swaps in the copy.
    staged: bool,
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

    /// The device and inode the container must see at [`Self::target`].
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// Whether its writes are staged for the owner's review.
    pub fn staged(&self) -> bool {
        self.staged
    }

    /// For a cover, the device and inode the container must see at the
    /// folder holding [`Self::target`].
    pub fn within(&self) -> Option<Identity> {
        self.within
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

/// Everything that decides one invocation's mounts.
#[derive(Debug, Clone, Copy)]
pub struct MountPlan<'a> {
    /// The group.
    pub group: &'a GroupName,
    /// Who the container runs as (the folders are handed to them).
    pub user: ContainerUser,
    /// The invocation's socket on the host.
    pub host_socket: &'a Path,
    /// The project's code (mounted for the main group only).
    pub project: Option<&'a Path>,
    /// The group's extra mount requests.
    pub extra: &'a [MountRequest],
    /// The policy in force (loaded right before the container is created).
    pub policy: &'a MountPolicy,
    /// The owner's home, for `~` in requests.
    pub home: Option<&'a Path>,
    /// Where this invocation's staged copies go (one folder per grant,
    /// created here), and how large each may be.
    pub staging: &'a Path,
    /// The limits of each staged copy.
    pub stage_limits: StageLimits,
}

/// One invocation's mounts, and the grants left out of it.
#[derive(Debug)]
pub struct InvocationMounts {
    /// In the order the table in the module docs gives.
    pub mounts: Vec<ValidatedMount>,
    /// Folders too large or too deep to scan for secrets: not mounted, and
    /// the caller tells the owner (a message each, naming the folder and the
    /// remedy).
    pub left_out: Vec<String>,
    /// The read-write grants the agent writes to copies of, for the
    /// caller to compare when the container is gone.
    pub staged: Vec<StagedGrant>,
}

/// A grant the agent sees as a copy.
#[derive(Debug)]
pub struct StagedGrant {
    /// The real folder.
    pub real: PathBuf,
    /// Where the agent saw it.
    pub target: String,
    /// The folder holding the copy (`tree/` in it) and nothing the agent
    /// can reach besides.
    pub folder: PathBuf,
    /// What was copied.
    pub manifest: Manifest,
}

impl StagedGrant {
    /// The copy the agent wrote to.
    pub fn tree(&self) -> PathBuf {
        self.folder.join("tree")
    }
}

/// The mounts of one invocation. Any refused extra mount fails the whole
/// invocation: a grant never silently goes missing. A folder too large or
/// too deep to scan for secrets is left out, and said so in `left_out`: it could hold
/// anything, and an agent that can grow it must not stop its group.
pub fn invocation_mounts(
    paths: &Paths,
    plan: &MountPlan<'_>,
) -> Result<InvocationMounts, MountError> {
    let is_main = plan.group.is_main();
    // Decide the extra mounts first: a refusal leaves nothing behind.
    let mut extra = Vec::with_capacity(plan.extra.len());
    for request in plan.extra {
        let mount = plan.policy.check(request, is_main, plan.home)?;
        if extra
            .iter()
            .any(|m: &ValidatedMount| m.target == mount.target)
        {
            return Err(MountError::DuplicateTarget(mount.target));
        }
        extra.push(mount);
    }

    let mut mounts = vec![
        private_dir_for(&paths.group_dir(plan.group), plan.user, GROUP_TARGET, false)?,
        private_dir_for(
            &paths.session_dir(plan.group),
            plan.user,
            SESSION_TARGET,
            false,
        )?,
        private_dir_for(&paths.global_dir(), plan.user, GLOBAL_TARGET, !is_main)?,
    ];
    let shadows = shadow::Shadows::prepare(&paths.run_dir().join("shadow"))?;
    let mut left_out = Vec::new();
    if let (true, Some(project)) = (is_main, plan.project) {
        let project = resolve(project)?;
        // The project is the owner's choice, not a request, but it must not
        // carry Pincer's own state or the engine's socket in with it.
        if let Some(protected) = plan.policy.protected_path_at(&project) {
            return Err(MountError::Denied(policy::Denial {
                host_path: project.display().to_string(),
                reason: format!(
                    "the project folder is or contains the protected path {} (set project_dir to another folder, or none)",
                    protected.display()
                ),
            }));
        }
        let project = ValidatedMount {
            identity: identity_of(&project)?,
            source: project,
            target: PROJECT_TARGET.into(),
            read_only: true,
            within: None,
            staged: false,
        };
        if let Some(covers) = covered(&shadows, &project, plan.policy, &mut left_out)? {
            mounts.push(project);
            mounts.extend(covers);
        }
    }
    let mut staged = Vec::new();
    for mut mount in extra {
        if mount.staged {
            match stage_copy(&mount, plan, staged.len())? {
                Ok(grant) => {
                    mount.identity = identity_of(&grant.tree())?;
                    mount.source = resolve(&grant.tree())?;
                    staged.push(grant);
                }
                Err(note) => {
                    left_out.push(note);
                    continue;
                }
            }
        }
        let covers = if mount.source.is_dir() {
            match covered(&shadows, &mount, plan.policy, &mut left_out)? {
                Some(covers) => covers,
                None => continue,
            }
        } else {
            Vec::new()
        };
        mounts.push(mount);
        mounts.extend(covers);
    }
    let socket = resolve(plan.host_socket)?;
    hand_over_socket(&socket, plan.user)?;
    mounts.push(ValidatedMount {
        identity: identity_of(&socket)?,
        source: socket,
        target: pincer_protocol::HOST_SOCKET_PATH.into(),
        read_only: true,
        within: None,
        staged: false,
    });
    Ok(InvocationMounts {
        mounts,
        left_out,
        staged,
    })
}

/// The staged copy of `mount`'s folder, the `index`th of the invocation;
/// `Err(note)` when it is too large or deep to copy (the grant is left
/// out, never mounted directly instead).
fn stage_copy(
    mount: &ValidatedMount,
    plan: &MountPlan<'_>,
    index: usize,
) -> Result<Result<StagedGrant, String>, MountError> {
    let folder = plan.staging.join(index.to_string());
    Folder::create(&folder, 0o700)?;
    let tree = folder.join("tree");
    let secret = |path: &str| plan.policy.blocks_below(path);
    match staging::stage(
        &mount.source,
        mount.identity,
        &tree,
        (plan.user.uid, plan.user.gid),
        &secret,
        plan.stage_limits,
    ) {
        Ok(manifest) => Ok(Ok(StagedGrant {
            real: mount.source.clone(),
            target: mount.target.clone(),
            folder,
            manifest,
        })),
        Err(err @ (StagingError::TooLarge { .. } | StagingError::TooDeep { .. })) => {
            staging::discard(&folder).map_err(MountError::Staging)?;
            Ok(Err(format!("{} was left out: {err}", mount.target)))
        }
        Err(err) => {
            let _ = staging::discard(&folder);
            Err(MountError::Staging(err))
        }
    }
}

/// The invocation's socket belongs to the container's user alone (mode
/// 0600): no other uid on the host may talk to the host as this agent, even
/// through `/proc/<pid>/root` of the running container.
fn hand_over_socket(socket: &Path, user: ContainerUser) -> Result<(), MountError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let fail = |source| MountError::Prepare {
        path: socket.to_owned(),
        source,
    };
    let meta = std::fs::symlink_metadata(socket).map_err(fail)?;
    if (meta.uid(), meta.gid()) != (user.uid, user.gid) {
        std::os::unix::fs::lchown(socket, Some(user.uid), Some(user.gid)).map_err(fail)?;
    }
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(fail)
}

/// The covers of `mount`'s secrets, or `None` (and a note in `left_out`)
/// when it is too large to scan.
fn covered(
    shadows: &shadow::Shadows,
    mount: &ValidatedMount,
    policy: &MountPolicy,
    left_out: &mut Vec<String>,
) -> Result<Option<Vec<ValidatedMount>>, MountError> {
    match shadows.cover(mount, policy) {
        Ok(covers) => Ok(Some(covers)),
        Err(err @ (MountError::TooLargeToScan { .. } | MountError::TooDeepToScan { .. })) => {
            left_out.push(format!("{} was left out: {err}", mount.target));
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

fn resolve(path: &Path) -> Result<PathBuf, MountError> {
    path.canonicalize().map_err(|source| MountError::Prepare {
        path: path.to_owned(),
        source,
    })
}

/// Creates `dir` (mode 0700) if needed and gives it to `user` when the host
/// runs as root: the folder and, the first time (a folder that belonged to
/// another uid, such as one from before the container's uid changed),
/// everything in it, never following a link the agent left there.
fn private_dir_for(
    dir: &Path,
    user: ContainerUser,
    target: &str,
    read_only: bool,
) -> Result<ValidatedMount, MountError> {
    let folder = Folder::create(dir, 0o700)?;
    if folder.owner()? != (user.uid, user.gid) {
        // Only possible (and only needed) when the host runs as root.
        folder.chown_all(user.uid, user.gid)?;
        folder.set_mode(0o700)?;
    }
    Ok(ValidatedMount {
        source: resolve(dir)?,
        target: target.into(),
        read_only,
        identity: folder.identity()?,
        within: None,
        staged: false,
    })
}

#[cfg(test)]
mod tests;
