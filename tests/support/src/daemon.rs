//! A real `pincer serve` process and a client of its control socket.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::*;

/// A `pincer serve` process of an installation; killed when dropped.
pub struct DaemonProcess {
    pub child: std::process::Child,
    home: PathBuf,
    /// Its stderr (where it logs): printed when a test fails with it running.
    log: PathBuf,
}

impl DaemonProcess {
    pub fn start(install: &Installation, model_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = install.pincer(model_url);
        command.arg("serve").env("RUST_LOG", "pincer=info");
        for (key, value) in env {
            command.env(key, value);
        }
        let log = install
            .dir
            .path()
            .join(format!("serve-{}.log", random_id()));
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let socket = install.home().join("pincer.sock");
        assert!(
            wait_for(Duration::from_secs(60), || {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }),
            "the daemon's control socket never came up"
        );
        Self {
            child,
            home: install.home(),
            log,
        }
    }

    pub fn control(&self) -> Control {
        Control::connect(&self.home)
    }

    /// SIGTERM, then wait; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap().code()
    }

    /// SIGKILL: no clean-up of any kind.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for DaemonProcess {
    #[allow(clippy::print_stderr)] // into the failing test's output
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test: what the daemon said is often why (eprintln!, so
        // that `cargo test` shows it with the test's own output).
        if std::thread::panicking() {
            let log = std::fs::read(&self.log).unwrap_or_default();
            eprintln!(
                "---- the daemon's log ({}) ----\n{}---- end of the daemon's log ----",
                self.log.display(),
                String::from_utf8_lossy(&log)
            );
        }
    }
}

/// A blocking client of the control socket (JSON lines).
pub struct Control {
    reader: BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Control {
    pub fn connect(home: &Path) -> Self {
        let stream = std::os::unix::net::UnixStream::connect(home.join("pincer.sock")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(240)))
            .unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn request(&mut self, request: Value) {
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).unwrap();
    }

    pub fn next_event(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON from the daemon: {line:?}"))
    }

    /// Sends and returns the accepted message's id.
    pub fn send(&mut self, group: &str, text: &str) -> i64 {
        self.request(json!({"op": "send", "group": group, "text": text}));
        loop {
            let event = self.next_event();
            match event["event"].as_str() {
                Some("accepted") => return event["id"].as_i64().unwrap(),
                Some("error") => panic!("send refused: {event}"),
                _ => {}
            }
        }
    }

    /// Watches, sends, and waits for the reply answering the message (which
    /// may come before its `accepted`: an owner command is answered at once).
    pub fn ask(&mut self, group: &str, text: &str) -> Value {
        self.request(json!({"op": "watch"}));
        self.request(json!({"op": "send", "group": group, "text": text}));
        let mut early = Vec::new();
        let id = loop {
            let event = self.next_event();
            match event["event"].as_str() {
                Some("accepted") => break event["id"].as_i64().unwrap(),
                Some("error") => panic!("send refused: {event}"),
                Some("reply") => early.push(event),
                _ => {}
            }
        };
        let answers = |event: &Value| {
            event["answers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.as_i64() == Some(id))
        };
        match early.into_iter().find(answers) {
            Some(reply) => reply,
            None => self.reply_to(id),
        }
    }

    /// Waits (watching) for the reply answering message `id`.
    pub fn reply_to(&mut self, id: i64) -> Value {
        loop {
            let event = self.next_event();
            if event["event"] == "reply"
                && event["answers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a.as_i64() == Some(id))
            {
                return event;
            }
        }
    }
}
