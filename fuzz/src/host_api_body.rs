//! The body of the `host_api_body` target (see `fuzz_targets/host_api_body.rs`),
//! and what `host_socket` builds the same way: the store and its callers,
//! and the checks of a host-API reply.

use std::sync::OnceLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use pincer_core::group::GroupName;
use pincer_socket::gateway::Caller;
use pincer_socket::hostapi;
use pincer_store::scheduler;
use pincer_store::{MAIN_CHAT, Store};
use serde::Deserialize;
use serde_json::Value;

/// The host API's actions, and one it does not have.
pub const ACTIONS: &[&str] = &[
    "send_message",
    "schedule_task",
    "list_tasks",
    "pause_task",
    "resume_task",
    "cancel_task",
    "update_task",
    "register_group",
    "list_groups",
    "request_access",
    "no_such_action",
];

/// The statuses `hostapi::handle` answers with: 429 is a group at its
/// `[limits] tasks_per_group` (the fuzzer's world keeps its tasks). It
/// answers 500 only when the store fails, which a healthy store never does,
/// whatever the body.
pub const STATUSES: &[u16] = &[200, 400, 403, 404, 409, 429];

/// The non-main group the fuzzer speaks for.
pub const GROUP: &str = "family";
/// Its chat.
pub const GROUP_CHAT: &str = "test:family";

/// `send_message`'s request, as `hostapi.rs` (privately) declares it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    chat: String,
    #[serde(rename = "text")]
    _text: String,
}

/// A store in a scratch folder with groups `family` and `work` and a task
/// each (main too, and a finished one of main's), and the callers.
pub struct World {
    /// The store.
    pub store: Store,
    /// A caller of the main group.
    pub main: Caller,
    /// A caller of [`GROUP`].
    pub other: Caller,
}

/// A new world in `scratch_dir(target)`.
pub fn new_world(target: &str) -> World {
    let dir = crate::scratch_dir(target);
    let store = Store::open(&dir.join("pincer.db")).unwrap();
    for name in [GROUP, "work"] {
        store
            .add_group(
                &GroupName::new(name).unwrap(),
                &format!("test:{name}"),
                None,
            )
            .unwrap();
    }
    for (group, chat) in [
        (GROUP, GROUP_CHAT),
        ("work", "test:work"),
        ("main", MAIN_CHAT),
    ] {
        store
            .add_task(group, chat, "daily digest", "cron", "0 9 * * *", "owner")
            .unwrap();
    }
    let done = store
        .add_task(
            "main",
            MAIN_CHAT,
            "once",
            "once",
            "2026-01-01T09:00:00Z",
            "owner",
        )
        .unwrap();
    store.set_task_status(done.id, "done").unwrap();
    let caller = |group: &str| Caller {
        group: GroupName::new(group).unwrap(),
        invocation_id: format!("fuzz-{group}"),
    };
    World {
        store,
        main: caller("main"),
        other: caller(GROUP),
    }
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| new_world("host_api_body"))
}

/// The first byte picks the action, the rest is the body; the call is made
/// by the non-main caller, then by main.
pub fn fuzz(data: &[u8]) {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let action = ACTIONS[usize::from(first) % ACTIONS.len()];
    let world = world();
    for caller in [&world.other, &world.main] {
        let reply = hostapi::handle(
            &world.store,
            &pincer_socket::budget::Limits::default(),
            caller,
            action,
            body,
        );
        check_reply(&world.store, caller, action, body, &reply);
    }
}

/// What holds of every reply of `hostapi::handle`: a status it uses, the
/// body's shape, an accepted schedule the scheduler can plan, and a
/// non-main caller allowed only what is its own.
pub fn check_reply(
    store: &Store,
    caller: &Caller,
    action: &str,
    body: &[u8],
    reply: &hostapi::Reply,
) {
    let status = reply.status;
    assert!(
        STATUSES.contains(&status),
        "{action}: status {status}: {}",
        reply.body
    );
    let ok = status == 200;
    assert_eq!(reply.body["ok"], Value::Bool(ok), "{}", reply.body);
    if !ok {
        assert!(reply.body["error"].is_string(), "{}", reply.body);
    }
    if !ACTIONS[..ACTIONS.len() - 1].contains(&action) {
        assert_eq!(status, 404, "{action}: {}", reply.body);
    }
    if !ok {
        return;
    }
    let result = &reply.body["result"];
    if action == "schedule_task" || action == "update_task" {
        // `hostapi::validate_schedule`: "Checked when the task is asked
        // for, so a bad one is refused then rather than paused later."
        let (kind, value) = (&result["schedule_kind"], &result["schedule_value"]);
        let (kind, value) = (kind.as_str().unwrap(), value.as_str().unwrap());
        if let Err(err) = scheduler::first_run(kind, value, Timestamp::now(), &TimeZone::UTC) {
            panic!(
                "{action} accepted a schedule the scheduler cannot plan ({kind} {value:?}): {err}"
            );
        }
    }
    if caller.group.is_main() {
        return;
    }
    // Allowed to a non-main caller: only what is its own.
    match action {
        "register_group" | "list_groups" => {
            panic!("a non-main group was allowed {action}: {}", reply.body)
        }
        "send_message" => {
            // Read as `hostapi` reads it (serde takes a struct from an
            // object or from an array).
            let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else {
                body
            };
            let request: SendMessage = serde_json::from_slice(body).unwrap();
            assert_eq!(request.chat, GROUP_CHAT);
        }
        "schedule_task" | "update_task" => {
            assert_eq!(result["group"], GROUP, "{result}");
            assert_eq!(result["chat_id"], GROUP_CHAT, "{result}");
        }
        "list_tasks" => {
            for task in result.as_array().unwrap() {
                assert_eq!(task["group"], GROUP, "{task}");
            }
        }
        "pause_task" | "resume_task" | "cancel_task" => {
            let id = result["id"].as_i64().unwrap();
            let task = store.task(id).unwrap().unwrap();
            assert_eq!(task.group, GROUP, "{action} of {task:?}");
        }
        "request_access" => {
            // Asking grants nothing: only the owner approves.
            assert!(store.egress_rules(GROUP).unwrap().is_empty(), "{}", reply.body);
            assert!(store.group_mounts(GROUP).unwrap().is_empty(), "{}", reply.body);
        }
        _ => {}
    }
}
