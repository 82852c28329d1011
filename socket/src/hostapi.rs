//! The host API: the agent's host tools, authorized on the host.
//!
//! Served on each container's own socket under `/host/v1/<action>` (HTTP/1.1,
//! JSON, `POST`). Who is calling comes from the socket the request arrived on
//! ([`Caller`]), never from the body: a body with a field it should not have
//! (`group`, `is_main`, …) is rejected whole. Every call, allowed or denied or
//! malformed, is written to the audit table.
//!
//! | action | main | other groups |
//! |---|---|---|
//! | `send_message {chat, text}` | any registered chat | its own chat only |
//! | `schedule_task {prompt, schedule, value, chat?}` | for any registered chat | for its own chat only |
//! | `list_tasks {}` | all tasks | its own group's |
//! | `pause_task`/`resume_task`/`cancel_task {id}`, `update_task {id, …}` | any task | its own group's |
//! | `register_group {name, chat, trigger?}`, `list_groups {}` | yes | no |
//! | `request_access {kind, what, reason, read_write?}` | asks the owner | asks the owner (`[limits] access_requests_per_day`) |
//!
//! This module knows nothing about sockets or containers: it turns (caller,
//! action, body) into a response, through the store.

mod access;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::budget::Limits;
use crate::caller::Caller;
use pincer_core::group::GroupName;
use pincer_store::{AuditRecord, Group, Store, StoreError, Task};

/// The path prefix of the host API.
pub const PREFIX: &str = "/host/v1/";
/// The largest request body the host API accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// The longest message an agent may send.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What the host API answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// JSON body: `{"ok":true,"result":…}` or `{"ok":false,"error":…}`.
    pub body: Value,
}

impl Reply {
    fn ok(result: Value) -> Self {
        Self {
            status: 200,
            body: json!({"ok": true, "result": result}),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self {
            status,
            body: json!({"ok": false, "error": message}),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendMessage {
    chat: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleTask {
    prompt: String,
    schedule: String,
    value: String,
    #[serde(default)]
    chat: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArguments {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskId {
    id: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateTask {
    id: i64,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterGroup {
    name: String,
    chat: String,
    #[serde(default)]
    trigger: Option<String>,
}

/// A decision with what the audit should say.
struct Outcome {
    reply: Reply,
    target: Option<String>,
    allowed: bool,
    reason: String,
    detail: Option<Value>,
}

impl Outcome {
    fn allowed(target: impl Into<Option<String>>, reply: Reply, detail: Option<Value>) -> Self {
        Self {
            reply,
            target: target.into(),
            allowed: true,
            reason: "allowed".into(),
            detail,
        }
    }

    fn denied(target: impl Into<Option<String>>, status: u16, shown: &str, reason: &str) -> Self {
        Self {
            reply: Reply::error(status, shown),
            target: target.into(),
            allowed: false,
            reason: reason.into(),
            detail: None,
        }
    }
}

/// Handles one host-API call by `caller`: `action` is the path after [`PREFIX`].
pub fn handle(store: &Store, limits: &Limits, caller: &Caller, action: &str, body: &[u8]) -> Reply {
    let outcome = match decide(store, limits, caller, action, body) {
        Ok(outcome) => outcome,
        Err(err) => Outcome::denied(
            None,
            500,
            &format!("the host failed: {err}"),
            &err.to_string(),
        ),
    };
    let record = AuditRecord {
        group: Some(caller.group.as_str()),
        kind: "host_api",
        action,
        target: outcome.target.as_deref(),
        allowed: Some(outcome.allowed),
        reason: Some(&outcome.reason),
        detail: outcome.detail.map(|d| d.to_string()),
    };
    if let Err(err) = store.audit(record) {
        // An action that cannot be audited does not count as done.
        tracing::error!("cannot write the audit: {err}");
        return Reply::error(500, "the host cannot write its audit log; nothing was done");
    }
    outcome.reply
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|err| {
        // A body that tries to say who is calling is an attempt, not a typo:
        // the audit says so.
        let claimed = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .ok()
            .and_then(|fields| {
                IDENTITY_FIELDS
                    .iter()
                    .find(|name| fields.contains_key(**name))
                    .copied()
            });
        match claimed {
            Some(name) => format!(
                "invalid request: the body names a caller (`{name}`); the caller is the socket it came through"
            ),
            None => format!("invalid request: {err}"),
        }
    })
}

/// Fields with which a body might try to pass for another group.
const IDENTITY_FIELDS: &[&str] = &["group", "is_main", "as", "caller", "from_group"];

macro_rules! parse_or_deny {
    ($body:expr) => {
        match parse($body) {
            Ok(value) => value,
            Err(message) => {
                return Ok(Outcome::denied(
                    None,
                    400,
                    &message,
                    &format!("malformed: {message}"),
                ))
            }
        }
    };
}

fn decide(
    store: &Store,
    limits: &Limits,
    caller: &Caller,
    action: &str,
    body: &[u8],
) -> Result<Outcome, StoreError> {
    let Some(me) = store.group(caller.group.as_str())? else {
        return Ok(Outcome::denied(
            None,
            403,
            "your group is not registered",
            "caller's group is not registered",
        ));
    };
    match action {
        "send_message" => {
            let request: SendMessage = parse_or_deny!(body);
            send_message(store, &me, request)
        }
        "schedule_task" => {
            let request: ScheduleTask = parse_or_deny!(body);
            schedule_task(store, limits, &me, request)
        }
        "list_tasks" => {
            let NoArguments {} = parse_or_deny!(body);
            let (scope, tasks) = if me.is_main {
                ("all", store.tasks(None)?)
            } else {
                ("own group", store.tasks(Some(&me.name))?)
            };
            Ok(Outcome::allowed(
                scope.to_owned(),
                Reply::ok(json!(tasks)),
                None,
            ))
        }
        "pause_task" | "resume_task" | "cancel_task" => {
            let TaskId { id } = parse_or_deny!(body);
            change_task(store, &me, id, |store, task| {
                let status = match action {
                    "pause_task" => "paused",
                    "resume_task" => "active",
                    _ => "cancelled",
                };
                // A finished task stays finished: resuming a done `once`
                // task would run it again.
                if task.status == "cancelled" || task.status == "done" {
                    return Ok(Err(format!("task {} is {}", task.id, task.status)));
                }
                store.set_task_status(task.id, status)?;
                Ok(Ok(json!({"id": task.id, "status": status})))
            })
        }
        "update_task" => {
            let request: UpdateTask = parse_or_deny!(body);
            let schedule = match (&request.schedule, &request.value) {
                (Some(kind), Some(value)) => match validate_schedule(kind, value) {
                    Ok(()) => Some((kind.as_str(), value.as_str())),
                    Err(message) => {
                        return Ok(Outcome::denied(
                            request.id.to_string(),
                            400,
                            &message,
                            &message,
                        ));
                    }
                },
                (None, None) => None,
                _ => {
                    let message = "give `schedule` and `value` together";
                    return Ok(Outcome::denied(
                        request.id.to_string(),
                        400,
                        message,
                        message,
                    ));
                }
            };
            if let Some(Err(message)) = request
                .prompt
                .as_ref()
                .map(|prompt| validate_text("prompt", prompt, limits.task_prompt_bytes))
            {
                return Ok(Outcome::denied(
                    request.id.to_string(),
                    400,
                    &message,
                    &message,
                ));
            }
            if request.prompt.is_none() && schedule.is_none() {
                let message = "nothing to update: give `prompt` or `schedule` and `value`";
                return Ok(Outcome::denied(
                    request.id.to_string(),
                    400,
                    message,
                    message,
                ));
            }
            change_task(store, &me, request.id, |store, task| {
                store.update_task(task.id, request.prompt.as_deref(), schedule)?;
                Ok(Ok(json!(store.task(task.id)?)))
            })
        }
        "register_group" => {
            let request: RegisterGroup = parse_or_deny!(body);
            if !me.is_main {
                return Ok(Outcome::denied(
                    request.name,
                    403,
                    "only the main group may register groups",
                    "non-main group tried to register a group",
                ));
            }
            let name = match GroupName::new(&request.name) {
                Ok(name) => name,
                Err(err) => {
                    return Ok(Outcome::denied(
                        request.name,
                        400,
                        &err.to_string(),
                        &err.to_string(),
                    ));
                }
            };
            match store.add_group(&name, &request.chat, request.trigger.as_deref()) {
                Ok(group) => Ok(Outcome::allowed(
                    group.name.clone(),
                    Reply::ok(json!(group)),
                    None,
                )),
                Err(StoreError::Refused(message)) => {
                    Ok(Outcome::denied(name.to_string(), 409, &message, &message))
                }
                Err(err) => Err(err),
            }
        }
        "list_groups" => {
            let NoArguments {} = parse_or_deny!(body);
            if !me.is_main {
                return Ok(Outcome::denied(
                    None,
                    403,
                    "only the main group may list groups",
                    "non-main group tried to list groups",
                ));
            }
            Ok(Outcome::allowed(
                None,
                Reply::ok(json!(store.groups()?)),
                None,
            ))
        }
        "request_access" => {
            let request: access::RequestAccess = parse_or_deny!(body);
            access::request_access(store, limits, &me, request)
        }
        other => Ok(Outcome::denied(
            other.to_owned(),
            404,
            &format!("no host action {other:?}"),
            "unknown action",
        )),
    }
}

fn send_message(store: &Store, me: &Group, request: SendMessage) -> Result<Outcome, StoreError> {
    let target = request.chat.clone();
    if let Err(message) = validate_text("text", &request.text, MAX_MESSAGE_BYTES) {
        return Ok(Outcome::denied(target, 400, &message, &message));
    }
    let Some(owner) = store.group_of_chat(&request.chat)? else {
        return Ok(Outcome::denied(
            target,
            403,
            "that chat is not registered",
            "unregistered chat",
        ));
    };
    if !me.is_main && owner.name != me.name {
        return Ok(Outcome::denied(
            target,
            403,
            "a group may only message its own chat",
            &format!(
                "non-main group tried to message group {}'s chat",
                owner.name
            ),
        ));
    }
    let id = store.add_outgoing(&request.chat, &me.name, &request.text)?;
    Ok(Outcome::allowed(
        target,
        Reply::ok(json!({"message_id": id})),
        Some(json!({"bytes": request.text.len()})),
    ))
}

fn schedule_task(
    store: &Store,
    limits: &Limits,
    me: &Group,
    request: ScheduleTask,
) -> Result<Outcome, StoreError> {
    let chat = request.chat.clone().unwrap_or_else(|| me.chat_id.clone());
    if let Err(message) = validate_text("prompt", &request.prompt, limits.task_prompt_bytes)
        .and_then(|()| validate_schedule(&request.schedule, &request.value))
    {
        return Ok(Outcome::denied(chat, 400, &message, &message));
    }
    let Some(owner) = store.group_of_chat(&chat)? else {
        return Ok(Outcome::denied(
            chat,
            403,
            "that chat is not registered",
            "unregistered chat",
        ));
    };
    if !me.is_main && owner.name != me.name {
        return Ok(Outcome::denied(
            chat,
            403,
            "a group may only schedule tasks for its own chat",
            &format!(
                "non-main group tried to schedule a task for group {}",
                owner.name
            ),
        ));
    }
    // Tasks run on their own, after the agent that made them is gone: how
    // many a group has is what it can make the host do every minute.
    let kept = store
        .tasks(Some(&owner.name))?
        .iter()
        .filter(|task| task.status == "active" || task.status == "paused")
        .count();
    if kept >= limits.tasks_per_group {
        let message = format!(
            "group {} has {kept} tasks, the most it may have ([limits] tasks_per_group): \
             cancel one first",
            owner.name
        );
        return Ok(Outcome::denied(chat, 429, &message, &message));
    }
    let task = store.add_task(
        &owner.name,
        &chat,
        &request.prompt,
        &request.schedule,
        &request.value,
        &me.name,
    )?;
    Ok(Outcome::allowed(
        format!("task {} for group {}", task.id, owner.name),
        Reply::ok(json!(task)),
        Some(json!({"schedule": request.schedule, "value": request.value})),
    ))
}

/// Looks a task up and applies `change` if the caller may touch it. Another
/// group's task looks exactly like a missing one to a non-main caller.
fn change_task(
    store: &Store,
    me: &Group,
    id: i64,
    change: impl FnOnce(&Store, &Task) -> Result<Result<Value, String>, StoreError>,
) -> Result<Outcome, StoreError> {
    let target = id.to_string();
    let shown = format!("no task {id} in your group");
    let Some(task) = store.task(id)? else {
        return Ok(Outcome::denied(target, 404, &shown, "no such task"));
    };
    if !me.is_main && task.group != me.name {
        return Ok(Outcome::denied(
            target,
            404,
            &shown,
            &format!("non-main group tried to change group {}'s task", task.group),
        ));
    }
    match change(store, &task)? {
        Ok(result) => Ok(Outcome::allowed(target, Reply::ok(result), None)),
        Err(message) => Ok(Outcome::denied(target, 409, &message, &message)),
    }
}

fn validate_text(field: &str, text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("`{field}` is empty"));
    }
    if text.len() > max {
        return Err(format!("`{field}` is longer than {max} bytes"));
    }
    Ok(())
}

/// The shortest interval a task may repeat at: an agent (perhaps a
/// prompt-injected one) must not keep the shared container slots busy.
pub const MIN_TASK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// `cron` (five fields, with a next run), `interval` (a duration of at least
/// [`MIN_TASK_INTERVAL`], such as `30m`) or `once` (an instant,
/// `YYYY-MM-DDTHH:MM:SSZ`). Checked when the task is asked for, so a bad one
/// is refused then rather than paused later.
pub fn validate_schedule(kind: &str, value: &str) -> Result<(), String> {
    match kind {
        "cron" => {
            let fields: Vec<&str> = value.split_whitespace().collect();
            let allowed = |c: char| c.is_ascii_alphanumeric() || ",-*/?#LW".contains(c);
            if fields.len() != 5 || !fields.iter().all(|f| f.chars().all(allowed)) {
                return Err(format!(
                    "invalid cron expression {value:?}: five fields, e.g. \"0 9 * * 1-5\""
                ));
            }
            pincer_store::scheduler::next_run(
                kind,
                value,
                jiff::Timestamp::now(),
                &jiff::tz::TimeZone::UTC,
            )
            .map(|_| ())
        }
        "interval" => match pincer_store::time::parse_duration(value) {
            Ok(every) if every < MIN_TASK_INTERVAL => Err(format!(
                "interval {value:?} is shorter than the minimum, {}s",
                MIN_TASK_INTERVAL.as_secs()
            )),
            Ok(_) => Ok(()),
            Err(err) => Err(format!("invalid interval {value:?}: {err}")),
        },
        "once" => match pincer_store::scheduler::parse_instant(value) {
            Ok(_) if value.len() == 20 => Ok(()),
            _ => Err(format!(
                "invalid instant {value:?}: use YYYY-MM-DDTHH:MM:SSZ"
            )),
        },
        other => Err(format!(
            "unknown schedule {other:?}: use cron, interval or once"
        )),
    }?;
    // What the scheduler will do with it, now: a schedule it could not plan
    // (an interval past the year 9999) is refused here, not paused later.
    pincer_store::scheduler::first_run(
        kind,
        value,
        jiff::Timestamp::now(),
        &jiff::tz::TimeZone::UTC,
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_the_scheduler_could_not_plan_is_refused_when_asked_for() {
        assert!(validate_schedule("once", "2030-01-01T09:00:00Z").is_ok());
        assert!(validate_schedule("interval", "30m").is_ok());
        // Found by the host_api_body fuzzer: these passed, then the
        // scheduler paused the task.
        for (kind, value) in [
            ("once", "2030-01-01T09:00:L0Z"),
            ("once", "2026-13-45T99:99:99Z"),
            ("interval", "99999999999h"),
        ] {
            assert!(validate_schedule(kind, value).is_err(), "{kind} {value}");
        }
    }
}
