//! The assistant as a daemon (`pincer serve`), driven through its control
//! socket: conversations that remember, load under a concurrency cap, a
//! `kill -9` in the middle, scheduled tasks, cancellation and timeouts. Real
//! engine, real SQLite; only the model is scripted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::collections::HashMap;
use std::ops::Not;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use pincer_core::group::GroupName;
use pincer_store::Store;
use serde_json::json;
use support::*;

fn store(install: &Installation) -> Store {
    Store::open(&install.home().join("pincer.db")).unwrap()
}

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

/// The text of the last user message of a request.
fn last_prompt(request: &Recorded) -> String {
    let json = request.json();
    let messages = json["messages"].as_array().cloned().unwrap_or_default();
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user" && m["content"].is_string())
        .and_then(|m| m["content"].as_str().map(str::to_owned))
        .unwrap_or_default()
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
fn due_and_missed_tasks_run_once_in_their_groups_container() {
    let install = Installation::new();
    install.add_group("family");
    std::fs::create_dir_all(install.home().join("groups/family")).unwrap();
    std::fs::write(
        install.home().join("groups/family/marker.txt"),
        "family-folder",
    )
    .unwrap();
    let task_ids = {
        let store = store(&install);
        // A one-shot whose time passed while the daemon was down, and a cron
        // task that missed many slots: each runs once at start-up.
        let once = store
            .add_task(
                "family",
                "test:family",
                "run the once task",
                "once",
                "2026-01-01T00:00:00Z",
                "owner",
            )
            .unwrap();
        let cron = store
            .add_task(
                "family",
                "test:family",
                "run the cron task",
                "cron",
                "* * * * *",
                "owner",
            )
            .unwrap();
        store
            .plan_task(cron.id, Some("2026-01-01T00:00:00Z"))
            .unwrap();
        let later = store
            .add_task("main", "local:main", "not yet", "interval", "6h", "owner")
            .unwrap();
        [once.id, cron.id, later.id]
    };
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        if request.last_tool_result().is_empty()
            && !request.json()["messages"]
                .to_string()
                .contains("tool_result")
        {
            tool_use(
                "bash",
                json!({"command": "cat /workspace/group/marker.txt; ls /workspace"}),
            )(request)
        } else {
            (200, message(&request.last_tool_result()))
        }
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let store = store(&install);
    assert!(wait_for(Duration::from_secs(120), || store
        .outgoing("test:family")
        .unwrap()
        .is_empty()
        .not()));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.terminate(), Some(0));

    let replies = store.outgoing("test:family").unwrap();
    assert_eq!(
        replies.len(),
        1,
        "both due tasks ran in one batch, once: {replies:?}"
    );
    let (sender, reply) = &replies[0];
    assert_eq!(sender, "family");
    assert!(
        reply.contains("family-folder"),
        "it ran in family's folder: {reply}"
    );
    assert!(reply.contains("global\ngroup\nsession"), "{reply}");
    assert!(!reply.contains("project"), "{reply}");
    let once = store.task(task_ids[0]).unwrap().unwrap();
    assert_eq!(once.status, "done");
    let cron = store.task(task_ids[1]).unwrap().unwrap();
    assert_eq!(cron.status, "active");
    assert!(
        cron.next_run.unwrap().as_str() > pincer_store::time::now().as_str().get(..16).unwrap(),
        "planned ahead"
    );
    let later = store.task(task_ids[2]).unwrap().unwrap();
    assert!(
        later.next_run.is_some() && store.outgoing("local:main").unwrap().is_empty(),
        "not due, not run"
    );
    let fired: Vec<_> = store.inbound_states().unwrap();
    assert_eq!(fired.len(), 2, "one message per due task: {fired:?}");
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

/// `pincer chat` in a real terminal (`script` gives it a pty).
struct Terminal {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    screen: Arc<std::sync::Mutex<String>>,
}

impl Terminal {
    fn chat(install: &Installation, model_url: &str) -> Self {
        use std::io::Read;
        let pincer = install.pincer(model_url);
        let mut command = std::process::Command::new("script");
        command.args([
            "-qfec",
            // `exec`: script runs the command through $SHELL, and a shell that
            // stays as its parent (dash does) dies of the Ctrl-C the test types.
            &format!("exec {} chat", env!("CARGO_BIN_EXE_pincer")),
            "/dev/null",
        ]);
        for (key, value) in pincer.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.env("RUST_LOG", "warn");
        // The same shell and terminal wherever the test runs (CI may set
        // neither; with no TERM the "working…" line is rightly not drawn).
        command.env("SHELL", "/bin/sh").env("TERM", "xterm");
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let screen = Arc::new(std::sync::Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let seen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let stdin = child.stdin.take().unwrap();
        Self {
            child,
            stdin,
            screen,
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        use std::io::Write;
        self.stdin.write_all(keys).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits until the screen shows `text` (after `from` bytes of it).
    fn expect(&self, text: &str) {
        let screen = Arc::clone(&self.screen);
        let found = wait_for(Duration::from_secs(60), || {
            screen.lock().unwrap().contains(text)
        });
        assert!(
            found,
            "the screen never showed {text:?}:\n{}",
            self.screen.lock().unwrap()
        );
    }
}

#[test]
fn pincer_chat_in_a_terminal_starts_its_own_daemon_answers_and_cancels() {
    let install = Installation::new();
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        let prompt = last_prompt(request);
        if prompt.contains("slow")
            && !request.json()["messages"]
                .to_string()
                .contains("tool_result")
        {
            tool_use(
                "bash",
                json!({"command": "sleep 300", "timeout_ms": 600000}),
            )(request)
        } else {
            (200, message(&format!("echo: {prompt}")))
        }
    }));
    let mut terminal = Terminal::chat(&install, &model.url());
    terminal.expect("you> ");
    terminal.type_keys(b"hello from a terminal\r");
    terminal.expect("pincer> echo: hello from a terminal");
    // It started a daemon of its own: the control socket is up meanwhile.
    assert!(install.home().join("pincer.sock").exists());

    // Ctrl-C while the agent works: the invocation is cancelled, its
    // container killed; the chat (and its daemon) go on.
    terminal.type_keys(b"be slow\r");
    terminal.expect("working");
    assert!(wait_for(Duration::from_secs(30), || !install
        .containers()
        .is_empty()));
    terminal.type_keys(b"\x03");
    terminal.expect("cancelled by the owner");
    assert!(wait_for(Duration::from_secs(10), || install
        .containers()
        .is_empty()));
    terminal.type_keys(b"still there?\r");
    terminal.expect("pincer> echo: still there?");

    // What reaches the main chat unasked (here a reminder that is due) shows
    // up on the screen too.
    store(&install)
        .add_task(
            "main",
            "local:main",
            "water the plants",
            "once",
            "2026-01-01T09:00:00Z",
            "owner",
        )
        .unwrap();
    terminal.expect("pincer (unasked)> echo:");
    terminal.expect("water the plants");

    terminal.type_keys(b"\x04"); // Ctrl-D leaves
    let status = terminal.child.wait().unwrap();
    assert!(
        status.success(),
        "{status:?}: {}",
        terminal.screen.lock().unwrap()
    );
    assert!(
        !install.home().join("pincer.sock").exists(),
        "its daemon stopped with it"
    );
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn sigterm_lets_a_running_answer_finish() {
    let install = Installation::new();
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        std::thread::sleep(Duration::from_secs(3));
        (200, message(&format!("slow {}", last_prompt(request))))
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let mut control = daemon.control();
    control.request(json!({"op": "watch"}));
    control.send("main", "take your time");
    while control.next_event()["event"] != "working" {}
    assert!(wait_for(Duration::from_secs(30), || !install
        .containers()
        .is_empty()));
    assert_eq!(daemon.terminate(), Some(0));
    let store = store(&install);
    assert_eq!(
        store.outgoing("local:main").unwrap(),
        [("main".to_owned(), "slow take your time".to_owned())]
    );
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn past_the_grace_period_the_container_is_killed_and_the_message_answered_after_restart() {
    let install = Installation::new();
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        // The first time, the agent sleeps far past the grace period.
        if request.json()["messages"]
            .to_string()
            .contains("tool_result")
        {
            (200, message(&format!("done: {}", last_prompt(request))))
        } else {
            tool_use(
                "bash",
                json!({"command": "sleep 300", "timeout_ms": 600000}),
            )(request)
        }
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[("PINCER_SHUTDOWN_GRACE", "1s")]);
    let mut control = daemon.control();
    control.request(json!({"op": "watch"}));
    control.send("main", "a long job");
    assert!(wait_for(Duration::from_secs(30), || model.requests().len() == 1));
    assert_eq!(daemon.terminate(), Some(0));
    assert_eq!(
        install.containers(),
        Vec::<String>::new(),
        "killed and removed"
    );
    assert!(store(&install).outgoing("local:main").unwrap().is_empty());

    // The next start picks the message up again, and this time it finishes.
    let model = ScriptedModel::always(answer(|request| format!("done: {}", last_prompt(request))));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    assert!(wait_for(Duration::from_secs(60), || !store(&install)
        .outgoing("local:main")
        .unwrap()
        .is_empty()));
    assert_eq!(
        store(&install).outgoing("local:main").unwrap(),
        [("main".to_owned(), "done: a long job".to_owned())]
    );
    assert_eq!(daemon.terminate(), Some(0));
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

#[test]
fn the_tasks_command_lists_pauses_resumes_and_cancels() {
    let install = Installation::new();
    let id = store(&install)
        .add_task(
            "main",
            "local:main",
            "water the plants",
            "interval",
            "1h",
            "owner",
        )
        .unwrap()
        .id;
    let pincer = |args: &[&str]| {
        install
            .pincer("http://127.0.0.1:1")
            .args(args)
            .output()
            .unwrap()
    };
    let listed = pincer(&["tasks", "list", "--json"]);
    let tasks: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(tasks[0]["prompt"], "water the plants");
    assert_eq!(tasks[0]["status"], "active");
    // Its slot passed while it was paused: resuming plans from now instead
    // of firing at once.
    store(&install)
        .plan_task(id, Some("2020-01-01T00:00:00Z"))
        .unwrap();
    for (verb, status) in [
        ("pause", "paused"),
        ("resume", "active"),
        ("cancel", "cancelled"),
    ] {
        let output = pincer(&["tasks", verb, &id.to_string()]);
        assert!(output.status.success(), "{}", text(&output));
        let task = store(&install).task(id).unwrap().unwrap();
        assert_eq!(task.status, status);
        if verb == "resume" {
            assert_eq!(task.next_run, None, "planned afresh by the scheduler");
        }
    }
    let again = pincer(&["tasks", "resume", &id.to_string()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("is cancelled"));
    let missing = pincer(&["tasks", "pause", "999"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no task 999"));
}

/// The scheduler's time, set by the test.
struct ManualClock(std::sync::Mutex<jiff::Timestamp>);

impl ManualClock {
    fn set(&self, instant: &str) {
        *self.0.lock().unwrap() = instant.parse().unwrap();
    }
}

impl pincer_store::scheduler::Clock for ManualClock {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_fire_at_their_instants_across_a_dst_change_on_an_injected_clock() {
    use pincer_assistant::daemon::Daemon;

    let install = Installation::new();
    install.add_group("family");
    let model = ScriptedModel::always(answer(|request| format!("done: {}", last_prompt(request))));
    let (host, settings) = install
        .start_host(&model.url(), &[("TZ", "America/New_York")])
        .await;
    // 2026-03-08 01:00 in New York (EST, UTC-5); at 02:00 the clocks jump to
    // 03:00 EDT (UTC-4).
    let clock = Arc::new(ManualClock(std::sync::Mutex::new(
        "2026-03-08T06:00:00Z".parse().unwrap(),
    )));
    let store = Arc::clone(host.store());
    let add = |group: &str, chat: &str, prompt: &str, kind: &str, value: &str| {
        store
            .add_task(group, chat, prompt, kind, value, "owner")
            .unwrap()
            .id
    };
    let daily = add("main", "local:main", "daily nine", "cron", "0 9 * * *");
    let every = add("family", "test:family", "every ninety", "interval", "90m");
    let once = add(
        "main",
        "local:main",
        "once at ten",
        "once",
        "2026-03-08T10:00:00Z",
    );
    let daemon = Daemon::with_clock(
        host,
        settings,
        pincer_assistant::Registry::default().channels(&|_| None),
        Arc::clone(&clock) as Arc<dyn pincer_store::scheduler::Clock>,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Arc::clone(&daemon).run(async {
        let _ = stopped.await;
    }));

    let runs = |task: i64| store.task_runs(task).unwrap();
    let next = |task: i64| store.task(task).unwrap().unwrap().next_run;
    // Planned from "now" in the owner's zone: 09:00 is already EDT that day.
    assert!(wait_for(Duration::from_secs(10), || next(daily).is_some()));
    assert_eq!(next(daily).as_deref(), Some("2026-03-08T13:00:00Z"));
    assert_eq!(next(every).as_deref(), Some("2026-03-08T07:30:00Z"));
    assert_eq!(next(once).as_deref(), Some("2026-03-08T10:00:00Z"));

    // A minute early: nothing fires (the scheduler ticks twice a second).
    clock.set("2026-03-08T07:29:00Z");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(runs(every).is_empty());
    clock.set("2026-03-08T07:30:00Z");
    assert!(wait_for(Duration::from_secs(10), || runs(every).len() == 1));
    assert_eq!(runs(every)[0].started_at, "2026-03-08T07:30:00Z");
    assert_eq!(next(every).as_deref(), Some("2026-03-08T09:00:00Z"));

    // Time jumps past the interval's 09:00 slot: it fires once, now, and is
    // planned from now.
    clock.set("2026-03-08T10:00:00Z");
    assert!(wait_for(Duration::from_secs(10), || runs(once).len() == 1
        && runs(every).len() == 2));
    assert_eq!(store.task(once).unwrap().unwrap().status, "done");
    assert_eq!(runs(every)[1].started_at, "2026-03-08T10:00:00Z");
    assert_eq!(next(every).as_deref(), Some("2026-03-08T11:30:00Z"));

    clock.set("2026-03-08T13:00:00Z");
    assert!(wait_for(Duration::from_secs(10), || runs(daily).len() == 1));
    assert_eq!(next(daily).as_deref(), Some("2026-03-09T13:00:00Z"));
    // Two of the interval's slots (11:30, 13:00) have come: one run, not two.
    assert!(wait_for(Duration::from_secs(10), || runs(every).len() == 3));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(every).len(), 3, "{:?}", runs(every));
    assert_eq!(next(every).as_deref(), Some("2026-03-08T14:30:00Z"));

    // Each run finishes with the answer to its message, in its own group.
    assert!(wait_for(Duration::from_secs(30), || {
        [daily, every, once]
            .iter()
            .all(|task| runs(*task).iter().all(|run| run.finished_at.is_some()))
    }));
    let family_run = runs(every).remove(0);
    assert_eq!(family_run.status.as_deref(), Some("ok"));
    assert_eq!(family_run.result.as_deref(), Some("done: every ninety"));
    let spawns = install.audit_of_kind("spawn");
    assert!(
        spawns.iter().any(|spawn| spawn["group"] == "family"),
        "{spawns:?}"
    );
    let _ = stop.send(());
    running.await.unwrap().unwrap();
}

/// The real engine, reached through a socket that hangs up on the next
/// `failures` container creations: an engine that fails, then recovers.
struct FlakyEngine {
    socket: std::path::PathBuf,
    creates: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl FlakyEngine {
    fn start(failures: usize) -> Self {
        use std::io::{Read, Write};
        use std::os::unix::net::{UnixListener, UnixStream};
        let engine = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|host| host.strip_prefix("unix://").map(str::to_owned))
            .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("fe")
            .tempdir_in("/tmp")
            .unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let creates = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&creates);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = UnixStream::connect(&engine) else {
                    continue;
                };
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counted = Arc::clone(&counted);
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 64 * 1024];
                    while let Ok(n) = client_in.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buffer[..n];
                        let creating = chunk.starts_with(b"POST ")
                            && chunk
                                .windows(b"/containers/create".len())
                                .any(|w| w == b"/containers/create");
                        if creating && counted.fetch_add(1, Ordering::SeqCst) < failures {
                            // The engine "went away" mid-request.
                            let _ = client_in.shutdown(std::net::Shutdown::Both);
                            let _ = server_out.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        if server_out.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                let (mut server_in, mut client_out) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self {
            socket,
            creates,
            _dir: dir,
        }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

#[test]
fn an_engine_failure_is_retried_with_backoff_and_then_reported() {
    let install = Installation::new();
    let model = ScriptedModel::always(answer(|request| format!("re: {}", last_prompt(request))));

    // Two failed creations, then the engine answers: the message is answered.
    let flaky = FlakyEngine::start(2);
    let daemon = DaemonProcess::start(
        &install,
        &model.url(),
        &[("DOCKER_HOST", flaky.docker_host().as_str())],
    );
    let reply = daemon.control().ask("main", "hello");
    assert_eq!(reply["failed"], false, "{reply}");
    assert_eq!(reply["text"], "re: hello");
    assert_eq!(flaky.creates.load(Ordering::SeqCst), 3);
    assert_eq!(daemon.terminate(), Some(0));

    // An engine that keeps failing: the retries run out, and the chat is told.
    let broken = FlakyEngine::start(usize::MAX);
    let daemon = DaemonProcess::start(
        &install,
        &model.url(),
        &[
            ("DOCKER_HOST", broken.docker_host().as_str()),
            ("PINCER_RETRIES", "2"),
        ],
    );
    let reply = daemon.control().ask("main", "again");
    assert_eq!(reply["failed"], true, "{reply}");
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("container engine failed while creating the container"),
        "{reply}"
    );
    assert_eq!(
        broken.creates.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );
    assert_eq!(
        model.requests().len(),
        1,
        "only the first message reached the model"
    );
    assert_eq!(daemon.terminate(), Some(0));
    assert_eq!(install.containers(), Vec::<String>::new());
}
