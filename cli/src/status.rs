//! `pincer status`: is the assistant running, what is each group doing, what
//! runs in the engine, what the model cost today. The daemon says what it is
//! working on, the store what waits and what is planned, the engine which
//! containers exist: each source answers for itself, and one that cannot
//! answer is named rather than guessed at. Exit 0 when the daemon answers,
//! 1 when it does not.

use std::process::ExitCode;

use pincer_assistant::config::Paths;
use pincer_assistant::daemon::{ControlClient, Presence, presence};
use pincer_assistant::escape;
use pincer_assistant::invoke::{GROUP_LABEL, INVOCATION_LABEL};
use pincer_core::sandbox::{EngineEndpoint, Sandbox};
use serde_json::{Value, json};

use crate::open_store;

pub(crate) async fn status_command(paths: &Paths, engine: EngineEndpoint, json: bool) -> ExitCode {
    let found = presence(paths).await;
    let daemon = match found {
        Presence::Answering => daemon_status(paths).await,
        _ => None,
    };
    // Today as `pincer usage` counts days: in UTC.
    let now = pincer_store::time::now();
    let today = format!("{}T00:00:00Z", now.get(..10).unwrap_or_default());
    let groups = match open_store(paths).and_then(|s| Ok(s.group_overview(&today)?)) {
        Ok(groups) => Ok(groups),
        Err(err) => Err(format!("{err:#}")),
    };
    let containers = match Sandbox::connect(paths, engine).await {
        Ok(sandbox) => sandbox.containers().await.map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let working = |group: &str| -> Value {
        daemon
            .as_ref()
            .and_then(|d| d["working"].as_array())
            .and_then(|w| w.iter().find(|w| w["group"] == group).cloned())
            .unwrap_or(Value::Null)
    };
    let report = json!({
        "daemon": match (&found, &daemon) {
            (Presence::Answering, Some(status)) => json!({"state": "running", "status": status}),
            (Presence::Answering, None) => json!({"state": "running"}),
            (Presence::StaleSocket(socket), _) => json!({"state": "stopped", "stale_socket": socket}),
            (Presence::Unanswering { lock, .. }, _) => json!({"state": "not answering", "lock": lock}),
            (Presence::Absent, _) => json!({"state": "stopped"}),
        },
        "groups": match &groups {
            Ok(groups) => Value::Array(groups.iter().map(|g| {
                let mut value = serde_json::to_value(g).unwrap_or(Value::Null);
                value["working"] = working(&g.group);
                value
            }).collect()),
            Err(err) => json!({"error": err}),
        },
        "containers": match &containers {
            Ok(containers) => Value::Array(containers.iter().map(|c| json!({
                "id": c.id,
                "group": c.labels.get(GROUP_LABEL),
                "invocation": c.labels.get(INVOCATION_LABEL),
                "state": c.state,
                "age_seconds": c.age_seconds,
            })).collect()),
            Err(err) => json!({"error": err}),
        },
    });
    if json {
        println!("{report}");
    } else {
        print_human(&report, &found);
    }
    if found == Presence::Answering {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The daemon's own account; `None` from one that cannot give it (an older
/// version answers with an error) or does not within a few seconds.
async fn daemon_status(paths: &Paths) -> Option<Value> {
    let asked = async {
        let mut client = ControlClient::connect(&paths.home).await.ok()?;
        client.request(&json!({"op": "status"})).await.ok()?;
        while let Ok(Some(event)) = client.next().await {
            match event["event"].as_str() {
                Some("status") => return Some(event["daemon"].clone()),
                Some("error") => return None,
                _ => {}
            }
        }
        None
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), asked)
        .await
        .ok()
        .flatten()
}

fn print_human(report: &Value, found: &Presence) {
    let text = |v: &Value| escape::line(v.as_str().unwrap_or("—")).into_owned();
    let status = &report["daemon"]["status"];
    match found {
        Presence::Answering => println!(
            "daemon      running since {} ({}), pid {}, version {}, at most {} containers at once",
            text(&status["started"]),
            duration(status["uptime_seconds"].as_u64().unwrap_or(0)),
            status["pid"],
            text(&status["version"]),
            status["max_concurrent"],
        ),
        Presence::StaleSocket(socket) => println!(
            "daemon      not running (a socket is left from one that died: {}; `pincer serve` replaces it)",
            socket.display()
        ),
        Presence::Unanswering { lock, socket } => println!(
            "daemon      NOT ANSWERING: a process holds {} but nothing answers on {} (`fuser {}` names it)",
            lock.display(),
            socket.display(),
            lock.display()
        ),
        Presence::Absent => println!("daemon      not running (start it with `pincer serve`)"),
    }
    println!();
    match report["groups"].as_array() {
        None => println!(
            "groups      cannot be read: {}",
            text(&report["groups"]["error"])
        ),
        Some(groups) => {
            println!(
                "{:<16} {:>6}  {:<22} {:<21} {:<21} {:>12}",
                "group", "queued", "working", "last answer", "next task", "tokens today"
            );
            for group in groups {
                let working = match group["working"].as_object() {
                    Some(w) => format!(
                        "for {} ({} msg)",
                        duration(w["seconds"].as_u64().unwrap_or(0)),
                        w["messages"].as_array().map_or(0, Vec::len)
                    ),
                    None => "—".to_owned(),
                };
                println!(
                    "{:<16} {:>6}  {:<22} {:<21} {:<21} {:>12}",
                    text(&group["group"]),
                    group["queued"],
                    working,
                    text(&group["last_answer"]),
                    text(&group["next_task"]),
                    group["tokens"],
                );
            }
        }
    }
    println!();
    match report["containers"].as_array() {
        None => println!(
            "containers  the engine cannot say: {}",
            text(&report["containers"]["error"])
        ),
        Some(containers) if containers.is_empty() => println!("containers  none"),
        Some(containers) => {
            println!("containers");
            for c in containers {
                println!(
                    "  {}  {:<16} {:<8} {:>8}  invocation {}",
                    text(&c["id"]),
                    text(&c["group"]),
                    text(&c["state"]),
                    duration(c["age_seconds"].as_u64().unwrap_or(0)),
                    text(&c["invocation"]),
                );
            }
        }
    }
}

/// `75` → `1m15s`.
fn duration(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}
