//! The `pincer` command line: a thin layer over the library.
//!
//! Human output on stdout, `--json` where scripts read it, logs on stderr
//! through `tracing` (`RUST_LOG`). Exit codes: 0 success, 1 the work failed,
//! 2 a usage or configuration error.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pincer::config::{Paths, Settings, parse_duration};
use pincer::group::GroupName;
use pincer::invoke::{Host, InvokeError};
use pincer::sandbox::{EngineEndpoint, ImageKind, ImageSources, Sandbox};
use pincer_protocol::Event;

#[derive(Parser)]
#[command(
    name = "pincer",
    version,
    about = "A personal AI assistant that treats its own agents as untrusted"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one prompt in a fresh container and print the answer.
    RunOnce {
        /// The group to run in.
        #[arg(long, default_value = "main")]
        group: String,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
        /// Hard time limit (e.g. 90s, 5m); default PINCER_TIMEOUT or 10m.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// The prompt.
        prompt: String,
    },
    /// Manage the agent image.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Remove agent containers left behind by a host that died.
    Cleanup,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Build (or rebuild) the agent image.
    Build {
        /// Build the fuller Debian image from container/Dockerfile (needs a registry).
        #[arg(long)]
        full: bool,
        /// The tag; default PINCER_IMAGE or pincer-agent:<version>.
        #[arg(long)]
        tag: Option<String>,
    },
}

fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("pincer=info")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&anyhow::anyhow!("cannot start the async runtime: {err}"));
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(cli))
}

#[allow(clippy::print_stderr)] // the binary's edge: the one place errors are printed
fn report(err: &anyhow::Error) {
    eprintln!("error: {err:#}");
}

async fn run(cli: Cli) -> ExitCode {
    let (paths, settings) =
        match Paths::from_env(env).and_then(|p| Ok((p, Settings::from_env(env)?))) {
            Ok(config) => config,
            Err(err) => {
                report(&err.into());
                return ExitCode::from(2);
            }
        };
    let engine = EngineEndpoint::from_docker_host(env("DOCKER_HOST"));
    let result = match cli.command {
        Command::RunOnce {
            group,
            json,
            timeout,
            prompt,
        } => {
            let group = match GroupName::new(&group) {
                Ok(group) => group,
                Err(err) => {
                    report(&err.into());
                    return ExitCode::from(2);
                }
            };
            let mut settings = settings;
            if let Some(timeout) = timeout {
                settings.timeout = timeout;
            }
            return run_once(paths, settings, engine, group, json, &prompt).await;
        }
        Command::Image {
            command: ImageCommand::Build { full, tag },
        } => build_image(&paths, &settings, engine, full, tag).await,
        Command::Cleanup => cleanup(&paths, engine).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    }
}

async fn run_once(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    group: GroupName,
    json: bool,
    prompt: &str,
) -> ExitCode {
    let outcome = async {
        let host = Host::start(paths, settings, engine, env("ANTHROPIC_API_KEY")).await?;
        let mut on_event = |event: &Event| match event {
            Event::ToolCall { name, input, .. } => tracing::info!("tool {name}: {input}"),
            Event::Message { text } => tracing::info!("agent: {text}"),
            _ => {}
        };
        tokio::select! {
            reply = host.invoke(&group, prompt, &mut on_event) => reply,
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
                println!("{}", reply.text);
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

async fn build_image(
    paths: &Paths,
    settings: &Settings,
    engine: EngineEndpoint,
    full: bool,
    tag: Option<String>,
) -> anyhow::Result<()> {
    let sandbox = Sandbox::connect(paths, engine).await?;
    let tag = tag.unwrap_or_else(|| settings.image.clone());
    let kind = if full {
        ImageKind::Full
    } else {
        ImageKind::Minimal
    };
    let sources = ImageSources {
        agent_bin: settings.agent_bin.clone(),
        busybox: settings.busybox.clone(),
    };
    sandbox
        .build_image(kind, &tag, &sources)
        .await
        .with_context(|| format!("cannot build the agent image {tag}"))?;
    println!("built {tag}");
    Ok(())
}

async fn cleanup(paths: &Paths, engine: EngineEndpoint) -> anyhow::Result<()> {
    let sandbox = Sandbox::connect(paths, engine).await?;
    let removed = sandbox.remove_orphans().await?;
    println!("removed {removed} orphaned container(s)");
    Ok(())
}
