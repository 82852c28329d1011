//! `pincer doctor`: the engine, the runtime, the image, and the linked skills' own checks.

use std::process::ExitCode;

use pincer_assistant::Registry;
use pincer_assistant::config::{Paths, Settings};
use pincer_assistant::registry::Check;
use pincer_core::sandbox::{EngineEndpoint, Sandbox};

pub(crate) async fn doctor(
    paths: &Paths,
    settings: &Settings,
    engine: EngineEndpoint,
    json: bool,
    registry: &Registry,
) -> ExitCode {
    let mut checks = Vec::new();
    match Sandbox::connect(paths, engine).await {
        Err(err) => checks.push(Check {
            check: "engine".into(),
            ok: false,
            detail: err.to_string(),
        }),
        Ok(sandbox) => match sandbox.engine_facts().await {
            Err(err) => checks.push(Check {
                check: "engine".into(),
                ok: false,
                detail: err.to_string(),
            }),
            Ok(facts) => {
                checks.push(Check {
                    check: "engine".into(),
                    ok: true,
                    detail: format!(
                        "{} version {}, API {}, at {}",
                        sandbox.profile().describe(),
                        facts.version,
                        facts.api_version,
                        sandbox.endpoint()
                    ),
                });
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
                checks.push(Check {
                    check: "runtime".into(),
                    ok: registered && passed.is_ok(),
                    detail: match (registered, passed) {
                        (false, _) => format!(
                            "{runtime} is not registered with the engine (registered: {known})"
                        ),
                        (true, Err(refused)) => refused.to_string(),
                        (true, Ok(())) => format!("{runtime} is registered (registered: {known})"),
                    },
                });
                let image = sandbox.image_exists(&settings.image).await.unwrap_or(false);
                checks.push(Check {
                    check: "image".into(),
                    ok: image,
                    detail: if image {
                        format!("{} is built", settings.image)
                    } else {
                        format!(
                            "{} is missing: `pincer image build` (or it is built on first use)",
                            settings.image
                        )
                    },
                });
                checks.extend(registry.doctor(settings, &facts));
            }
        },
    }
    for check in &checks {
        if json {
            println!("{}", serde_json::to_string(check).unwrap_or_default());
        } else {
            println!(
                "{:<5} {:<10} {}",
                if check.ok { "ok" } else { "FAIL" },
                check.check,
                check.detail
            );
        }
    }
    if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
