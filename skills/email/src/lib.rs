//! The email channel (skill `email`): IMAP in, SMTP out.
//!
//! Mail from the owner's address (`EMAIL_OWNER`) is the main group — only
//! when the receiving server vouches for it (`EMAIL_AUTHSERV_ID`), since a
//! From line is forgeable. Mail from an address or a domain the owner
//! registered (`pincer groups add NAME --chat email:alice@example.org`, or
//! `email:@example.org`) is that group. Anybody else's mail is never
//! answered: left unseen in the mailbox, or kept as context in a chat the
//! owner names (`EMAIL_STRANGERS`).
//!
//! A message is handed to the daemon under its IMAP uid (`accept_from`),
//! and only once that returned is it marked \Seen and the position saved:
//! after a crash the channel reads again from the saved position, and a
//! message stored before is neither stored nor answered twice. Replies
//! carry In-Reply-To and References, so that they land in the thread.
//!
//! Small clients of our own (`imap`, `smtp`) over rustls on ring, the
//! host's one TLS stack; `mail-parser` reads what arrives.

mod imap;
mod message;
mod net;
mod route;
mod settings;
mod smtp;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pincer_assistant::channel::MAIN_CHAT;
use pincer_assistant::channel::{BoxFuture, Channel, ChannelError, Inbox};
use pincer_assistant::registry::Env;

use imap::Imap;
use message::{Inbound, Thread};
use net::Tls;
use route::Target;
use settings::Settings;

/// The longest an IDLE lasts before it is issued again (RFC 2177: under 29 minutes).
const IDLE_LIMIT: Duration = Duration::from_secs(25 * 60);

/// Links the channel into a `pincer` build: the line `cargo xtask apply-skill
/// email` writes in `pincer/src/skills.rs`. The channel runs only where
/// `EMAIL_IMAP` is set: linked but not configured, it stays off.
pub fn register(registry: &mut pincer_assistant::Registry) {
    registry.add_channel(EmailChannel::from_env);
}

/// The channel.
pub struct EmailChannel {
    settings: Settings,
    tls: Tls,
    /// The daemon's inbox, once `run` has it: `deliver` reads and saves the
    /// threads there.
    inbox: OnceLock<Arc<dyn Inbox>>,
    /// Each chat's last inbound message, as saved in the store.
    threads: Mutex<HashMap<String, Thread>>,
}

/// What became of one message.
enum Taken {
    /// Stored (now or before): mark it seen.
    Stored,
    /// Nobody's: leave it unseen for the owner's own mail client.
    Left,
}

impl EmailChannel {
    /// The channel, if `EMAIL_IMAP` is set (see `settings` for the rest). A
    /// setting that is wrong is logged and leaves the channel off.
    pub fn from_env(env: Env<'_>) -> Option<Arc<dyn Channel>> {
        let settings = match Settings::from_env(env)? {
            Ok(settings) => settings,
            Err(err) => {
                tracing::error!("email: {err}; the email channel is off");
                return None;
            }
        };
        let tls = match Tls::new(settings.ca_file.as_deref()) {
            Ok(tls) => tls,
            Err(err) => {
                tracing::error!("email: {err}; the email channel is off");
                return None;
            }
        };
        Some(Arc::new(Self {
            settings,
            tls,
            inbox: OnceLock::new(),
            threads: Mutex::new(HashMap::new()),
        }))
    }

    fn imap_error(&self, what: String) -> ChannelError {
        ChannelError(format!("email: imap {}: {what}", self.settings.imap))
    }

    /// Where reading stopped: `email:<user>@<imap host>`.
    fn position_key(&self) -> String {
        format!("email:{}@{}", self.settings.user, self.settings.imap.host)
    }

    /// One connection's life: log in, catch up, then wait for news.
    async fn session(
        &self,
        inbox: &Arc<dyn Inbox>,
        backoff: &mut Duration,
    ) -> Result<(), ChannelError> {
        let fail = |err| self.imap_error(err);
        let mut imap = Imap::connect(&self.settings.imap, &self.tls)
            .await
            .map_err(fail)?;
        imap.login(&self.settings.user, &self.settings.password)
            .await
            .map_err(fail)?;
        let mailbox = imap.select("INBOX").await.map_err(fail)?;
        let mut last = self.start_from(inbox, &mut imap, mailbox).await?;
        *backoff = Duration::from_secs(1);
        let idle = imap.has("IDLE");
        loop {
            imap.news = false;
            last = self
                .catch_up(inbox, &mut imap, mailbox.validity, last)
                .await?;
            if imap.news {
                continue;
            }
            if idle {
                imap.idle(IDLE_LIMIT).await.map_err(fail)?;
            } else {
                tokio::time::sleep(self.settings.poll).await;
                imap.noop().await.map_err(fail)?;
            }
        }
    }

    /// The last uid already dealt with. A first start, or a mailbox whose
    /// UIDVALIDITY changed (its uids renumbered), starts after the newest
    /// message: what was there before is not answered.
    async fn start_from(
        &self,
        inbox: &Arc<dyn Inbox>,
        imap: &mut Imap,
        mailbox: imap::Mailbox,
    ) -> Result<u32, ChannelError> {
        let key = self.position_key();
        let saved = inbox.state(&key)?;
        let position = saved.as_deref().and_then(|s| {
            let (validity, uid) = s.split_once(':')?;
            Some((validity.parse::<u32>().ok()?, uid.parse::<u32>().ok()?))
        });
        if let Some((validity, uid)) = position
            && validity == mailbox.validity
        {
            return Ok(uid);
        }
        let newest = match mailbox.uidnext {
            Some(next) => next.saturating_sub(1),
            None => imap.highest_uid().await.map_err(|e| self.imap_error(e))?,
        };
        match position {
            Some((validity, _)) => tracing::warn!(
                "email: {key}: the mailbox's UIDVALIDITY changed ({validity} → {}); \
                 reading from its newest message on, earlier ones are not answered",
                mailbox.validity
            ),
            None => {
                tracing::info!("email: {key}: first start; mail that arrives from now on is read")
            }
        }
        inbox.save_state(&key, &format!("{}:{newest}", mailbox.validity))?;
        Ok(newest)
    }

    /// Takes every message after `last`, in uid order; returns the new last.
    async fn catch_up(
        &self,
        inbox: &Arc<dyn Inbox>,
        imap: &mut Imap,
        validity: u32,
        mut last: u32,
    ) -> Result<u32, ChannelError> {
        let fail = |err| self.imap_error(err);
        let first = last.saturating_add(1);
        for uid in imap.uids_from(first).await.map_err(fail)? {
            let taken = match imap.fetch(uid).await.map_err(fail)? {
                Some(raw) => self.take(inbox, validity, uid, &raw)?,
                None => Taken::Left,
            };
            if let Taken::Stored = taken {
                imap.mark_seen(uid).await.map_err(fail)?;
            }
            last = uid;
            inbox.save_state(&self.position_key(), &format!("{validity}:{uid}"))?;
        }
        Ok(last)
    }

    /// Hands one message to the inbox under its chat, if it has one.
    fn take(
        &self,
        inbox: &Arc<dyn Inbox>,
        validity: u32,
        uid: u32,
        raw: &[u8],
    ) -> Result<Taken, ChannelError> {
        let Some(mail) = message::parse(raw) else {
            tracing::warn!("email: message {uid} is not mail; left alone");
            return Ok(Taken::Left);
        };
        if mail.automatic {
            tracing::info!(
                "email: message {uid} was sent by a machine (a vacation notice, a list): left unseen"
            );
            return Ok(Taken::Left);
        }
        let source = format!("imap:{validity}:{uid}");
        let sender = mail.from.clone().unwrap_or_default();
        for chat in self.chats_for(&mail) {
            match inbox.accept_from(&source, &chat, &sender, &mail.text) {
                Ok(_) => {
                    self.remember(inbox, &chat, &mail.thread)?;
                    return Ok(Taken::Stored);
                }
                Err(err) if is_unregistered(&err) => continue,
                Err(err) => return Err(err),
            }
        }
        let Some(strangers) = &self.settings.strangers else {
            tracing::info!("email: message {uid} from {sender:?}: no group has it; left unseen");
            return Ok(Taken::Left);
        };
        match inbox.accept_from(&source, strangers, &sender, &mail.text) {
            Ok(_) => Ok(Taken::Stored),
            Err(err) if is_unregistered(&err) => {
                tracing::warn!(
                    "email: EMAIL_STRANGERS {strangers} is not a registered chat; message {uid} left unseen"
                );
                Ok(Taken::Left)
            }
            Err(err) => Err(err),
        }
    }

    /// The chats a message may belong to, in order: main for the owner's
    /// authenticated mail, else the sender's address's and domain's.
    fn chats_for(&self, mail: &Inbound) -> Vec<String> {
        let Some(sender) = &mail.from else {
            return Vec::new();
        };
        if self.settings.owner.as_deref() == Some(sender.as_str()) {
            if self.owner_authenticated(mail) {
                return vec![MAIN_CHAT.to_owned()];
            }
            tracing::warn!(
                "email: mail claiming to be from the owner is not authenticated; treated as a stranger's"
            );
            return Vec::new();
        }
        route::chats_for(sender)
    }

    fn owner_authenticated(&self, mail: &Inbound) -> bool {
        if self.settings.owner_unauthenticated {
            return true;
        }
        let (Some(id), Some(results), Some(owner)) = (
            &self.settings.authserv_id,
            &mail.auth_results,
            &self.settings.owner,
        ) else {
            return false;
        };
        route::domain_of(owner).is_some_and(|domain| message::authenticates(results, id, &domain))
    }

    /// Keeps a chat's last message, for the reply's recipient and threading.
    fn remember(
        &self,
        inbox: &Arc<dyn Inbox>,
        chat: &str,
        thread: &Thread,
    ) -> Result<(), ChannelError> {
        inbox.save_state(&format!("email:thread:{chat}"), &thread.to_state())?;
        if let Ok(mut threads) = self.threads.lock() {
            threads.insert(chat.to_owned(), thread.clone());
        }
        Ok(())
    }

    /// A chat's last message: remembered, or read from the store (after a restart).
    async fn thread_of(&self, chat: &str) -> Result<Option<Thread>, ChannelError> {
        if let Some(thread) = self.threads.lock().ok().and_then(|t| t.get(chat).cloned()) {
            return Ok(Some(thread));
        }
        let inbox = self.inbox().await?;
        Ok(inbox
            .state(&format!("email:thread:{chat}"))?
            .map(|s| Thread::from_state(&s)))
    }

    /// The inbox, waiting a little for `run` to hand it over (the daemon
    /// may deliver what it had to before the channel started).
    async fn inbox(&self) -> Result<Arc<dyn Inbox>, ChannelError> {
        for _ in 0..300 {
            if let Some(inbox) = self.inbox.get() {
                return Ok(Arc::clone(inbox));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ChannelError("email: the channel has not started".into()))
    }

    async fn send(&self, id: i64, chat_id: &str, text: &str) -> Result<(), ChannelError> {
        let target = route::target_of(chat_id)
            .ok_or_else(|| ChannelError(format!("email: {chat_id} is not an email chat")))?;
        let thread = self.thread_of(chat_id).await?;
        let to = match target {
            Target::Owner => self.settings.owner.clone().ok_or_else(|| {
                ChannelError("email: no EMAIL_OWNER to send the main group's reply to".into())
            })?,
            Target::Address(address) => address,
            Target::LastSender => match &thread {
                Some(thread) if smtp::is_plain_address(&thread.address) => thread.address.clone(),
                _ => {
                    return Err(ChannelError(format!(
                        "email: nobody of {chat_id} has written yet"
                    )));
                }
            },
            Target::Nobody => {
                // The strangers' context chat: never answered (and not an
                // error, which the daemon would try again and again).
                tracing::warn!("email: {chat_id} has nobody to answer; the reply is not sent");
                return Ok(());
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let message_id = format!(
            "pincer-{id}-{nanos:x}@{}",
            route::domain_of(&self.settings.address).unwrap_or_else(|| "pincer.invalid".into())
        );
        let data = message::compose(
            &message::Reply {
                from: &self.settings.address,
                to: &to,
                thread: thread.as_ref(),
                message_id: &message_id,
                text,
            },
            SystemTime::now(),
        );
        let helo = route::domain_of(&self.settings.address).unwrap_or_else(|| "localhost".into());
        smtp::send(
            &self.settings.smtp,
            &self.tls,
            (&self.settings.user, &self.settings.password),
            &helo,
            &smtp::Envelope {
                from: &self.settings.address,
                to: &to,
                data: &data,
            },
        )
        .await
        .map_err(|err| ChannelError(format!("email: smtp {}: {err}", self.settings.smtp)))
    }
}

/// Whether the inbox refused a message because no group has its chat.
fn is_unregistered(err: &ChannelError) -> bool {
    err.0.contains("is not registered")
}

impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    fn owns(&self, chat_id: &str) -> bool {
        chat_id.starts_with("email:") || (self.settings.owner.is_some() && chat_id == MAIN_CHAT)
    }

    fn run(&self, inbox: Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>> {
        Box::pin(async move {
            let _ = self.inbox.set(Arc::clone(&inbox));
            let mut backoff = Duration::from_secs(1);
            loop {
                if let Err(err) = self.session(&inbox, &mut backoff).await {
                    tracing::warn!("{err}; reconnecting in {backoff:?}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(300));
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
        Box::pin(self.send(id, chat_id, text))
    }
}
