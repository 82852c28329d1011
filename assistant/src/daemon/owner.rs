//! Owner commands in the main chat: `/changes …` is answered by the host
//! (the same decisions as `pincer changes`), stored with its answer, and
//! never reaches an agent. Only the main group's chat is the owner's: the
//! same words in another group's chat are a message for its agent, and
//! decide nothing.

use pincer_core::group::MAIN_GROUP;
use pincer_store::Accepted;

use super::{Daemon, DaemonEvent};
use crate::changes::{self, COMMAND, Said};
use crate::channel::ChannelError;

impl Daemon {
    /// The answer to an owner command in the main chat, stored; `None`
    /// when `text` is not one, or `chat_id` is not the main group's chat.
    pub(super) fn owner_command(
        &self,
        source: Option<&str>,
        chat_id: &str,
        sender: &str,
        text: &str,
    ) -> Option<Result<Accepted, ChannelError>> {
        if !text.trim_start().starts_with(COMMAND) {
            return None;
        }
        match self.store.group(MAIN_GROUP) {
            Ok(Some(main)) if main.chat_id == chat_id => {}
            Ok(_) => return None,
            Err(err) => return Some(Err(ChannelError(err.to_string()))),
        }
        let said = changes::owner_command(&self.store, text)?;
        let (reply, failed) = match said {
            Ok(Said::Done(text)) => (text, false),
            Ok(Said::Refused(text) | Said::Usage(text)) => (text, true),
            Err(err) => (format!("cannot do that: {err}"), true),
        };
        tracing::info!(command = text, failed, "owner command in the main chat");
        let stored = self
            .store
            .answer_owner_command(chat_id, sender, text, &reply, source)
            .map_err(|err| ChannelError(err.to_string()));
        Some(stored.map(|(id, reply_id)| {
            let _ = self.events.send(DaemonEvent::Reply {
                group: MAIN_GROUP.to_owned(),
                chat: chat_id.to_owned(),
                reply_id,
                answers: vec![id],
                text: reply,
                failed,
            });
            // Answered already: for a watcher, as good as woken.
            Accepted {
                id,
                group: MAIN_GROUP.to_owned(),
                wakes: true,
            }
        }))
    }
}
