//! The mount allowlist: which extra host folders a group may see, decided on
//! the host from a file the agent can never reach.
//!
//! `$PINCER_CONFIG_DIR/mount-allowlist.json` names the allowed roots (each
//! read-only or read-write), extra blocked patterns, and whether non-main
//! groups are held to read-only. Every request is checked on the *resolved
//! real path* (symlinks followed) right before a container is created, and the
//! resolved path is what gets mounted, never the string the owner wrote.
//!
//! This module knows nothing about containers: it turns a [`MountRequest`]
//! into a [`ValidatedMount`] or a [`Denial`].

use std::path::{Component, Path, PathBuf};
use std::sync::Once;

use serde::{Deserialize, Serialize};

use super::{EXTRA_TARGET, ValidatedMount};

/// The allowlist's file name inside the config folder.
pub const ALLOWLIST_FILE: &str = "mount-allowlist.json";

/// Names that are never mounted, whatever the allowlist says.
pub const BUILTIN_BLOCKED_NAMES: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".gpg",
    ".aws",
    ".azure",
    ".gcloud",
    ".kube",
    ".docker",
    "credentials",
    ".env",
    ".netrc",
    ".npmrc",
    ".pypirc",
    "id_rsa",
    "id_ed25519",
    "private_key",
    ".secret",
    // Files that hold tokens under names too common to block alone.
    ".git/config",
    ".config/gh",
    ".pgpass",
    ".vault-token",
];

/// The longest container name of an extra mount.
const MAX_NAME_BYTES: usize = 255;

/// The allowlist file could not be used. No container starts with a policy
/// that was only half read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file exists but cannot be read.
    #[error("cannot read the mount allowlist {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid allowlist.
    #[error("malformed mount allowlist {path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

/// The allowlist file's format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistFile {
    #[serde(default)]
    allowed_roots: Vec<RootEntry>,
    #[serde(default)]
    blocked_patterns: Vec<String>,
    #[serde(default = "yes")]
    non_main_read_only: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootEntry {
    path: String,
    #[serde(default)]
    allow_read_write: bool,
    #[serde(default)]
    writes: Writes,
    #[serde(default)]
    description: Option<String>,
}

/// Where a read-write grant's writes go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writes {
    /// To a copy the host made; the owner accepts them into the folder
    /// ([`crate::staging`]). What a grant gets unless it says otherwise.
    #[default]
    Staged,
    /// Straight into the folder, as they happen: the owner's explicit choice.
    Direct,
}

fn yes() -> bool {
    true
}

/// What the policy needs to know about this host.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// The owner's home, for `~`.
    pub home: Option<PathBuf>,
    /// Pincer's config folder: never mounted.
    pub config_dir: PathBuf,
    /// Pincer's data folder (every group's files, the sockets): never mounted.
    pub data_dir: PathBuf,
    /// The container engine's sockets: never mounted.
    pub engine_sockets: Vec<PathBuf>,
}

/// An allowed root, as written and as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedRoot {
    /// As the owner wrote it.
    pub path: String,
    /// Its real path; `None` if it does not exist (then it allows nothing).
    pub real_path: Option<PathBuf>,
    /// Whether read-write mounts may come from it.
    pub allow_read_write: bool,
    /// Where their writes go.
    pub writes: Writes,
    /// The owner's note.
    pub description: Option<String>,
}

/// The effective policy: the allowlist merged with the built-in rules.
#[derive(Debug, Clone, Serialize)]
pub struct MountPolicy {
    /// The allowlist file.
    pub file: PathBuf,
    /// Whether the file exists (a missing one allows no extra mounts).
    pub file_present: bool,
    /// The allowed roots.
    pub allowed_roots: Vec<AllowedRoot>,
    /// Blocked names (built-in and the owner's), matched case-insensitively
    /// against every component of a path.
    pub blocked_names: Vec<String>,
    /// Blocked paths: never mounted, nor anything inside them, nor any folder
    /// that contains them.
    pub blocked_paths: Vec<PathBuf>,
    /// Whether non-main groups only ever get read-only extra mounts.
    pub non_main_read_only: bool,
}

/// A group's wish for an extra mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountRequest {
    /// The host path as written (`~` allowed).
    pub host_path: String,
    /// The name under `/workspace/extra/`; default the folder's own name.
    #[serde(default)]
    pub container_name: Option<String>,
    /// Whether the group asks to write.
    #[serde(default)]
    pub read_write: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host_path}: {reason}")]
pub struct Denial {
    /// The host path as requested.
    pub host_path: String,
    /// Why.
    pub reason: String,
}

impl MountPolicy {
    /// Reads `config_dir/mount-allowlist.json`. A missing file is a policy
    /// that allows no extra mounts (said once per process); a malformed one
    /// is an error.
    pub fn load(facts: &HostFacts) -> Result<Self, PolicyError> {
        let file = facts.config_dir.join(ALLOWLIST_FILE);
        match std::fs::read_to_string(&file) {
            Ok(text) => Self::parse(&text, &file, facts),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    tracing::info!("no mount allowlist at {}: no extra mounts", file.display());
                });
                Ok(Self::assemble(file, false, AllowlistFile::empty(), facts))
            }
            Err(source) => Err(PolicyError::Read { path: file, source }),
        }
    }

    /// Parses an allowlist's text (`file` names it in errors).
    pub fn parse(text: &str, file: &Path, facts: &HostFacts) -> Result<Self, PolicyError> {
        let malformed = |message: String| PolicyError::Malformed {
            path: file.to_owned(),
            message,
        };
        let parsed: AllowlistFile =
            serde_json::from_str(text).map_err(|err| malformed(err.to_string()))?;
        for (index, root) in parsed.allowed_roots.iter().enumerate() {
            let expanded = expand_home(&root.path, facts.home.as_deref())
                .map_err(|reason| malformed(format!("allowed_roots[{index}].path: {reason}")))?;
            if !expanded.is_absolute() {
                return Err(malformed(format!(
                    "allowed_roots[{index}].path {:?} must be absolute or start with ~/",
                    root.path
                )));
            }
        }
        for (index, pattern) in parsed.blocked_patterns.iter().enumerate() {
            let pattern = pattern.trim();
            if pattern.is_empty() {
                return Err(malformed(format!("blocked_patterns[{index}] is empty")));
            }
            // A path pattern that cannot be expanded would be dropped, and the
            // owner would believe it holds.
            if pattern.starts_with('~') {
                expand_home(pattern, facts.home.as_deref()).map_err(|reason| {
                    malformed(format!("blocked_patterns[{index}] {pattern:?}: {reason}"))
                })?;
            }
        }
        Ok(Self::assemble(file.to_owned(), true, parsed, facts))
    }

    fn assemble(
        file: PathBuf,
        file_present: bool,
        parsed: AllowlistFile,
        facts: &HostFacts,
    ) -> Self {
        let allowed_roots = parsed
            .allowed_roots
            .into_iter()
            .map(|root| {
                let real_path = expand_home(&root.path, facts.home.as_deref())
                    .ok()
                    .and_then(|p| p.canonicalize().ok());
                AllowedRoot {
                    path: root.path,
                    real_path,
                    allow_read_write: root.allow_read_write,
                    writes: root.writes,
                    description: root.description,
                }
            })
            .collect();
        let mut blocked_names: Vec<String> = BUILTIN_BLOCKED_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut blocked_paths: Vec<PathBuf> = Vec::new();
        let mut block_path = |path: PathBuf| {
            // Both forms: the real path (symlinks followed) and as written.
            if let Ok(real) = path.canonicalize() {
                blocked_paths.push(real);
            }
            blocked_paths.push(path);
        };
        block_path(facts.config_dir.clone());
        block_path(facts.data_dir.clone());
        for socket in &facts.engine_sockets {
            block_path(socket.clone());
        }
        for pattern in parsed.blocked_patterns {
            let pattern = pattern.trim().to_owned();
            if pattern.starts_with('/') || pattern.starts_with('~') {
                if let Ok(path) = expand_home(&pattern, facts.home.as_deref()) {
                    block_path(path);
                }
            } else {
                let pattern = pattern.trim_matches('/').to_owned();
                // Each pattern once, however often the owner repeats a built-in one.
                if !pattern.is_empty()
                    && !blocked_names
                        .iter()
                        .any(|b| b.eq_ignore_ascii_case(&pattern))
                {
                    blocked_names.push(pattern);
                }
            }
        }
        blocked_paths.sort();
        blocked_paths.dedup();
        Self {
            file,
            file_present,
            allowed_roots,
            blocked_names,
            blocked_paths,
            non_main_read_only: parsed.non_main_read_only,
        }
    }

    /// Decides one request for a main or non-main group.
    pub fn check(
        &self,
        request: &MountRequest,
        is_main: bool,
        home: Option<&Path>,
    ) -> Result<ValidatedMount, Denial> {
        let deny = |reason: String| Denial {
            host_path: request.host_path.clone(),
            reason,
        };
        let written = expand_home(&request.host_path, home).map_err(deny)?;
        if !written.is_absolute() {
            return Err(deny(
                "the host path must be absolute or start with ~/".into(),
            ));
        }
        // Names are checked as written (a symlink's own name counts) and as resolved.
        if let Some(name) = self.blocked_name_in(&written) {
            return Err(deny(format!("matches the blocked pattern {name:?}")));
        }
        let real = written.canonicalize().map_err(|err| {
            deny(match err.kind() {
                std::io::ErrorKind::NotFound => "does not exist".into(),
                _ => format!("cannot be resolved: {err}"),
            })
        })?;
        if let Some(name) = self.blocked_name_in(&real) {
            return Err(deny(format!(
                "resolves to {}, which matches the blocked pattern {name:?}",
                real.display()
            )));
        }
        if let Some(blocked) = self.protected_path_at(&real) {
            return Err(deny(format!(
                "resolves to {}, which is or contains the protected path {}",
                real.display(),
                blocked.display()
            )));
        }
        // The most specific root decides; between equally specific roots the stricter one.
        let root = self
            .allowed_roots
            .iter()
            .filter_map(|root| root.real_path.as_ref().map(|p| (p, root)))
            .filter(|(root_path, _)| real.starts_with(root_path))
            .max_by_key(|(root_path, root)| {
                (root_path.components().count(), !root.allow_read_write)
            })
            .map(|(_, root)| root);
        let Some(root) = root else {
            return Err(deny(if self.file_present {
                format!("{} is not under any allowed root", real.display())
            } else {
                format!(
                    "there is no mount allowlist at {}, so no extra mounts are allowed",
                    self.file.display()
                )
            }));
        };
        let read_write =
            request.read_write && root.allow_read_write && (is_main || !self.non_main_read_only);
        let name = match &request.container_name {
            // Trimmed: ` docs ` is `docs`, and a name of spaces is blank.
            Some(name) => name.trim().to_owned(),
            None => real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| deny("has no name of its own: give a container name".into()))?,
        };
        validate_container_name(&name)
            .map_err(|reason| deny(format!("container name {name:?}: {reason}")))?;
        // What the engine must bind: the folder at the checked path, reached
        // without a link (one appearing now means the path is being swapped).
        let identity = crate::beneath::identity_of(&real).map_err(|err| {
            deny(format!(
                "changed while it was checked ({err}); a link or a swapped folder on the way is refused"
            ))
        })?;
        Ok(ValidatedMount {
            source: real,
            target: format!("{EXTRA_TARGET}/{name}"),
            read_only: !read_write,
            identity,
            within: None,
            staged: read_write && root.writes == Writes::Staged,
        })
    }

    /// The protected path (config, data, engine socket, the owner's path
    /// patterns) that the real path `real` is, lies in, or contains.
    pub fn protected_path_at(&self, real: &Path) -> Option<&Path> {
        self.blocked_paths
            .iter()
            .find(|b| real.starts_with(b) || b.starts_with(real))
            .map(PathBuf::as_path)
    }

    /// Whether `relative`, a path below a mounted folder, names a secret
    /// (the scan's covers and a staged copy's withheld files alike).
    pub fn blocks_below(&self, relative: impl AsRef<Path>) -> bool {
        self.blocked_name_in(&Path::new("/").join(relative))
            .is_some()
    }

    /// The first blocked pattern that `path` matches: a plain name against
    /// each component, a pattern with a `/` against a run of components.
    pub fn blocked_name_in(&self, path: &Path) -> Option<&str> {
        let lowered = format!("{}/", path.to_string_lossy().to_lowercase());
        self.blocked_names
            .iter()
            .find(|pattern| {
                if pattern.contains('/') {
                    lowered.contains(&format!("/{}/", pattern.to_lowercase()))
                } else {
                    path.components().any(|component| match component {
                        Component::Normal(name) => name_matches(&name.to_string_lossy(), pattern),
                        _ => false,
                    })
                }
            })
            .map(String::as_str)
    }
}

impl AllowlistFile {
    fn empty() -> Self {
        Self {
            allowed_roots: Vec::new(),
            blocked_patterns: Vec::new(),
            non_main_read_only: true,
        }
    }
}

/// Whether a file name matches a blocked pattern: the name contains the
/// pattern, ignoring case (`.env.local`, `prod.env`, `id_rsa.pub`,
/// `aws_credentials`, and `password-store` blocks `.password-store`). This
/// errs on the side of refusing: a refusal names the pattern, a leak names
/// nothing. A pattern with a `/` matches a run of components.
fn name_matches(name: &str, pattern: &str) -> bool {
    name.to_lowercase().contains(&pattern.to_lowercase())
}

/// Expands `~` and `~/…`; other `~user` forms are refused.
pub fn expand_home(path: &str, home: Option<&Path>) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    let rest = if path == "~" {
        Some("")
    } else {
        path.strip_prefix("~/")
    };
    match rest {
        Some(rest) => {
            let home = home.ok_or("`~` used but HOME is not set")?;
            Ok(home.join(rest))
        }
        None if path.starts_with('~') => Err("only `~` and `~/…` are supported".into()),
        None => Ok(PathBuf::from(path)),
    }
}

/// A container name: relative, non-empty, no `..`, no `:`, no control characters.
pub fn validate_container_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("it is empty or blank".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("it is longer than {MAX_NAME_BYTES} bytes"));
    }
    if name.starts_with('/') {
        return Err("it must be relative".into());
    }
    if name.contains(':') {
        return Err("it must not contain `:`".into());
    }
    if name.chars().any(char::is_control) {
        return Err("it must not contain control characters".into());
    }
    for part in name.split('/') {
        match part.trim() {
            "" => {
                return Err("it must not contain empty components (`//` or a trailing `/`)".into());
            }
            "." | ".." => return Err(format!("it must not contain `{part}`")),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
