//! What the daemon is doing now, for `pincer status`: since when it runs,
//! and which groups' agents are working on which messages. What waits and
//! what is planned is the store's to say; what runs, the engine's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::Daemon;

/// The daemon as `{"op":"status"}` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: &'static str,
    /// When it started (a stored timestamp, UTC).
    pub started: String,
    pub uptime_seconds: u64,
    pub max_concurrent: usize,
    /// The groups whose agent works now, longest first.
    pub working: Vec<Working>,
}

/// A group whose agent is working on a batch.
#[derive(Debug, Clone, Serialize)]
pub struct Working {
    pub group: String,
    /// When its agent started on the batch (retries included).
    pub since: String,
    pub seconds: u64,
    /// The ids of the messages in the batch.
    pub messages: Vec<i64>,
}

pub(super) struct Started {
    at: String,
    instant: Instant,
}

impl Started {
    pub(super) fn now() -> Self {
        Self {
            at: pincer_store::time::now(),
            instant: Instant::now(),
        }
    }
}

#[derive(Default)]
pub(super) struct WorkingNow(Mutex<HashMap<String, (Started, Vec<i64>)>>);

/// Marks a group working while it lives: the mark goes however the batch ends.
pub(super) struct WorkingGuard<'a> {
    working: &'a WorkingNow,
    group: String,
}

impl WorkingNow {
    pub(super) fn start(&self, group: &str, messages: Vec<i64>) -> WorkingGuard<'_> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.to_owned(), (Started::now(), messages));
        WorkingGuard {
            working: self,
            group: group.to_owned(),
        }
    }
}

impl Drop for WorkingGuard<'_> {
    fn drop(&mut self) {
        self.working
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.group);
    }
}

impl Daemon {
    /// What it is doing now.
    pub fn status(&self) -> DaemonStatus {
        let mut working: Vec<Working> = self
            .working
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(group, (started, messages))| Working {
                group: group.clone(),
                since: started.at.clone(),
                seconds: started.instant.elapsed().as_secs(),
                messages: messages.clone(),
            })
            .collect();
        working.sort_by(|a, b| a.since.cmp(&b.since).then(a.group.cmp(&b.group)));
        DaemonStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION"),
            started: self.started.at.clone(),
            uptime_seconds: self.started.instant.elapsed().as_secs(),
            max_concurrent: self.settings.max_concurrent,
            working,
        }
    }
}
