//! The few client-server API calls the channel makes, over hyper and
//! rustls (the host's one TLS stack), with the access token as a bearer
//! header. A rate-limited call (`M_LIMIT_EXCEEDED`) is waited out and made
//! again: every call the channel makes is safe to repeat (a send carries
//! its transaction id). A whole call, its answer read, is bounded in time.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Method;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use pincer_assistant::channel::ChannelError;

/// Seconds a `/sync` waits for news on the server.
pub(crate) const SYNC_SECONDS: u64 = 25;
/// The largest answer read: a `/sync` of many busy rooms, not a flood.
const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;
/// How often a rate-limited call is made again.
const RETRIES: u32 = 3;

pub(crate) struct Api {
    base: String,
    token: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// The server's refusal: its HTTP status and `errcode`, and its words.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) errcode: String,
    pub(crate) error: String,
}

impl Api {
    pub(crate) fn new(homeserver: &str, token: &str) -> Result<Self, ChannelError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|err| ChannelError(format!("matrix: cannot set up TLS: {err}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            base: homeserver.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// `path` (below `/_matrix/client/v3`, its segments already encoded),
    /// with a JSON body for PUT and POST.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let what = format!("matrix {method} {}", path.split('?').next().unwrap_or(path));
        let mut attempts = 0;
        loop {
            let once = tokio::time::timeout(
                Duration::from_secs(SYNC_SECONDS + 20),
                self.call_once(&method, path, body),
            )
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()));
            match once {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err((refusal, Some(wait)))) if attempts < RETRIES => {
                    attempts += 1;
                    tracing::warn!("{what}: {}, waiting {wait:?}", refusal.error);
                    tokio::time::sleep(wait).await;
                }
                Ok(Err((refusal, _))) => return Err(CallError::Refused { what, refusal }),
                Err(message) => return Err(CallError::Failed { what, message }),
            }
        }
    }

    /// The answer, or the refusal with how long to wait when rate limited.
    async fn call_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Result<Value, (Refusal, Option<Duration>)>, String> {
        let request = hyper::Request::builder()
            .method(method.clone())
            .uri(format!("{}/_matrix/client/v3{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))
            .map_err(|err| err.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|err| err.to_string())?
            .to_bytes();
        let answer: Value =
            serde_json::from_slice(&bytes).map_err(|err| format!("{status}, not JSON: {err}"))?;
        if status.is_success() {
            return Ok(Ok(answer));
        }
        let refusal = Refusal {
            status: status.as_u16(),
            errcode: answer["errcode"].as_str().unwrap_or("").to_owned(),
            error: answer["error"].as_str().unwrap_or("refused").to_owned(),
        };
        // Waited out here, but briefly: a reply waiting longer holds up the
        // outbox, which tries again anyway.
        let wait = (refusal.status == 429 || refusal.errcode == "M_LIMIT_EXCEEDED").then(|| {
            Duration::from_millis(
                answer["retry_after_ms"]
                    .as_u64()
                    .unwrap_or(1000)
                    .min(10_000),
            )
        });
        Ok(Err((refusal, wait)))
    }
}

/// A call that failed: refused by the server, or not answered.
#[derive(Debug)]
pub(crate) enum CallError {
    Refused { what: String, refusal: Refusal },
    Failed { what: String, message: String },
}

impl CallError {
    pub(crate) fn errcode(&self) -> Option<&str> {
        match self {
            Self::Refused { refusal, .. } => Some(&refusal.errcode),
            Self::Failed { .. } => None,
        }
    }

    /// The server said no for good (forbidden, no such room): trying
    /// again changes nothing.
    pub(crate) fn is_final(&self) -> bool {
        matches!(self, Self::Refused { refusal, .. } if matches!(refusal.status, 400 | 403 | 404))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { what, refusal } => write!(
                f,
                "{what}: {} {}: {}",
                refusal.status, refusal.errcode, refusal.error
            ),
            Self::Failed { what, message } => write!(f, "{what}: {message}"),
        }
    }
}

impl From<CallError> for ChannelError {
    fn from(err: CallError) -> Self {
        ChannelError(err.to_string())
    }
}

/// One path segment, percent-encoded: room ids (`!a:b`), user ids and
/// transaction ids go into paths, and only unreserved characters pass.
pub(crate) fn segment(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(segment("@me:host/x?y"), "%40me%3Ahost%2Fx%3Fy");
        assert_eq!(segment("pincer-12-0"), "pincer-12-0");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
