//! The IRC channel against a real IRC server (Debian's ngircd) on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// An ngircd on a free loopback port; stopped when dropped.
struct IrcServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl IrcServer {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ngircd.conf");
        std::fs::write(
            &config,
            format!(
                "[Global]\n\tName = irc.pincer.test\n\tInfo = test\n\tListen = 127.0.0.1\n\tPorts = {port}\n\
                 [Limits]\n\tPingTimeout = 120\n\tPongTimeout = 20\n\tMaxNickLength = 30\n\
                 [Options]\n\tPAM = no\n\tIdent = no\n\tDNS = no\n"
            ),
        )
        .unwrap();
        let child = Command::new("ngircd")
            .args(["-n", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ngircd is needed for this test (Debian package ngircd; .ci/run installs it)");
        assert!(wait_for(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()));
        Self {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for IrcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A person on IRC.
struct Person {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    nick: String,
}

impl Person {
    fn connect(port: u16, nick: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut person = Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            nick: nick.into(),
        };
        person.say(&format!("NICK {nick}"));
        person.say(&format!("USER {nick} 0 * :{nick}"));
        person.wait_for(|line| line.contains(" 001 "));
        person
    }

    fn say(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// Reads lines (answering PINGs) until one matches; returns it.
    fn wait_for(&mut self, matches: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "{} waited in vain", self.nick);
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if let Some(token) = line.strip_prefix("PING ") {
                let pong = format!("PONG {}", token.trim());
                self.say(&pong);
                continue;
            }
            if matches(&line) {
                return line.trim_end().to_owned();
            }
        }
    }
}

#[test]
fn a_channel_and_the_owners_private_messages_are_answered_on_irc() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-irc-host"));
    let server = IrcServer::start();
    let install = Installation::new();
    let added = install
        .pincer("http://127.0.0.1:1")
        .args(["groups", "add", "family", "--chat", "irc:#family"])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", text(&added));
    let model = ScriptedModel::always(answer(|request| {
        let prompt = request.json()["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["content"]
            .clone();
        format!("re: {}", prompt.as_str().unwrap_or_default())
    }));

    let mut alice = Person::connect(server.port, "alice");
    alice.say("JOIN #family");
    alice.wait_for(|line| line.contains("JOIN") && line.contains("#family"));
    alice.say("JOIN #other");
    alice.wait_for(|line| line.contains("JOIN") && line.contains("#other"));
    let server_address = format!("127.0.0.1:{}", server.port);
    let daemon = DaemonProcess::start(
        &install,
        &model.url(),
        &[
            ("IRC_SERVER", server_address.as_str()),
            ("IRC_NICK", "pincer"),
            // #other is joined but no group owns it.
            ("IRC_CHANNELS", "#family,#other"),
            ("IRC_OWNER_NICK", "owner"),
        ],
    );
    // The bot joins the channel.
    for channel in ["#family", "#other"] {
        alice.wait_for(|line| {
            line.starts_with(":pincer!") && line.contains("JOIN") && line.contains(channel)
        });
    }
    alice.say("PRIVMSG #family :@pincer what's for dinner?");
    let reply =
        alice.wait_for(|line| line.starts_with(":pincer!") && line.contains("PRIVMSG #family"));
    assert!(
        reply.ends_with(":re: @pincer what's for dinner?"),
        "{reply}"
    );

    // A message without the trigger wakes nobody; neither does one in a
    // channel no group owns, nor a private message from a stranger.
    alice.say("PRIVMSG #family :just chatting about dinner");
    alice.say("PRIVMSG #other :@pincer open the door");
    alice.say("PRIVMSG pincer :let me in");
    let mut owner = Person::connect(server.port, "owner");
    owner.say("PRIVMSG pincer :hello, it's me");
    let private =
        owner.wait_for(|line| line.starts_with(":pincer!") && line.contains("PRIVMSG owner"));
    assert!(private.ends_with(":re: hello, it's me"), "{private}");
    assert_eq!(daemon.terminate(), Some(0));
    assert_eq!(
        model.requests().len(),
        2,
        "only the channel's trigger and the owner woke the agent"
    );
}
