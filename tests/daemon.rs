//! The assistant as a daemon (`pincer serve`), driven through its control
//! socket: conversations that remember, load under a concurrency cap, a
//! `kill -9` in the middle, cancellation and timeouts. Real
//! engine, real SQLite; only the model is scripted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pincer_core::group::GroupName;
use serde_json::json;
use support::*;

/// Counts this installation's containers until stopped; the most seen at once.
struct ContainerWatch {
    stop: Arc<AtomicBool>,
    most: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

impl ContainerWatch {
    fn start(install: &Installation) -> Self {
        let (stop, most) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let label = format!("pincer.installation={}", install.id);
        let (stop_flag, most_seen) = (Arc::clone(&stop), Arc::clone(&most));
        let thread = std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                let running = std::process::Command::new("docker")
                    .args(["ps", "-q", "--filter", &format!("label={label}")])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
                    .unwrap_or(0);
                most_seen.fetch_max(running, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, most, thread }
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.most.load(Ordering::Relaxed)
    }
}

#[test]
fn a_conversation_through_the_control_socket_remembers() {
    let install = Installation::new();
    let model = ScriptedModel::always(answer(|request| {
        let everything = request.json()["messages"].to_string();
        if last_prompt(request).contains("what is my name") {
            if everything.contains("my name is Ada") {
                "You are Ada.".into()
            } else {
                "I do not know.".into()
            }
        } else {
            "Nice to meet you.".into()
        }
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let mut control = daemon.control();
    let first = control.ask("main", "hello, my name is Ada");
    assert_eq!(first["text"], "Nice to meet you.", "{first}");
    let second = control.ask("main", "what is my name?");
    assert_eq!(second["text"], "You are Ada.", "{second}");
    assert_eq!(second["failed"], false);

    // `pincer send` is the same path from the command line.
    let sent = install
        .pincer(&model.url())
        .args(["send", "main", "what is my name?"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", text(&sent));
    assert_eq!(String::from_utf8_lossy(&sent.stdout).trim(), "You are Ada.");

    assert_eq!(daemon.terminate(), Some(0), "SIGTERM is a clean stop");
    assert_eq!(install.containers(), Vec::<String>::new());
    assert!(!install.home().join("pincer.sock").exists());
    // Several invocations, no mount allowlist: said once, not every time.
    let log: String = std::fs::read_dir(install.dir.path())
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("serve-"))
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
        .collect();
    assert_eq!(log.matches("no mount allowlist at").count(), 1, "{log}");
}

#[test]
fn load_a_thousand_messages_over_fifty_groups_with_a_cap_of_four() {
    let install = Installation::new();
    {
        let store = store(&install);
        for g in 0..50 {
            store
                .add_group(
                    &GroupName::new(&format!("g{g}")).unwrap(),
                    &format!("test:g{g}"),
                    None,
                )
                .unwrap();
        }
    }
    // Answers with the prompt it got, so the test can see which messages went together.
    let model = ScriptedModel::always(answer(last_prompt));
    let daemon = DaemonProcess::start(&install, &model.url(), &[("PINCER_MAX_CONCURRENT", "4")]);
    let watch = ContainerWatch::start(&install);
    let mut control = daemon.control();
    let mut sent: HashMap<String, Vec<i64>> = HashMap::new();
    for i in 0..1000 {
        let group = format!("g{}", i % 50);
        let id = control.send(&group, &format!("@pincer message {i}"));
        sent.entry(group).or_default().push(id);
    }
    let store = store(&install);
    assert!(
        wait_for(Duration::from_secs(600), || store
            .inbound_states()
            .unwrap()
            .iter()
            .all(|m| m.status == "answered")),
        "not every message was answered"
    );
    let most = watch.finish();
    assert_eq!(daemon.terminate(), Some(0));

    let states = store.inbound_states().unwrap();
    assert_eq!(states.len(), 1000);
    assert!(most <= 4, "{most} containers ran at once");
    assert!(most >= 2, "the cap was never reached: {most} at most");
    for (group, ids) in &sent {
        // Every message answered by exactly one reply, and the replies in order.
        let answered: Vec<(i64, i64)> = ids
            .iter()
            .map(|id| {
                (
                    states
                        .iter()
                        .find(|s| s.id == *id)
                        .unwrap()
                        .answered_by
                        .unwrap(),
                    *id,
                )
            })
            .collect();
        let mut by_reply = answered.clone();
        by_reply.sort();
        assert_eq!(by_reply, answered, "{group}: answered out of order");
        for (reply, _) in &answered {
            assert_eq!(
                store
                    .answered_by(*reply)
                    .unwrap()
                    .iter()
                    .filter(|id| ids.contains(id))
                    .count(),
                store.answered_by(*reply).unwrap().len(),
                "{group}: a reply answered another group's message"
            );
        }
    }
    let invocations = store
        .audit_entries(None, None)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "spawn")
        .count();
    assert!(
        invocations < 1000,
        "messages that arrived while busy were batched ({invocations} invocations)"
    );
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn a_daemon_killed_mid_work_answers_everything_exactly_once_after_restart() {
    let install = Installation::new();
    {
        let store = store(&install);
        for g in ["a", "b", "c"] {
            store
                .add_group(&GroupName::new(g).unwrap(), &format!("test:{g}"), None)
                .unwrap();
        }
    }
    // A slow model: the kill lands while agents are waiting for it.
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        std::thread::sleep(Duration::from_millis(1500));
        (200, message(&format!("re: {}", last_prompt(request))))
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let mut control = daemon.control();
    let mut ids = Vec::new();
    for i in 0..12 {
        let group = ["main", "a", "b", "c"][i % 4];
        ids.push(control.send(group, &format!("@pincer job {i}")));
    }
    assert!(wait_for(Duration::from_secs(60), || !install
        .containers()
        .is_empty()));
    daemon.kill_9();
    let orphans = install.containers();
    assert!(
        !orphans.is_empty(),
        "the kill left running containers behind"
    );

    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let store = store(&install);
    assert!(
        wait_for(Duration::from_secs(300), || store
            .inbound_states()
            .unwrap()
            .iter()
            .all(|m| m.status == "answered")),
        "{:?}",
        store.inbound_states().unwrap()
    );
    assert_eq!(daemon.terminate(), Some(0));
    let states = store.inbound_states().unwrap();
    assert_eq!(states.len(), 12);
    // Exactly once: each reply stored answers at least one message, and no
    // message is answered by two replies (answered_by is one column).
    let mut replies = 0;
    for chat in ["local:main", "test:a", "test:b", "test:c"] {
        for (sender, _) in store.outgoing(chat).unwrap() {
            assert_ne!(sender, "pincer", "a batch failed");
            replies += 1;
        }
    }
    let distinct: std::collections::BTreeSet<i64> =
        states.iter().map(|s| s.answered_by.unwrap()).collect();
    assert_eq!(
        distinct.len(),
        replies,
        "a reply that answers nothing means a batch ran twice"
    );
    for orphan in orphans {
        assert!(
            !install.containers().contains(&orphan),
            "orphan {orphan} survived the restart"
        );
    }
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn cancel_and_idle_timeout_kill_the_container_and_the_daemon_goes_on() {
    let install = Installation::new();
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        if request.json()["messages"]
            .to_string()
            .contains("tool_result")
        {
            (200, message("finished"))
        } else if last_prompt(request).contains("idle") {
            tool_use("bash", json!({"command": "sleep 30", "timeout_ms": 60000}))(request)
        } else {
            tool_use(
                "bash",
                json!({"command": "sleep 300", "timeout_ms": 600000}),
            )(request)
        }
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[("PINCER_IDLE_TIMEOUT", "3s")]);
    let mut control = daemon.control();
    control.request(json!({"op": "watch"}));
    let id = control.send("main", "sleep for a long time");
    loop {
        if control.next_event()["event"] == "working" {
            break;
        }
    }
    assert!(wait_for(Duration::from_secs(30), || !install
        .containers()
        .is_empty()));
    std::thread::sleep(Duration::from_millis(500));
    let mut canceller = daemon.control();
    canceller.request(json!({"op": "cancel", "group": "main"}));
    assert_eq!(canceller.next_event()["was_running"], true);
    let reply = loop {
        let event = control.next_event();
        if event["event"] == "reply" {
            break event;
        }
    };
    assert_eq!(reply["answers"], json!([id]));
    assert_eq!(reply["failed"], true);
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("cancelled by the owner"),
        "{reply}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || install.containers().is_empty()),
        "the cancelled container is gone"
    );

    // No output for longer than the idle timeout: killed, reported.
    let idle = control.ask("main", "go idle");
    assert_eq!(idle["failed"], true);
    assert!(
        idle["text"].as_str().unwrap().contains("no output for 3s"),
        "{idle}"
    );
    control.request(json!({"op": "ping"}));
    // (Watch events may still be queued before the answer.)
    assert!(
        (0..10).any(|_| control.next_event()["event"] == "pong"),
        "the daemon goes on"
    );
    assert_eq!(daemon.terminate(), Some(0));
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn sessions_compact_when_they_outgrow_their_budget_and_reset_on_request() {
    let install = Installation::new();
    let model = ScriptedModel::always(answer(|request| {
        if last_prompt(request).starts_with("Summarize our conversation") {
            "SUMMARY: the owner likes long messages".into()
        } else {
            format!(
                "ack {}",
                request.json()["messages"].as_array().unwrap().len()
            )
        }
    }));
    let long = "x".repeat(900);
    let run = |prompt: &str| {
        let output = install
            .pincer(&model.url())
            .env("PINCER_SESSION_BUDGET", "1500")
            .args(["run-once", prompt])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    assert_eq!(run(&format!("one {long}")), "ack 1");
    assert_eq!(
        run(&format!("two {long}")),
        "ack 3",
        "the second sees the first"
    );
    // Over budget now: the third compacts first.
    let third = run(&format!("three {long}"));
    let requests = model.requests();
    let summary_request = requests
        .iter()
        .find(|r| last_prompt(r).starts_with("Summarize our conversation"))
        .expect("a summary was asked for");
    assert!(
        summary_request.json()["messages"]
            .to_string()
            .contains("one xxx")
    );
    let last = requests.last().unwrap().json()["messages"].to_string();
    assert!(
        last.contains("SUMMARY: the owner likes long messages"),
        "{last}"
    );
    assert!(
        !last.contains("one xxx"),
        "the summarised turn is gone from the prompt"
    );
    assert!(third.starts_with("ack "), "{third}");
    let session = install.home().join("sessions/main");
    assert!(
        std::fs::read_dir(session.join("archive")).unwrap().count() >= 1,
        "the original was archived"
    );

    let reset = install
        .pincer(&model.url())
        .args(["session", "reset", "main"])
        .output()
        .unwrap();
    assert!(reset.status.success(), "{}", text(&reset));
    assert_eq!(
        run("fresh start"),
        "ack 1",
        "after a reset the conversation starts afresh"
    );
}

#[test]
fn an_agent_failure_is_reported_not_retried() {
    let install = Installation::new();
    let model = ScriptedModel::always(api_error(400, "your prompt is malformed"));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let reply = daemon.control().ask("main", "hello");
    assert_eq!(reply["failed"], true);
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("your prompt is malformed"),
        "{reply}"
    );
    assert_eq!(
        model.requests().len(),
        1,
        "the agent's own failure is not retried"
    );
    assert_eq!(daemon.terminate(), Some(0));
}

#[test]
fn memory_files_reach_the_model() {
    let install = Installation::new();
    std::fs::create_dir_all(install.home().join("groups/main")).unwrap();
    std::fs::create_dir_all(install.home().join("global")).unwrap();
    std::fs::write(
        install.home().join("groups/main/MEMORY.md"),
        "The owner's cat is called Miso.",
    )
    .unwrap();
    std::fs::write(
        install.home().join("global/MEMORY.md"),
        "Everyone speaks French.",
    )
    .unwrap();
    let model = ScriptedModel::start(vec![say("ok")]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "hi"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let system = model.requests()[0].json()["system"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("Miso") && system.contains("French"),
        "{system}"
    );
}

#[test]
fn the_control_socket_is_the_owners_only() {
    let install = Installation::new();
    let model = ScriptedModel::always(say("ok"));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(install.home().join("pincer.sock"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second daemon on the same home refuses to start.
    let second = install.pincer(&model.url()).arg("serve").output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already serving"),
        "{}",
        text(&second)
    );
    // Garbage on the socket is answered, and the daemon goes on.
    let mut control = daemon.control();
    control.request(json!({"op": "become_root"}));
    assert_eq!(control.next_event()["event"], "error");
    control.request(json!({"op": "send", "group": "nobody", "text": "hi"}));
    assert!(
        control.next_event()["error"]
            .as_str()
            .unwrap()
            .contains("no group named nobody")
    );
    control.request(json!({"op": "ping"}));
    assert_eq!(control.next_event()["event"], "pong");
    assert_eq!(daemon.terminate(), Some(0));
}

#[test]
fn a_non_main_group_wakes_on_its_trigger_and_sees_what_was_said_before() {
    let install = Installation::new();
    install.add_group("family");
    let model = ScriptedModel::always(answer(|request| format!("saw: {}", last_prompt(request))));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let mut control = daemon.control();
    control.request(json!({"op": "watch"}));
    let chatter = control.send("family", "dinner is at seven");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        model.requests().is_empty(),
        "a message without the trigger woke the agent"
    );
    let asked = control.send("family", "@Pincer when is dinner?");
    let reply = loop {
        let event = control.next_event();
        if event["event"] == "reply" {
            break event;
        }
    };
    assert_eq!(
        reply["answers"],
        json!([chatter, asked]),
        "both answered together"
    );
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("dinner is at seven") && text.contains("@Pincer when is dinner?"),
        "{text}"
    );
    assert_eq!(reply["chat"], "test:family");

    // `pincer send` of a message that wakes nobody says so instead of
    // waiting forever for a reply.
    let output = install
        .pincer(&model.url())
        .args(["send", "family", "no trigger here"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", support::text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("wakes only on a message that starts with @pincer"),
        "{}",
        support::text(&output)
    );
    assert_eq!(daemon.terminate(), Some(0));
}
