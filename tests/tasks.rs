//! Scheduled tasks end to end: due and missed tasks run once in their
//! group's container, the owner's `pincer tasks` commands, and the
//! scheduler on an injected clock across a DST change. Real engine and
//! SQLite; only the model is scripted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::ops::Not;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;

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
        // task that missed slots: each runs once at start-up. The cron's
        // next slot is next January: not while the test waits, whenever it runs.
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
                "0 0 1 1 *",
                "owner",
            )
            .unwrap();
        store
            .plan_task(cron.id, Some("2025-01-01T00:00:00Z"))
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
    // A task whose last run is unanswered is skipped, not run twice: each
    // jump of the clock waits for the runs before it to be answered, or how
    // fast a container answers would decide what fires.
    let settled = || {
        wait_for(Duration::from_secs(60), || {
            [daily, every, once]
                .iter()
                .all(|task| runs(*task).iter().all(|run| run.finished_at.is_some()))
        })
    };
    assert!(settled());

    // Time jumps past the interval's 09:00 slot: it fires once, now, and is
    // planned from now.
    clock.set("2026-03-08T10:00:00Z");
    assert!(wait_for(Duration::from_secs(10), || runs(once).len() == 1
        && runs(every).len() == 2));
    assert_eq!(store.task(once).unwrap().unwrap().status, "done");
    assert_eq!(runs(every)[1].started_at, "2026-03-08T10:00:00Z");
    assert_eq!(next(every).as_deref(), Some("2026-03-08T11:30:00Z"));
    assert!(settled());

    clock.set("2026-03-08T13:00:00Z");
    assert!(wait_for(Duration::from_secs(10), || runs(daily).len() == 1));
    assert_eq!(next(daily).as_deref(), Some("2026-03-09T13:00:00Z"));
    // Two of the interval's slots (11:30, 13:00) have come: one run, not two.
    assert!(wait_for(Duration::from_secs(10), || runs(every).len() == 3));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(runs(every).len(), 3, "{:?}", runs(every));
    assert_eq!(next(every).as_deref(), Some("2026-03-08T14:30:00Z"));

    // Each run finishes with the answer to its message, in its own group.
    assert!(settled());
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
