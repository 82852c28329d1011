//! `pincer chat`: a conversation with the main group in the terminal.

use anyhow::Context as _;
use pincer_assistant::Registry;
use pincer_assistant::config::{Paths, Settings};
use pincer_assistant::daemon::ControlClient;
use pincer_assistant::escape;
use pincer_core::sandbox::EngineEndpoint;

use crate::{markdown, report};

pub(crate) async fn chat_command(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    secrets: Vec<String>,
    registry: &Registry,
) -> anyhow::Result<()> {
    use std::time::Duration;

    // A running daemon, or one of our own in this process.
    let home = paths.home.clone();
    let mut own = None;
    if ControlClient::connect(&home).await.is_err() {
        let daemon = crate::serve::start_daemon(paths, settings, engine, secrets, registry).await?;
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

    let styled = markdown::styled();
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
        styled,
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
        if let Err(err) = ask(&mut client, &home, text, &asked, styled).await {
            report(&anyhow::anyhow!("{err}"));
            break;
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

/// Asks the main group `text`, showing the agent's work meanwhile; Ctrl-C
/// cancels the running invocation and waits for its (cancelled) reply.
async fn ask(
    client: &mut ControlClient,
    home: &std::path::Path,
    text: &str,
    asked: &std::sync::Mutex<std::collections::HashSet<i64>>,
    styled: bool,
) -> std::io::Result<()> {
    use std::time::{Duration, Instant};

    let progress = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} working… {elapsed} {msg}")
    {
        progress.set_style(style);
    }
    progress.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    let ask = client.ask_telling(
        "main",
        text,
        |id| {
            if let Ok(mut asked) = asked.lock() {
                asked.insert(id);
            }
        },
        |event| show_activity(&progress, event, styled),
    );
    tokio::pin!(ask);
    let answer = loop {
        tokio::select! {
            answer = &mut ask => break answer,
            _ = tokio::signal::ctrl_c() => {
                // Cancel the running invocation (its container is killed); keep waiting for its reply.
                if let Ok(mut canceller) = ControlClient::connect(home).await {
                    let _ = canceller.request(&serde_json::json!({"op": "cancel", "group": "main"})).await;
                }
            }
        }
    };
    progress.finish_and_clear();
    let (reply, _) = answer?;
    println!(
        "pincer> {}\n({:.1}s)",
        markdown::render(&reply, styled),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints what reaches the main chat without being asked in this terminal: a
/// scheduled task's result, a message the main agent sent, an answer to
/// `pincer send main`. `asked` holds the ids of the messages typed here.
pub(crate) async fn print_unasked(
    mut watcher: ControlClient,
    asked: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
    mut printer: Option<impl rustyline::ExternalPrinter>,
    styled: bool,
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
        if event["chat"] != pincer_store::MAIN_CHAT {
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
        let line = format!("pincer (unasked)> {}\n", markdown::render(&text, styled));
        match printer.as_mut() {
            Some(printer) => {
                let _ = printer.print(line);
            }
            None => print!("{line}"),
        }
    }
}

/// What the main agent does while the owner waits: the tool that runs now
/// beside the spinner, each finished tool (and why it failed) and each note
/// the model wrote as a dim line above it. The agent wrote all of it: escaped.
fn show_activity(progress: &indicatif::ProgressBar, event: &serde_json::Value, styled: bool) {
    if event["group"] != "main" {
        return;
    }
    let field = |name: &str| escape::line(event[name].as_str().unwrap_or_default()).into_owned();
    let (dim, reset) = if styled {
        ("\x1b[2m", "\x1b[0m")
    } else {
        ("", "")
    };
    let notice = match event["event"].as_str() {
        Some("tool_started") => {
            progress.set_message(format!("· {}: {}", field("name"), field("detail")));
            return;
        }
        Some("tool_finished") => {
            // The runner hands the result to the model next.
            progress.set_message("· waiting on the model");
            let failed = match event["error"].as_str() {
                Some(error) => format!(" — failed: {}", escape::line(error)),
                None => String::new(),
            };
            match field("detail") {
                detail if detail.is_empty() => format!("  {}{failed}", field("name")),
                detail => format!("  {}: {detail}{failed}", field("name")),
            }
        }
        Some("note") => format!("  … {}", field("text")),
        _ => return,
    };
    progress.suspend(|| println!("{dim}{notice}{reset}"));
}
