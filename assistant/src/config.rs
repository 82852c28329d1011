//! Where Pincer keeps its data and how it is configured.
//!
//! Everything comes from the environment, read once at start-up by the binary
//! and passed down as values ([`Paths`], [`Settings`]): library code never
//! reads the environment itself, so tests can run many hosts in one process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pincer_protocol::ToolLimits;

pub use pincer_core::paths::Paths;

/// Kept here too, where callers of `config` have always found it.
pub use pincer_store::time::parse_duration;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A folder cannot be placed.
    #[error(transparent)]
    Paths(#[from] pincer_core::paths::PathsError),
    /// A configuration file is unusable.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A variable is set to something unusable.
    #[error("invalid {var}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Tunables, each with a default that works out of the box.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `model_url` / `PINCER_MODEL_URL`: base URL of the Anthropic Messages API.
    pub model_url: String,
    /// `model` / `PINCER_MODEL`: the model name.
    pub model: String,
    /// `model_provider` / `PINCER_MODEL_PROVIDER`: the API the model speaks
    /// (`anthropic`; provider skills add others).
    pub model_provider: String,
    /// `image` / `PINCER_IMAGE`: the agent image.
    pub image: String,
    /// `timeout` / `PINCER_TIMEOUT`: hard wall-clock limit of one invocation.
    pub timeout: Duration,
    /// `idle_timeout` / `PINCER_IDLE_TIMEOUT`: longest silence of a running agent.
    pub idle_timeout: Duration,
    /// `shutdown_grace` / `PINCER_SHUTDOWN_GRACE`: how long a stopping daemon
    /// lets running invocations finish before it kills them.
    pub shutdown_grace: Duration,
    /// `max_turns` / `PINCER_MAX_TURNS`: model turns per invocation.
    pub max_turns: u32,
    /// `max_tokens` of each model request, and the gateway's cap on it.
    pub max_tokens: u32,
    /// `models`: other models the gateway lets a request name (the list is
    /// empty by default: only `model`).
    pub models: Vec<String>,
    /// `[group_models]`: other models one group may name (`family = ["…"]`).
    pub group_models: std::collections::BTreeMap<String, Vec<String>>,
    /// `thinking_budget`: the largest extended-thinking budget a request may
    /// ask for (0, the default: none).
    pub thinking_budget: u32,
    /// `betas`: the `anthropic-beta` values the gateway forwards (none by default).
    pub betas: Vec<String>,
    /// `[budget]`: model tokens per group and in total, per day and month.
    pub budget: pincer_socket::budget::Budget,
    /// `[limits]`: what one invocation and one group can make the host do.
    pub limits: pincer_socket::budget::Limits,
    /// `max_concurrent` / `PINCER_MAX_CONCURRENT`: containers running at once.
    pub max_concurrent: usize,
    /// `retries` / `PINCER_RETRIES`: attempts after an infrastructure failure.
    pub retries: u32,
    /// `time_zone` / `TZ`: the owner's time zone, for scheduled tasks.
    pub time_zone: String,
    /// `session_budget` / `PINCER_SESSION_BUDGET`: transcript size (bytes)
    /// beyond which the runner compacts it.
    pub session_budget: u64,
    /// Limits of the runner's tools.
    pub tool_limits: ToolLimits,
    /// `agent_bin` / `PINCER_AGENT_BIN`: a statically linked `pincer-agent` to
    /// put in the image (default: build it from this source tree).
    pub agent_bin: Option<PathBuf>,
    /// `busybox` / `PINCER_BUSYBOX`: a static busybox for the image (default `/bin/busybox`).
    pub busybox: Option<PathBuf>,
    /// `runtime` / `PINCER_RUNTIME`: the engine's OCI runtime for agent
    /// containers (default: the engine's own, usually runc; e.g. `runsc`).
    pub runtime: Option<String>,
    /// `project_dir` / `PINCER_PROJECT_DIR`: the project's code, mounted
    /// read-only for the main group (default: the source tree `pincer` was
    /// built from, if it is there; `none` mounts no project).
    pub project_dir: Option<PathBuf>,
}

/// The default model API.
pub const DEFAULT_MODEL_URL: &str = "https://api.anthropic.com";
pub use pincer_socket::gateway_check::{DEFAULT_MAX_TOKENS, DEFAULT_MAX_TURNS, DEFAULT_MODEL};
/// How long a stopping daemon lets running answers finish.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The default hard timeout of one invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The default idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The configuration file's name inside the config folder.
pub const CONFIG_FILE: &str = "config.toml";

/// `config.toml`: every key optional; an unknown key is an error.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    model_url: Option<String>,
    model: Option<String>,
    model_provider: Option<String>,
    image: Option<String>,
    timeout: Option<String>,
    idle_timeout: Option<String>,
    shutdown_grace: Option<String>,
    max_turns: Option<u32>,
    max_concurrent: Option<usize>,
    retries: Option<u32>,
    time_zone: Option<String>,
    session_budget: Option<u64>,
    agent_bin: Option<PathBuf>,
    busybox: Option<PathBuf>,
    project_dir: Option<String>,
    runtime: Option<String>,
    models: Option<Vec<String>>,
    group_models: Option<std::collections::BTreeMap<String, Vec<String>>>,
    thinking_budget: Option<u32>,
    betas: Option<Vec<String>>,
    budget: Option<pincer_socket::budget::Budget>,
    limits: Option<pincer_socket::budget::Limits>,
}

impl Settings {
    /// What the gateway lets a model request ask for.
    pub fn model_policy(&self) -> pincer_socket::gateway_check::ModelPolicy {
        pincer_socket::gateway_check::ModelPolicy {
            model: self.model.clone(),
            models: self.models.clone(),
            group_models: self.group_models.clone(),
            max_tokens: self.max_tokens,
            max_requests: self.max_turns.saturating_add(1),
            thinking_budget: self.thinking_budget,
            betas: self.betas.clone(),
        }
    }

    /// Reads `config_dir/config.toml` (if there is one) and the environment;
    /// a variable overrides the file, the file overrides the default.
    pub fn load(
        config_dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let path = config_dir.join(CONFIG_FILE);
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str::<ConfigFile>(&text).map_err(|err| ConfigError::File {
                path: path.clone(),
                message: err.to_string().trim().to_owned(),
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(err) => {
                return Err(ConfigError::File {
                    path,
                    message: err.to_string(),
                });
            }
        };
        Self::merge(file, env)
    }

    /// The environment alone (no file); for tests.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::merge(ConfigFile::default(), env)
    }

    fn merge(file: ConfigFile, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &str| env(var).filter(|v| !v.is_empty());
        let model_url = get("PINCER_MODEL_URL")
            .or(file.model_url)
            .unwrap_or_else(|| DEFAULT_MODEL_URL.into());
        if !(model_url.starts_with("https://") || model_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                var: "PINCER_MODEL_URL",
                value: model_url,
                reason: "must start with https:// or http://".into(),
            });
        }
        let duration =
            |var: &'static str, from_file: Option<String>, default: Duration| match get(var)
                .or(from_file)
            {
                Some(value) => parse_duration(&value).map_err(|reason| ConfigError::Invalid {
                    var,
                    value,
                    reason,
                }),
                None => Ok(default),
            };
        let number = |var: &'static str, from_file: Option<u64>, default: u64, min: u64| {
            let value = match get(var) {
                Some(text) => text.parse::<u64>().map_err(|_| ConfigError::Invalid {
                    var,
                    value: text.clone(),
                    reason: "must be a whole number".into(),
                })?,
                None => from_file.unwrap_or(default),
            };
            if value < min {
                return Err(ConfigError::Invalid {
                    var,
                    value: value.to_string(),
                    reason: format!("must be at least {min}"),
                });
            }
            Ok(value)
        };
        let time_zone = get("TZ").or(file.time_zone).unwrap_or_else(|| "UTC".into());
        if jiff::tz::TimeZone::get(&time_zone).is_err() {
            return Err(ConfigError::Invalid {
                var: "TZ",
                value: time_zone,
                reason: "not a time zone name (like Europe/Berlin or UTC)".into(),
            });
        }
        Ok(Self {
            model_url: model_url.trim_end_matches('/').to_owned(),
            model: get("PINCER_MODEL")
                .or(file.model)
                .unwrap_or_else(|| DEFAULT_MODEL.into()),
            model_provider: get("PINCER_MODEL_PROVIDER")
                .or(file.model_provider)
                .unwrap_or_else(|| "anthropic".into()),
            image: get("PINCER_IMAGE")
                .or(file.image)
                .unwrap_or_else(pincer_core::sandbox::default_image),
            timeout: duration("PINCER_TIMEOUT", file.timeout, DEFAULT_TIMEOUT)?,
            idle_timeout: duration(
                "PINCER_IDLE_TIMEOUT",
                file.idle_timeout,
                DEFAULT_IDLE_TIMEOUT,
            )?,
            shutdown_grace: duration(
                "PINCER_SHUTDOWN_GRACE",
                file.shutdown_grace,
                DEFAULT_SHUTDOWN_GRACE,
            )?,
            max_turns: number(
                "PINCER_MAX_TURNS",
                file.max_turns.map(u64::from),
                u64::from(DEFAULT_MAX_TURNS),
                1,
            )? as u32,
            max_tokens: DEFAULT_MAX_TOKENS,
            models: file.models.unwrap_or_default(),
            // Group names are folded; so are the keys naming them.
            group_models: file
                .group_models
                .unwrap_or_default()
                .into_iter()
                .map(|(group, models)| (group.to_ascii_lowercase(), models))
                .collect(),
            thinking_budget: file.thinking_budget.unwrap_or(0),
            betas: file.betas.unwrap_or_default(),
            budget: file.budget.unwrap_or_default(),
            limits: file.limits.unwrap_or_default(),
            max_concurrent: number(
                "PINCER_MAX_CONCURRENT",
                file.max_concurrent.map(|n| n as u64),
                4,
                1,
            )? as usize,
            retries: number("PINCER_RETRIES", file.retries.map(u64::from), 3, 0)? as u32,
            time_zone,
            session_budget: number("PINCER_SESSION_BUDGET", file.session_budget, 200_000, 1_000)?,
            tool_limits: ToolLimits::default(),
            agent_bin: get("PINCER_AGENT_BIN")
                .map(PathBuf::from)
                .or(file.agent_bin),
            busybox: get("PINCER_BUSYBOX").map(PathBuf::from).or(file.busybox),
            runtime: get("PINCER_RUNTIME")
                .or(file.runtime)
                .filter(|r| !r.trim().is_empty()),
            project_dir: match get("PINCER_PROJECT_DIR").or(file.project_dir) {
                Some(dir) if dir == "none" => None,
                Some(dir) => Some(PathBuf::from(dir)),
                None => default_project_dir(),
            },
        })
    }
}

/// The file naming the owner's other secrets: `{"env": ["GITHUB_TOKEN", …]}`.
pub const SECRETS_FILE: &str = "secrets.json";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    env: Vec<String>,
}

/// The values of the environment variables that `config_dir/secrets.json`
/// names: secrets the egress guard refuses to let out. A missing file names
/// none; a malformed one, or a named variable that is not set, is an error.
pub fn other_secrets(
    config_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let path = config_dir.join(SECRETS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(ConfigError::File {
                path,
                message: err.to_string(),
            });
        }
    };
    let file: SecretsFile = serde_json::from_str(&text).map_err(|err| ConfigError::File {
        path: path.clone(),
        message: err.to_string(),
    })?;
    file.env
        .iter()
        .map(|name| {
            env(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::File {
                    path: path.clone(),
                    message: format!("names the variable {name}, which is not set"),
                })
        })
        .collect()
}

/// The source tree this binary was built from, if it is still there.
fn default_project_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("Cargo.toml").exists().then(|| root.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn paths_follow_xdg_defaults() {
        let paths = Paths::from_env(env(&[("HOME", "/h")])).unwrap();
        assert_eq!(paths.home, PathBuf::from("/h/.local/share/pincer"));
        assert_eq!(paths.config_dir, PathBuf::from("/h/.config/pincer"));
        let paths = Paths::from_env(env(&[("HOME", "/h"), ("XDG_DATA_HOME", "/d")])).unwrap();
        assert_eq!(paths.home, PathBuf::from("/d/pincer"));
        let paths =
            Paths::from_env(env(&[("PINCER_HOME", "/p"), ("PINCER_CONFIG_DIR", "/c")])).unwrap();
        assert_eq!((paths.home, paths.config_dir), ("/p".into(), "/c".into()));
        let err = Paths::from_env(env(&[])).unwrap_err();
        assert!(err.to_string().contains("PINCER_HOME"), "{err}");
    }

    #[test]
    fn settings_reject_bad_values_by_name() {
        let err = Settings::from_env(env(&[("PINCER_TIMEOUT", "soon")])).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid PINCER_TIMEOUT"),
            "{err}"
        );
        let err = Settings::from_env(env(&[("PINCER_MODEL_URL", "ftp://x")])).unwrap_err();
        assert!(err.to_string().contains("PINCER_MODEL_URL"), "{err}");
        let err = Settings::from_env(env(&[("PINCER_MAX_TURNS", "0")])).unwrap_err();
        assert!(err.to_string().contains("PINCER_MAX_TURNS"), "{err}");
        let ok = Settings::from_env(env(&[("PINCER_MODEL_URL", "http://127.0.0.1:9/")])).unwrap();
        assert_eq!(ok.model_url, "http://127.0.0.1:9");
        assert_eq!(ok.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn other_secrets_come_from_named_variables() {
        let dir = tempfile::tempdir().unwrap();
        assert!(other_secrets(dir.path(), env(&[])).unwrap().is_empty());
        std::fs::write(
            dir.path().join(SECRETS_FILE),
            r#"{"env": ["GITHUB_TOKEN"]}"#,
        )
        .unwrap();
        let found = other_secrets(dir.path(), env(&[("GITHUB_TOKEN", "ghp_abcdefgh")])).unwrap();
        assert_eq!(found, ["ghp_abcdefgh"]);
        let err = other_secrets(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(err.contains("GITHUB_TOKEN, which is not set"), "{err}");
        std::fs::write(dir.path().join(SECRETS_FILE), r#"{"vars": []}"#).unwrap();
        let err = other_secrets(dir.path(), env(&[])).unwrap_err().to_string();
        assert!(
            err.contains("secrets.json") && err.contains("unknown field"),
            "{err}"
        );
    }

    #[test]
    fn the_config_file_is_read_and_the_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "model = \"claude-test\"\nmax_concurrent = 2\ntimeout = \"90s\"\ntime_zone = \"Europe/Berlin\"\n",
        )
        .unwrap();
        let settings = Settings::load(dir.path(), env(&[("PINCER_MAX_CONCURRENT", "7")])).unwrap();
        assert_eq!(settings.model, "claude-test");
        assert_eq!(settings.max_concurrent, 7);
        assert_eq!(settings.timeout, Duration::from_secs(90));
        assert_eq!(settings.time_zone, "Europe/Berlin");
        assert_eq!(settings.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        std::fs::write(dir.path().join(CONFIG_FILE), "modle = \"typo\"\n").unwrap();
        let err = Settings::load(dir.path(), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("modle"),
            "{err}"
        );
        let err = Settings::from_env(env(&[("TZ", "Mars/Olympus")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TZ"), "{err}");
        let err = Settings::from_env(env(&[("PINCER_MAX_CONCURRENT", "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PINCER_MAX_CONCURRENT"), "{err}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
