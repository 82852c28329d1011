//! The Matrix channel against a real homeserver (Synapse, from PyPI) on
//! loopback, with people on it driven through a real client (matrix-nio):
//! `homeserver.py` and `person.py` beside this file. Their Python is
//! `PINCER_TEST_MATRIX_PYTHON` (a venv with both; `.ci/run` makes one).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The restart test sets the store back as a crash at the worst moment leaves it.
#![allow(clippy::disallowed_types)]

use pincer_test_support as support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const BOT: &str = "@pincer:localhost";

fn python() -> String {
    std::env::var("PINCER_TEST_MATRIX_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// A Synapse on a free loopback port; stopped when dropped.
struct Homeserver {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

struct Account {
    user_id: String,
    token: String,
    device: String,
}

impl Homeserver {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(python())
            .arg(script("homeserver.py"))
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .expect("python for Synapse (PINCER_TEST_MATRIX_PYTHON)");
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let up = Command::new(python())
            .arg(script("homeserver.py"))
            .args(["wait", &server.url, "120"])
            .status()
            .unwrap();
        assert!(
            up.success(),
            "Synapse did not start (needs matrix-synapse in PINCER_TEST_MATRIX_PYTHON's venv; .ci/run makes one): {}",
            std::fs::read_to_string(server.dir.path().join("stderr.log")).unwrap_or_default()
        );
        server
    }

    fn register(&self, user: &str) -> Account {
        let output = Command::new(python())
            .arg(script("homeserver.py"))
            .args(["register", &self.url])
            .arg(self.dir.path())
            .args([user, "a long test password"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        let account: Value = serde_json::from_slice(&output.stdout).unwrap();
        Account {
            user_id: account["user_id"].as_str().unwrap().to_owned(),
            token: account["access_token"].as_str().unwrap().to_owned(),
            device: account["device_id"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for Homeserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person with a Matrix client.
struct Person {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Person {
    fn new(server: &Homeserver, account: &Account) -> Self {
        let mut child = Command::new(python())
            .arg(script("person.py"))
            .args([
                &server.url,
                &account.user_id,
                &account.token,
                &account.device,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    fn ask(&mut self, command: Value) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("person.py said {line:?} to {command}"));
        assert!(answer.get("error").is_none(), "{command}: {answer}");
        answer
    }

    fn create_room(&mut self, name: &str, invite: &[&str], direct: bool) -> String {
        let answer = self
            .ask(json!({"op": "create_room", "name": name, "invite": invite, "direct": direct}));
        answer["room_id"].as_str().unwrap().to_owned()
    }

    fn invite(&mut self, room: &str, user: &str) {
        self.ask(json!({"op": "invite", "room": room, "user": user}));
    }

    fn join(&mut self, room: &str) {
        self.ask(json!({"op": "join", "room": room}));
    }

    fn send(&mut self, room: &str, text: &str) {
        self.ask(json!({"op": "send", "room": room, "text": text}));
    }

    fn joined(&mut self, room: &str) -> Vec<String> {
        serde_json::from_value(self.ask(json!({"op": "members", "room": room}))["joined"].clone())
            .unwrap()
    }

    /// The bodies of the bot's messages in `room`, oldest first.
    fn bot_said(&mut self, room: &str) -> Vec<String> {
        self.ask(json!({"op": "messages", "room": room}))["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["sender"] == BOT)
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect()
    }

    fn wait_for_bot(&mut self, room: &str, contains: &str) {
        self.ask(json!({"op": "wait_message", "room": room, "sender": BOT,
                        "contains": contains, "timeout_ms": 180_000}));
    }
}

impl Drop for Person {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The model's answer: "re: " and the prompt.
fn echo(request: &Recorded) -> String {
    let last = request.json()["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .clone();
    format!("re: {}", last.as_str().unwrap_or_default())
}

fn prompts(model: &ScriptedModel) -> Vec<String> {
    model.requests().iter().map(echo).collect()
}

fn daemon(
    install: &Installation,
    model: &ScriptedModel,
    server: &Homeserver,
    bot: &Account,
) -> DaemonProcess {
    DaemonProcess::start(
        install,
        &model.url(),
        &[
            ("MATRIX_HOMESERVER", server.url.as_str()),
            ("MATRIX_ACCESS_TOKEN", bot.token.as_str()),
            ("MATRIX_OWNER", "@owner:localhost"),
        ],
    )
}

fn add_group(install: &Installation, name: &str, room: &str) {
    let added = install
        .pincer("http://127.0.0.1:1")
        .args([
            "groups",
            "add",
            name,
            "--chat",
            &format!("matrix:{room}"),
            "--trigger",
            "@pincer",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
}

#[test]
fn registered_rooms_and_the_owners_direct_room_are_answered_and_nothing_else() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-matrix-host"));
    let server = Homeserver::start();
    let bot = server.register("pincer");
    let (mut owner, mut alice, mut mallory) = (
        Person::new(&server, &server.register("owner")),
        Person::new(&server, &server.register("alice")),
        Person::new(&server, &server.register("mallory")),
    );
    let family = owner.create_room("Family", &["@alice:localhost"], false);
    alice.join(&family);
    // Said before the bot is invited: history, not a message for it.
    alice.send(&family, "@pincer said before you came");
    owner.invite(&family, BOT);
    // The owner writes at once, before the bot has even joined: for it.
    let direct = owner.create_room("", &[BOT], true);
    owner.send(&direct, "hello from my phone");
    let random = owner.create_room("Random", &[BOT, "@alice:localhost"], false);
    alice.join(&random);
    let strangers = mallory.create_room("Strangers", &[BOT], false);

    let install = Installation::new();
    add_group(&install, "family", &family);
    // Registered, but the bot was invited by someone other than the owner.
    add_group(&install, "strangers", &strangers);
    let model = ScriptedModel::always(answer(echo));
    let running = daemon(&install, &model, &server, &bot);
    assert!(
        wait_for(Duration::from_secs(120), || owner
            .joined(&family)
            .contains(&BOT.to_owned())
            && owner.joined(&direct).contains(&BOT.to_owned())),
        "the bot did not join on the owner's invites"
    );

    alice.send(&family, "just chatting");
    alice.send(&family, "@pincer what's for dinner?");
    alice.send(&random, "@pincer a room nobody registered");
    mallory.send(&strangers, "@pincer let me in");
    alice.wait_for_bot(&family, "what's for dinner");
    owner.wait_for_bot(&direct, "hello from my phone");
    // Time for a reply that should not come (the bot's own answers, the rest).
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(running.terminate(), Some(0));

    let said = alice.bot_said(&family);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("[@alice:localhost] just chatting")
            && said[0].contains("[@alice:localhost] @pincer what's for dinner?")
            && !said[0].contains("before you came"),
        "{said:?}"
    );
    // Main answers every message: an answer of its own read back would loop.
    assert_eq!(owner.bot_said(&direct), vec!["re: hello from my phone"]);
    assert!(alice.bot_said(&random).is_empty());
    assert!(
        !mallory.joined(&strangers).contains(&BOT.to_owned()),
        "the bot took a stranger's invite"
    );
    assert_eq!(model.requests().len(), 2, "{:?}", prompts(&model));
    assert!(
        alice.ask(json!({"op": "typing_seen", "room": family}))["typing"]
            .as_array()
            .unwrap()
            .contains(&json!(BOT)),
        "no typing notice while the agent worked"
    );
    let main: i64 = rusqlite::Connection::open(install.home().join("pincer.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND group_name = 'main'
               AND text = 'hello from my phone' AND source IS NOT NULL",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        main, 1,
        "the owner's direct message is main's, stored under its event id"
    );
}

#[test]
fn a_kill_9_mid_conversation_loses_and_repeats_nothing() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-matrix-host"));
    let server = Homeserver::start();
    let bot = server.register("pincer");
    let mut owner = Person::new(&server, &server.register("owner"));
    let mut alice = Person::new(&server, &server.register("alice"));
    let family = owner.create_room("Family", &[BOT, "@alice:localhost"], false);
    alice.join(&family);
    let install = Installation::new();
    add_group(&install, "family", &family);
    // The agent answers "second" only when the gate opens: the daemon is
    // killed while it works.
    let gate = Arc::new(AtomicBool::new(false));
    let open = Arc::clone(&gate);
    let model = ScriptedModel::always(answer(move |request| {
        let said = echo(request);
        while said.contains("second") && !open.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        said
    }));
    let db = || rusqlite::Connection::open(install.home().join("pincer.db")).unwrap();
    let token_key = format!("matrix:{BOT}:next_batch");
    let token = || -> Option<String> {
        db().query_row(
            "SELECT value FROM channel_state WHERE key = ?1",
            [&token_key],
            |row| row.get(0),
        )
        .ok()
    };

    let first = daemon(&install, &model, &server, &bot);
    assert!(wait_for(Duration::from_secs(120), || owner
        .joined(&family)
        .contains(&BOT.to_owned())));
    assert!(wait_for(Duration::from_secs(60), || token().is_some()));
    // Where the bot had read to before anything was said.
    let before = token().unwrap();
    alice.send(&family, "@pincer first");
    alice.wait_for_bot(&family, "@pincer first");
    alice.send(&family, "@pincer second");
    assert!(wait_for(Duration::from_secs(120), || prompts(&model)
        .iter()
        .any(|p| p.contains("second"))));
    alice.send(&family, "@pincer third");
    let stored = |text: &str| -> i64 {
        db().query_row(
            "SELECT count(*) FROM messages WHERE direction = 'in' AND text = ?1",
            [text],
            |row| row.get(0),
        )
        .unwrap()
    };
    assert!(wait_for(Duration::from_secs(60), || stored(
        "@pincer third"
    ) == 1));
    first.kill_9();
    // The worst moment: everything stored, the sync token not yet saved.
    db().execute(
        "UPDATE channel_state SET value = ?1 WHERE key = ?2",
        [&before, &token_key],
    )
    .unwrap();
    gate.store(true, Ordering::SeqCst);

    let second = daemon(&install, &model, &server, &bot);
    alice.wait_for_bot(&family, "@pincer third");
    alice.wait_for_bot(&family, "@pincer second");
    second.kill_9();
    // The other worst moment: a reply sent, not yet marked sent.
    let resent = db()
        .execute(
            "UPDATE messages SET status = 'undelivered' WHERE direction = 'out' AND text LIKE 're: %first'",
            [],
        )
        .unwrap();
    assert_eq!(resent, 1);
    let third = daemon(&install, &model, &server, &bot);
    let delivered = || -> bool {
        db().query_row(
            "SELECT status = 'delivered' FROM messages WHERE direction = 'out' AND text LIKE 're: %first'",
            [],
            |row| row.get(0),
        )
        .unwrap()
    };
    assert!(wait_for(Duration::from_secs(60), delivered));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(third.terminate(), Some(0));

    for text in ["@pincer first", "@pincer second", "@pincer third"] {
        assert_eq!(stored(text), 1, "{text} stored once");
    }
    let said = alice.bot_said(&family);
    for word in ["@pincer first", "@pincer second", "@pincer third"] {
        let answers = said.iter().filter(|s| s.contains(word)).count();
        assert_eq!(answers, 1, "{word} answered once: {said:?}");
        let asked = prompts(&model).iter().filter(|p| p.contains(word)).count();
        assert!(asked <= 2, "{word} given to the model {asked} times");
    }
    let asked_first = prompts(&model)
        .iter()
        .filter(|p| p.contains("@pincer first"))
        .count();
    assert_eq!(
        asked_first, 1,
        "first was answered, and not again after the restart"
    );
}
