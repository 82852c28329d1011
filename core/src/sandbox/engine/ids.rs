//! Whose ids a container's users are on the host: Pincer's subordinate
//! range, what else may claim ids of it, and the started container's maps
//! read back from the kernel.

use super::{EngineProfile, WeakEngine};
use crate::mounts::ContainerUser;

/// The name whose `/etc/subuid` and `/etc/subgid` lines give Pincer's range.
pub const SUBORDINATE_NAME: &str = "pincer";

/// A container's uid and gid 0 are `uid` and `gid` on the host, and so on
/// for `count` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IdRange {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

impl IdRange {
    /// Pincer's lines of `/etc/subuid` and `/etc/subgid` (their texts); the
    /// smaller count of the two.
    pub fn from_files(subuid: &str, subgid: &str) -> Option<Self> {
        let (uid, uids) = subordinate(subuid, SUBORDINATE_NAME)?;
        let (gid, gids) = subordinate(subgid, SUBORDINATE_NAME)?;
        Some(Self {
            uid,
            gid,
            count: uids.min(gids),
        })
    }

    /// What else claims ids of this range: another line of the subordinate
    /// id files (another user's, or Podman's `containers`), or an account or
    /// group of the `passwd` and `group` files.
    pub fn conflicts(&self, subuid: &str, subgid: &str, passwd: &str, group: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (file, text, start) in [
            ("/etc/subuid", subuid, self.uid),
            ("/etc/subgid", subgid, self.gid),
        ] {
            let end = u64::from(start) + u64::from(self.count);
            for (name, other, count) in subordinate_lines(text) {
                let (other, count) = (u64::from(other), u64::from(count));
                if name != SUBORDINATE_NAME && other < end && u64::from(start) < other + count {
                    found.push(format!("{file} gives `{name}` ids of it"));
                }
            }
        }
        for (file, text, start) in [
            ("/etc/passwd", passwd, self.uid),
            ("/etc/group", group, self.gid),
        ] {
            let end = u64::from(start) + u64::from(self.count);
            for line in text.lines() {
                let mut fields = line.split(':');
                let (Some(name), Some(Ok(id))) =
                    (fields.next(), fields.nth(1).map(str::parse::<u64>))
                else {
                    continue;
                };
                if (u64::from(start)..end).contains(&id) {
                    found.push(format!("{file} has `{name}` with id {id} in it"));
                }
            }
        }
        found
    }
}

/// The first `name:start:count` line of a subordinate id file.
fn subordinate(text: &str, name: &str) -> Option<(u32, u32)> {
    subordinate_lines(text)
        .find_map(|(line_name, start, count)| (line_name == name).then_some((start, count)))
}

/// The `name:start:count` lines of a subordinate id file, skipping any
/// other line.
fn subordinate_lines(text: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    text.lines().filter_map(|line| {
        let mut fields = line.trim().split(':');
        let name = fields.next()?;
        Some((
            name,
            fields.next()?.parse().ok()?,
            fields.next()?.parse().ok()?,
        ))
    })
}

/// Checks the user and group mappings of the started container's init
/// (host process `pid`) against the profile, on engines that map users.
pub(in crate::sandbox) fn check_id_maps(
    pid: i64,
    user: ContainerUser,
    profile: &EngineProfile,
) -> Result<(), WeakEngine> {
    if !profile.maps_users() {
        return Ok(());
    }
    let refuse = |what: String| WeakEngine {
        what: format!("{what}; it was removed and nothing ran"),
        hint: "use an engine that maps the container's users as `pincer doctor` describes".into(),
    };
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{name}"))
            .map_err(|err| refuse(format!("cannot read the container's {name}: {err}")))
    };
    let expected = match profile.range {
        Some(range) if !profile.rootless => Expected {
            root: Some(ContainerUser {
                uid: range.uid,
                gid: range.gid,
            }),
            agent: profile.host_user(user),
        },
        _ => Expected {
            root: None,
            agent: ContainerUser::effective(),
        },
    };
    judge_id_maps(&read("uid_map")?, &read("gid_map")?, user, expected).map_err(refuse)
}

/// The host ids a container's root and agent must have.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expected {
    /// `None`: any but the host's root.
    pub root: Option<ContainerUser>,
    pub agent: ContainerUser,
}

/// The decision of [`check_id_maps`] on the maps' texts: the container's
/// root is never the host's, and is what was expected; the agent's uid and
/// gid map to what was expected.
pub(super) fn judge_id_maps(
    uid_map: &str,
    gid_map: &str,
    user: ContainerUser,
    expected: Expected,
) -> Result<(), String> {
    for (kind, text, inside, agent, root) in [
        (
            "uid",
            uid_map,
            user.uid,
            expected.agent.uid,
            expected.root.map(|r| r.uid),
        ),
        (
            "gid",
            gid_map,
            user.gid,
            expected.agent.gid,
            expected.root.map(|r| r.gid),
        ),
    ] {
        let map = parse_id_map(text);
        let host_of = |id: u32| {
            map.iter().find_map(|&(start, host, count)| {
                (id >= start && id - start < count).then(|| host.saturating_add(id - start))
            })
        };
        let shown = || text.split_whitespace().collect::<Vec<_>>().join(" ");
        match (host_of(0), root) {
            (None | Some(0), _) => {
                return Err(format!(
                    "the container has no user namespace of its own ({kind}_map: {})",
                    shown()
                ));
            }
            (Some(found), Some(root)) if found != root => {
                return Err(format!(
                    "the container's root {kind} is host {kind} {found}, not {root} ({kind}_map: {})",
                    shown()
                ));
            }
            _ => {}
        }
        if host_of(inside) != Some(agent) {
            return Err(format!(
                "the agent's {kind} {inside} maps to host {kind} {}, not {agent} ({kind}_map: {})",
                host_of(inside).map_or("none".into(), |id| id.to_string()),
                shown()
            ));
        }
    }
    Ok(())
}

/// `/proc/<pid>/uid_map`: (first id inside, first id outside, count) per line.
pub fn parse_id_map(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u32>);
            match (fields.next(), fields.next(), fields.next()) {
                (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => Some((a, b, c)),
                _ => None,
            }
        })
        .collect()
}
