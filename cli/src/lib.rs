//! The `pincer` command line as a library: one module per command, over the
//! assistant. The `pincer` binary calls [`main`] with the skills it links; a
//! skill's test host calls it with that skill alone.
//!
//! Human output on stdout, `--json` where scripts read it, logs through
//! `tracing` (`RUST_LOG`): on stderr, and for `serve` and `chat` in
//! `$PINCER_HOME/logs/`. Exit codes: 0 success, 1 the work failed,
//! 2 a usage or configuration error.

mod audit;
mod changes;
mod chat;
mod cleanup;
mod doctor;
mod egress;
mod groups;
mod image;
mod logging;
mod logs;
mod markdown;
mod mounts;
mod run_once;
mod send;
mod serve;
mod session;
mod status;
mod tasks;
mod usage;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pincer_assistant::Registry;
use pincer_assistant::config::{Paths, Settings, parse_duration};
use pincer_assistant::escape;
use pincer_core::group::GroupName;
use pincer_core::mounts::MountRequest;

use crate::mounts::parse_mount_request;
use pincer_core::sandbox::EngineEndpoint;
use pincer_store::Store;

use crate::audit::AuditCommand;
use crate::changes::ChangesCommand;
use crate::egress::EgressCommand;
use crate::groups::GroupsCommand;
use crate::image::ImageCommand;
use crate::mounts::MountsCommand;
use crate::session::SessionCommand;
use crate::tasks::TasksCommand;

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
    /// Talk to the assistant in the terminal (the main group). Uses the running
    /// daemon, or starts one in this process.
    Chat,
    /// Run the assistant: channels, queue, scheduler (until SIGTERM or Ctrl-C).
    Serve,
    /// Send a message to a group through the running daemon and print the reply.
    Send {
        /// The group.
        group: GroupName,
        /// The message.
        text: String,
    },
    /// Scheduled tasks.
    Tasks {
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// A group's conversation history.
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Run one prompt in a fresh container and print the answer.
    RunOnce {
        /// The group to run in.
        #[arg(long, default_value = "main")]
        group: GroupName,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
        /// Hard time limit (e.g. 90s, 5m); default PINCER_TIMEOUT or 10m.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        /// An extra mount, decided by the mount allowlist:
        /// `host=PATH[,name=NAME][,rw]` (or just PATH). Repeatable.
        #[arg(long = "mount", value_name = "SPEC", value_parser = parse_mount_request)]
        mounts: Vec<MountRequest>,
        /// The prompt.
        prompt: String,
    },
    /// Inspect the mount allowlist.
    Mounts {
        #[command(subcommand)]
        command: MountsCommand,
    },
    /// Manage the agent image.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Remove agent containers left behind by a host that died.
    Cleanup,
    /// Check the installation: the engine, the runtime, the agent image, the
    /// model key and endpoint, the configuration and mount allowlist, disk
    /// space, the daemon's socket. Exit 0 when every check passes, 1 otherwise.
    Doctor {
        /// One JSON object per check.
        #[arg(long)]
        json: bool,
    },
    /// Is it running, and what is it doing: the daemon, each group's queue,
    /// work, last answer, next task and tokens today (UTC), the containers.
    /// Exit 0 when the daemon answers, 1 when it does not.
    Status {
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The log of `serve` and `chat` ($PINCER_HOME/logs/), oldest first.
    Logs {
        /// Keep printing lines as they are written.
        #[arg(short, long)]
        follow: bool,
        /// Only this group's lines.
        #[arg(long)]
        group: Option<GroupName>,
        /// The lines as written (JSON).
        #[arg(long)]
        json: bool,
    },
    /// What agents wrote to staged grants and the access they asked for,
    /// waiting for you: list them (the waiting ones), show a change set,
    /// accept or reject it (whole or in part), approve or refuse a request.
    Changes {
        #[command(subcommand)]
        command: Option<ChangesCommand>,
        /// Only this group's change sets.
        #[arg(long)]
        group: Option<GroupName>,
        /// Decided ones too.
        #[arg(long)]
        all: bool,
        /// One JSON object per change set.
        #[arg(long)]
        json: bool,
    },
    /// Manage groups: the owner's main group and the chats Pincer serves.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Manage and test the groups' network egress allowlists.
    Egress {
        #[command(subcommand)]
        command: EgressCommand,
    },
    /// Show the audit log: every container spawn, host-API call and model request.
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        /// Only this group's entries.
        #[arg(long)]
        group: Option<GroupName>,
        /// Only entries since then: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age (90m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Model tokens per group per day (UTC), as the host counted them, and
    /// the share of input read from the prompt cache.
    Usage {
        /// Only this group.
        #[arg(long)]
        group: Option<GroupName>,
        /// Since then: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age (default 7d).
        #[arg(long, default_value = "7d")]
        since: String,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// What a channel skill may read of the environment: everything but the
/// model key, which only the gateway holds.
pub(crate) fn skill_env(var: &str) -> Option<String> {
    match var {
        "PINCER_MODEL_KEY" | "ANTHROPIC_API_KEY" => None,
        _ => env(var),
    }
}

/// Where the model key is read from, for messages that say where to set it.
pub(crate) const MODEL_KEY_VARIABLES: &str = "ANTHROPIC_API_KEY (or PINCER_MODEL_KEY)";

/// The model key: `PINCER_MODEL_KEY` (any provider), else `ANTHROPIC_API_KEY`.
pub(crate) fn model_key() -> Option<String> {
    env("PINCER_MODEL_KEY")
        .filter(|k| !k.is_empty())
        .or_else(|| env("ANTHROPIC_API_KEY"))
}

/// Runs the `pincer` command line with the skills `register` links (the
/// binary's one registry file); a skill's test host calls it with its own.
pub fn main(register: fn(&mut Registry)) -> ExitCode {
    let cli = Cli::parse();
    let logging = match cli.command {
        Command::Serve => logging::Logging::Service,
        Command::Chat => logging::Logging::Conversation,
        _ => logging::Logging::Stderr,
    };
    let home = Paths::from_env(env).ok().map(|paths| paths.home);
    logging::init(logging, home.as_deref());
    raise_descriptor_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            report(&anyhow::anyhow!("cannot start the async runtime: {err}"));
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(cli, &Registry::with(register)))
}

/// Takes the soft limit on open files up to the hard one. The usual soft
/// limit (1024) is what a daemon serving many sockets runs out of first;
/// each invocation's socket caps its own connections (`[limits]
/// connections`), and this leaves the host room for all of them.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!("cannot raise the open-file limit: {err}");
        }
    }
}

#[allow(clippy::print_stderr)] // the binary's edge: the one place errors are printed
pub(crate) fn report(err: &anyhow::Error) {
    // An error can quote an agent (its failure, a path it chose).
    eprintln!("error: {}", escape::text(&format!("{err:#}")));
}

async fn run(cli: Cli, registry: &Registry) -> ExitCode {
    let paths = match Paths::from_env(env) {
        Ok(paths) => paths,
        Err(err) => {
            report(&pincer_assistant::config::ConfigError::from(err).into());
            return ExitCode::from(2);
        }
    };
    let engine = EngineEndpoint::detect(env("DOCKER_HOST"), env("XDG_RUNTIME_DIR").as_deref());
    let settings = Settings::load(&paths.config_dir, env);
    // These answer "what is wrong": a configuration that does not load is
    // one of the doctor's findings, and no reason to hide the status or logs.
    match cli.command {
        Command::Doctor { json } => doctor::doctor(&paths, settings, engine, json, registry).await,
        Command::Status { json } => status::status_command(&paths, engine, json).await,
        Command::Logs {
            follow,
            group,
            json,
        } => exit_code(logs::logs_command(&paths, follow, group, json).await),
        command => match settings {
            Ok(settings) => with_settings(command, paths, settings, engine, registry).await,
            Err(err) => {
                report(&err.into());
                ExitCode::from(2)
            }
        },
    }
}

async fn with_settings(
    command: Command,
    paths: Paths,
    mut settings: Settings,
    engine: EngineEndpoint,
    registry: &Registry,
) -> ExitCode {
    let result = match command {
        Command::RunOnce {
            group,
            json,
            timeout,
            mounts,
            prompt,
        } => {
            if let Some(timeout) = timeout {
                settings.timeout = timeout;
            }
            let secrets = match owner_secrets(&paths) {
                Ok(secrets) => secrets,
                Err(code) => return code,
            };
            return run_once::run_once(
                paths, settings, engine, group, json, &mounts, secrets, &prompt, registry,
            )
            .await;
        }
        Command::Mounts { command } => return mounts::mounts_command(&paths, &engine, command),
        Command::Image {
            command: ImageCommand::Build { full, tag },
        } => image::build_image(&paths, &settings, engine, full, tag).await,
        Command::Cleanup => cleanup::cleanup(&paths, engine).await,
        // Answered before the settings were needed: the same calls all the same.
        Command::Doctor { json } => {
            return doctor::doctor(&paths, Ok(settings), engine, json, registry).await;
        }
        Command::Status { json } => return status::status_command(&paths, engine, json).await,
        Command::Logs {
            follow,
            group,
            json,
        } => logs::logs_command(&paths, follow, group, json).await,
        Command::Groups { command } => groups::groups_command(&paths, command),
        Command::Changes {
            command,
            group,
            all,
            json,
        } => return changes::changes_command(&paths, command, group, all, json),
        Command::Tasks { command } => tasks::tasks_command(&paths, command),
        Command::Session {
            command: SessionCommand::Reset { group },
        } => session::session_reset(&paths, &group),
        Command::Send { group, text } => return send::send_command(&paths, &group, &text).await,
        Command::Serve | Command::Chat => {
            let secrets = match owner_secrets(&paths) {
                Ok(secrets) => secrets,
                Err(code) => return code,
            };
            if matches!(command, Command::Chat) {
                chat::chat_command(paths, settings, engine, secrets, registry).await
            } else {
                serve::serve_command(paths, settings, engine, secrets, registry).await
            }
        }
        Command::Egress { command } => return egress::egress_command(&paths, command).await,
        Command::Audit {
            command: Some(AuditCommand::Prune { before }),
            ..
        } => audit::prune_audit(&paths, &before),
        Command::Audit {
            command: None,
            group,
            since,
            json,
        } => audit::audit_command(&paths, group, since, json),
        Command::Usage { group, since, json } => usage::usage_command(&paths, group, &since, json),
    };
    exit_code(result)
}

/// The owner's other secrets (`secrets.json`); a file that does not load is a configuration error.
fn owner_secrets(paths: &Paths) -> Result<Vec<String>, ExitCode> {
    pincer_assistant::config::other_secrets(&paths.config_dir, env).map_err(|err| {
        report(&err.into());
        ExitCode::from(2)
    })
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    }
}

pub(crate) fn open_store(paths: &Paths) -> anyhow::Result<Store> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.home)
        .with_context(|| format!("cannot create {}", paths.home.display()))?;
    Ok(Store::open(&paths.database())?)
}
