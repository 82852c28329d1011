//! `pincer doctor`: everything a new owner's first run depends on, each
//! check named, and each failing one saying what to do. The engine, the
//! runtime and the image ([`engine`]); the configuration, the model key and
//! endpoint, the mount allowlist, disk space and the daemon's socket
//! ([`setup`]); then the linked skills' own checks.

mod engine;
mod setup;

use std::process::ExitCode;

use pincer_assistant::Registry;
use pincer_assistant::config::{ConfigError, Paths, Settings};
use pincer_assistant::escape;
use pincer_assistant::registry::Check;
use pincer_core::sandbox::EngineEndpoint;

fn check(name: &str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        check: name.into(),
        ok,
        detail: detail.into(),
    }
}

pub(crate) async fn doctor(
    paths: &Paths,
    settings: Result<Settings, ConfigError>,
    engine: EngineEndpoint,
    json: bool,
    registry: &Registry,
) -> ExitCode {
    let (mut checks, skills) =
        engine::engine_checks(paths, settings.as_ref().ok(), engine.clone(), registry).await;
    checks.push(setup::config(paths, &settings));
    checks.push(setup::model(settings.as_ref().ok(), registry).await);
    checks.push(setup::allowlist(paths, &engine));
    checks.push(setup::disk(paths));
    checks.push(setup::daemon(paths).await);
    checks.extend(skills);
    for check in &checks {
        if json {
            println!("{}", serde_json::to_string(check).unwrap_or_default());
        } else {
            println!(
                "{:<5} {:<10} {}",
                if check.ok { "ok" } else { "FAIL" },
                check.check,
                escape::line(&check.detail)
            );
        }
    }
    if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
