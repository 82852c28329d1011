//! The `pincer` command line: a thin layer over the library.
//!
//! Human output on stdout, `--json` where scripts read it, logs on stderr
//! through `tracing` (`RUST_LOG`). Exit codes: 0 success, 1 the work failed,
//! 2 a usage or configuration error.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pincer::config::{Paths, Settings, parse_duration};
use pincer::daemon::{ControlClient, Daemon};
use pincer::egress::{Egress, EgressRule, LeakGuard};
use pincer::escape;
use pincer::group::GroupName;
use pincer::invoke::{Host, InvokeError, host_facts};
use pincer::mounts::{MountPolicy, MountRequest};
use pincer::sandbox::{EngineEndpoint, ImageKind, ImageSources, Sandbox};
use pincer::store::Store;
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
    /// Check the installation: the engine, the runtime, the agent image.
    /// Exit 0 when every check passes, 1 otherwise.
    Doctor {
        /// One JSON object per check.
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

#[derive(Subcommand)]
enum AuditCommand {
    /// Remove the entries written before a date (a new entry says so, and
    /// the database gives the space back). Agents can never remove entries.
    Prune {
        /// YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age (90d: older than 90 days).
        #[arg(long)]
        before: String,
    },
}

#[derive(Subcommand)]
enum TasksCommand {
    /// List the tasks.
    List {
        /// Only this group's.
        #[arg(long)]
        group: Option<GroupName>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a task.
    Pause {
        /// Its id.
        id: i64,
    },
    /// Resume a paused task (its next run is planned from now).
    Resume {
        /// Its id.
        id: i64,
    },
    /// Cancel a task.
    Cancel {
        /// Its id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum SessionCommand {
    /// Start the group's conversation afresh (the old one is archived).
    Reset {
        /// The group.
        group: GroupName,
    },
}

#[derive(Subcommand)]
enum EgressCommand {
    /// Allow a destination: host, *.domain or IP, with :port or :* (default ports 80 and 443).
    Allow {
        /// The group.
        group: GroupName,
        /// The rule, e.g. github.com, *.githubusercontent.com, 10.0.0.5:8080.
        rule: String,
    },
    /// Remove a rule.
    Revoke {
        /// The group.
        group: GroupName,
        /// The rule, as it was added.
        rule: String,
    },
    /// Show the rules (of one group, or all).
    List {
        /// Only this group.
        group: Option<GroupName>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tell whether a URL would be allowed for a group, and why; prints one
    /// JSON object. Exit 0 allowed, 1 denied, 2 usage error.
    Test {
        /// The group.
        group: GroupName,
        /// The URL (http, https) or host:port.
        url: String,
    },
}

#[derive(Subcommand)]
enum GroupsCommand {
    /// List the groups.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a (non-main) group for a chat.
    Add {
        /// The group's name (also its folder's name).
        name: GroupName,
        /// The chat it answers in (e.g. telegram:-1001234).
        #[arg(long)]
        chat: String,
        /// What a message must start with to wake the agent (default @pincer).
        #[arg(long)]
        trigger: Option<String>,
    },
    /// Unregister a group; its folders are archived under `removed/` in
    /// Pincer's data folder (or deleted with --purge), so a new group of the
    /// same name starts empty.
    Remove {
        /// The group's name.
        name: GroupName,
        /// Delete the group's folder and session instead of archiving them.
        #[arg(long)]
        purge: bool,
    },
    /// Ask for an extra folder for a group, at every invocation; the mount
    /// allowlist decides each time (`pincer mounts check` shows how).
    Mount {
        /// The group.
        group: GroupName,
        /// `host=PATH[,name=NAME][,rw]` (or just PATH).
        #[arg(value_parser = parse_mount_request)]
        spec: MountRequest,
    },
    /// Withdraw a group's request for an extra folder.
    Unmount {
        /// The group.
        group: GroupName,
        /// The host path, as it was asked for.
        host_path: String,
    },
    /// The extra folders a group asks for.
    Mounts {
        /// The group.
        group: GroupName,
    },
}

#[derive(Subcommand)]
enum MountsCommand {
    /// Decide one extra mount as an invocation would; prints one JSON object.
    /// Exit 0 allowed, 1 denied, 2 usage or configuration error.
    Check {
        /// Decide for this group (`main` is the trusted one).
        #[arg(long)]
        group: Option<GroupName>,
        /// Decide as for the main group.
        #[arg(long)]
        main: bool,
        /// Ask for read-write.
        #[arg(long)]
        rw: bool,
        /// The host path (`~` allowed).
        host_path: String,
        /// The name under /workspace/extra/ (default: the folder's name).
        container_name: Option<String>,
    },
    /// Show the effective policy: allowlist, built-in blocks, protected paths.
    List {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// The model key: `PINCER_MODEL_KEY` (any provider), else `ANTHROPIC_API_KEY`.
fn model_key() -> Option<String> {
    env("PINCER_MODEL_KEY")
        .filter(|k| !k.is_empty())
        .or_else(|| env("ANTHROPIC_API_KEY"))
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
    raise_descriptor_limit();
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
fn report(err: &anyhow::Error) {
    // An error can quote an agent (its failure, a path it chose).
    eprintln!("error: {}", escape::text(&format!("{err:#}")));
}

async fn run(cli: Cli) -> ExitCode {
    let (paths, settings) = match Paths::from_env(env)
        .and_then(|p| Ok((Settings::load(&p.config_dir, env)?, p)))
        .map(|(s, p)| (p, s))
    {
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
            mounts,
            prompt,
        } => {
            let mut settings = settings;
            if let Some(timeout) = timeout {
                settings.timeout = timeout;
            }
            let secrets = match pincer::config::other_secrets(&paths.config_dir, env) {
                Ok(secrets) => secrets,
                Err(err) => {
                    report(&err.into());
                    return ExitCode::from(2);
                }
            };
            return run_once(
                paths, settings, engine, group, json, &mounts, secrets, &prompt,
            )
            .await;
        }
        Command::Mounts { command } => return mounts_command(&paths, &engine, command),
        Command::Image {
            command: ImageCommand::Build { full, tag },
        } => build_image(&paths, &settings, engine, full, tag).await,
        Command::Cleanup => cleanup(&paths, engine).await,
        Command::Doctor { json } => return doctor(&paths, &settings, engine, json).await,
        Command::Groups { command } => groups_command(&paths, command),
        Command::Tasks { command } => tasks_command(&paths, command),
        Command::Session {
            command: SessionCommand::Reset { group },
        } => session_reset(&paths, &group),
        Command::Send { group, text } => return send_command(&paths, &group, &text).await,
        Command::Serve | Command::Chat => {
            let secrets = match pincer::config::other_secrets(&paths.config_dir, env) {
                Ok(secrets) => secrets,
                Err(err) => {
                    report(&err.into());
                    return ExitCode::from(2);
                }
            };
            let chat = matches!(cli.command, Command::Chat);
            let result = if chat {
                chat_command(paths, settings, engine, secrets).await
            } else {
                serve_command(paths, settings, engine, secrets).await
            };
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    report(&err);
                    ExitCode::from(1)
                }
            };
        }
        Command::Egress { command } => return egress_command(&paths, command).await,
        Command::Audit {
            command: Some(AuditCommand::Prune { before }),
            ..
        } => prune_audit(&paths, &before),
        Command::Audit {
            command: None,
            group,
            since,
            json,
        } => audit_command(&paths, group, since, json),
        Command::Usage { group, since, json } => usage_command(&paths, group, &since, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    }
}

#[allow(clippy::too_many_arguments)] // the CLI's parts, passed straight through
async fn run_once(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    group: GroupName,
    json: bool,
    mounts: &[MountRequest],
    secrets: Vec<String>,
    prompt: &str,
) -> ExitCode {
    let outcome = async {
        let host = Host::start(paths, settings, engine, model_key(), secrets).await?;
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

async fn build_image(
    paths: &Paths,
    settings: &Settings,
    engine: EngineEndpoint,
    full: bool,
    tag: Option<String>,
) -> anyhow::Result<()> {
    let sandbox = Sandbox::connect(paths, engine).await?;
    // The full image gets a name of its own: building it must not silently
    // replace the image every invocation uses.
    let tag = tag.unwrap_or_else(|| {
        if full {
            format!("pincer-agent-full:{}", env!("CARGO_PKG_VERSION"))
        } else {
            settings.image.clone()
        }
    });
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
    if tag != settings.image {
        println!(
            "agents use {}; set PINCER_IMAGE={tag} to use this one",
            settings.image
        );
    }
    Ok(())
}

/// One line of `pincer doctor`.
#[derive(serde::Serialize)]
struct Check {
    check: String,
    ok: bool,
    detail: String,
}

async fn doctor(
    paths: &Paths,
    settings: &Settings,
    engine: EngineEndpoint,
    json: bool,
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
                    detail: format!("version {}, API {}", facts.version, facts.api_version),
                });
                let runtime = settings
                    .runtime
                    .clone()
                    .unwrap_or_else(|| facts.default_runtime.clone());
                let registered = facts.runtimes.contains_key(&runtime);
                let known = facts
                    .runtimes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                checks.push(Check {
                    check: "runtime".into(),
                    ok: registered,
                    detail: if registered {
                        format!("{runtime} is registered (registered: {known})")
                    } else {
                        format!("{runtime} is not registered with the engine (registered: {known})")
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
                // Doctor checks from skills register here, one line each.
                let _ = &facts;
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

async fn cleanup(paths: &Paths, engine: EngineEndpoint) -> anyhow::Result<()> {
    let sandbox = Sandbox::connect(paths, engine).await?;
    let removed = sandbox.remove_orphans().await?;
    println!("removed {removed} orphaned container(s)");
    Ok(())
}

async fn start_daemon(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    secrets: Vec<String>,
) -> anyhow::Result<std::sync::Arc<Daemon>> {
    let host = Host::start(paths, settings.clone(), engine, model_key(), secrets).await?;
    Ok(Daemon::new(host, settings, pincer::daemon::channels(&env)))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn serve_command(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    secrets: Vec<String>,
) -> anyhow::Result<()> {
    let daemon = start_daemon(paths, settings, engine, secrets).await?;
    daemon.run(shutdown_signal()).await?;
    Ok(())
}

async fn send_command(paths: &Paths, group: &str, text: &str) -> ExitCode {
    let mut client = match ControlClient::connect(&paths.home).await {
        Ok(client) => client,
        Err(err) => {
            report(&anyhow::anyhow!(
                "no pincer daemon answers at {} ({err}); start one with `pincer serve`",
                pincer::daemon::control_socket(&paths.home).display()
            ));
            return ExitCode::from(1);
        }
    };
    match client.ask(group, text).await {
        Ok((reply, failed)) => {
            println!("{}", escape::text(&reply));
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(err) => {
            report(&anyhow::anyhow!("{err}"));
            ExitCode::from(1)
        }
    }
}

async fn chat_command(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    secrets: Vec<String>,
) -> anyhow::Result<()> {
    use std::time::{Duration, Instant};

    // A running daemon, or one of our own in this process.
    let home = paths.home.clone();
    let mut own = None;
    if ControlClient::connect(&home).await.is_err() {
        let daemon = start_daemon(paths, settings, engine, secrets).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async {
            let _ = stopped.await;
        }));
        own = Some((stop, task));
    }
    let mut client = None;
    for _ in 0..100 {
        if let Ok(connected) = ControlClient::connect(&home).await {
            client = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = client.context("the daemon did not come up")?;

    let history = home.join("chat_history");
    let mut editor = rustyline::DefaultEditor::new()?;
    let _ = editor.load_history(&history);
    let asked = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let printer = editor.create_external_printer().ok();
    let watcher = ControlClient::connect(&home)
        .await
        .context("the daemon did not come up")?;
    let unasked = tokio::spawn(print_unasked(
        watcher,
        std::sync::Arc::clone(&asked),
        printer,
    ));
    println!("pincer chat — your main group. Ctrl-C cancels a running answer, Ctrl-D leaves.");
    loop {
        let (returned, line) = tokio::task::spawn_blocking(move || {
            let line = editor.readline("you> ");
            (editor, line)
        })
        .await?;
        editor = returned;
        let line = match line {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(text);
        let progress = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} working… {elapsed}")
        {
            progress.set_style(style);
        }
        progress.enable_steady_tick(Duration::from_millis(120));
        let started = Instant::now();
        let ask = client.ask_telling("main", text, |id| {
            if let Ok(mut asked) = asked.lock() {
                asked.insert(id);
            }
        });
        tokio::pin!(ask);
        let answer = loop {
            tokio::select! {
                answer = &mut ask => break answer,
                _ = tokio::signal::ctrl_c() => {
                    // Cancel the running invocation (its container is killed); keep waiting for its reply.
                    if let Ok(mut canceller) = ControlClient::connect(&home).await {
                        let _ = canceller.request(&serde_json::json!({"op": "cancel", "group": "main"})).await;
                    }
                }
            }
        };
        progress.finish_and_clear();
        match answer {
            Ok((reply, _)) => {
                println!(
                    "pincer> {}\n({:.1}s)",
                    escape::text(&reply),
                    started.elapsed().as_secs_f64()
                )
            }
            Err(err) => {
                report(&anyhow::anyhow!("{err}"));
                break;
            }
        }
    }
    let _ = editor.save_history(&history);
    unasked.abort();
    if let Some((stop, task)) = own {
        let _ = stop.send(());
        task.await??;
    }
    Ok(())
}

/// Prints what reaches the main chat without being asked in this terminal: a
/// scheduled task's result, a message the main agent sent, an answer to
/// `pincer send main`. `asked` holds the ids of the messages typed here.
async fn print_unasked(
    mut watcher: ControlClient,
    asked: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    mut printer: Option<impl rustyline::ExternalPrinter>,
) {
    if watcher
        .request(&serde_json::json!({"op": "watch"}))
        .await
        .is_err()
    {
        return;
    }
    // Replies are also delivered afterwards: each is shown once.
    let mut replies = std::collections::HashSet::new();
    while let Ok(Some(event)) = watcher.next().await {
        if event["chat"] != pincer::store::MAIN_CHAT {
            continue;
        }
        let text = match event["event"].as_str() {
            Some("reply") => {
                if let Some(id) = event["reply_id"].as_i64() {
                    replies.insert(id);
                }
                let answers = event["answers"].as_array().cloned().unwrap_or_default();
                let mine = asked.lock().is_ok_and(|asked| {
                    answers
                        .iter()
                        .any(|id| id.as_i64().is_some_and(|id| asked.contains(&id)))
                });
                if mine {
                    continue;
                }
                event["text"].as_str().unwrap_or_default().to_owned()
            }
            Some("delivered") if event["id"].as_i64().is_some_and(|id| replies.contains(&id)) => {
                continue;
            }
            Some("delivered") => event["text"].as_str().unwrap_or_default().to_owned(),
            _ => continue,
        };
        let line = format!("pincer (unasked)> {}\n", escape::text(&text));
        match printer.as_mut() {
            Some(printer) => {
                let _ = printer.print(line);
            }
            None => print!("{line}"),
        }
    }
}

fn tasks_command(paths: &Paths, command: TasksCommand) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    match command {
        TasksCommand::List { group, json } => {
            let tasks = store.tasks(group.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&tasks)?);
            } else {
                for task in tasks {
                    println!(
                        "{:>4}  {:<12} {:<9} {:<8} {:<20} next {:<21} {}",
                        task.id,
                        task.group,
                        task.status,
                        task.schedule_kind,
                        escape::line(&task.schedule_value),
                        task.next_run.as_deref().unwrap_or("-"),
                        escape::line(&task.prompt)
                    );
                }
            }
        }
        TasksCommand::Pause { id } | TasksCommand::Resume { id } | TasksCommand::Cancel { id } => {
            let status = match command {
                TasksCommand::Pause { .. } => "paused",
                TasksCommand::Resume { .. } => "active",
                _ => "cancelled",
            };
            let task = store.task(id)?.with_context(|| format!("no task {id}"))?;
            if task.status == "cancelled" || task.status == "done" {
                anyhow::bail!("task {id} is {}", task.status);
            }
            store.set_task_status(id, status)?;
            println!("task {id} is {status}");
        }
    }
    Ok(())
}

fn session_reset(paths: &Paths, group: &GroupName) -> anyhow::Result<()> {
    match pincer::folders::reset_session(paths, group)? {
        None => println!("{group} has no session to reset"),
        Some(moved) => println!(
            "{group}'s session starts afresh (the old one is in {})",
            moved.display()
        ),
    }
    Ok(())
}

fn open_store(paths: &Paths) -> anyhow::Result<Store> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&paths.home)
        .with_context(|| format!("cannot create {}", paths.home.display()))?;
    Ok(Store::open(&paths.database())?)
}

async fn egress_command(paths: &Paths, command: EgressCommand) -> ExitCode {
    let usage = |err: anyhow::Error| {
        report(&err);
        ExitCode::from(2)
    };
    let store = match open_store(paths) {
        Ok(store) => std::sync::Arc::new(store),
        Err(err) => return usage(err),
    };
    let done = |result: anyhow::Result<()>| match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    };
    match command {
        EgressCommand::Allow { group, rule } => {
            let parsed: EgressRule = match rule.parse() {
                Ok(rule) => rule,
                Err(err) => return usage(anyhow::anyhow!(err)),
            };
            done(
                store
                    .allow_egress(&group, &parsed.to_string())
                    .map_err(Into::into)
                    .map(|()| {
                        println!("{group} may now reach {parsed}");
                    }),
            )
        }
        EgressCommand::Revoke { group, rule } => done(
            store
                .revoke_egress(&group, rule.trim())
                .map_err(Into::into)
                .map(|()| println!("revoked {} for {group}", rule.trim())),
        ),
        EgressCommand::List { group, json } => done((|| {
            let groups = match group {
                Some(group) => vec![group.to_string()],
                None => store.groups()?.into_iter().map(|g| g.name).collect(),
            };
            let mut all = serde_json::Map::new();
            for group in groups {
                let rules = store.egress_rules(&group)?;
                if !json {
                    let shown = if rules.is_empty() {
                        "(nothing: no egress)".to_owned()
                    } else {
                        rules.join(" ")
                    };
                    println!("{group:<20} {shown}");
                }
                all.insert(group, rules.into());
            }
            if json {
                println!("{}", serde_json::Value::Object(all));
            }
            Ok(())
        })()),
        EgressCommand::Test { group, url } => {
            if let Err(err) = store
                .group(&group)
                .map_err(anyhow::Error::from)
                .and_then(|g| {
                    g.map(|_| ())
                        .ok_or_else(|| anyhow::anyhow!("no group named {group}"))
                })
            {
                return usage(err);
            }
            let (host, port) = match host_and_port(&url) {
                Ok(target) => target,
                Err(err) => return usage(anyhow::anyhow!(err)),
            };
            let egress = match Egress::new(store, LeakGuard::default()) {
                Ok(egress) => egress,
                Err(err) => return usage(err.into()),
            };
            match egress.decide(&group, &host, port).await {
                Ok(allowed) => {
                    let addresses: Vec<String> =
                        allowed.addresses.iter().map(|a| a.to_string()).collect();
                    println!(
                        "{}",
                        serde_json::json!({"allowed": true, "host": host, "port": port, "rule": allowed.rule, "addresses": addresses})
                    );
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    println!(
                        "{}",
                        serde_json::json!({"allowed": false, "host": host, "port": port, "reason": reason})
                    );
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `https://host[:port]/…`, `http://…`, or `host:port`.
fn host_and_port(url: &str) -> Result<(String, u16), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|err| format!("cannot read {url:?} as a URL: {err}"))?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") | None => 80,
        Some(other) => return Err(format!("unsupported scheme {other}")),
    };
    let host = uri.host().ok_or_else(|| format!("{url:?} has no host"))?;
    Ok((host.to_owned(), uri.port_u16().unwrap_or(default_port)))
}

fn groups_command(paths: &Paths, command: GroupsCommand) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    match command {
        GroupsCommand::List { json } => {
            let groups = store.groups()?;
            if json {
                println!("{}", serde_json::to_string(&groups)?);
            } else {
                for group in groups {
                    let wakes = match (&group.trigger, group.is_main) {
                        (_, true) => "main: every message".to_owned(),
                        (Some(trigger), false) => format!("trigger {trigger}"),
                        (None, false) => "no trigger".to_owned(),
                    };
                    println!(
                        "{:<20} {:<30} {}",
                        group.name,
                        escape::line(&group.chat_id),
                        escape::line(&wakes)
                    );
                }
            }
        }
        GroupsCommand::Add {
            name,
            chat,
            trigger,
        } => {
            let group = store.add_group(&name, &chat, trigger.as_deref())?;
            println!(
                "registered {} for chat {} (trigger {})",
                group.name,
                group.chat_id,
                group.trigger.unwrap_or_default()
            );
        }
        GroupsCommand::Remove { name: group, purge } => {
            store.removable(&group)?;
            // Folders first: a group whose folders could not be taken away
            // stays registered, so nobody new inherits them.
            use pincer::folders::{Retired, retire};
            let retired = retire(paths, &group, purge)?;
            store.remove_group(group.as_str())?;
            match retired {
                Retired::Archived(to) => {
                    println!("removed {group} (its folders are in {})", to.display())
                }
                Retired::Purged => println!("removed {group} and deleted its folders"),
                Retired::Nothing => println!("removed {group}"),
            }
        }
        GroupsCommand::Mount { group, spec } => {
            store.add_group_mount(
                &group,
                &spec.host_path,
                spec.container_name.as_deref(),
                spec.read_write,
            )?;
            println!(
                "{group} asks for {} (decided by the mount allowlist at each invocation)",
                spec.host_path
            );
        }
        GroupsCommand::Unmount { group, host_path } => {
            store.remove_group_mount(&group, &host_path)?;
            println!("{group} no longer asks for {host_path}");
        }
        GroupsCommand::Mounts { group } => {
            for (host_path, name, read_write) in store.group_mounts(&group)? {
                let name = name.map(|n| format!(" as {n}")).unwrap_or_default();
                println!(
                    "{host_path}{name}{}",
                    if read_write {
                        " (read-write asked)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(())
}

fn audit_command(
    paths: &Paths,
    group: Option<GroupName>,
    since: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    let since = since
        .map(|s| pincer::time::parse_since(&s, std::time::SystemTime::now()))
        .transpose()
        .map_err(|err| anyhow::anyhow!("--since: {err}"))?;
    for entry in store.audit_entries(group.as_deref(), since.as_deref())? {
        if json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            let decision = match entry.allowed {
                Some(true) => "allowed",
                Some(false) => "DENIED",
                None => "-",
            };
            let times = match entry.count {
                1 => String::new(),
                n => format!(" (×{n}, last {})", entry.last_at.as_deref().unwrap_or("-")),
            };
            println!(
                "{}  {:<12} {:<8} {:<16} {:<24} {:<8} {}{times}",
                entry.at,
                escape::line(entry.group.as_deref().unwrap_or("-")),
                escape::line(&entry.kind),
                escape::line(&entry.action),
                escape::line(entry.target.as_deref().unwrap_or("-")),
                decision,
                escape::line(entry.reason.as_deref().unwrap_or(""))
            );
        }
    }
    Ok(())
}

fn prune_audit(paths: &Paths, before: &str) -> anyhow::Result<()> {
    let before = pincer::time::parse_since(before, std::time::SystemTime::now())
        .map_err(|err| anyhow::anyhow!("--before: {err}"))?;
    let removed = open_store(paths)?.prune_audit(&before)?;
    println!("removed {removed} audit entries written before {before}");
    Ok(())
}

fn usage_command(
    paths: &Paths,
    group: Option<GroupName>,
    since: &str,
    json: bool,
) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    let since = pincer::time::parse_since(since, std::time::SystemTime::now())
        .map_err(|err| anyhow::anyhow!("--since: {err}"))?;
    let days = store.usage_by_day(group.as_deref(), &since)?;
    if !json && days.is_empty() {
        println!("no model requests since {since}");
    } else if !json {
        println!(
            "{:<10}  {:<16} {:>8} {:>12} {:>10} {:>12} {:>12} {:>7}",
            "day", "group", "requests", "input", "output", "cache read", "cache write", "cached"
        );
    }
    for day in days {
        let u = day.usage;
        let input = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens;
        let cached = if input == 0 {
            0.0
        } else {
            u.cache_read_tokens as f64 / input as f64
        };
        if json {
            let mut row = serde_json::to_value(&day)?;
            row["cached_share"] = serde_json::json!((cached * 1000.0).round() / 1000.0);
            println!("{row}");
        } else {
            println!(
                "{:<10}  {:<16} {:>8} {:>12} {:>10} {:>12} {:>12} {:>6.1}%",
                day.day,
                day.group,
                day.requests,
                u.input_tokens,
                u.output_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
                cached * 100.0
            );
        }
    }
    Ok(())
}

/// `host=PATH[,name=NAME][,rw]`, or a bare PATH.
fn parse_mount_request(spec: &str) -> Result<MountRequest, String> {
    if !spec.contains('=') {
        return Ok(MountRequest {
            host_path: spec.to_owned(),
            container_name: None,
            read_write: false,
        });
    }
    let mut request = MountRequest {
        host_path: String::new(),
        container_name: None,
        read_write: false,
    };
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("host", path)) => request.host_path = path.to_owned(),
            Some(("name", name)) => request.container_name = Some(name.to_owned()),
            None if part == "rw" => request.read_write = true,
            None if part == "ro" => request.read_write = false,
            _ => {
                return Err(format!(
                    "unknown part {part:?} (use host=PATH[,name=NAME][,rw])"
                ));
            }
        }
    }
    if request.host_path.is_empty() {
        return Err("missing host=PATH".into());
    }
    Ok(request)
}

fn mounts_command(paths: &Paths, engine: &EngineEndpoint, command: MountsCommand) -> ExitCode {
    let facts = host_facts(paths, engine);
    let policy = match MountPolicy::load(&facts) {
        Ok(policy) => policy,
        Err(err) => {
            report(&err.into());
            return ExitCode::from(2);
        }
    };
    match command {
        MountsCommand::Check {
            group,
            main,
            rw,
            host_path,
            container_name,
        } => {
            let is_main = main || group.is_some_and(|g| g.is_main());
            let request = MountRequest {
                host_path,
                container_name,
                read_write: rw,
            };
            match policy.check(&request, is_main, paths.user_home.as_deref()) {
                Ok(mount) => {
                    // What the invocation would cover; a folder too large to scan is left out.
                    let shadowed = if mount.source().is_dir() {
                        pincer::mounts::scan_secrets(
                            mount.source(),
                            mount.target(),
                            &policy,
                            Some(mount.identity()),
                        )
                    } else {
                        Ok(Vec::new())
                    };
                    let shadowed = match shadowed {
                        Ok(secrets) => secrets,
                        Err(err) => {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "allowed": false,
                                    "reason": format!("{err} (an invocation leaves it out)"),
                                })
                            );
                            return ExitCode::from(1);
                        }
                    };
                    let shadowed: Vec<String> = shadowed
                        .iter()
                        .map(|s| s.relative.display().to_string())
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({
                            "allowed": true,
                            "host_path": mount.source(),
                            "container_path": mount.target(),
                            "read_only": mount.read_only(),
                            "shadowed": shadowed,
                        })
                    );
                    ExitCode::SUCCESS
                }
                Err(denial) => {
                    println!(
                        "{}",
                        serde_json::json!({"allowed": false, "reason": denial.reason})
                    );
                    ExitCode::from(1)
                }
            }
        }
        MountsCommand::List { json: true } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&policy).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        MountsCommand::List { json: false } => {
            print_policy(&policy);
            ExitCode::SUCCESS
        }
    }
}

fn print_policy(policy: &MountPolicy) {
    let presence = if policy.file_present {
        "present"
    } else {
        "not present: no extra mounts are allowed"
    };
    println!("mount allowlist: {} ({presence})", policy.file.display());
    println!("allowed roots:");
    if policy.allowed_roots.is_empty() {
        println!("  (none)");
    }
    for root in &policy.allowed_roots {
        let real = root
            .real_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(does not exist: allows nothing)".into());
        let mode = if root.allow_read_write {
            "read-write"
        } else {
            "read-only"
        };
        let note = root
            .description
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        println!("  {} -> {real} ({mode}){note}", root.path);
    }
    println!(
        "non-main groups: {}",
        if policy.non_main_read_only {
            "read-only extra mounts"
        } else {
            "read-write where the root allows it"
        }
    );
    println!("blocked names: {}", policy.blocked_names.join(" "));
    println!("protected paths (never mounted, nor their parents):");
    for path in &policy.blocked_paths {
        println!("  {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_specs() {
        let r = parse_mount_request("~/notes").unwrap();
        assert_eq!(
            (r.host_path.as_str(), r.container_name, r.read_write),
            ("~/notes", None, false)
        );
        let r = parse_mount_request("host=/srv/data,name=data,rw").unwrap();
        assert_eq!(
            (
                r.host_path.as_str(),
                r.container_name.as_deref(),
                r.read_write
            ),
            ("/srv/data", Some("data"), true)
        );
        assert!(parse_mount_request("name=x").is_err());
        assert!(parse_mount_request("host=/x,writable").is_err());
    }
}
