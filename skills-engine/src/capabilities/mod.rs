//! A skill's capabilities: what it declares it needs (`[capabilities]` in
//! its `skill.toml`) next to what its code is found to use, so that the
//! owner sees, before applying it, whether a skill that says "a Telegram
//! channel" also reads `~/.ssh` or spawns a shell.
//!
//! The scan reads the code that links into the owner's binary or runs
//! when it builds: every `.rs` file in the skill's folder (its `src/`, the
//! `files/` it merges, its build script and whatever that script or a
//! `#[path]` pulls in, path dependencies kept in the folder), and a build
//! script or `[lib] path` its `Cargo.toml` puts elsewhere. Not `tests/` nor
//! `host.rs` (the test-only host binary): those never link into what the
//! owner runs. It is a syntactic scan (`syn`), not a proof: it sees the
//! paths, calls, macros and literals written in the code, with simple
//! import resolution (`use`, `extern crate`, the skill's Cargo renames),
//! and leans towards reporting too much for paths and too little for
//! literals. New dependencies that run code at build time (a build script,
//! a proc macro) come from `cargo metadata`.
//!
//! - [`declared`]: the `[capabilities]` table and what it covers.
//! - `sources`, `cargo`, `scan`, `macros`, `resolve`, `crates`,
//!   `literals`: the source scan.
//! - `build_time`: the new dependencies' build-time code.
//! - [`report`]: the report, its human rendering and its JSON.

pub(crate) mod build_time;
#[cfg(test)]
mod bypass_tests;
mod cargo;
mod crates;
pub mod declared;
mod literals;
mod macros;
pub mod report;
mod resolve;
pub(crate) mod scan;
pub(crate) mod sources;
#[cfg(test)]
mod tests;

pub use declared::Capabilities;
pub use report::CapabilityReport;

use serde::Serialize;

/// What kind of thing a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A path through `std::process`, `tokio::process`, a crate that runs
    /// programs or `libc`'s `system`/`fork`/`exec*`: it spawns programs.
    Process,
    /// A path through `std::net`, `tokio::net` or a crate that speaks
    /// HTTP or sockets.
    Network,
    /// A string literal naming a host (a URL's, or a bare host name).
    Url,
    /// A path through `std::fs`/`tokio::fs`, the home folder, or a literal
    /// path in the home or system folders.
    Fs,
    /// A read of an environment variable (at run time or, by `env!`, at
    /// build time).
    Env,
    /// Unsafe code or FFI.
    Unsafe,
    /// A file pulled into the source by `include!`, `include_str!`,
    /// `include_bytes!` or `#[path]`.
    Include,
    /// A registration point (`add_channel`, …).
    Register,
    /// A new dependency that runs code at build time (`"build"` in the
    /// rendering and the JSON, like the key that declares it).
    #[serde(rename = "build")]
    BuildTime,
}

impl Kind {
    /// Its name in the rendering and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Process => "process",
            Kind::Network => "network",
            Kind::Url => "url",
            Kind::Fs => "fs",
            Kind::Env => "env",
            Kind::Unsafe => "unsafe",
            Kind::Include => "include",
            Kind::Register => "register",
            Kind::BuildTime => "build",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing the scan found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Finding {
    /// What kind of thing.
    pub kind: Kind,
    /// Where, relative to the repository's root
    /// (`skills/telegram/src/lib.rs`; `Cargo.lock` for a new dependency).
    pub file: String,
    /// The line, from 1 (0: the finding is about the whole file).
    pub line: usize,
    /// What: the program, host, path, variable, registration point, crate,
    /// or the path through which it is reached.
    pub what: String,
    /// Whether the skill's declarations cover it.
    pub declared: bool,
}

impl Finding {
    /// `file:line`, or `file` alone for line 0.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}
