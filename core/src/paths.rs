//! The folders Pincer uses, and the per-group paths derived from a group's
//! validated name (so nothing of one group lands in another's folder).

use std::path::{Path, PathBuf};

use crate::group::GroupName;

/// Neither the variable nor `HOME` says where a folder goes.
#[derive(Debug, thiserror::Error)]
#[error("cannot tell where {what} goes: set {var} or HOME")]
pub struct PathsError {
    what: &'static str,
    var: &'static str,
}

/// The folders Pincer uses.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `PINCER_HOME`: groups, sessions, run-time sockets. Default: `$XDG_DATA_HOME/pincer`.
    pub home: PathBuf,
    /// `PINCER_CONFIG_DIR`: the owner's policy files, never mounted into a container.
    /// Default: `~/.config/pincer`.
    pub config_dir: PathBuf,
    /// The owner's home (`HOME`), for `~` in mount requests and the allowlist.
    pub user_home: Option<PathBuf>,
}

impl Paths {
    /// Reads `PINCER_HOME` and `PINCER_CONFIG_DIR` (with their XDG defaults) through `env`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, PathsError> {
        let non_empty = |var: &str| env(var).filter(|v| !v.is_empty());
        let home_dir = non_empty("HOME").map(PathBuf::from);
        let home = match non_empty("PINCER_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => match non_empty("XDG_DATA_HOME") {
                Some(dir) => PathBuf::from(dir).join("pincer"),
                None => home_dir
                    .as_ref()
                    .map(|h| h.join(".local/share/pincer"))
                    .ok_or(PathsError {
                        what: "the data folder",
                        var: "PINCER_HOME",
                    })?,
            },
        };
        let config_dir = match non_empty("PINCER_CONFIG_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => home_dir
                .map(|h| h.join(".config/pincer"))
                .ok_or(PathsError {
                    what: "the config folder",
                    var: "PINCER_CONFIG_DIR",
                })?,
        };
        Ok(Self {
            home,
            config_dir,
            user_home: non_empty("HOME").map(PathBuf::from),
        })
    }

    /// Paths rooted in one folder; for tests and benchmarks.
    pub fn under(root: &Path) -> Self {
        Self {
            home: root.join("home"),
            config_dir: root.join("config"),
            user_home: None,
        }
    }

    /// Where every group's own folder is, each named after its group.
    pub fn groups_dir(&self) -> PathBuf {
        self.home.join("groups")
    }

    /// Where every group's session folder is, each named after its group.
    pub fn sessions_dir(&self) -> PathBuf {
        self.home.join("sessions")
    }

    /// The group's own folder, mounted read-write at `/workspace/group`.
    pub fn group_dir(&self, group: &GroupName) -> PathBuf {
        self.groups_dir().join(group.as_str())
    }

    /// The group's session folder (the runner's transcript).
    pub fn session_dir(&self, group: &GroupName) -> PathBuf {
        self.sessions_dir().join(group.as_str())
    }

    /// The group's staged copies of read-write grants, one folder per
    /// invocation and grant, kept until the owner decides on their changes.
    pub fn staging_dir(&self, group: &GroupName) -> PathBuf {
        self.home.join("staging").join(group.as_str())
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.home.join("pincer.db")
    }

    /// The shared memory folder: rw for main, ro for the others.
    pub fn global_dir(&self) -> PathBuf {
        self.home.join("global")
    }

    /// Run-time state of this host: sockets and owner locks. Never mounted whole.
    pub fn run_dir(&self) -> PathBuf {
        self.home.join("run")
    }
}
