//! The model client: Anthropic Messages API requests through the host's gateway.
//!
//! The runner holds no key and knows no model URL: it sends `POST /v1/messages`
//! to the host socket, and the host decides where it goes and adds the key.
//!
//! Prompt caching: every request marks two breakpoints (`cache_control`), by
//! Anthropic's rules for what a later request may read from the cache: the
//! end of the system prompt (so tools and system are one cached prefix), and
//! the last block of the conversation (so the next turn, and the next
//! invocation of a resumed session, read everything before their own new
//! blocks from the cache; a new prompt, a plain string, is the one part
//! that is not). The marks are put on the request only, never in
//! the transcript, and the system prompt has nothing in it that changes
//! between invocations (no time, no ids), so the prefix stays byte-stable.

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::http;

/// The Messages API version the runner speaks.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// One model request may take this long (long answers are slow).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Attempts for a request that failed with a retryable status.
const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ModelError {
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("model request failed with status {status}: {message}")]
    Status { status: u16, message: String },
    #[error("model response is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) struct ModelClient {
    socket: PathBuf,
    model: String,
    max_tokens: u32,
}

impl ModelClient {
    pub(crate) fn new(socket: PathBuf, model: String, max_tokens: u32) -> Self {
        Self {
            socket,
            model,
            max_tokens,
        }
    }

    /// One Messages API call; retries overload and server errors with backoff.
    pub(crate) fn create(
        &self,
        system: &str,
        tools: &Value,
        messages: &[Value],
    ) -> Result<Value, ModelError> {
        let body = serde_json::to_vec(&request(
            &self.model,
            self.max_tokens,
            system,
            tools,
            messages,
        ))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = http::post_json(
                &self.socket,
                "/v1/messages",
                &[("anthropic-version", ANTHROPIC_VERSION)],
                &body,
                REQUEST_TIMEOUT,
            )?;
            if response.status == 200 {
                return Ok(serde_json::from_slice(&response.body)?);
            }
            let retryable = matches!(response.status, 429 | 500 | 502 | 503 | 504 | 529);
            if !retryable || attempt >= ATTEMPTS {
                return Err(ModelError::Status {
                    status: response.status,
                    message: error_message(&response.body),
                });
            }
            thread::sleep(Duration::from_millis(500 * 2u64.pow(attempt)));
        }
    }
}

/// The Messages request for `messages`, with the two cache breakpoints.
pub(crate) fn request(
    model: &str,
    max_tokens: u32,
    system: &str,
    tools: &Value,
    messages: &[Value],
) -> Value {
    let breakpoint = json!({"type": "ephemeral"});
    let mut messages = messages.to_vec();
    // The last block there is; a prompt given as a plain string cannot carry
    // a mark (and is left as it is: channels and providers read it so), so
    // the mark goes on the block before it.
    if let Some(block) = messages
        .iter_mut()
        .rev()
        .find_map(|m| m["content"].as_array_mut().filter(|b| !b.is_empty()))
        .and_then(|blocks| blocks.last_mut())
    {
        block["cache_control"] = breakpoint.clone();
    }
    json!({
        "model": model,
        "max_tokens": max_tokens,
        "system": [{"type": "text", "text": system, "cache_control": breakpoint}],
        "tools": tools,
        "messages": messages,
    })
}

/// The `error.message` of an API error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_breakpoints_system_and_the_last_block_and_the_transcript_stays_clean() {
        let transcript = vec![
            json!({"role": "user", "content": "hi"}),
            json!({"role": "assistant", "content": [{"type": "text", "text": "a"},
                {"type": "tool_use", "id": "t", "name": "bash", "input": {}}]}),
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}),
        ];
        let before = transcript.clone();
        let body = request("m", 10, "sys", &json!([]), &transcript);
        let text = body.to_string();
        assert_eq!(text.matches("cache_control").count(), 2, "{text}");
        assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(
            body["messages"][2]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert_eq!(transcript, before);
        // A new prompt is a plain string: the mark goes on the block before it.
        let mut resumed = transcript.clone();
        resumed.push(json!({"role": "user", "content": "next"}));
        let body = request("m", 10, "sys", &json!([]), &resumed);
        assert_eq!(body["messages"][3]["content"], "next");
        assert_eq!(
            body["messages"][2]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert_eq!(body.to_string().matches("cache_control").count(), 2);
    }
}
