//! One small authenticated request to the model API, the way the gateway
//! sends them (same client, provider, credential), for `pincer doctor`: is
//! the key accepted, and is the endpoint there at all. It asks for one
//! output token, so it costs a few tokens of the owner's account.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};

use crate::upstream::Upstream;

/// How long the probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer the probe reads.
const ANSWER_BYTES: usize = 64 * 1024;

/// What the model API said to the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// It answered: the key works.
    Accepted { status: u16 },
    /// It refused the key (401 or 403).
    Refused { status: u16, message: String },
    /// It answered with another error (the model name, the account, …).
    Failed { status: u16, message: String },
    /// No answer: the address, the network or TLS.
    Unreachable(String),
}

impl Upstream {
    /// Asks `model` for one token.
    pub async fn probe(&self, model: &str) -> Probe {
        let body = serde_json::json!({
            "model": model,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "ping"}],
        })
        .to_string()
        .into_bytes();
        let (body, credential) = match &self.provider {
            None => (
                body,
                (
                    HeaderName::from_static("x-api-key"),
                    self.key.expose().to_owned(),
                ),
            ),
            Some(provider) => match provider.request(&body) {
                Ok(body) => (body, provider.credential(self.key.expose())),
                Err(err) => {
                    return Probe::Unreachable(format!("the provider cannot translate: {err}"));
                }
            },
        };
        let Ok(mut value) = HeaderValue::from_str(&credential.1) else {
            return Probe::Refused {
                status: 0,
                message: "the key is not a valid header value".into(),
            };
        };
        value.set_sensitive(true);
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.messages_url.clone())
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .header(credential.0, value)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(request) => request,
            Err(err) => return Probe::Unreachable(err.to_string()),
        };
        let answered = tokio::time::timeout(PROBE_TIMEOUT, async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((status, body))
        })
        .await;
        let (status, body) = match answered {
            Err(_) => return Probe::Unreachable(format!("no answer in {PROBE_TIMEOUT:?}")),
            Ok(Err(err)) => {
                return Probe::Unreachable(
                    error_chain(&err).replace(self.key.expose(), "<the key>"),
                );
            }
            Ok(Ok(answer)) => answer,
        };
        let (status, body) = match &self.provider {
            Some(provider) => provider.response(status, &body),
            None => (status, body.to_vec()),
        };
        // An endpoint (or a proxy before it) may echo what it was sent.
        let message = message_of(&body).replace(self.key.expose(), "<the key>");
        match status {
            200..=299 => Probe::Accepted { status },
            401 | 403 => Probe::Refused { status, message },
            _ => Probe::Failed { status, message },
        }
    }
}

/// The error's message and its causes: hyper's own says only "client error (Connect)".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The API's own words (`error.message`), else the start of the body.
fn message_of(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    match parsed.as_ref().and_then(|v| v["error"]["message"].as_str()) {
        Some(message) => message.chars().take(300).collect(),
        None => String::from_utf8_lossy(body).chars().take(300).collect(),
    }
}
