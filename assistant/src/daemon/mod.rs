//! The assistant: the long-running host (`pincer serve`).
//!
//! channels → store → per-group queue → container → reply → channel.
//!
//! * A message is stored before it is acknowledged ([`Inbox::accept`]).
//! * Each group has one worker: its messages are handled in order, one
//!   invocation at a time; what arrives while its agent runs is batched into
//!   the next invocation. A semaphore caps containers across groups.
//! * A batch is answered in one transaction (the reply stored, the batch
//!   marked answered by it), so after a crash a batch is either answered or
//!   claimed again: every accepted message is answered exactly once.
//! * Infrastructure failures (the engine) are retried with backoff; the
//!   agent's own failure is not, it is reported to the chat.
//! * Replies, and messages the agents send, are delivered by the outbox loop
//!   through the channel that owns the chat.
//! * The scheduler turns due tasks into messages of their group.
//!
//! The daemon knows nothing about how a container runs (that is
//! [`crate::invoke`]) nor about any chat service (those are channels).

mod activity;
mod batch;
mod control;
mod outbox;
mod owner;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, Semaphore, broadcast, oneshot, watch};
use tokio::task::JoinSet;

pub use control::{ControlClient, Presence, control_socket, presence};
pub use status::{DaemonStatus, Working};

use crate::channel::{Channel, ChannelError, Inbox};
use crate::config::Settings;
use crate::invoke::{Host, InvokeError};
use pincer_core::group::GroupName;
use pincer_core::sandbox::SandboxError;
use pincer_store::scheduler::{Clock, SystemClock};
use pincer_store::{Inbound, Store};

/// What watchers of the control socket are told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DaemonEvent {
    /// A group's agent started on a batch.
    Working {
        /// The group.
        group: String,
        /// The messages in the batch.
        messages: Vec<i64>,
    },
    /// A batch was answered (or failed, with an explanation as the text).
    Reply {
        /// The group.
        group: String,
        /// The chat the reply goes to.
        chat: String,
        /// The stored reply's id.
        reply_id: i64,
        /// The messages it answers.
        answers: Vec<i64>,
        /// The reply.
        text: String,
        /// Whether the agent failed.
        failed: bool,
    },
    /// A group's agent started a tool: `detail` is the call in a few words.
    ToolStarted {
        group: String,
        name: String,
        detail: String,
    },
    /// The tool finished; `error` says why it failed, if it did.
    ToolFinished {
        group: String,
        name: String,
        detail: String,
        error: Option<String>,
    },
    /// A line the model wrote along the way, before its answer.
    Note { group: String, text: String },
    /// A stored outgoing message (a reply, or one an agent sent) was handed
    /// to the channels of its chat.
    Delivered {
        /// The chat.
        chat: String,
        /// The message's id (a reply's `reply_id`).
        id: i64,
        /// Who sent it.
        sender: String,
        /// Its text.
        text: String,
    },
}

/// The running assistant.
pub struct Daemon {
    me: Weak<Daemon>,
    host: Arc<Host>,
    store: Arc<Store>,
    settings: Settings,
    channels: Vec<Arc<dyn Channel>>,
    permits: Arc<Semaphore>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    cancels: Mutex<HashMap<String, oneshot::Sender<()>>>,
    working: status::WorkingNow,
    started: status::Started,
    events: broadcast::Sender<DaemonEvent>,
    /// The agents' tool activity: its own channel, so it cannot crowd out replies.
    activity: broadcast::Sender<DaemonEvent>,
    stopping: watch::Sender<bool>,
    workers: Mutex<JoinSet<()>>,
    clock: Arc<dyn Clock>,
    /// One delivery pass at a time: two passes reading the same undelivered
    /// row would send it twice.
    delivering: tokio::sync::Mutex<()>,
    retries: outbox::Retries,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

impl Daemon {
    /// A daemon over a started host, with the built-in local channel (the
    /// terminal, `pincer send`) and `channels` (the linked skills').
    pub fn new(host: Host, settings: Settings, channels: Vec<Arc<dyn Channel>>) -> Arc<Self> {
        Self::with_clock(host, settings, channels, Arc::new(SystemClock))
    }

    /// A daemon whose scheduler reads `clock` (tests drive time with it).
    pub fn with_clock(
        host: Host,
        settings: Settings,
        channels: Vec<Arc<dyn Channel>>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let store = Arc::clone(host.store());
        let channels: Vec<Arc<dyn Channel>> = std::iter::once(Arc::new(control::LocalChannel) as _)
            .chain(channels)
            .collect();
        let (events, _) = broadcast::channel(1024);
        let (activity, _) = broadcast::channel(1024);
        let (stopping, _) = watch::channel(false);
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            host: Arc::new(host),
            store,
            permits: Arc::new(Semaphore::new(settings.max_concurrent)),
            settings,
            channels,
            wakers: Mutex::new(HashMap::new()),
            cancels: Mutex::new(HashMap::new()),
            working: status::WorkingNow::default(),
            started: status::Started::now(),
            events,
            activity,
            stopping,
            workers: Mutex::new(JoinSet::new()),
            clock,
            delivering: tokio::sync::Mutex::new(()),
            retries: outbox::Retries::default(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Subscribes to what the daemon does: batches started, replies, deliveries.
    pub fn subscribe(&self) -> broadcast::Receiver<DaemonEvent> {
        self.events.subscribe()
    }

    /// Subscribes to what the agents do: their tools and notes.
    pub fn subscribe_activity(&self) -> broadcast::Receiver<DaemonEvent> {
        self.activity.subscribe()
    }

    /// Runs until `stop` resolves, then shuts down gracefully: no new work,
    /// running invocations get `shutdown_grace`, then their containers are
    /// killed and removed (their messages are answered after the next start).
    pub async fn run(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        // The control socket first: it refuses to start beside a live daemon of
        // the same home, whose claimed messages must not be requeued under it.
        let control = control::serve(Arc::clone(&self))?;
        let requeued = self.store.requeue_unfinished()?;
        if requeued > 0 {
            tracing::info!("picked up {requeued} message(s) a previous run had not answered");
        }
        let mut background = JoinSet::new();
        for channel in &self.channels {
            let channel = Arc::clone(channel);
            let inbox: Arc<dyn Inbox> = Arc::clone(&self) as Arc<dyn Inbox>;
            background.spawn(async move {
                if let Err(err) = channel.run(inbox).await {
                    tracing::error!("channel {} stopped: {err}", channel.name());
                }
            });
        }
        background.spawn(Arc::clone(&self).outbox_loop());
        background.spawn(Arc::clone(&self).scheduler_loop());
        for group in self.store.groups_with_pending()? {
            self.wake(&group);
        }
        tracing::info!(
            "pincer is serving (at most {} containers at once)",
            self.settings.max_concurrent
        );

        stop.await;
        tracing::info!(
            "stopping: no new work; running invocations have {}s to finish",
            self.settings.shutdown_grace.as_secs_f64()
        );
        self.stopping.send_replace(true);
        drop(control);
        let mut workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Aborting a worker drops its invocation: the sandbox's guard kills
            // and removes the container, and the batch stays claimed, to be
            // picked up again at the next start.
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
        background.abort_all();
        Ok(())
    }

    fn wake(&self, group: &str) {
        if *self.stopping.borrow() {
            return;
        }
        let Some(daemon) = self.me.upgrade() else {
            return;
        };
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        let notify = Arc::clone(wakers.entry(group.to_owned()).or_insert_with(|| {
            let notify = Arc::new(Notify::new());
            let worker_notify = Arc::clone(&notify);
            let group = group.to_owned();
            self.workers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .spawn(async move { daemon.worker(group, worker_notify).await });
            notify
        }));
        notify.notify_one();
    }

    /// Cancels the group's running invocation; whether one was running.
    pub fn cancel(&self, group: &str) -> bool {
        let cancel = self
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group);
        cancel.is_some_and(|cancel| cancel.send(()).is_ok())
    }

    async fn worker(self: Arc<Self>, group: String, notify: Arc<Notify>) {
        let mut stopping = self.stopping.subscribe();
        loop {
            if *stopping.borrow() {
                return;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = stopping.changed() => return,
            }
            // Drain: one batch after another while there is work.
            loop {
                if *stopping.borrow() {
                    return;
                }
                let permit = tokio::select! {
                    permit = Arc::clone(&self.permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    _ = stopping.changed() => return,
                };
                let batch = match self.store.claim_batch(&group) {
                    Ok(batch) => batch,
                    Err(err) => {
                        tracing::error!(group, "cannot claim messages: {err}");
                        break;
                    }
                };
                if batch.is_empty() {
                    break;
                }
                self.handle_batch(&group, batch).await;
                drop(permit);
            }
        }
    }

    async fn handle_batch(&self, group: &str, batch: Vec<Inbound>) {
        let ids: Vec<i64> = batch.iter().map(|m| m.id).collect();
        let chat = batch.last().map(|m| m.chat_id.clone()).unwrap_or_default();
        let working = self.working.start(group, ids.clone());
        let _ = self.events.send(DaemonEvent::Working {
            group: group.to_owned(),
            messages: ids.clone(),
        });
        let prompt = batch::render(&batch, self.settings.limits.prompt_bytes);
        let (cancel, mut cancelled) = oneshot::channel();
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(group.to_owned(), cancel);

        let result = match GroupName::new(group) {
            Err(err) => Err(err.to_string()),
            Ok(name) => {
                let mut attempt = 0;
                let mut activity = activity::Activity::new(self.activity.clone(), group);
                let mut on_event = |event: &pincer_protocol::Event| activity.on_event(event);
                loop {
                    let outcome = tokio::select! {
                        outcome = self.host.invoke(&name, &prompt, &[], &mut on_event) => Some(outcome),
                        _ = &mut cancelled => None,
                    };
                    match outcome {
                        None => break Err("cancelled by the owner".to_owned()),
                        Some(Ok(reply)) => break Ok(reply.text),
                        Some(Err(err))
                            if is_infrastructure(&err) && attempt < self.settings.retries =>
                        {
                            attempt += 1;
                            let backoff = Duration::from_millis(500 * 2u64.pow(attempt));
                            tracing::warn!(
                                group,
                                attempt,
                                "infrastructure failure, retrying in {backoff:?}: {err}"
                            );
                            tokio::time::sleep(backoff).await;
                        }
                        Some(Err(err)) => break Err(err.to_string()),
                    }
                }
            }
        };
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(group);

        let (text, failed) = match result {
            Ok(text) => (text, false),
            Err(reason) => (format!("(the assistant could not answer: {reason})"), true),
        };
        let answered = self.store.answer_batch(&ids, &chat, group, &text, failed);
        // Answered (or to be claimed again): no longer working, whatever delivery takes.
        drop(working);
        match answered {
            Ok(reply_id) => {
                let _ = self.events.send(DaemonEvent::Reply {
                    group: group.to_owned(),
                    chat,
                    reply_id,
                    answers: ids,
                    text,
                    failed,
                });
                self.deliver_pending().await;
            }
            Err(err) => tracing::error!(
                group,
                "cannot store the reply (the batch will run again): {err}"
            ),
        }
    }

    async fn outbox_loop(self: Arc<Self>) {
        loop {
            self.deliver_pending().await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn scheduler_loop(self: Arc<Self>) {
        let zone =
            jiff::tz::TimeZone::get(&self.settings.time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        loop {
            if let Err(err) = self.schedule_tick(&zone) {
                tracing::error!("scheduler: {err}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Plans new tasks and fires due ones (missed runs fire once).
    fn schedule_tick(&self, zone: &jiff::tz::TimeZone) -> Result<(), DaemonError> {
        let now = self.clock.now();
        for task in self.store.unplanned_tasks()? {
            match pincer_store::scheduler::first_run(
                &task.schedule_kind,
                &task.schedule_value,
                now,
                zone,
            ) {
                Ok(next) => self.store.plan_task(
                    task.id,
                    next.map(pincer_store::scheduler::stored).as_deref(),
                )?,
                Err(err) => {
                    tracing::warn!(task = task.id, "cannot plan the task, pausing it: {err}");
                    self.store.set_task_status(task.id, "paused")?;
                }
            }
        }
        let now_text = pincer_store::scheduler::stored(now);
        let mut woken = Vec::new();
        for task in self.store.due_tasks(&now_text)? {
            let next = pincer_store::scheduler::next_run(
                &task.schedule_kind,
                &task.schedule_value,
                now,
                zone,
            )
            .unwrap_or(None)
            .map(pincer_store::scheduler::stored);
            if let Some(why) = self.hold_back(&task, &now_text)? {
                tracing::warn!(task = task.id, group = task.group, "task skipped: {why}");
                self.store.skip_task(&task, &now_text, next.as_deref())?;
                continue;
            }
            self.store.fire_task(&task, &now_text, next.as_deref())?;
            tracing::info!(task = task.id, group = task.group, "task fired");
            woken.push(task.group);
        }
        // Woken after all of this tick's tasks are in: tasks due together run together.
        woken.dedup();
        for group in woken {
            self.wake(&group);
        }
        Ok(())
    }
}

impl Daemon {
    /// Why a due task does not run now, if it does not: its last run is
    /// still unanswered, or its group's tasks have fired as often today as
    /// they may (the main chat is told once a day).
    fn hold_back(
        &self,
        task: &pincer_store::Task,
        now: &str,
    ) -> Result<Option<String>, DaemonError> {
        if self.store.task_run_waiting(task.id)? {
            return Ok(Some("its last run is still waiting for an answer".into()));
        }
        let limit = self.settings.limits.task_runs_per_day;
        let day = &now[..10];
        let runs = self
            .store
            .task_runs_since(&task.group, &format!("{day}T00:00:00Z"))?;
        if runs < limit {
            return Ok(None);
        }
        let why = format!(
            "group {}'s tasks fired {runs} times today, the most they may ([limits] task_runs_per_day)",
            task.group
        );
        self.store.tell_main_once(
            &format!("task_runs:{}", task.group),
            day,
            &format!("{why}: its due tasks are skipped until tomorrow (UTC)"),
        );
        Ok(Some(why))
    }

    /// Stores an inbound message and wakes its group's worker if it should;
    /// `None` when its `source` was stored before.
    fn accept_message(
        &self,
        source: Option<&str>,
        chat_id: &str,
        sender: &str,
        text: &str,
    ) -> Result<Option<pincer_store::Accepted>, ChannelError> {
        let failed = |err: pincer_store::StoreError| ChannelError(err.to_string());
        // Before the owner's command runs, not only before it is stored: a
        // command handed over again is not carried out again either.
        if let Some(source) = source
            && self.store.has_source(source).map_err(failed)?
        {
            return Ok(None);
        }
        if let Some(answered) = self.owner_command(source, chat_id, sender, text) {
            return answered.map(Some);
        }
        let accepted = self
            .store
            .accept_message_from(source, chat_id, sender, text)
            .map_err(failed)?;
        if let Some(accepted) = &accepted
            && accepted.wakes
        {
            self.wake(&accepted.group);
        }
        Ok(accepted)
    }
}

impl Inbox for Daemon {
    fn accept(&self, chat_id: &str, sender: &str, text: &str) -> Result<i64, ChannelError> {
        self.accept_message(None, chat_id, sender, text)?
            .map(|accepted| accepted.id)
            .ok_or_else(|| ChannelError("a message without a source cannot repeat".into()))
    }

    fn accept_from(
        &self,
        source: &str,
        chat_id: &str,
        sender: &str,
        text: &str,
    ) -> Result<Option<i64>, ChannelError> {
        Ok(self
            .accept_message(Some(source), chat_id, sender, text)?
            .map(|accepted| accepted.id))
    }

    fn state(&self, key: &str) -> Result<Option<String>, ChannelError> {
        self.store
            .channel_state(key)
            .map_err(|err| ChannelError(err.to_string()))
    }

    fn save_state(&self, key: &str, value: &str) -> Result<(), ChannelError> {
        self.store
            .set_channel_state(key, value)
            .map_err(|err| ChannelError(err.to_string()))
    }
}

/// Failures of the machinery, not of the agent: worth another try.
fn is_infrastructure(err: &InvokeError) -> bool {
    matches!(
        err,
        InvokeError::Sandbox(SandboxError::Engine { .. } | SandboxError::Unreachable { .. })
    )
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] pincer_store::StoreError),
    /// The control socket could not be served.
    #[error("control socket {path}: {message}")]
    Control {
        /// Its path.
        path: std::path::PathBuf,
        /// What went wrong.
        message: String,
    },
}
