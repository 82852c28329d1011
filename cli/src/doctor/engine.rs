//! The engine's checks: the engine itself, the runtime, the image, and the
//! linked skills' own checks (they read what the engine says about itself).

use pincer_assistant::Registry;
use pincer_assistant::config::{Paths, Settings};
use pincer_assistant::registry::Check;
use pincer_core::sandbox::{EngineEndpoint, Sandbox};

use super::check;

/// The engine's checks; the skills' come separately, after the core's.
pub(super) async fn engine_checks(
    paths: &Paths,
    settings: Option<&Settings>,
    engine: EngineEndpoint,
    registry: &Registry,
) -> (Vec<Check>, Vec<Check>) {
    let sandbox = match Sandbox::connect(paths, engine).await {
        Ok(sandbox) => sandbox,
        Err(err) => return (vec![check("engine", false, err.to_string())], Vec::new()),
    };
    let facts = match sandbox.engine_facts().await {
        Ok(facts) => facts,
        Err(err) => return (vec![check("engine", false, err.to_string())], Vec::new()),
    };
    let mut checks = vec![check(
        "engine",
        true,
        format!(
            "{} version {}, API {}, at {}",
            sandbox.profile().describe(),
            facts.version,
            facts.api_version,
            sandbox.endpoint()
        ),
    )];
    let Some(settings) = settings else {
        return (checks, Vec::new());
    };
    let runtime = settings
        .runtime
        .clone()
        .unwrap_or_else(|| facts.default_runtime.clone());
    let registered = facts.runtimes.contains_key(&runtime);
    // Registered is not enough where the engine would not pass it.
    let passed = sandbox.profile().check_runtime(Some(&runtime));
    let known = facts
        .runtimes
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    checks.push(check(
        "runtime",
        registered && passed.is_ok(),
        match (registered, passed) {
            (false, _) => {
                format!("{runtime} is not registered with the engine (registered: {known})")
            }
            (true, Err(refused)) => refused.to_string(),
            (true, Ok(())) => format!("{runtime} is registered (registered: {known})"),
        },
    ));
    let image = sandbox.image_exists(&settings.image).await.unwrap_or(false);
    checks.push(check(
        "image",
        image,
        if image {
            format!("{} is built", settings.image)
        } else {
            format!(
                "{} is missing: `pincer image build` (or it is built on first use)",
                settings.image
            )
        },
    ));
    (checks, registry.doctor(settings, &facts))
}
