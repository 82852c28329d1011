//! A skill's `[capabilities]` table in `skill.toml`: what its author says it
//! needs, checked when the manifest loads, and the rules that decide whether
//! something the scan found is covered by it.

use serde::{Deserialize, Serialize};

use crate::names::valid_variable;

/// The word that declares a whole kind (`network = ["any"]`): for what the
/// owner configures (an endpoint, a program), it needs a `why`.
pub const ANY: &str = "any";

/// The registration points a skill may declare.
pub const REGISTRATION_POINTS: &[&str] = &["channel", "provider", "doctor", "runtime"];

/// What a skill declares it needs (`[capabilities]`); nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Capabilities {
    /// Hosts it talks to (a host covers its subdomains); `"any"` when the
    /// endpoint is configurable.
    pub network: Vec<String>,
    /// Programs it spawns (`"sh"`, `"runsc"`); `"any"` for any.
    pub processes: Vec<String>,
    /// Paths outside Pincer's own folders it reads or writes (`"~/.ssh"`);
    /// `"any"` for any.
    pub files: Vec<String>,
    /// Environment variables its code reads (the manifest's top-level `env`
    /// counts as declared too); `"any"` for any.
    pub env: Vec<String>,
    /// Whether it has unsafe code or FFI.
    #[serde(rename = "unsafe")]
    pub unsafe_code: bool,
    /// Registration points it uses: of [`REGISTRATION_POINTS`].
    pub registers: Vec<String>,
    /// New dependencies that run code at build time (a build script or a
    /// proc macro), by crate name.
    pub build: Vec<String>,
    /// Why it needs what it declares.
    pub why: String,
}

impl Capabilities {
    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// What `SkillManifest::load` checks; the error names the key.
    pub(crate) fn check(&self) -> Result<(), String> {
        let lists = [
            ("network", &self.network),
            ("processes", &self.processes),
            ("files", &self.files),
            ("env", &self.env),
            ("registers", &self.registers),
            ("build", &self.build),
        ];
        for (key, list) in lists {
            for (index, entry) in list.iter().enumerate() {
                if entry.trim().is_empty() || entry.trim() != entry {
                    return Err(format!(
                        "`capabilities.{key}`: {entry:?} is empty or has spaces around it"
                    ));
                }
                if list[..index].contains(entry) {
                    return Err(format!("`capabilities.{key}`: {entry:?} is listed twice"));
                }
            }
        }
        for host in &self.network {
            if host.contains("://") || host.contains('/') || host.contains(char::is_whitespace) {
                return Err(format!(
                    "`capabilities.network`: {host:?} is not a host name (no scheme, no path)"
                ));
            }
        }
        for variable in &self.env {
            if variable != ANY && !valid_variable(variable) {
                return Err(format!(
                    "`capabilities.env`: {variable:?} is not a variable name"
                ));
            }
        }
        for point in &self.registers {
            if !REGISTRATION_POINTS.contains(&point.as_str()) {
                return Err(format!(
                    "`capabilities.registers`: {point:?} is not one of {}",
                    REGISTRATION_POINTS.join(", ")
                ));
            }
        }
        for (key, list) in [("network", &self.network), ("files", &self.files)] {
            if list.iter().any(|e| e == ANY) && self.why.trim().is_empty() {
                return Err(format!(
                    "`capabilities.{key}` is \"any\": say why in `capabilities.why`"
                ));
            }
        }
        Ok(())
    }

    /// A host (from a literal) is declared when it, or a parent domain, is
    /// in `network`, or `network` has `"any"`.
    /// An IP address is declared only by itself (or `"any"`).
    pub(crate) fn allows_host(&self, host: &str) -> bool {
        let ip = host.parse::<std::net::IpAddr>().is_ok();
        self.network.iter().any(|declared| {
            let declared = declared.to_ascii_lowercase();
            declared == ANY
                || host == declared
                || (!ip
                    && host
                        .strip_suffix(declared.as_str())
                        .is_some_and(|head| head.ends_with('.')))
        })
    }

    /// A program (`None`: not a literal) is declared when it is in
    /// `processes`, or `processes` has `"any"`.
    pub(crate) fn allows_program(&self, program: Option<&str>) -> bool {
        self.processes
            .iter()
            .any(|declared| declared == ANY || Some(declared.as_str()) == program)
    }

    /// A path literal is declared when it is, or is under, a path in
    /// `files`, or `files` has `"any"`.
    pub(crate) fn allows_path(&self, path: &str) -> bool {
        self.files.iter().any(|declared| {
            declared == ANY
                || path == declared
                || path
                    .strip_prefix(declared.as_str())
                    .is_some_and(|rest| rest.starts_with('/') || declared.ends_with('/'))
        })
    }

    /// A variable (`None`: not a literal, or all of them) is declared when
    /// it is in `env` here or in the manifest's `env`, or `env` has `"any"`.
    pub(crate) fn allows_env(&self, variable: Option<&str>, manifest_env: &[String]) -> bool {
        self.env.iter().any(|declared| declared == ANY)
            || variable.is_some_and(|name| {
                self.env
                    .iter()
                    .chain(manifest_env)
                    .any(|declared| declared == name)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Capabilities, String> {
        let caps: Capabilities = toml::from_str(text).map_err(|err| err.to_string())?;
        caps.check().map(|()| caps)
    }

    #[test]
    fn declarations_are_checked() {
        let caps = parse(
            "network = [\"api.telegram.org\"]\nprocesses = [\"sh\"]\nfiles = [\"~/.ssh\"]\n\
             env = [\"X\"]\nunsafe = true\nregisters = [\"channel\"]\nbuild = [\"ring\"]\nwhy = \"w\"\n",
        )
        .unwrap();
        assert!(caps.unsafe_code && !caps.is_empty());
        assert!(parse("").unwrap().is_empty());
        for (bad, says) in [
            ("registers = [\"chanel\"]", "not one of"),
            ("network = [\"\"]", "empty"),
            ("network = [\"https://x.com\"]", "not a host"),
            ("network = [\"any\"]", "say why"),
            ("env = [\"A-B\"]", "not a variable"),
            ("processes = [\"sh\", \"sh\"]", "twice"),
            ("nework = []", "unknown field"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn what_is_covered() {
        let caps = parse(
            "network = [\"example.com\"]\nprocesses = [\"sh\"]\nfiles = [\"~/.ssh\"]\nenv = [\"A\"]\n",
        )
        .unwrap();
        assert!(caps.allows_host("example.com") && caps.allows_host("api.example.com"));
        assert!(!caps.allows_host("badexample.com") && !caps.allows_host("example.org"));
        assert!(caps.allows_program(Some("sh")) && !caps.allows_program(None));
        assert!(caps.allows_path("~/.ssh/id_rsa") && caps.allows_path("~/.ssh"));
        assert!(!caps.allows_path("~/.sshx"));
        assert!(caps.allows_env(Some("A"), &[]) && caps.allows_env(Some("B"), &["B".into()]));
        assert!(!caps.allows_env(None, &["B".into()]));
        let ips = parse("network = [\"0.0.1\", \"203.0.113.5\"]\n").unwrap();
        assert!(ips.allows_host("203.0.113.5") && !ips.allows_host("10.0.0.1"));
        let any = parse("processes = [\"any\"]\nenv = [\"any\"]\n").unwrap();
        assert!(any.allows_program(None) && any.allows_env(None, &[]));
    }
}
