//! Delivering the outbox: every channel that owns a chat gets its messages
//! (the owner's main chat can live in the terminal and in chat apps at
//! once). A message counts as delivered when all of them took it; one that
//! failed is tried again on the channels that did not take it yet, later
//! each time, so a chat app that refuses a message for good (the bot was
//! removed from the room) is not asked four times a second forever, and one
//! that is down does not make the others send it twice.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Daemon, DaemonEvent};

/// The first wait after a failed delivery; it doubles with each failure.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// What is known of messages not yet delivered everywhere: in memory, so a
/// restart tries every channel again (a channel with an idempotency key,
/// Matrix, posts nothing twice then either).
#[derive(Default)]
pub(super) struct Retries {
    messages: Mutex<HashMap<i64, Attempts>>,
}

#[derive(Debug, Default)]
struct Attempts {
    took: Vec<&'static str>,
    failures: u32,
    next: Option<Instant>,
}

impl Retries {
    fn with<T>(&self, id: i64, f: impl FnOnce(&mut Attempts) -> T) -> T {
        let mut messages = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        f(messages.entry(id).or_default())
    }

    fn due(&self, id: i64, now: Instant) -> bool {
        self.with(id, |a| a.next.is_none_or(|next| next <= now))
    }

    fn has_taken(&self, id: i64, channel: &str) -> bool {
        self.with(id, |a| a.took.contains(&channel))
    }

    fn took(&self, id: i64, channel: &'static str) {
        self.with(id, |a| a.took.push(channel));
    }

    /// Counts a failed pass; returns how long until the next.
    fn failed(&self, id: i64, now: Instant) -> Duration {
        self.with(id, |a| {
            let wait = FIRST_WAIT
                .saturating_mul(2u32.saturating_pow(a.failures))
                .min(LONGEST_WAIT);
            a.failures = a.failures.saturating_add(1);
            a.next = Some(now + wait);
            wait
        })
    }

    fn done(&self, id: i64) {
        self.messages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

impl Daemon {
    pub(super) async fn deliver_pending(&self) {
        let _one_at_a_time = self.delivering.lock().await;
        let pending = match self.store.undelivered() {
            Ok(pending) => pending,
            Err(err) => {
                tracing::error!("cannot read the outbox: {err}");
                return;
            }
        };
        for message in pending {
            let id = message.id;
            if !self.retries.due(id, Instant::now()) {
                continue;
            }
            let owners = self.channels.iter().filter(|c| c.owns(&message.chat_id));
            let mut any = false;
            let mut delivered = true;
            for channel in owners {
                any = true;
                if self.retries.has_taken(id, channel.name()) {
                    continue;
                }
                match channel
                    .deliver(id, &message.chat_id, &message.sender, &message.text)
                    .await
                {
                    Ok(()) => self.retries.took(id, channel.name()),
                    Err(err) => {
                        tracing::warn!(
                            chat = message.chat_id,
                            channel = channel.name(),
                            "delivery failed: {err}"
                        );
                        delivered = false;
                    }
                }
            }
            if !any {
                self.retries.done(id);
                continue;
            }
            if !delivered {
                let wait = self.retries.failed(id, Instant::now());
                tracing::info!(id, "message tried again in {wait:?}");
                continue;
            }
            if let Err(err) = self.store.mark_delivered(id) {
                tracing::error!("cannot mark message {id} delivered: {err}");
                continue;
            }
            self.retries.done(id);
            let _ = self.events.send(DaemonEvent::Delivered {
                chat: message.chat_id,
                id,
                sender: message.sender,
                text: message.text,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_message_waits_longer_each_time_and_keeps_who_took_it() {
        let retries = Retries::default();
        let now = Instant::now();
        assert!(retries.due(7, now));
        retries.took(7, "local");
        assert!(retries.has_taken(7, "local") && !retries.has_taken(7, "matrix"));
        let waits: Vec<Duration> = (0..12).map(|_| retries.failed(7, now)).collect();
        assert_eq!(waits[0], FIRST_WAIT);
        assert_eq!(waits[1], FIRST_WAIT * 2);
        assert!(waits.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(waits[11], LONGEST_WAIT);
        assert!(!retries.due(7, now));
        assert!(retries.due(7, now + LONGEST_WAIT));
        // Who took it is kept across failures, and forgotten once delivered.
        assert!(retries.has_taken(7, "local"));
        retries.done(7);
        assert!(!retries.has_taken(7, "local") && retries.due(7, now));
        assert!(retries.due(8, now), "another message is not held back");
    }
}
