//! Which engine Pincer talks to, what it can enforce, and how a container's
//! users map to the host's.
//!
//! Docker and Podman serve the same API, so one client serves both; what
//! differs is decided here and nowhere else:
//!
//! - **where** the engine listens: `DOCKER_HOST`, else the first socket that
//!   exists among the usual places ([`EngineEndpoint::detect`]);
//! - **user namespaces**: rootful Podman gives each container its own, with
//!   the uids and gids from the range `/etc/subuid` and `/etc/subgid` give
//!   the name `pincer` ([`SUBORDINATE_NAME`]): the container's root is the
//!   range's first uid, and the agent (65530 inside) is the range's start +
//!   65530 on the host, which no account has. The range is Pincer's alone
//!   (Podman's own `userns=auto` takes from the `containers` line), and the
//!   same for every container, so the group folders keep one owner across
//!   invocations: the host hands them to [`EngineProfile::host_user`].
//!   Rootless Podman maps the agent's uid to the owner's (`keep-id`), the
//!   rest to the owner's subordinate ids. Docker's engine has no
//!   per-container user namespace (its daemon-wide `userns-remap` is
//!   SECURITY.md's matter);
//! - **fail closed**: an engine that cannot enforce a limit of the spec is
//!   refused when Pincer connects ([`EngineProfile::missing_controls`]), and a
//!   created container whose limits or user mapping are not what was asked
//!   is removed before the agent is given anything ([`check_created`],
//!   [`check_id_maps`]): some engines drop a limit with only a warning
//!   (rootless on cgroup v1), and Podman's own report of its controls is not
//!   to be trusted there.
#![allow(clippy::disallowed_types)] // reads back the HostConfig a container was created with

use std::path::{Path, PathBuf};

use bollard::models::{HostConfig, ResourcesUlimits, SystemInfo, SystemVersion};

use super::spec::ContainerSpec;
use crate::mounts::ContainerUser;

mod ids;

pub(super) use ids::check_id_maps;
#[cfg(test)]
use ids::{Expected, judge_id_maps};
pub use ids::{IdRange, SUBORDINATE_NAME, parse_id_map};

/// Where the container engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEndpoint(pub(super) String);

/// The sockets looked for when `DOCKER_HOST` is not set, in order: the
/// system's Docker, the system's Podman, then the user's own (rootless).
/// Root gets only the system's: a per-user runtime folder (an inherited
/// XDG_RUNTIME_DIR) is that user's to plant a socket in.
pub fn socket_candidates(uid: u32, xdg_runtime_dir: Option<&str>) -> Vec<PathBuf> {
    let mut candidates = vec![
        PathBuf::from("/var/run/docker.sock"),
        PathBuf::from("/run/podman/podman.sock"),
    ];
    if uid == 0 {
        return candidates;
    }
    let runtime = xdg_runtime_dir
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
    candidates.push(runtime.join("podman/podman.sock"));
    candidates.push(runtime.join("docker.sock"));
    candidates
}

impl EngineEndpoint {
    /// `DOCKER_HOST` if set (`unix://…`, `tcp://…`, `http://…`), else the
    /// local Docker socket.
    pub fn from_docker_host(docker_host: Option<String>) -> Self {
        Self(
            docker_host
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
        )
    }

    /// `DOCKER_HOST` if set, else the first of [`socket_candidates`] that
    /// is a socket here, else the local Docker socket (whose absence the
    /// connection then reports, with the places looked at).
    pub fn detect(docker_host: Option<String>, xdg_runtime_dir: Option<&str>) -> Self {
        if docker_host.as_deref().is_some_and(|h| !h.is_empty()) {
            return Self::from_docker_host(docker_host);
        }
        let found = socket_candidates(ContainerUser::effective().uid, xdg_runtime_dir)
            .into_iter()
            .find(|path| is_socket(path));
        match found {
            Some(path) => Self(format!("unix://{}", path.display())),
            None => Self::from_docker_host(None),
        }
    }

    /// The engine's socket on this host, if it listens on one.
    pub fn unix_socket(&self) -> Option<PathBuf> {
        self.0.strip_prefix("unix://").map(PathBuf::from)
    }
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}

impl std::fmt::Display for EngineEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Docker,
    Podman,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
        })
    }
}

/// What Pincer knows of the engine it is connected to, and decides from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineProfile {
    pub kind: EngineKind,
    /// The engine runs as an ordinary user (its containers' root is that user).
    pub rootless: bool,
    /// The controls the engine says it lacks (memory, pids, cpu, swap).
    pub missing: Vec<&'static str>,
    /// The host ids the containers' users map to (rootful Podman).
    pub range: Option<IdRange>,
    /// The OCI runtime a container gets when it names none.
    pub default_runtime: String,
}

/// Reads a system file whose absence means "nothing in it".
fn read_system_file(path: &str) -> Result<String, WeakEngine> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(err) => Err(WeakEngine {
            what: format!("cannot read {path}: {err}"),
            hint: "Pincer reads it to place its containers' users".into(),
        }),
    }
}

/// The profile of the engine that answered `version` and `info`, or why no
/// agent may run on it: a control it lacks, or (rootful Podman) no
/// `pincer` range, one too small, or one that another user, Podman's own
/// containers or an account has ids of.
pub(super) fn profile_of(
    version: &SystemVersion,
    info: &SystemInfo,
) -> Result<EngineProfile, WeakEngine> {
    let euid = ContainerUser::effective().uid;
    let subuid = read_system_file("/etc/subuid")?;
    let subgid = read_system_file("/etc/subgid")?;
    let profile = EngineProfile::read(version, info, euid, IdRange::from_files(&subuid, &subgid));
    let user = ContainerUser::for_this_host();
    if let Some(weak) = profile
        .missing_controls()
        .or_else(|| profile.missing_range(user))
    {
        return Err(weak);
    }
    let Some(range) = profile.range else {
        return Ok(profile);
    };
    let mut conflicts = range.conflicts(
        &subuid,
        &subgid,
        &read_system_file("/etc/passwd")?,
        &read_system_file("/etc/group")?,
    );
    // The ids that matter most, asked of every user database (LDAP too).
    let root = ContainerUser {
        uid: range.uid,
        gid: range.gid,
    };
    for ids in [root, profile.host_user(user)] {
        if let Some(account) = ids.host_account() {
            conflicts.push(format!("the {account} has id {} of it", ids.spec()));
        }
    }
    if conflicts.is_empty() {
        return Ok(profile);
    }
    Err(WeakEngine {
        what: format!(
            "the `{SUBORDINATE_NAME}` range of /etc/subuid and /etc/subgid is not Pincer's alone: {}",
            conflicts.join("; ")
        ),
        hint: format!(
            "give `{SUBORDINATE_NAME}` ids no account, group or other subordinate range has \
             (e.g. `{SUBORDINATE_NAME}:2000000:65536` in both files, if that is free)"
        ),
    })
}

impl EngineProfile {
    /// Read from the engine's `/version` and `/info`. Podman names itself
    /// among the version's components. Rootless Docker says so in its
    /// security options; Podman's Docker-compatible `/info` does not, so a
    /// Podman reached by a host process that is not root is taken as that
    /// user's rootless Podman. Taken wrongly either way, the container's
    /// maps are not what is expected, and [`check_id_maps`] refuses it.
    pub fn read(
        version: &SystemVersion,
        info: &SystemInfo,
        host_euid: u32,
        range: Option<IdRange>,
    ) -> Self {
        let podman = version
            .components
            .iter()
            .flatten()
            .any(|component| component.name.to_ascii_lowercase().contains("podman"));
        let kind = if podman {
            EngineKind::Podman
        } else {
            EngineKind::Docker
        };
        let rootless = match kind {
            EngineKind::Docker => info
                .security_options
                .iter()
                .flatten()
                .any(|option| option.split(',').any(|part| part == "name=rootless")),
            EngineKind::Podman => host_euid != 0,
        };
        let missing = [
            ("memory", info.memory_limit),
            ("swap", info.swap_limit),
            ("pids", info.pids_limit),
            ("cpu", info.cpu_cfs_quota),
        ]
        .into_iter()
        .filter(|(_, has)| *has == Some(false))
        .map(|(name, _)| name)
        .collect();
        let range = (kind == EngineKind::Podman && !rootless)
            .then_some(range)
            .flatten();
        Self {
            kind,
            rootless,
            missing,
            range,
            default_runtime: info.default_runtime.clone().unwrap_or_default(),
        }
    }

    /// Podman's Docker-compatible API ignores a container's runtime (4.3
    /// creates it under the default whatever was asked): there, a runtime
    /// other than the default is refused rather than silently not had.
    pub fn check_runtime(&self, runtime: Option<&str>) -> Result<(), WeakEngine> {
        match runtime {
            Some(asked) if self.kind == EngineKind::Podman && asked != self.default_runtime => {
                Err(WeakEngine {
                    what: format!(
                        "Podman's Docker-compatible API does not pass a container's runtime: \
                         `{asked}` was asked, and the container would run under `{}`",
                        self.default_runtime
                    ),
                    hint: format!(
                        "make {asked} Podman's default (`runtime = \"{asked}\"` under [engine] in \
                         /etc/containers/containers.conf, then restart the service), or unset the runtime setting"
                    ),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether the engine needs Pincer's subordinate range and it is not
    /// there, or too small for `user`: a refusal, naming the fix.
    pub fn missing_range(&self, user: ContainerUser) -> Option<WeakEngine> {
        if self.kind != EngineKind::Podman || self.rootless {
            return None;
        }
        let needed = user.uid.max(user.gid) + 1;
        match self.range {
            Some(range)
                if range.count >= needed
                    && range.uid.checked_add(needed).is_some()
                    && range.gid.checked_add(needed).is_some() =>
            {
                None
            }
            found => Some(WeakEngine {
                what: match found {
                    Some(range) => format!(
                        "the `{SUBORDINATE_NAME}` range in /etc/subuid or /etc/subgid has {} ids; \
                         the agent's uid {} needs {needed}",
                        range.count, user.uid
                    ),
                    None => format!(
                        "rootful Podman gives each agent container a user namespace, mapped to \
                         the `{SUBORDINATE_NAME}` range of /etc/subuid and /etc/subgid, and there is none"
                    ),
                },
                hint: format!(
                    "add a range no other user has, of at least 65536 ids, to both files: \
                     `echo {SUBORDINATE_NAME}:2000000:65536 | sudo tee -a /etc/subuid /etc/subgid`"
                ),
            }),
        }
    }

    /// Who the container's `user` is on the host: the owner of its folders
    /// and of its socket.
    pub fn host_user(&self, user: ContainerUser) -> ContainerUser {
        match self.range {
            Some(range) => ContainerUser {
                uid: range.uid.saturating_add(user.uid),
                gid: range.gid.saturating_add(user.gid),
            },
            None => user,
        }
    }

    /// The controls the engine lacks, as a refusal; `None` when it has all.
    pub fn missing_controls(&self) -> Option<WeakEngine> {
        (!self.missing.is_empty()).then(|| WeakEngine {
            what: format!(
                "the engine cannot enforce the container's {} limit{}",
                self.missing.join(", "),
                if self.missing.len() == 1 { "" } else { "s" }
            ),
            hint: way_out(self.rootless).into(),
        })
    }

    /// The engine's `UsernsMode` for a container running as `user`.
    /// Rootful: one contiguous mapping from 0 through the agent's id (a
    /// mapping with a hole in it fails in Podman's overlay storage).
    pub fn userns_mode(&self, user: ContainerUser) -> Option<String> {
        match (self.kind, self.rootless, self.range) {
            (EngineKind::Docker, _, _) => None,
            (EngineKind::Podman, true, _) => Some("keep-id".into()),
            (EngineKind::Podman, false, Some(range)) => Some(format!(
                "auto:uidmapping=0:{}:{n},gidmapping=0:{}:{n}",
                range.uid,
                range.gid,
                n = user.uid.max(user.gid) + 1,
            )),
            // Refused at connect (missing_range); never a container without one.
            (EngineKind::Podman, false, None) => Some("auto".into()),
        }
    }

    /// Whether a container of this engine must show a user namespace.
    pub fn maps_users(&self) -> bool {
        self.kind == EngineKind::Podman
    }

    /// One line for `pincer doctor`.
    pub fn describe(&self) -> String {
        let mode = if self.rootless { "rootless" } else { "rootful" };
        let users = match (self.kind, self.rootless) {
            (EngineKind::Docker, false) => {
                "no per-container user namespace (SECURITY.md: userns-remap)"
            }
            (EngineKind::Docker, true) => "the engine's user namespace (container root is you)",
            (EngineKind::Podman, false) => {
                "a user namespace per container (root and the agent are uids of the `pincer` range)"
            }
            (EngineKind::Podman, true) => {
                "a user namespace per container (keep-id: the agent is you, root a subordinate uid)"
            }
        };
        format!("{} ({mode}), {users}", self.kind)
    }
}

/// An engine that would run an agent with less than the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}; Pincer never runs an agent with less than its spec\nhint: {hint}")]
pub struct WeakEngine {
    what: String,
    hint: String,
}

fn way_out(rootless: bool) -> &'static str {
    if rootless {
        "a rootless engine on cgroup v1 cannot limit containers: boot with cgroup v2 \
         (systemd.unified_cgroup_hierarchy=1) and delegate the memory, pids and cpu \
         controllers to your user, or run Pincer as root with the rootful engine \
         (DOCKER_HOST=unix:///run/podman/podman.sock)"
    } else {
        "enable the memory, pids and cpu cgroup controllers (and swap accounting: \
         swapaccount=1 on cgroup v1), or move to cgroup v2"
    }
}

/// The ulimits every container gets, by name: soft and hard the same.
pub(super) fn ulimits(spec: &ContainerSpec) -> Vec<ResourcesUlimits> {
    let r = &spec.resources;
    [("nofile", r.nofile), ("nproc", r.nproc), ("core", 0)]
        .into_iter()
        .map(|(name, limit)| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            ResourcesUlimits {
                name: Some(name.into()),
                soft: Some(limit),
                hard: Some(limit),
            }
        })
        .collect()
}

/// Compares the limits a created container really has (the engine's
/// inspection of it) with the spec: any difference is a refusal, naming
/// each lost limit.
pub(super) fn check_created(
    spec: &ContainerSpec,
    got: Option<&HostConfig>,
    profile: &EngineProfile,
) -> Result<(), WeakEngine> {
    let default = HostConfig::default();
    let got = got.unwrap_or(&default);
    let r = &spec.resources;
    let cpu = match (got.nano_cpus, got.cpu_quota, got.cpu_period) {
        (Some(nano), _, _) if nano > 0 => Some(nano),
        (_, Some(quota), Some(period)) if quota > 0 && period > 0 => quota
            .checked_mul(1_000_000_000)
            .map(|billions| billions / period),
        _ => None,
    };
    let mut lost = Vec::new();
    let mut compare = |name: &str, asked: i64, found: Option<i64>| {
        if found != Some(asked) {
            let found = found
                .filter(|n| *n != 0)
                .map_or("none".into(), |n| n.to_string());
            lost.push(format!("{name} (asked {asked}, the container has {found})"));
        }
    };
    compare("memory", r.memory_bytes, got.memory);
    compare("memory+swap", r.memory_bytes, got.memory_swap);
    compare("pids", r.pids, got.pids_limit);
    compare("cpu", r.nano_cpus, cpu);
    for asked in ulimits(spec) {
        let name = asked.name.as_deref().unwrap_or_default();
        let found = got.ulimits.iter().flatten().find(|u| {
            u.name
                .as_deref()
                .is_some_and(|n| n.trim_start_matches("RLIMIT_").eq_ignore_ascii_case(name))
        });
        let found = found.and_then(|u| (u.soft == u.hard).then_some(u.hard).flatten());
        compare(
            &format!("rlimit {name}"),
            asked.hard.unwrap_or_default(),
            found,
        );
    }
    if lost.is_empty() {
        return Ok(());
    }
    Err(WeakEngine {
        what: format!(
            "the engine dropped limits of the container: {}; it was removed and nothing ran",
            lost.join(", ")
        ),
        hint: way_out(profile.rootless).into(),
    })
}

#[cfg(test)]
mod tests;
