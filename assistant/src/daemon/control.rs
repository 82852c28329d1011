//! The local control socket (`$PINCER_HOME/pincer.sock`, mode 0600): how
//! `pincer chat` and `pincer send` talk to a running daemon, and the built-in
//! local channel whose chats (`local:…`) are answered there.
//!
//! JSON lines. Requests: `{"op":"send","group":G,"text":T}` (→
//! `{"event":"accepted","id":N,"group":G}`), `{"op":"watch"}` (→ every
//! [`DaemonEvent`] from then on), `{"op":"cancel","group":G}` (→
//! `{"event":"cancelled","group":G,"was_running":B}`), `{"op":"status"}` (→
//! `{"event":"status","daemon":`[`DaemonStatus`](super::DaemonStatus)`}`),
//! `{"op":"ping"}` (→ `{"event":"pong"}`). Errors: `{"event":"error","error":…}`. Only the
//! owner's user can connect (the socket is 0600, its folder 0700).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};

use super::{Daemon, DaemonError};
use crate::channel::{BoxFuture, Channel, ChannelError, Inbox};

/// Where the control socket is.
pub fn control_socket(home: &Path) -> PathBuf {
    home.join("pincer.sock")
}

/// Whether a daemon serves a home, as a client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// It answers on the control socket.
    Answering,
    /// No daemon: a socket file is left from one that died (the next
    /// daemon replaces it).
    StaleSocket(PathBuf),
    /// A process holds the daemon's lock but nothing answers on the socket.
    Unanswering { lock: PathBuf, socket: PathBuf },
    /// No daemon, nothing left over.
    Absent,
}

/// Asks the control socket under `paths`' home, then the daemon's lock.
pub async fn presence(paths: &crate::config::Paths) -> Presence {
    let socket = control_socket(&paths.home);
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut client = ControlClient::connect(&paths.home).await.ok()?;
        client.request(&json!({"op": "ping"})).await.ok()?;
        client.next().await.ok().flatten()
    })
    .await;
    if matches!(answered, Ok(Some(ref pong)) if pong["event"] == "pong") {
        return Presence::Answering;
    }
    let lock = paths.run_dir().join("daemon.lock");
    // Taking the lock for a moment says whether someone holds it.
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock)
        .is_ok_and(|file| file.try_lock().is_err());
    if held {
        Presence::Unanswering { lock, socket }
    } else if socket.exists() {
        Presence::StaleSocket(socket)
    } else {
        Presence::Absent
    }
}

/// How often, and how far apart, a starting daemon tries the lock.
const LOCK_TRIES: u32 = 10;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// The longest request line.
const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The pause after a failed accept.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// The built-in channel of `local:` chats: its replies are the daemon's
/// events, which every watcher of the control socket receives.
pub(super) struct LocalChannel;

impl Channel for LocalChannel {
    fn name(&self) -> &'static str {
        "local"
    }

    fn owns(&self, chat_id: &str) -> bool {
        chat_id.starts_with("local:")
    }

    fn run(&self, _inbox: Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>> {
        // Messages come in through the control socket, which the daemon serves.
        Box::pin(std::future::pending())
    }

    fn deliver<'a>(
        &'a self,
        _id: i64,
        _chat_id: &'a str,
        _sender: &'a str,
        _text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        // Watchers already got the reply as an event; the store keeps it.
        Box::pin(async { Ok(()) })
    }
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Send { group: String, text: String },
    Watch,
    Cancel { group: String },
    Status,
    Ping,
}

/// A served control socket; removed when dropped.
pub(super) struct Served {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
    /// Held while this daemon runs: one daemon per home.
    _lock: std::fs::File,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves the control socket for `daemon`; refuses if another daemon answers there.
pub(super) fn serve(daemon: Arc<Daemon>) -> Result<Served, DaemonError> {
    let path = control_socket(&daemon.host.paths().home);
    let fail = |message: String| DaemonError::Control {
        path: path.clone(),
        message,
    };
    // One daemon per home, decided by a lock the kernel drops when the
    // process dies (even by kill -9), not by who answers on the socket.
    let lock_path = daemon.host.paths().run_dir().join("daemon.lock");
    std::fs::create_dir_all(daemon.host.paths().run_dir()).map_err(|err| fail(err.to_string()))?;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|err| fail(format!("{}: {err}", lock_path.display())))?;
    // `pincer status` and `doctor` take the lock for an instant to see
    // whether someone holds it: a few tries tell them from a daemon.
    let mut tries = 0;
    while lock.try_lock().is_err() {
        tries += 1;
        if tries == LOCK_TRIES {
            return Err(fail("another pincer daemon is already serving here".into()));
        }
        std::thread::sleep(LOCK_RETRY);
    }
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|err| fail(err.to_string()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|err| fail(err.to_string()))?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(connection(Arc::clone(&daemon), stream));
                }
                // Out of descriptors (EMFILE) the same error comes back at
                // once while a client waits: without a pause this loop
                // would take a whole core until one is freed.
                Err(err) => {
                    tracing::warn!("control socket: cannot accept a connection: {err}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    });
    Ok(Served {
        path,
        task,
        _lock: lock,
    })
}

async fn connection(daemon: Arc<Daemon>, stream: UnixStream) {
    let (reader, mut writer) = stream.into_split();
    let (out, mut outgoing) = mpsc::channel::<Value>(256);
    let writer_task = tokio::spawn(async move {
        while let Some(line) = outgoing.recv().await {
            let mut bytes = line.to_string().into_bytes();
            bytes.push(b'\n');
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut lines = BufReader::new(reader).lines();
    let mut watching = false;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(line)) => line,
            _ => break,
        };
        if line.len() > MAX_REQUEST_BYTES {
            let _ = out
                .send(json!({"event": "error", "error": "request too large"}))
                .await;
            break;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(err) => json!({"event": "error", "error": format!("invalid request: {err}")}),
            Ok(Request::Ping) => json!({"event": "pong"}),
            Ok(Request::Status) => json!({"event": "status", "daemon": daemon.status()}),
            Ok(Request::Send { group, text }) => match daemon.store.group(&group) {
                Ok(Some(found)) => {
                    match daemon.accept_message(None, &found.chat_id, "owner", &text) {
                        Ok(None) => {
                            json!({"event": "error", "error": "the message was not stored"})
                        }
                        Ok(Some(accepted)) => json!({
                            "event": "accepted",
                            "id": accepted.id,
                            "group": group,
                            "wakes": accepted.wakes,
                            "trigger": found.trigger,
                        }),
                        Err(err) => json!({"event": "error", "error": err.to_string()}),
                    }
                }
                Ok(None) => json!({"event": "error", "error": format!("no group named {group}")}),
                Err(err) => json!({"event": "error", "error": err.to_string()}),
            },
            Ok(Request::Cancel { group }) => {
                let was_running = daemon.cancel(&group);
                json!({"event": "cancelled", "group": group, "was_running": was_running})
            }
            Ok(Request::Watch) if watching => json!({"event": "watching"}),
            Ok(Request::Watch) => {
                watching = true;
                // Replies and the agents' activity come on two channels, so
                // that no amount of activity pushes a reply out of a queue.
                tokio::spawn(forward(daemon.subscribe(), out.clone()));
                tokio::spawn(forward(daemon.subscribe_activity(), out.clone()));
                json!({"event": "watching"})
            }
        };
        if out.send(reply).await.is_err() {
            break;
        }
    }
    drop(out);
    let _ = writer_task.await;
}

/// Passes a channel's events to a watcher. One that fell behind is told
/// what it missed and goes on: ending its stream would leave it waiting forever.
async fn forward(mut events: broadcast::Receiver<super::DaemonEvent>, out: mpsc::Sender<Value>) {
    loop {
        let value = match events.recv().await {
            Ok(event) => match serde_json::to_value(&event) {
                Ok(value) => value,
                Err(_) => continue,
            },
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                json!({"event": "lagged", "missed": missed})
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if out.send(value).await.is_err() {
            return;
        }
    }
}

/// A client of the control socket (`pincer chat`, `pincer send`).
pub struct ControlClient {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl ControlClient {
    /// Connects to the daemon serving `home`.
    pub async fn connect(home: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(control_socket(home)).await?;
        let (reader, writer) = stream.into_split();
        Ok(Self {
            lines: BufReader::new(reader).lines(),
            writer,
        })
    }

    /// Sends one request.
    pub async fn request(&mut self, request: &Value) -> std::io::Result<()> {
        let mut bytes = request.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await
    }

    /// The next line from the daemon; `None` when it hung up.
    pub async fn next(&mut self) -> std::io::Result<Option<Value>> {
        match self.lines.next_line().await? {
            Some(line) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err)),
            None => Ok(None),
        }
    }

    /// Sends `text` to `group` and waits for the reply that answers it.
    /// Returns (reply text, whether the agent failed). A message that does
    /// not wake a non-main group (no trigger) is stored as context and
    /// answered by nobody now: that is an error, not a wait forever.
    pub async fn ask(&mut self, group: &str, text: &str) -> std::io::Result<(String, bool)> {
        self.ask_telling(group, text, |_| {}, |_| {}).await
    }

    /// [`Self::ask`], telling `accepted` the message's id as soon as the
    /// daemon has stored it, and `meanwhile` every other event until the
    /// reply (the agents' tool activity among them).
    pub async fn ask_telling(
        &mut self,
        group: &str,
        text: &str,
        mut accepted: impl FnMut(i64),
        mut meanwhile: impl FnMut(&Value),
    ) -> std::io::Result<(String, bool)> {
        self.request(&json!({"op": "watch"})).await?;
        self.request(&json!({"op": "send", "group": group, "text": text}))
            .await?;
        let mut mine = None;
        // A reply can come before the message's own `accepted` (the host
        // answers an owner command while it accepts it): kept until then.
        let mut early: Vec<Value> = Vec::new();
        let answers_to = |event: &Value, id: i64| {
            event["answers"]
                .as_array()
                .is_some_and(|answers| answers.iter().any(|a| a.as_i64() == Some(id)))
        };
        let answer = |event: &Value| {
            (
                event["text"].as_str().unwrap_or_default().to_owned(),
                event["failed"].as_bool().unwrap_or(false),
            )
        };
        while let Some(event) = self.next().await? {
            match event["event"].as_str() {
                Some("accepted") if event["wakes"] == json!(false) => {
                    return Err(std::io::Error::other(format!(
                        "stored in group {group}'s chat as context: its agent wakes only on a message that starts with {}",
                        event["trigger"].as_str().unwrap_or("its trigger")
                    )));
                }
                Some("accepted") => {
                    mine = event["id"].as_i64();
                    if let Some(id) = mine {
                        accepted(id);
                        if let Some(reply) = early.iter().find(|e| answers_to(e, id)) {
                            return Ok(answer(reply));
                        }
                        early.drain(..).for_each(|e| meanwhile(&e));
                    }
                }
                Some("error") => {
                    return Err(std::io::Error::other(
                        event["error"].as_str().unwrap_or("error").to_owned(),
                    ));
                }
                Some("reply") => match mine {
                    Some(id) if answers_to(&event, id) => return Ok(answer(&event)),
                    Some(_) => meanwhile(&event),
                    None => early.push(event),
                },
                _ => meanwhile(&event),
            }
        }
        Err(std::io::Error::other("the daemon hung up"))
    }
}
