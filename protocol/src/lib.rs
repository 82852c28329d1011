//! The wire protocol between the host (`pincer`) and the agent runner that runs
//! inside the container (`pincer-agent`, or any other runner that speaks it).
//!
//! * stdin: one [`Invocation`] as a single JSON line;
//! * stdout: JSON lines, each an [`Event`]; the last one is [`Event::Result`];
//! * the socket at [`HOST_SOCKET_PATH`]: HTTP/1.1, served by the host
//!   (`POST /v1/messages` is the model gateway, `/host/v1/…` the host API,
//!   `CONNECT` and absolute URIs the egress proxy);
//! * the runner bridges `127.0.0.1:`[`EGRESS_PROXY_PORT`] to that socket.
//!
//! This crate knows nothing about containers or the network: it is data only,
//! so a runner can depend on it without pulling in the host. ARCHITECTURE.md
//! describes the protocol in prose; a change to a type here that an old peer
//! cannot read bumps [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

/// Bumped on every change that an older peer cannot understand.
pub const PROTOCOL_VERSION: u32 = 2;

/// Where the host's socket appears inside the container.
pub const HOST_SOCKET_PATH: &str = "/run/pincer/host.sock";

/// The loopback port inside the container where the runner bridges to the
/// host's egress proxy; the container's `HTTP_PROXY`/`HTTPS_PROXY` point here.
pub const EGRESS_PROXY_PORT: u16 = 3128;

/// The invocation longer than this (bytes, one line) is refused by the runner.
pub const MAX_INVOCATION_BYTES: usize = 4 * 1024 * 1024;

/// One agent invocation: what the host asks the runner to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invocation {
    /// Must equal the runner's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// Unique per invocation; appears in the host's logs and audit.
    pub invocation_id: String,
    /// The group this invocation runs for.
    pub group: String,
    /// Whether the group is the owner's trusted main group.
    pub is_main: bool,
    /// The user's message.
    pub prompt: String,
    /// The model name passed through to the Messages API.
    pub model: String,
    /// `max_tokens` of each model request.
    pub max_tokens: u32,
    /// How many model turns the runner may take before it gives up.
    pub max_turns: u32,
    /// Limits on the runner's tools.
    pub limits: ToolLimits,
    /// Transcript size (bytes) beyond which the runner compacts the session.
    pub session_budget: u64,
}

/// Where the runner keeps the group's conversation between invocations.
pub const SESSION_DIR: &str = "/workspace/session";
/// The memory file, in the group folder and in the global folder.
pub const MEMORY_FILE: &str = "MEMORY.md";

/// Limits the runner applies to its tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLimits {
    /// Default timeout of one `bash` call.
    pub bash_timeout_ms: u64,
    /// The largest timeout a `bash` call may ask for.
    pub bash_max_timeout_ms: u64,
    /// Tool output longer than this is cut (head and tail kept).
    pub output_cap_bytes: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        Self {
            bash_timeout_ms: 120_000,
            bash_max_timeout_ms: 600_000,
            output_cap_bytes: 32 * 1024,
        }
    }
}

/// One line the runner writes on stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// First line: the runner is up and speaks this protocol version.
    Started {
        /// The runner's [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Name and version of the runner, for logs.
        runner: String,
    },
    /// The model asked for a tool.
    ToolCall {
        /// The model's tool-use id.
        id: String,
        /// Tool name.
        name: String,
        /// Tool input as the model wrote it.
        input: serde_json::Value,
    },
    /// A tool finished.
    ToolResult {
        /// The tool-use id this answers.
        id: String,
        /// Tool name.
        name: String,
        /// Whether the tool failed.
        is_error: bool,
        /// Size of the output given back to the model.
        output_bytes: usize,
        /// A failed tool's reason, one short line (for the owner's screen).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Text the model wrote along the way (before the final answer).
    Message {
        /// The text.
        text: String,
    },
    /// The session outgrew its budget and was replaced by a summary; the
    /// original was archived in the session folder.
    Compacted {
        /// Transcript size before.
        before_bytes: u64,
        /// Transcript size after.
        after_bytes: u64,
    },
    /// The last line: how the invocation ended.
    Result(Outcome),
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// `ok` or `error`.
    pub status: Status,
    /// The final answer (status `ok`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why it failed (status `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Model turns taken.
    pub turns: u32,
    /// Tokens used, as the model reported them.
    pub usage: Usage,
}

/// `ok` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The agent produced a final answer.
    Ok,
    /// The agent could not finish.
    Error,
}

/// Token counts summed over an invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_json_lines() {
        let event = Event::Result(Outcome {
            status: Status::Ok,
            text: Some("hi".into()),
            error: None,
            turns: 1,
            usage: Usage::default(),
        });
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"type":"result","status":"ok","text":"hi","turns":1,"usage":{"input_tokens":0,"output_tokens":0}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), event);
    }

    #[test]
    fn invocation_rejects_unknown_fields() {
        let json = r#"{"protocol":1,"invocation_id":"x","group":"main","is_main":true,
            "prompt":"p","model":"m","max_tokens":1,"max_turns":1,
            "limits":{"bash_timeout_ms":1,"bash_max_timeout_ms":1,"output_cap_bytes":1},
            "session_budget":1000,"api_key":"sneaky"}"#;
        let err = serde_json::from_str::<Invocation>(json).unwrap_err();
        assert!(err.to_string().contains("api_key"), "{err}");
    }
}
