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
}

/// A source of messages and a destination of replies.
pub trait Channel: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// Whether replies to `chat_id` go through this channel.
    fn owns(&self, chat_id: &str) -> bool;

    /// Receives messages until the daemon stops (the future is dropped then).
    fn run(&self, inbox: std::sync::Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>>;

    /// Delivers a reply. An error leaves it undelivered, to be tried again.
    fn deliver<'a>(
        &'a self,
        chat_id: &'a str,
        sender: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelError>>;
}
