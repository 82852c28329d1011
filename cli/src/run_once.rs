//! `pincer run-once`: one message to one group, answered by one invocation, without a daemon.

use std::process::ExitCode;

use pincer_assistant::Registry;
use pincer_assistant::config::{Paths, Settings};
use pincer_assistant::escape;
use pincer_assistant::invoke::{Host, InvokeError};
use pincer_core::group::GroupName;
use pincer_core::mounts::MountRequest;
use pincer_core::sandbox::EngineEndpoint;
use pincer_protocol::Event;

use crate::{model_key, report};

#[allow(clippy::too_many_arguments)] // the CLI's parts, passed straight through
pub(crate) async fn run_once(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    group: GroupName,
    json: bool,
    mounts: &[MountRequest],
    secrets: Vec<String>,
    prompt: &str,
    registry: &Registry,
) -> ExitCode {
    let outcome = async {
        let host = Host::start(paths, settings, engine, model_key(), secrets, registry).await?;
        crate::image::prepare(&host).await?;
        let mut on_event = |event: &Event| match event {
            Event::ToolCall { name, input, .. } => tracing::info!("tool {name}: {input}"),
            Event::Message { text } => tracing::info!("agent: {text}"),
            _ => {}
        };
        tokio::select! {
            reply = host.invoke(&group, prompt, mounts, &mut on_event) => reply,
            // Dropping the invocation removes its container (the sandbox's drop guard).
            _ = tokio::signal::ctrl_c() => Err(InvokeError::Agent("interrupted".into())),
        }
    }
    .await;
    match outcome {
        Ok(reply) => {
            if json {
                let mut value = serde_json::to_value(&reply).unwrap_or_default();
                value["status"] = "ok".into();
                println!("{value}");
            } else {
                println!("{}", escape::text(&reply.text));
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"status": "error", "error": err.to_string()})
                );
            }
            report(&err.into());
            ExitCode::from(1)
        }
    }
}
