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

pub use policy::{Denial, HostFacts, MountPolicy, MountRequest, PolicyError};
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
        #[allow(unsafe_code)]
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid == 0 {
            Self::UNPRIVILEGED
        } else {
            Self { uid, gid }
        }
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
        };
        if let Some(covers) = covered(&shadows, &project, plan.policy, &mut left_out)? {
            mounts.push(project);
            mounts.extend(covers);
        }
    }
    for mount in extra {
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
    });
    Ok(InvocationMounts { mounts, left_out })
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_user_database_names_taken_ids_and_the_agents_id_is_free() {
        let root = ContainerUser { uid: 0, gid: 0 };
        assert_eq!(root.host_account().as_deref(), Some("user root"));
        assert_eq!(ContainerUser::UNPRIVILEGED.host_account(), None);
    }

    #[test]
    fn read_only_binds_are_non_recursive_and_writable_ones_are_not() {
        let identity = Identity { dev: 1, ino: 2 };
        let ro = ValidatedMount {
            source: "/a".into(),
            target: "/b".into(),
            read_only: true,
            identity,
            within: None,
        }
        .to_engine_mount();
        assert_eq!(ro.read_only, Some(true));
        assert_eq!(ro.bind_options.unwrap().non_recursive, Some(true));
        let rw = ValidatedMount {
            source: "/a".into(),
            target: "/b".into(),
            read_only: false,
            identity,
            within: None,
        }
        .to_engine_mount();
        assert_eq!(rw.read_only, Some(false));
        assert_eq!(rw.bind_options.unwrap().non_recursive, Some(false));
    }

    fn plan<'a>(
        group: &'a GroupName,
        socket: &'a Path,
        project: Option<&'a Path>,
        policy: &'a MountPolicy,
    ) -> MountPlan<'a> {
        MountPlan {
            group,
            user: ContainerUser::for_this_host(),
            host_socket: socket,
            project,
            extra: &[],
            policy,
            home: None,
        }
    }

    fn no_policy(root: &Path) -> MountPolicy {
        MountPolicy::load(&HostFacts {
            home: None,
            config_dir: root.join("config"),
            data_dir: root.join("home"),
            engine_sockets: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn invocation_mounts_create_private_group_folders() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let socket = root.path().join("sock");
        std::fs::write(&socket, "").unwrap();
        let group = GroupName::new("family").unwrap();
        let policy = no_policy(root.path());
        let mounts = invocation_mounts(&paths, &plan(&group, &socket, None, &policy))
            .unwrap()
            .mounts;
        let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
        assert_eq!(
            targets,
            [
                (GROUP_TARGET, false),
                (SESSION_TARGET, false),
                (GLOBAL_TARGET, true),
                (pincer_protocol::HOST_SOCKET_PATH, true)
            ]
        );
        let meta = std::fs::metadata(paths.group_dir(&group)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(meta.uid(), ContainerUser::for_this_host().uid);
        assert!(mounts[0].source().is_absolute());
    }

    #[test]
    fn main_gets_the_project_with_secrets_shadowed_and_others_do_not() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let socket = root.path().join("sock");
        std::fs::write(&socket, "").unwrap();
        let project = root.path().join("project");
        for dir in [
            "src",
            "deploy/.ssh",
            "target/x",
            "node_modules/m",
            "config",
            ".git",
            "envs/prod",
        ] {
            std::fs::create_dir_all(project.join(dir)).unwrap();
        }
        for file in [
            ".env",
            "src/main.rs",
            "src/.env.local",
            "deploy/credentials.json",
            "target/x/.env",
            "node_modules/m/.env",
            ".git/config",
            "config/prod",
            "envs/prod/settings",
        ] {
            std::fs::write(project.join(file), "x").unwrap();
        }
        // A secret's name on a link: what it leads to is covered; a link out
        // of the project dangles in the container and needs no cover.
        std::os::unix::fs::symlink("config/prod", project.join(".env.production")).unwrap();
        std::os::unix::fs::symlink(&socket, project.join("src/.secret")).unwrap();
        // A chain of links is followed as the container follows it; a loop is nothing.
        std::os::unix::fs::symlink("prod", project.join("envs/current")).unwrap();
        std::os::unix::fs::symlink("envs/current/settings", project.join(".env.chain")).unwrap();
        std::os::unix::fs::symlink("b", project.join("a")).unwrap();
        std::os::unix::fs::symlink("a", project.join("b")).unwrap();
        std::os::unix::fs::symlink("a", project.join(".env.loop")).unwrap();
        // An absolute link is read as the container reads it.
        std::os::unix::fs::symlink(
            "/workspace/project/src/main.rs",
            project.join("src/.env.abs"),
        )
        .unwrap();
        let policy = no_policy(root.path());
        let main = GroupName::main();
        let mounts = invocation_mounts(&paths, &plan(&main, &socket, Some(&project), &policy))
            .unwrap()
            .mounts;
        let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
        assert_eq!(
            targets,
            [
                (GROUP_TARGET, false),
                (SESSION_TARGET, false),
                (GLOBAL_TARGET, false),
                (PROJECT_TARGET, true),
                ("/workspace/project/.env", true),
                ("/workspace/project/.git/config", true),
                ("/workspace/project/config/prod", true),
                ("/workspace/project/deploy/.ssh", true),
                ("/workspace/project/deploy/credentials.json", true),
                ("/workspace/project/envs/prod/settings", true),
                ("/workspace/project/node_modules/m/.env", true),
                ("/workspace/project/src/.env.local", true),
                ("/workspace/project/src/main.rs", true),
                ("/workspace/project/target/x/.env", true),
                (pincer_protocol::HOST_SOCKET_PATH, true)
            ]
        );
        // The shadows are empty.
        assert_eq!(std::fs::metadata(mounts[4].source()).unwrap().len(), 0);
        assert_eq!(std::fs::metadata(mounts[5].source()).unwrap().len(), 0);
        assert!(mounts[7].source().is_dir());
        assert_eq!(std::fs::read_dir(mounts[7].source()).unwrap().count(), 0);

        let family = GroupName::new("family").unwrap();
        let mounts = invocation_mounts(&paths, &plan(&family, &socket, Some(&project), &policy))
            .unwrap()
            .mounts;
        assert!(
            mounts
                .iter()
                .all(|m| !m.target().starts_with(PROJECT_TARGET))
        );
    }

    #[test]
    fn a_project_holding_pincers_own_state_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let socket = root.path().join("sock");
        std::fs::write(&socket, "").unwrap();
        std::fs::create_dir_all(root.path().join("config")).unwrap();
        let policy = no_policy(root.path());
        let main = GroupName::main();
        // The folder that holds the config folder (as `~` would).
        let err = invocation_mounts(&paths, &plan(&main, &socket, Some(root.path()), &policy))
            .unwrap_err()
            .to_string();
        assert!(err.contains("protected path"), "{err}");
        assert!(err.contains("config"), "{err}");
    }

    #[test]
    fn a_granted_folder_gets_its_secrets_shadowed_too() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let socket = root.path().join("sock");
        std::fs::write(&socket, "").unwrap();
        let code = root.path().join("code");
        std::fs::create_dir_all(code.join("app")).unwrap();
        std::fs::write(code.join("app/.env"), "TOKEN=x").unwrap();
        std::fs::write(code.join("app/main.py"), "print()").unwrap();
        let facts = HostFacts {
            home: None,
            config_dir: root.path().join("config"),
            data_dir: root.path().join("home"),
            engine_sockets: Vec::new(),
        };
        let policy = MountPolicy::parse(
            &format!(r#"{{"allowed_roots": [{{"path": "{}"}}]}}"#, code.display()),
            Path::new("allowlist.json"),
            &facts,
        )
        .unwrap();
        let main = GroupName::main();
        let extra = [MountRequest {
            host_path: code.display().to_string(),
            container_name: None,
            read_write: false,
        }];
        let mounts = invocation_mounts(
            &paths,
            &MountPlan {
                extra: &extra,
                ..plan(&main, &socket, None, &policy)
            },
        )
        .unwrap()
        .mounts;
        let targets: Vec<_> = mounts.iter().map(|m| (m.target(), m.read_only())).collect();
        assert_eq!(
            targets[3..],
            [
                ("/workspace/extra/code", true),
                ("/workspace/extra/code/app/.env", true),
                (pincer_protocol::HOST_SOCKET_PATH, true)
            ]
        );
        assert_eq!(std::fs::metadata(mounts[4].source()).unwrap().len(), 0);
    }

    #[test]
    fn a_wide_folder_is_scanned_and_one_nested_too_deep_is_left_out() {
        let root = tempfile::tempdir().unwrap();
        let paths = Paths::under(root.path());
        let socket = root.path().join("sock");
        std::fs::write(&socket, "").unwrap();
        let (wide, deep) = (root.path().join("wide"), root.path().join("deep"));
        for i in 0..1100 {
            std::fs::create_dir_all(wide.join(format!("{i}"))).unwrap();
        }
        std::fs::write(wide.join("1099/.env"), "x").unwrap();
        let mut nested = deep.clone();
        for _ in 0..=crate::beneath::MAX_DEPTH {
            nested.push("d");
        }
        std::fs::create_dir_all(&nested).unwrap();
        let facts = HostFacts {
            home: None,
            config_dir: root.path().join("config"),
            data_dir: root.path().join("home"),
            engine_sockets: Vec::new(),
        };
        let allow = format!(
            r#"{{"allowed_roots": [{{"path": "{}"}}, {{"path": "{}"}}]}}"#,
            wide.display(),
            deep.display()
        );
        let policy = MountPolicy::parse(&allow, Path::new("allowlist.json"), &facts).unwrap();
        let request = |path: &Path| MountRequest {
            host_path: path.display().to_string(),
            container_name: None,
            read_write: false,
        };
        let extra = [request(&wide), request(&deep)];
        let main = GroupName::main();
        let mounts = invocation_mounts(
            &paths,
            &MountPlan {
                extra: &extra,
                ..plan(&main, &socket, None, &policy)
            },
        )
        .unwrap();
        let targets: Vec<_> = mounts.mounts.iter().map(|m| m.target()).collect();
        assert_eq!(
            targets[3..],
            [
                "/workspace/extra/wide",
                "/workspace/extra/wide/1099/.env",
                pincer_protocol::HOST_SOCKET_PATH
            ]
        );
        assert_eq!(mounts.left_out.len(), 1);
        assert!(
            mounts.left_out[0].contains("too deep"),
            "{:?}",
            mounts.left_out
        );
    }
}
