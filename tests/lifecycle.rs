//! The daemon's life: `pincer chat` starting its own in a real terminal and
//! cancelling, SIGTERM with and past the grace period, and an engine that
//! fails and recovers. Real engine; only the model is scripted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use support::*;

/// `pincer chat` in a real terminal (`script` gives it a pty).
struct Terminal {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    screen: Arc<std::sync::Mutex<String>>,
}

impl Terminal {
    fn chat(install: &Installation, model_url: &str) -> Self {
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
        // The installation logs at debug: none of it may reach the conversation.
        // The same shell and terminal wherever the test runs (CI may set
        // neither; with no TERM the "working…" line is rightly not drawn).
        command.env("SHELL", "/bin/sh").env("TERM", "xterm");
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let screen = gather(child.stdout.take().unwrap());
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
        if prompt.contains("show your work") {
            show_your_work(request)
        } else if prompt.contains("slow")
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

    // The agent shows its work: each tool as it finishes, a failure with
    // its reason, the model's note; the answer's Markdown styled.
    terminal.type_keys(b"show your work\r");
    terminal.expect("\x1b[1mdone");
    let full = terminal.screen.lock().unwrap().clone();
    let screen = &full[full.rfind("show your work").unwrap()..];
    let at = |text: &str| {
        screen
            .find(text)
            .unwrap_or_else(|| panic!("the screen never showed {text:?}:\n{screen}"))
    };
    assert!(at("… Let me check.") < at("bash: ls /workspace/group"));
    let refused = "web_fetch: https://example.org/ — failed: example.org is not in this group's egress allowlist";
    assert!(at("bash: ls /workspace/group") < at(refused));
    assert!(at(refused) < at("pincer> "));
    assert!(at("pincer> ") < at("• one"), "{screen}");
    assert!(!screen.contains("**done**"), "{screen}");
    assert!(
        !full.contains("\x1b]52"),
        "the agent's escape reached the terminal"
    );
    assert!(screen.contains("# \\x1b]52;c;cHduZWQ=\\x07"), "{screen}");
    for level in [" INFO ", " DEBUG ", "model request"] {
        assert!(
            !full.contains(level),
            "a log line in the conversation: {full}"
        );
    }
    // The log went to its file instead.
    let log = std::fs::read_to_string(install.home().join("logs/pincer.log")).unwrap();
    assert!(log.contains("model request"), "{log}");

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

/// Two tools (the second refused: main has no egress rule), then an answer in Markdown.
fn show_your_work(request: &Recorded) -> (u16, serde_json::Value) {
    match request.all_tool_results().len() {
        // The command carries OSC 52 (write the clipboard): the owner's
        // terminal must see it as text.
        0 => tool_use(
            "bash",
            json!({"command": "ls /workspace/group # \u{1b}]52;c;cHduZWQ=\u{7}"}),
        )(request),
        1 => tool_use("web_fetch", json!({"url": "https://example.org/"}))(request),
        _ => (200, message("**done**\n\n- one\n- two")),
    }
}

#[test]
fn pincer_chat_on_a_pipe_prints_the_markdown_as_written_and_the_work_plainly() {
    use std::io::Write;
    let install = Installation::new();
    let model = ScriptedModel::always(Box::new(show_your_work));
    let mut chat = install
        .pincer(&model.url())
        .arg("chat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The line, then the end of input: the answer comes before it leaves.
    chat.stdin
        .take()
        .unwrap()
        .write_all(b"show your work\n")
        .unwrap();
    let output = chat.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let said = String::from_utf8_lossy(&output.stdout);
    let work = said.find("bash: ls /workspace/group").unwrap_or(usize::MAX);
    let answer = said
        .find("pincer> **done**\n\n- one\n- two")
        .unwrap_or(usize::MAX);
    assert!(work < answer && answer < usize::MAX, "{said}");
    assert!(!said.contains('\x1b'), "no styles on a pipe: {said:?}");
    assert!(said.contains("# \\x1b]52;c;cHduZWQ=\\x07"), "{said}");
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

/// The real engine, reached through a socket that hangs up on the next
/// `failures` container creations: an engine that fails, then recovers.
struct FlakyEngine {
    socket: std::path::PathBuf,
    hits: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// Which requests a `FlakyEngine` fails (and counts in `hits`): (method, a part of the path).
type Request = (&'static [u8], &'static [u8]);
const CREATE: Request = (b"POST ", b"/containers/create");
const IMAGE_LOOKUP: Request = (b"GET ", b"/images/");

impl FlakyEngine {
    fn start(failures: usize, (method, path): Request) -> Self {
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
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
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
                        let matching = chunk.starts_with(method)
                            && chunk.windows(path.len()).any(|w| w == path);
                        if matching && counted.fetch_add(1, Ordering::SeqCst) < failures {
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
            hits,
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
    let flaky = FlakyEngine::start(2, CREATE);
    let daemon = DaemonProcess::start(
        &install,
        &model.url(),
        &[("DOCKER_HOST", flaky.docker_host().as_str())],
    );
    let reply = daemon.control().ask("main", "hello");
    assert_eq!(reply["failed"], false, "{reply}");
    assert_eq!(reply["text"], "re: hello");
    assert_eq!(flaky.hits.load(Ordering::SeqCst), 3);
    assert_eq!(daemon.terminate(), Some(0));

    // The engine goes away while the agent image is looked up (at the
    // daemon's start, which goes on, and as the first engine call of the
    // invocation): retried the same way.
    let lookup = FlakyEngine::start(2, IMAGE_LOOKUP);
    let daemon = DaemonProcess::start(
        &install,
        &model.url(),
        &[("DOCKER_HOST", lookup.docker_host().as_str())],
    );
    let reply = daemon.control().ask("main", "hello again");
    assert_eq!(reply["failed"], false, "{reply}");
    assert_eq!(reply["text"], "re: hello again");
    assert_eq!(lookup.hits.load(Ordering::SeqCst), 3);
    assert_eq!(daemon.terminate(), Some(0));

    // An engine that keeps failing: the retries run out, and the chat is told.
    let broken = FlakyEngine::start(usize::MAX, CREATE);
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
        broken.hits.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );
    assert_eq!(
        model.requests().len(),
        2,
        "only the first two messages reached the model"
    );
    assert_eq!(daemon.terminate(), Some(0));
    assert_eq!(install.containers(), Vec::<String>::new());
}
