//! The Matrix channel (skill `matrix`): the client-server API, as a bot
//! account on the owner's homeserver, by `/sync` long polling.
//!
//! A room registered with `pincer groups add NAME --chat 'matrix:!id:server'`
//! is that group; the owner's direct room with the bot is the main group
//! (`MATRIX_OWNER_ROOM`, or the room of the owner's last direct-chat invite
//! where the owner and the bot are alone). The bot joins rooms only on the
//! owner's invite, and stays only where the owner is; everything from rooms
//! nobody registered is dropped, and its own messages never wake it.
//!
//! Nothing is lost or answered twice across a crash: each message is stored
//! under its event id (once, whatever the server hands over again), and the
//! sync token is saved only after the whole batch is stored. A reply is sent
//! with its outbox id (after this database's own prefix) as the transaction
//! id, which the server keeps for a day, so a reply retried after a crash
//! arrives once. Encrypted rooms are not read
//! (the bot says so in the log): this first version serves unencrypted rooms.

mod api;
mod rooms;
mod sync;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use pincer_assistant::channel::MAIN_CHAT;
use pincer_assistant::channel::{BoxFuture, Channel, ChannelError, Inbox};
use pincer_assistant::registry::Env;

use api::{Api, CallError, SYNC_SECONDS, segment};
use rooms::Joined;
use sync::{Batch, Reader};

/// Bytes of one message's body: an event is at most 64 KiB of JSON, and an
/// escaped control character takes six.
const MAX_BODY_BYTES: usize = 8 * 1024;
/// Events of a room one `/sync` carries: more, after a long stop, and the
/// older ones are not read (a gap in the timeline).
const TIMELINE_LIMIT: u32 = 100;

/// Links the channel into a `pincer` build: the line `cargo xtask apply-skill
/// matrix` writes in `pincer/src/skills.rs`. The channel runs only where
/// `MATRIX_HOMESERVER` and `MATRIX_ACCESS_TOKEN` are set.
pub fn register(registry: &mut pincer_assistant::Registry) {
    registry.add_channel(MatrixChannel::from_env);
}

pub struct MatrixChannel {
    api: Api,
    owner: Option<String>,
    /// `MATRIX_OWNER_ROOM` was set: no invite replaces it.
    fixed_room: bool,
    /// The owner's direct room: `None` until `run` read the one it saved
    /// (replies to main wait until then), `Some(None)` while there is none.
    owner_room: Mutex<Option<Option<String>>>,
    /// The bot's own user id, from the server (`whoami`).
    me: OnceLock<String>,
    /// What every transaction id starts with: this database's own, so that
    /// the outbox ids of another installation with the same bot (which
    /// start at 1 as well) are not taken for ours by the server.
    txn_prefix: OnceLock<String>,
}

impl MatrixChannel {
    /// The channel, if `MATRIX_HOMESERVER` (a URL) and `MATRIX_ACCESS_TOKEN`
    /// are set; `MATRIX_OWNER` is the owner's user id (whose invites the bot
    /// accepts), `MATRIX_OWNER_ROOM` fixes the main room.
    pub fn from_env(env: Env<'_>) -> Option<Arc<dyn Channel>> {
        let homeserver = env("MATRIX_HOMESERVER").filter(|s| !s.trim().is_empty())?;
        let token = env("MATRIX_ACCESS_TOKEN").filter(|s| !s.trim().is_empty())?;
        let api = Api::new(homeserver.trim(), &token)
            .map_err(|err| tracing::error!("{err}"))
            .ok()?;
        let setting = |name| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let fixed = setting("MATRIX_OWNER_ROOM");
        Some(Arc::new(Self {
            api,
            owner: setting("MATRIX_OWNER"),
            fixed_room: fixed.is_some(),
            owner_room: Mutex::new(fixed.map(Some)),
            me: OnceLock::new(),
            txn_prefix: OnceLock::new(),
        }))
    }

    fn lock_room(&self) -> std::sync::MutexGuard<'_, Option<Option<String>>> {
        self.owner_room
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn me(&self) -> &str {
        self.me.get().map_or("", String::as_str)
    }

    fn key(&self, what: &str) -> String {
        format!("matrix:{}:{what}", self.me())
    }

    /// Learns who the bot is, its owner's room, its transaction prefix and
    /// where it stopped reading.
    async fn start(&self, inbox: &Arc<dyn Inbox>) -> Result<Option<String>, ChannelError> {
        if self.me.get().is_none() {
            let whoami = self.api.call(Method::GET, "/account/whoami", None).await?;
            let me = whoami["user_id"]
                .as_str()
                .ok_or_else(|| ChannelError("matrix: whoami named no user".into()))?;
            let _ = self.me.set(me.to_owned());
        }
        if self.lock_room().is_none() {
            let saved = inbox.state(&self.key("owner_room"))?;
            *self.lock_room() = Some(saved);
        }
        if self.txn_prefix.get().is_none() {
            let key = self.key("txn_prefix");
            let prefix = match inbox.state(&key)? {
                Some(prefix) => prefix,
                None => {
                    let prefix = fresh_prefix();
                    inbox.save_state(&key, &prefix)?;
                    prefix
                }
            };
            let _ = self.txn_prefix.set(prefix);
        }
        inbox.state(&self.key("next_batch"))
    }

    async fn sync(&self, since: Option<&str>) -> Result<Value, CallError> {
        let filter = json!({
            "room": {
                "timeline": {"limit": TIMELINE_LIMIT, "types": ["m.room.message", "m.room.encrypted", "m.room.member"]},
                "state": {"types": ["m.room.member"], "lazy_load_members": true},
                "ephemeral": {"not_types": ["*"]},
                "account_data": {"not_types": ["*"]}
            },
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]}
        });
        let mut path = format!("/sync?filter={}", segment(&filter.to_string()));
        match since {
            Some(since) => path.push_str(&format!(
                "&since={}&timeout={}",
                segment(since),
                SYNC_SECONDS * 1000
            )),
            None => path.push_str("&timeout=0"),
        }
        self.api.call(Method::GET, &path, None).await
    }

    /// Acts on one batch: joins the owner's invites and declines the rest,
    /// hands in the messages, and only then saves the batch's token. A join
    /// or a message that failed for now stops the batch unsaved: the next
    /// sync hands it over again, and what was stored is not stored twice.
    async fn take(
        &self,
        inbox: &Arc<dyn Inbox>,
        batch: Batch,
        first: bool,
    ) -> Result<(), ChannelError> {
        for invite in &batch.invites {
            let Some(owner) = self.owner.as_deref() else {
                continue;
            };
            let joined = rooms::join(&self.api, invite, self.me(), owner).await?;
            tracing::info!(
                room = invite.room,
                "matrix: on the owner's invite: {joined:?}"
            );
            if joined == Joined::Direct && !self.fixed_room {
                inbox.save_state(&self.key("owner_room"), &invite.room)?;
                *self.lock_room() = Some(Some(invite.room.clone()));
            }
        }
        for room in &batch.declined {
            rooms::leave(&self.api, room).await;
        }
        for room in &batch.encrypted {
            tracing::warn!(
                room,
                "matrix: an encrypted message; this skill reads unencrypted rooms only"
            );
        }
        for room in &batch.gaps {
            tracing::warn!(
                room,
                "matrix: more news than one sync carries; the oldest of it is not read"
            );
        }
        // The first sync is the past: the bot answers what comes after it started.
        if !first {
            for message in &batch.messages {
                self.hand_in(inbox, message).await?;
            }
        }
        inbox.save_state(&self.key("next_batch"), &batch.next_batch)
    }

    async fn hand_in(
        &self,
        inbox: &Arc<dyn Inbox>,
        message: &sync::Incoming,
    ) -> Result<(), ChannelError> {
        let source = format!("matrix:{}", message.event);
        match inbox.accept_from(&source, &message.chat, &message.sender, &message.body) {
            Ok(Some(_)) => {
                let path = format!(
                    "/rooms/{}/typing/{}",
                    segment(&message.room),
                    segment(self.me())
                );
                let typing = json!({"typing": true, "timeout": 30_000});
                if let Err(err) = self.api.call(Method::PUT, &path, Some(&typing)).await {
                    tracing::debug!("{err}");
                }
                Ok(())
            }
            Ok(None) => Ok(()),
            // A room nobody registered: dropped, on purpose.
            Err(err) if err.0.contains("not registered") => {
                tracing::debug!("matrix: ignoring a message in {}: {err}", message.room);
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    async fn session(
        &self,
        inbox: &Arc<dyn Inbox>,
        backoff: &mut Duration,
    ) -> Result<(), ChannelError> {
        let mut since = self.start(inbox).await?;
        loop {
            let answer = match self.sync(since.as_deref()).await {
                Ok(answer) => answer,
                Err(err) if since.is_some() && err.errcode() == Some("M_UNKNOWN_POS") => {
                    tracing::warn!(
                        "{err}: the server forgot where the bot was; reading on from now"
                    );
                    since = None;
                    continue;
                }
                Err(err) if err.errcode() == Some("M_UNKNOWN_TOKEN") => {
                    tracing::error!("{err}: MATRIX_ACCESS_TOKEN is not (or no longer) valid");
                    return Err(err.into());
                }
                Err(err) => return Err(err.into()),
            };
            *backoff = Duration::from_secs(1);
            let owner_room = self.lock_room().clone().flatten();
            let reader = Reader {
                me: self.me(),
                owner: self.owner.as_deref(),
                owner_room: owner_room.as_deref(),
            };
            let batch = reader.read(&answer);
            if batch.next_batch.is_empty() {
                return Err(ChannelError("matrix: a sync without next_batch".into()));
            }
            let next = batch.next_batch.clone();
            self.take(inbox, batch, since.is_none()).await?;
            since = Some(next);
        }
    }

    /// The room of `chat_id`: `None` for main while the owner has no direct
    /// room with the bot; an error while the saved one is not read yet.
    fn room_of(&self, chat_id: &str) -> Result<Option<String>, ChannelError> {
        if chat_id == MAIN_CHAT {
            return self
                .lock_room()
                .clone()
                .ok_or_else(|| ChannelError("matrix: not connected yet".into()));
        }
        chat_id
            .strip_prefix("matrix:")
            .map(|room| Some(room.to_owned()))
            .ok_or_else(|| ChannelError(format!("matrix: {chat_id} is not a Matrix room")))
    }

    /// Sends `text` in parts, each under the transaction id `txn-N`: sent
    /// again with the same ids, the server answers with the events it made
    /// the first time and posts nothing new.
    async fn send(&self, txn: &str, chat_id: &str, text: &str) -> Result<(), ChannelError> {
        let Some(room) = self.room_of(chat_id)? else {
            tracing::warn!(
                "matrix: no direct room with the owner yet: main's reply is not sent on Matrix"
            );
            return Ok(());
        };
        let prefix = self
            .txn_prefix
            .get()
            .ok_or_else(|| ChannelError("matrix: not connected yet".into()))?;
        for (n, part) in parts(text).into_iter().enumerate() {
            let path = format!(
                "/rooms/{}/send/m.room.message/{}",
                segment(&room),
                segment(&format!("{prefix}-{txn}-{n}"))
            );
            let body = json!({"msgtype": "m.text", "body": part});
            self.api.call(Method::PUT, &path, Some(&body)).await?;
        }
        let path = format!("/rooms/{}/typing/{}", segment(&room), segment(self.me()));
        let _ = self
            .api
            .call(Method::PUT, &path, Some(&json!({"typing": false})))
            .await;
        Ok(())
    }
}

impl Channel for MatrixChannel {
    fn name(&self) -> &'static str {
        "matrix"
    }

    fn owns(&self, chat_id: &str) -> bool {
        chat_id.starts_with("matrix:")
            || (chat_id == MAIN_CHAT && (self.owner.is_some() || self.fixed_room))
    }

    fn run(&self, inbox: Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>> {
        Box::pin(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                if let Err(err) = self.session(&inbox, &mut backoff).await {
                    tracing::warn!("{err}; syncing again in {backoff:?}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        id: i64,
        chat_id: &'a str,
        _sender: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move { self.send(&id.to_string(), chat_id, text).await })
    }
}

/// A prefix no other database has: the time and the process, in hex.
fn fresh_prefix() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("pincer{now:x}{:x}", std::process::id())
}

/// `text` cut at character boundaries into parts of at most
/// [`MAX_BODY_BYTES`], preferring the last line break before the cut.
fn parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > MAX_BODY_BYTES {
        let mut cut = MAX_BODY_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(newline) = rest[..cut].rfind('\n').filter(|&at| at > 0) {
            cut = newline + 1;
        }
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_answers_are_cut_at_lines_and_characters() {
        assert_eq!(parts("short"), vec!["short"]);
        let lines = format!("{}\n{}", "a".repeat(6000), "b".repeat(6000));
        assert_eq!(parts(&lines), vec![&lines[..6001], &lines[6001..]]);
        let wide = "é".repeat(MAX_BODY_BYTES);
        let cut = parts(&wide);
        assert!(
            cut.iter()
                .all(|p| p.len() <= MAX_BODY_BYTES && !p.is_empty())
        );
        assert_eq!(cut.concat(), wide);
    }
}
