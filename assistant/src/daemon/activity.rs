//! What an agent is doing, as its runner reports it, turned into short
//! [`DaemonEvent`]s for the owner's screen: a tool started (`bash: ls
//! /workspace/group`), a tool finished (and why it failed), a note the model
//! wrote along the way.
//!
//! Everything here was written by the agent, so it is cut to one short line
//! and the number of events per invocation is capped: an agent asking for
//! thousands of tools in one answer costs watchers a line, not a flood that
//! pushes its own reply out of their queue. Terminals escape the text.

use std::collections::HashMap;

use pincer_protocol::Event;
use serde_json::Value;
use tokio::sync::broadcast;

use super::DaemonEvent;

/// Events shown per invocation before the rest are only counted.
const SHOWN_EVENTS: u32 = 200;
/// The longest tool name, summary or reason an event carries, in characters.
const NAME_CHARS: usize = 40;
const DETAIL_CHARS: usize = 100;
const REASON_CHARS: usize = 160;

/// One invocation's activity, told to the daemon's watchers.
pub(super) struct Activity {
    events: broadcast::Sender<DaemonEvent>,
    group: String,
    shown: u32,
    /// Tool-use id → (name, summary) of the calls not answered yet.
    calls: HashMap<String, (String, String)>,
}

impl Activity {
    pub(super) fn new(events: broadcast::Sender<DaemonEvent>, group: &str) -> Self {
        Self {
            events,
            group: group.to_owned(),
            shown: 0,
            calls: HashMap::new(),
        }
    }

    pub(super) fn on_event(&mut self, event: &Event) {
        let told = match event {
            Event::ToolCall { id, name, input } => {
                let name = one_line(name, NAME_CHARS);
                let detail = summary(&name, input);
                if self.calls.len() < SHOWN_EVENTS as usize {
                    self.calls
                        .insert(id.clone(), (name.clone(), detail.clone()));
                }
                DaemonEvent::ToolStarted {
                    group: self.group.clone(),
                    name,
                    detail,
                }
            }
            Event::ToolResult {
                id, name, error, ..
            } => {
                let (name, detail) = self
                    .calls
                    .remove(id)
                    .unwrap_or_else(|| (one_line(name, NAME_CHARS), String::new()));
                DaemonEvent::ToolFinished {
                    group: self.group.clone(),
                    name,
                    detail,
                    error: error.as_deref().map(|e| one_line(e, REASON_CHARS)),
                }
            }
            Event::Message { text } => DaemonEvent::Note {
                group: self.group.clone(),
                text: one_line(text, REASON_CHARS),
            },
            Event::Started { .. } | Event::Compacted { .. } | Event::Result(_) => return,
        };
        self.shown += 1;
        if self.shown <= SHOWN_EVENTS {
            let _ = self.events.send(told);
        } else if self.shown == SHOWN_EVENTS + 1 {
            let _ = self.events.send(DaemonEvent::Note {
                group: self.group.clone(),
                text: format!("(more than {SHOWN_EVENTS} steps: not showing each)"),
            });
        }
    }
}

/// A tool call in a few words: the field that says what it does (the
/// command, the path, the address), else its input as compact JSON.
fn summary(name: &str, input: &Value) -> String {
    let field = match name {
        "bash" => "command",
        "web_fetch" => "url",
        "send_message" => "text",
        "schedule_task" => "prompt",
        _ => "path",
    };
    let text = match input.get(field).and_then(Value::as_str) {
        Some(text) => text.to_owned(),
        None if input.as_object().is_some_and(|o| o.is_empty()) => String::new(),
        None => input.to_string(),
    };
    one_line(&text, DETAIL_CHARS)
}

/// The first non-empty line of `text`, at most `chars` characters (an
/// ellipsis says when there was more).
fn one_line(text: &str, chars: usize) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let more = lines.next().is_some();
    let mut line: String = first.chars().take(chars).collect();
    if more || first.chars().count() > chars {
        line.push('…');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tool_call_is_summed_up_in_a_line() {
        assert_eq!(
            summary("bash", &json!({"command": "ls /workspace/group"})),
            "ls /workspace/group"
        );
        assert_eq!(
            summary("bash", &json!({"command": "echo a\necho b"})),
            "echo a…"
        );
        assert_eq!(
            summary("read_file", &json!({"path": "/workspace/group/notes.md"})),
            "/workspace/group/notes.md"
        );
        assert_eq!(
            summary("web_fetch", &json!({"url": "https://example.org/a"})),
            "https://example.org/a"
        );
        assert_eq!(summary("list_tasks", &json!({})), "");
        assert_eq!(summary("pause_task", &json!({"id": 3})), r#"{"id":3}"#);
        let long = "x".repeat(500);
        assert_eq!(
            summary("bash", &json!({ "command": long })).chars().count(),
            DETAIL_CHARS + 1
        );
    }

    #[test]
    fn calls_and_results_become_events_and_a_flood_is_cut_short() {
        let (sender, mut events) = broadcast::channel(4096);
        let mut activity = Activity::new(sender, "main");
        activity.on_event(&Event::ToolCall {
            id: "t1".into(),
            name: "web_fetch".into(),
            input: json!({"url": "https://example.org"}),
        });
        activity.on_event(&Event::ToolResult {
            id: "t1".into(),
            name: "web_fetch".into(),
            is_error: true,
            output_bytes: 10,
            error: Some("refused by the egress allowlist\nmore".into()),
        });
        assert_eq!(
            events.try_recv().unwrap(),
            DaemonEvent::ToolStarted {
                group: "main".into(),
                name: "web_fetch".into(),
                detail: "https://example.org".into(),
            }
        );
        assert_eq!(
            events.try_recv().unwrap(),
            DaemonEvent::ToolFinished {
                group: "main".into(),
                name: "web_fetch".into(),
                detail: "https://example.org".into(),
                error: Some("refused by the egress allowlist…".into()),
            }
        );
        for i in 0..1000 {
            activity.on_event(&Event::Message {
                text: format!("step {i}"),
            });
        }
        let mut told = 0;
        while events.try_recv().is_ok() {
            told += 1;
        }
        assert_eq!(told, SHOWN_EVENTS as usize - 2 + 1);
    }
}
