//! The IRC channel (skill `irc`): one connection to one server, as a bot.
//!
//! A channel registered with `pincer groups add NAME --chat 'irc:#channel'`
//! is that group; private messages from the owner's nick (`IRC_OWNER_NICK`)
//! are the main group. Messages from anywhere else are dropped. Plain IRC
//! over TCP (RFC 1459/2812 framing: lines, PING/PONG, PRIVMSG); reconnects
//! with backoff when the server goes away.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;

use pincer_assistant::channel::MAIN_CHAT;
use pincer_assistant::channel::{BoxFuture, Channel, ChannelError, Inbox};
use pincer_assistant::registry::Env;

/// Longest text of one PRIVMSG line we send (the whole line must fit in 512 bytes).
const MAX_LINE_BYTES: usize = 400;

/// Links the channel into a `pincer` build: the line `cargo xtask apply-skill
/// irc` writes in `pincer/src/skills.rs`. The channel runs only where
/// `IRC_SERVER` is set: linked but not configured, it stays off.
pub fn register(registry: &mut pincer_assistant::Registry) {
    registry.add_channel(IrcChannel::from_env);
}

/// The channel.
pub struct IrcChannel {
    server: String,
    nick: String,
    channels: Vec<String>,
    owner: Option<String>,
    writer: Mutex<Option<OwnedWriteHalf>>,
}

impl IrcChannel {
    /// The channel, if `IRC_SERVER` (`host:port`) is set; `IRC_NICK` (default
    /// `pincer`), `IRC_CHANNELS` (comma-separated, to join) and
    /// `IRC_OWNER_NICK` (whose private messages are the main group).
    pub fn from_env(env: Env<'_>) -> Option<Arc<dyn Channel>> {
        let server = env("IRC_SERVER").filter(|s| !s.trim().is_empty())?;
        Some(Arc::new(Self {
            server,
            nick: env("IRC_NICK").unwrap_or_else(|| "pincer".into()),
            channels: env("IRC_CHANNELS")
                .unwrap_or_default()
                .split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| c.starts_with('#'))
                .collect(),
            owner: env("IRC_OWNER_NICK").filter(|n| !n.trim().is_empty()),
            writer: Mutex::new(None),
        }))
    }

    async fn send(&self, line: &str) -> Result<(), ChannelError> {
        let mut writer = self.writer.lock().await;
        let Some(writer) = writer.as_mut() else {
            return Err(ChannelError("irc: not connected".into()));
        };
        writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|err| ChannelError(format!("irc: {err}")))
    }

    async fn session(&self, inbox: &Arc<dyn Inbox>) -> Result<(), ChannelError> {
        let stream = TcpStream::connect(&self.server).await.map_err(|err| {
            ChannelError(format!("irc: cannot connect to {}: {err}", self.server))
        })?;
        let (reader, writer) = stream.into_split();
        *self.writer.lock().await = Some(writer);
        self.send(&format!("NICK {}", self.nick)).await?;
        self.send(&format!("USER {} 0 * :Pincer", self.nick))
            .await?;
        let mut lines = BufReader::new(reader).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|err| ChannelError(format!("irc: {err}")))?
        {
            let message = parse(&line);
            match message.command {
                "PING" => self.send(&format!("PONG :{}", message.trailing)).await?,
                // Welcome: registered; join the channels.
                "001" => {
                    for channel in &self.channels {
                        self.send(&format!("JOIN {channel}")).await?;
                    }
                }
                "PRIVMSG" => {
                    let Some(target) = message.params.first() else {
                        continue;
                    };
                    let from = message.nick;
                    let chat = if target.starts_with('#') {
                        format!("irc:{target}")
                    } else if self.owner.as_deref() == Some(from) {
                        MAIN_CHAT.to_owned()
                    } else {
                        format!("irc:{from}")
                    };
                    if let Err(err) = inbox.accept(&chat, from, message.trailing) {
                        tracing::debug!("irc: ignoring a message for {chat}: {err}");
                    }
                }
                _ => {}
            }
        }
        Err(ChannelError("irc: the server closed the connection".into()))
    }

    fn target_of(&self, chat_id: &str) -> Option<String> {
        if chat_id == MAIN_CHAT {
            return self.owner.clone();
        }
        chat_id.strip_prefix("irc:").map(str::to_owned)
    }
}

/// One IRC line: `:nick!user@host COMMAND param … :trailing`.
struct Message<'a> {
    nick: &'a str,
    command: &'a str,
    params: Vec<&'a str>,
    trailing: &'a str,
}

fn parse(line: &str) -> Message<'_> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (prefix, rest) = match line.strip_prefix(':') {
        Some(rest) => rest.split_once(' ').unwrap_or((rest, "")),
        None => ("", line),
    };
    let (head, trailing) = match rest.split_once(" :") {
        Some((head, trailing)) => (head, trailing),
        None => match rest.strip_prefix(':') {
            Some(trailing) => ("", trailing),
            None => (rest, ""),
        },
    };
    let mut words = head.split(' ').filter(|w| !w.is_empty());
    Message {
        nick: prefix.split('!').next().unwrap_or(""),
        command: words.next().unwrap_or(""),
        params: words.collect(),
        trailing,
    }
}

impl Channel for IrcChannel {
    fn name(&self) -> &'static str {
        "irc"
    }

    fn owns(&self, chat_id: &str) -> bool {
        chat_id.starts_with("irc:") || (self.owner.is_some() && chat_id == MAIN_CHAT)
    }

    fn run(&self, inbox: Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>> {
        Box::pin(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                if let Err(err) = self.session(&inbox).await {
                    tracing::warn!("{err}; reconnecting in {backoff:?}");
                }
                *self.writer.lock().await = None;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        _id: i64,
        chat_id: &'a str,
        _sender: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let target = self
                .target_of(chat_id)
                .ok_or_else(|| ChannelError(format!("irc: {chat_id} is not an IRC chat")))?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let mut rest = line;
                while !rest.is_empty() {
                    let mut cut = rest.len().min(MAX_LINE_BYTES);
                    while !rest.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    self.send(&format!("PRIVMSG {target} :{}", &rest[..cut]))
                        .await?;
                    rest = &rest[cut..];
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse() {
        let m = parse(":alice!a@host PRIVMSG #family :@pincer hello there\r\n");
        assert_eq!(
            (m.nick, m.command, m.params, m.trailing),
            ("alice", "PRIVMSG", vec!["#family"], "@pincer hello there")
        );
        let m = parse("PING :irc.test");
        assert_eq!((m.command, m.trailing), ("PING", "irc.test"));
        let m = parse(":irc.test 001 pincer :Welcome");
        assert_eq!((m.command, m.params), ("001", vec!["pincer"]));
    }
}
