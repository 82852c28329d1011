//! What a started container really got at each mount target, checked
//! against what was decided, before the agent is given anything.
//!
//! The engine binds a *path*; the mount policy decided on a folder. If an
//! agent can write a parent of that path (a read-write grant of any group),
//! it can swap the folder for a link between the check and the bind, and the
//! engine would bind whatever the link leads to. So after the container
//! starts — its runner is still waiting for its stdin, and nothing of the
//! agent has run — the host looks at each target through the container's
//! own root (`/proc/<pid>/root`) without following any link and compares
//! device and inode with the [`ValidatedMount`]'s identity. Any difference:
//! the container is removed and the invocation refused.
//!
//! Which process shows the container's mounts: with runc (Docker, Podman)
//! the container's init. A runtime whose init is not a host process with
//! the container's view (gVisor: the sandbox's root is empty) has a process
//! beside it that holds that view (gVisor's gofer, which serves the
//! container's files): a sibling under the same runtime shim whose root has
//! every target. A view that has the targets but other folders at them is a
//! refusal, never a reason to look further.

use std::path::{Path, PathBuf};

use crate::beneath::{BeneathError, Identity, View};
use crate::mounts::ValidatedMount;

/// A container's mounts are not what was checked.
#[derive(Debug, thiserror::Error)]
pub enum MountCheckError {
    /// A target shows another folder or file than the one checked.
    #[error(
        "the container's {target} is not what was checked (expected {expected}, found {found}): \
         the source path was swapped after the check; nothing ran"
    )]
    Swapped {
        /// The container path.
        target: String,
        /// Device and inode decided on.
        expected: Identity,
        /// Device and inode found in the container.
        found: String,
    },
    /// No process of the container shows its mounts.
    #[error(
        "cannot see the mounts of the container (process {pid}): {reason}; refusing to run an \
         agent whose mounts cannot be checked"
    )]
    Unseen {
        /// The container's init as the engine reports it.
        pid: i64,
        /// Why.
        reason: String,
    },
}

/// Checks `mounts` against the container whose init is host process `pid`.
pub(super) fn check(pid: i64, mounts: &[ValidatedMount]) -> Result<(), MountCheckError> {
    let unseen = |reason: String| MountCheckError::Unseen { pid, reason };
    if pid <= 0 {
        return Err(unseen("the engine reports no process".into()));
    }
    let mut first_error = None;
    for view in views(pid) {
        match check_view(&view, mounts) {
            Ok(()) => return Ok(()),
            Err(Seen::Missing(err)) => {
                first_error.get_or_insert(err);
            }
            Err(Seen::Different(err)) => return Err(err),
        }
    }
    Err(unseen(match first_error {
        Some(err) => err.to_string(),
        None => "no process shows them".into(),
    }))
}

enum Seen {
    /// This process's root does not have the targets: not the container's view.
    Missing(BeneathError),
    Different(MountCheckError),
}

fn check_view(root: &Path, mounts: &[ValidatedMount]) -> Result<(), Seen> {
    let swapped = |target: &Path, expected: Identity, found: String| {
        Seen::Different(MountCheckError::Swapped {
            target: target.display().to_string(),
            expected,
            found,
        })
    };
    let Some(first) = mounts.first() else {
        return Ok(());
    };
    // Opened once: every target is read below the same root. A root that
    // is there but cannot be opened is as a first target that cannot be read.
    let view = match View::open(root) {
        Ok(view) => view,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(Seen::Missing(err)),
        Err(err) => {
            return Err(swapped(
                Path::new(first.target()),
                first.identity(),
                err.to_string(),
            ));
        }
    };
    for mount in mounts {
        let target = Path::new(mount.target());
        match view.identity(target.strip_prefix("/").unwrap_or(target)) {
            Ok(found) if found == mount.identity() => {}
            Ok(found) => return Err(swapped(target, mount.identity(), found.to_string())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(Seen::Missing(err));
            }
            // A link where a mount should be, or a path out: not what was checked.
            Err(err) => return Err(swapped(target, mount.identity(), err.to_string())),
        }
    }
    // A cover must sit in the folder the scan found the secret in: a parent
    // swapped between the scan and the bind leaves the real one uncovered.
    for mount in mounts {
        let (Some(expected), Some(parent)) = (mount.within(), Path::new(mount.target()).parent())
        else {
            continue;
        };
        let found = match view.identity(parent.strip_prefix("/").unwrap_or(parent)) {
            Ok(found) if found == expected => continue,
            Ok(found) => found.to_string(),
            Err(err) => err.to_string(),
        };
        return Err(swapped(parent, expected, found));
    }
    Ok(())
}

/// `/proc/<pid>/root`, then the roots of the processes beside it.
fn views(pid: i64) -> Vec<PathBuf> {
    let mut views = vec![PathBuf::from(format!("/proc/{pid}/root"))];
    let Some(parent) = parent_of(&pid.to_string()) else {
        return views;
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return views;
    };
    let mut siblings: Vec<i64> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i64>().ok())
        .filter(|&other| other != pid && parent_of(&other.to_string()) == Some(parent))
        .collect();
    siblings.sort_unstable();
    views.extend(
        siblings
            .into_iter()
            .map(|p| PathBuf::from(format!("/proc/{p}/root"))),
    );
    views
}

/// The parent pid from `/proc/<pid>/stat` (the field after the command's
/// closing parenthesis and the state).
fn parent_of(pid: &str) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_a_command_with_spaces_and_parentheses() {
        let me = std::process::id().to_string();
        #[allow(unsafe_code)]
        // SAFETY: getppid cannot fail and touches no memory.
        let parent = unsafe { libc::getppid() };
        assert_eq!(parent_of(&me), Some(i64::from(parent)));
        let me = i64::from(std::process::id());
        let views = views(me);
        assert_eq!(views[0], PathBuf::from(format!("/proc/{me}/root")));
        assert!(!views[1..].contains(&views[0]), "{views:?}");
    }

    #[test]
    fn no_process_is_a_refusal() {
        let err = check(0, &[]).unwrap_err().to_string();
        assert!(err.contains("cannot see the mounts"), "{err}");
    }
}
