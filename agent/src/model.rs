//! The model client: Anthropic Messages API requests through the host's gateway.
//!
//! The runner holds no key and knows no model URL: it sends `POST /v1/messages`
//! to the host socket, and the host decides where it goes and adds the key.

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
        let body = serde_json::to_vec(&json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "tools": tools,
            "messages": messages,
        }))?;
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

/// The `error.message` of an API error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned())
}
