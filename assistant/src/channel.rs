//! Channels: where messages come from and replies go (the terminal, chat
//! apps). A channel owns a family of chat ids (`local:…`, `telegram:…`),
//! hands what it receives to the [`Inbox`], and delivers replies.
//!
//! Adding one is a skill crate implementing [`Channel`] and registering it
//! in the [`Registry`](crate::Registry). Channels know nothing about
//! containers or groups' rights: the daemon decides what happens to a message.

use std::future::Future;
use std::pin::Pin;

/// The main group's built-in chat id (`local:main`): a channel that serves
/// the owner's private chat takes the main group's replies addressed to it
/// and hands the owner's messages in under it.
pub use pincer_store::MAIN_CHAT;

/// A boxed future, so that the trait stays object-safe without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A channel's failure, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ChannelError(pub String);

/// Where a channel hands what it receives.
pub trait Inbox: Send + Sync {
    /// Accepts a message: it is stored before this returns (the caller may
    /// acknowledge it then) and its group is woken if it should be.
    fn accept(&self, chat_id: &str, sender: &str, text: &str) -> Result<i64, ChannelError>;

    /// Accepts a message its server names by `source` (a Matrix event id,
    /// an IMAP mailbox's validity and uid), at most once: `Ok(None)` when
    /// that source was accepted before. A channel that reads again from
    /// where its server last confirmed, after a crash between storing and
    /// confirming, then neither stores nor answers anything twice.
    fn accept_from(
        &self,
        source: &str,
        chat_id: &str,
        sender: &str,
        text: &str,
    ) -> Result<Option<i64>, ChannelError>;

    /// A value the channel saved under `key` (where it stopped reading: a
    /// sync token, a last uid), kept in the store across restarts. Keys
    /// start with the channel's name.
    fn state(&self, key: &str) -> Result<Option<String>, ChannelError>;

    fn save_state(&self, key: &str, value: &str) -> Result<(), ChannelError>;
}

/// A source of messages and a destination of replies.
pub trait Channel: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Whether replies to `chat_id` go through this channel.
    fn owns(&self, chat_id: &str) -> bool;

    /// Receives messages until the daemon stops (the future is dropped then).
    fn run(&self, inbox: std::sync::Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>>;

    /// Delivers the outbox's message `id`. An error leaves it undelivered,
    /// to be tried again. `id` is the same on every try, across restarts, so
    /// a channel whose server takes an idempotency key (Matrix's transaction
    /// id) passes it, and a reply retried after a crash between sending and
    /// marking it sent arrives once.
    fn deliver<'a>(
        &'a self,
        id: i64,
        chat_id: &'a str,
        sender: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelError>>;
}
