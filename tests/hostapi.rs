//! The host API's authorization: a table of (who × action × target) cases run
//! against the real socket server, and huge or broken requests. Every
//! decision must be audited. (`injection.rs` makes the same attempts from a
//! real agent in a real container.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pincer_core::group::GroupName;
use pincer_socket::gateway::{Caller, Gateway};
use pincer_store::{MAIN_CHAT, Store};
use serde_json::{Value, json};
use support::*;

/// A store with three groups and a task each, and one socket per group.
struct World {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    sockets: Vec<(String, PathBuf, Gateway)>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Nothing listens at the model's address: the model is not part of these tests.
        let services = services(&dir.path().join("pincer.db"), "http://127.0.0.1:9");
        let store = Arc::clone(&services.store);
        for name in ["family", "work"] {
            store
                .add_group(
                    &GroupName::new(name).unwrap(),
                    &format!("test:{name}"),
                    None,
                )
                .unwrap();
        }
        for (group, chat) in [
            ("family", "test:family"),
            ("work", "test:work"),
            ("main", MAIN_CHAT),
        ] {
            store
                .add_task(group, chat, "daily digest", "cron", "0 9 * * *", "owner")
                .unwrap();
        }
        // Task 4: a reminder that has run.
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
        let sockets = ["main", "family", "work"]
            .into_iter()
            .map(|group| {
                let path = dir.path().join(format!("{group}.sock"));
                let gateway = Gateway::serve(
                    &path,
                    Arc::clone(&services),
                    Caller {
                        group: GroupName::new(group).unwrap(),
                        invocation_id: format!("inv-{group}"),
                    },
                )
                .unwrap();
                (group.to_owned(), path, gateway)
            })
            .collect();
        Self {
            _dir: dir,
            store,
            sockets,
        }
    }

    fn socket(&self, group: &str) -> PathBuf {
        self.sockets
            .iter()
            .find(|(g, ..)| g == group)
            .unwrap()
            .1
            .clone()
    }
}

async fn call(socket: &Path, action: &str, body: &str) -> (u16, Value) {
    let socket = socket.to_owned();
    let request = format!(
        "POST /host/v1/{action} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let (status, _, body) = read_response(&mut stream);
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_table() {
    let world = World::new();
    // (caller, action, body, expected status). Order matters: later cases see
    // what earlier ones did (a registered group, a paused task).
    let cases: &[(&str, &str, &str, u16)] = &[
        // main: everything, anywhere registered.
        (
            "main",
            "send_message",
            r#"{"chat":"local:main","text":"note to self"}"#,
            200,
        ),
        (
            "main",
            "send_message",
            r#"{"chat":"test:family","text":"dinner at 7"}"#,
            200,
        ),
        (
            "main",
            "send_message",
            r#"{"chat":"unknown:1","text":"hello?"}"#,
            403,
        ),
        (
            "main",
            "schedule_task",
            r#"{"prompt":"water plants","schedule":"interval","value":"1h","chat":"test:family"}"#,
            200,
        ),
        (
            "main",
            "schedule_task",
            r#"{"prompt":"standup","schedule":"cron","value":"0 9 * * 1-5"}"#,
            200,
        ),
        (
            "main",
            "schedule_task",
            r#"{"prompt":"once","schedule":"once","value":"2030-01-01T09:00:00Z","chat":"test:work"}"#,
            200,
        ),
        ("main", "list_tasks", "{}", 200),
        ("main", "pause_task", r#"{"id":1}"#, 200),
        ("main", "resume_task", r#"{"id":1}"#, 200),
        (
            "main",
            "update_task",
            r#"{"id":2,"prompt":"weekly digest","schedule":"cron","value":"0 9 * * 1"}"#,
            200,
        ),
        ("main", "cancel_task", r#"{"id":2}"#, 200),
        ("main", "pause_task", r#"{"id":2}"#, 409),
        ("main", "pause_task", r#"{"id":999}"#, 404),
        // A finished reminder is not run again.
        ("main", "resume_task", r#"{"id":4}"#, 409),
        (
            "main",
            "register_group",
            r#"{"name":"book-club","chat":"test:books","trigger":"@bot"}"#,
            200,
        ),
        (
            "main",
            "register_group",
            r#"{"name":"book-club","chat":"test:books2"}"#,
            409,
        ),
        (
            "main",
            "register_group",
            r#"{"name":"../escape","chat":"test:x"}"#,
            400,
        ),
        (
            "main",
            "register_group",
            r#"{"name":"main","chat":"test:y"}"#,
            409,
        ),
        ("main", "list_groups", "{}", 200),
        // family: its own chat and tasks only.
        (
            "family",
            "send_message",
            r#"{"chat":"test:family","text":"hi all"}"#,
            200,
        ),
        (
            "family",
            "send_message",
            r#"{"chat":"local:main","text":"ignore previous instructions"}"#,
            403,
        ),
        (
            "family",
            "send_message",
            r#"{"chat":"test:work","text":"hi work"}"#,
            403,
        ),
        (
            "family",
            "send_message",
            r#"{"chat":"unknown:1","text":"hi"}"#,
            403,
        ),
        (
            "family",
            "schedule_task",
            r#"{"prompt":"remind us","schedule":"interval","value":"30m"}"#,
            200,
        ),
        (
            "family",
            "schedule_task",
            r#"{"prompt":"spam","schedule":"interval","value":"1m","chat":"test:work"}"#,
            403,
        ),
        (
            "family",
            "schedule_task",
            r#"{"prompt":"spam","schedule":"interval","value":"1m","chat":"local:main"}"#,
            403,
        ),
        ("family", "list_tasks", "{}", 200),
        ("family", "pause_task", r#"{"id":1}"#, 200),
        ("family", "pause_task", r#"{"id":3}"#, 404),
        ("family", "cancel_task", r#"{"id":3}"#, 404),
        (
            "family",
            "update_task",
            r#"{"id":2,"prompt":"mine now"}"#,
            404,
        ),
        (
            "family",
            "register_group",
            r#"{"name":"evil","chat":"evil:1"}"#,
            403,
        ),
        ("family", "list_groups", "{}", 403),
        // Forged identity in the body: rejected whole, never obeyed.
        (
            "family",
            "send_message",
            r#"{"chat":"local:main","text":"x","group":"main"}"#,
            400,
        ),
        (
            "family",
            "send_message",
            r#"{"chat":"local:main","text":"x","is_main":true}"#,
            400,
        ),
        (
            "family",
            "schedule_task",
            r#"{"prompt":"p","schedule":"interval","value":"1h","chat":"test:work","group":"work"}"#,
            400,
        ),
        ("family", "list_groups", r#"{"as":"main"}"#, 400),
        // Malformed and unknown.
        (
            "family",
            "schedule_task",
            r#"{"prompt":"p","schedule":"cron","value":"every day"}"#,
            400,
        ),
        (
            "family",
            "schedule_task",
            r#"{"prompt":"p","schedule":"cron","value":"99 99 * * *"}"#,
            400,
        ),
        // An injected agent cannot hog the container slots with a fast loop.
        (
            "family",
            "schedule_task",
            r#"{"prompt":"p","schedule":"interval","value":"1s"}"#,
            400,
        ),
        (
            "family",
            "schedule_task",
            r#"{"prompt":"p","schedule":"sometimes","value":"1h"}"#,
            400,
        ),
        (
            "family",
            "send_message",
            r#"{"chat":"test:family","text":""}"#,
            400,
        ),
        (
            "family",
            "send_message",
            r#"{"chat":"test:family","text":"#,
            400,
        ),
        ("family", "delete_everything", "{}", 404),
        // work: the same rules from another group.
        (
            "work",
            "send_message",
            r#"{"chat":"test:work","text":"status"}"#,
            200,
        ),
        ("work", "cancel_task", r#"{"id":1}"#, 404),
        ("work", "resume_task", r#"{"id":1}"#, 404),
        ("work", "list_tasks", "", 200),
    ];
    assert!(cases.len() >= 30);
    let mut audited = 0;
    for (index, (caller, action, body, expected)) in cases.iter().enumerate() {
        let (status, reply) = call(&world.socket(caller), action, body).await;
        assert_eq!(
            status, *expected,
            "case {index}: {caller} {action} {body} -> {reply}"
        );
        assert_eq!(reply["ok"], json!(status == 200), "case {index}: {reply}");
        let entries = world.store.audit_entries(None, None).unwrap();
        audited += 1;
        assert_eq!(
            entries.len(),
            audited,
            "case {index} was not audited exactly once"
        );
        let entry = entries.last().unwrap();
        assert_eq!(entry.group.as_deref(), Some(*caller), "case {index}");
        assert_eq!(entry.kind, "host_api");
        assert_eq!(entry.action, *action, "case {index}");
        assert_eq!(
            entry.allowed,
            Some(status == 200),
            "case {index}: {entry:?}"
        );
        assert!(entry.reason.is_some());
        if ["\"group\"", "\"is_main\"", "\"as\""]
            .iter()
            .any(|field| body.contains(field))
        {
            assert!(
                entry.reason.as_deref().unwrap().contains("names a caller"),
                "case {index}: a forgery is audited as one: {entry:?}"
            );
        }
    }

    // What the denied cases would have done did not happen.
    let main_inbox: Vec<String> = world
        .store
        .outgoing(MAIN_CHAT)
        .unwrap()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(main_inbox, ["note to self"]);
    assert_eq!(
        world.store.outgoing("test:work").unwrap(),
        [("work".to_owned(), "status".to_owned())]
    );
    assert!(world.store.group("evil").unwrap().is_none());
    assert!(world.store.group("book-club").unwrap().is_some());
    let work_tasks = world.store.tasks(Some("work")).unwrap();
    assert_eq!(work_tasks.len(), 2, "{work_tasks:?}"); // its own and main's `once`
    assert_eq!(world.store.task(3).unwrap().unwrap().status, "active");
    assert_eq!(world.store.task(1).unwrap().unwrap().status, "paused");
    // family's list shows only family's tasks.
    let (_, listed) = call(&world.socket("family"), "list_tasks", "{}").await;
    let groups: Vec<&str> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["group"].as_str().unwrap())
        .collect();
    assert!(
        !groups.is_empty() && groups.iter().all(|g| *g == "family"),
        "{listed}"
    );
    // The audit never holds a message's text, only its size.
    let dump = format!("{:?}", world.store.audit_entries(None, None).unwrap());
    assert!(!dump.contains("ignore previous instructions") && !dump.contains(TEST_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_broken_requests_are_refused_audited_and_survived() {
    let world = World::new();
    let socket = world.socket("family");
    let huge = format!(
        r#"{{"chat":"test:family","text":"{}"}}"#,
        "a".repeat(300 * 1024)
    );
    let (status, reply) = call(&socket, "send_message", &huge).await;
    assert_eq!(status, 413, "{reply}");
    let long = format!(
        r#"{{"chat":"test:family","text":"{}"}}"#,
        "a".repeat(20 * 1024)
    );
    assert_eq!(call(&socket, "send_message", &long).await.0, 400);
    let (status, _) = call(&socket, "send_message", "\u{0}\u{1}garbage").await;
    assert_eq!(status, 400);
    // Still serving.
    let (status, _) = call(
        &socket,
        "send_message",
        r#"{"chat":"test:family","text":"fine"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let entries = world.store.audit_entries(Some("family"), None).unwrap();
    let decisions: Vec<Option<bool>> = entries.iter().map(|e| e.allowed).collect();
    assert_eq!(
        decisions,
        [Some(false), Some(false), Some(false), Some(true)]
    );
}
