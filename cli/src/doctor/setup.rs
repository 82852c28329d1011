//! The checks of what the owner set up: the configuration file, the model
//! key (and whether the endpoint accepts it), the mount allowlist, the disk
//! under `PINCER_HOME`, the daemon's socket.

use pincer_assistant::Registry;
use pincer_assistant::config::{CONFIG_FILE, ConfigError, Paths, Settings};
use pincer_assistant::daemon::{Presence, presence};
use pincer_assistant::invoke::host_facts;
use pincer_assistant::registry::Check;
use pincer_core::mounts::{MountPolicy, Writes};
use pincer_core::sandbox::EngineEndpoint;
use pincer_socket::gateway::{ApiKey, Upstream};
use pincer_socket::probe::Probe;

use super::check;

/// Below this much free space under `PINCER_HOME` the check fails: the
/// store, the logs and the groups' folders live there.
const LOW_DISK_BYTES: u64 = 1024 * 1024 * 1024;

pub(super) fn config(paths: &Paths, settings: &Result<Settings, ConfigError>) -> Check {
    let file = paths.config_dir.join(CONFIG_FILE);
    match settings {
        Err(err) => check(
            "config",
            false,
            format!("{err}: fix it (the environment's PINCER_* variables override the file)"),
        ),
        Ok(settings) => {
            let source = if file.exists() {
                format!("{} read", file.display())
            } else {
                format!("no {} (defaults and the environment)", file.display())
            };
            let runtime = settings
                .runtime
                .as_deref()
                .unwrap_or("the engine's default");
            check(
                "config",
                true,
                format!(
                    "{source}: model {} ({}) at {}, at most {} containers at once, {}s per answer, runtime {runtime}",
                    settings.model,
                    settings.model_provider,
                    shown_url(&settings.model_url),
                    settings.max_concurrent,
                    settings.timeout.as_secs()
                ),
            )
        }
    }
}

pub(super) async fn model(settings: Option<&Settings>, registry: &Registry) -> Check {
    let Some(settings) = settings else {
        return check(
            "model",
            false,
            "not checked: the configuration does not load",
        );
    };
    let Some(key) = crate::model_key().and_then(|key| ApiKey::new(key).ok()) else {
        return check(
            "model",
            false,
            format!(
                "no model key: set {} where `pincer serve` runs",
                crate::MODEL_KEY_VARIABLES
            ),
        );
    };
    let upstream = registry
        .provider(&settings.model_provider)
        .map_err(|err| err.to_string())
        .and_then(|provider| {
            Upstream::with_provider(&settings.model_url, key, provider).map_err(|e| e.to_string())
        });
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(err) => {
            return check(
                "model",
                false,
                format!("{err}: fix model_url or model_provider"),
            );
        }
    };
    let at = &shown_url(&settings.model_url);
    match upstream.probe(&settings.model).await {
        Probe::Accepted { status } => check(
            "model",
            true,
            format!(
                "{at} accepted the key ({status} for a one-token request to {})",
                settings.model
            ),
        ),
        Probe::Refused { status, message } => check(
            "model",
            false,
            format!(
                "{at} refused the key ({status}: {message}): check {}",
                crate::MODEL_KEY_VARIABLES
            ),
        ),
        Probe::Failed { status, message } => check(
            "model",
            false,
            format!("{at} answered {status} ({message}): check model, model_url and the account"),
        ),
        Probe::Unreachable(why) => check(
            "model",
            false,
            format!("{at} is unreachable ({why}): check model_url and the network"),
        ),
    }
}

pub(super) fn allowlist(paths: &Paths, engine: &EngineEndpoint) -> Check {
    match MountPolicy::load(&host_facts(paths, engine)) {
        Err(err) => check(
            "allowlist",
            false,
            format!(
                "{err}: fix it, or remove it to allow no extra mounts (`pincer mounts list` shows the result)"
            ),
        ),
        Ok(policy) if !policy.file_present => check(
            "allowlist",
            true,
            format!("no {}: no extra mounts are allowed", policy.file.display()),
        ),
        Ok(policy) => {
            let roots: Vec<String> = policy
                .allowed_roots
                .iter()
                .map(|root| {
                    // How writes are staged is said where the owner looks:
                    // a copy per invocation, never a silent direct mount.
                    let mode = match (root.allow_read_write, root.writes) {
                        (false, _) => "ro",
                        (true, Writes::Staged) => "rw staged: writes go to a copy per invocation",
                        (true, Writes::Direct) => "rw direct: writes land at once",
                    };
                    match &root.real_path {
                        Some(_) => format!("{} ({mode})", root.path),
                        None => format!("{} (missing: allows nothing)", root.path),
                    }
                })
                .collect();
            let others = if policy.non_main_read_only {
                "read-only"
            } else {
                "read-write where a root allows it"
            };
            check(
                "allowlist",
                true,
                format!(
                    "{}: {} root(s): {}; other groups {others}",
                    policy.file.display(),
                    roots.len(),
                    if roots.is_empty() {
                        "none".to_owned()
                    } else {
                        roots.join(", ")
                    }
                ),
            )
        }
    }
}

pub(super) fn disk(paths: &Paths) -> Check {
    // PINCER_HOME may not exist before the first run: its nearest ancestor decides.
    let Some(existing) = paths.home.ancestors().find(|p| p.exists()) else {
        return check(
            "disk",
            false,
            format!("no folder of {} exists", paths.home.display()),
        );
    };
    match rustix::fs::statvfs(existing) {
        Err(err) => check(
            "disk",
            false,
            format!(
                "cannot read the free space of {}: {err}",
                existing.display()
            ),
        ),
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let gib = free as f64 / (1024.0 * 1024.0 * 1024.0);
            if free < LOW_DISK_BYTES {
                check(
                    "disk",
                    false,
                    format!(
                        "{gib:.2} GiB free under {}: free some space (the store, logs and group folders live there; `pincer audit prune` trims the audit)",
                        paths.home.display()
                    ),
                )
            } else {
                check(
                    "disk",
                    true,
                    format!("{gib:.1} GiB free under {}", paths.home.display()),
                )
            }
        }
    }
}

pub(super) async fn daemon(paths: &Paths) -> Check {
    match presence(paths).await {
        Presence::Answering => check("daemon", true, "running: it answers on its socket"),
        Presence::Absent => check(
            "daemon",
            true,
            "not running (`pincer serve` starts it; `pincer chat` starts its own)",
        ),
        Presence::StaleSocket(socket) => check(
            "daemon",
            false,
            format!(
                "not running, and {} is left from one that died: remove it (`pincer serve` also replaces it)",
                socket.display()
            ),
        ),
        Presence::Unanswering { lock, socket } => check(
            "daemon",
            false,
            format!(
                "a process holds {} but nothing answers on {}: it may be stuck; `fuser {}` names it, stop it and start `pincer serve` again",
                lock.display(),
                socket.display(),
                lock.display()
            ),
        ),
    }
}

/// The model URL without what could be a credential: a user and password,
/// a query (`?key=…`). Shown as written if it is not a URL.
fn shown_url(url: &str) -> String {
    match url.parse::<hyper::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.host()) {
            (Some(scheme), Some(host)) => {
                let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
                format!("{scheme}://{host}{port}{}", uri.path())
            }
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_credentials() {
        assert_eq!(
            shown_url("https://u:secret@api.example.org:8443/v1?key=k"),
            "https://api.example.org:8443/v1"
        );
        assert_eq!(shown_url("http://127.0.0.1:9/"), "http://127.0.0.1:9/");
    }
}
