//! The Telegram channel (skill `telegram`): the Bot API, by long polling.
//!
//! A group chat registered with `pincer groups add NAME --chat telegram:<id>`
//! is that group; the owner's private chat with the bot (`TELEGRAM_OWNER_ID`)
//! is the main group. Messages from chats nobody registered are dropped. An
//! update is confirmed to Telegram (by the next `offset`) only after the
//! daemon stored its message, so a crash loses none; it is stored under its
//! chat and message id, so one handed over again is not answered twice.
//!
//! A thin client of our own on hyper and rustls (the host's one TLS stack,
//! rustls on ring) rather than a bot framework: three methods (`getUpdates`,
//! `sendMessage`, `sendChatAction`) do not earn a dependency tree of their own.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use pincer_assistant::channel::MAIN_CHAT;
use pincer_assistant::channel::{BoxFuture, Channel, ChannelError, Inbox};
use pincer_assistant::registry::Env;

/// Telegram's limit on one message's text.
const MAX_TEXT_CHARS: usize = 4096;
/// Seconds a `getUpdates` call waits for news.
const POLL_SECONDS: u64 = 25;

/// Links the channel into a `pincer` build: the line `cargo xtask apply-skill
/// telegram` writes in `pincer/src/skills.rs`. The channel runs only where
/// `TELEGRAM_BOT_TOKEN` is set: linked but not configured, it stays off.
pub fn register(registry: &mut pincer_assistant::Registry) {
    registry.add_channel(TelegramChannel::from_env);
}

/// The channel.
pub struct TelegramChannel {
    base: String,
    owner: Option<i64>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl TelegramChannel {
    /// The channel, if `TELEGRAM_BOT_TOKEN` is set (`TELEGRAM_API_URL`
    /// defaults to the public Bot API; `TELEGRAM_OWNER_ID` maps the owner's
    /// private chat to the main group).
    pub fn from_env(env: Env<'_>) -> Option<Arc<dyn Channel>> {
        let token = env("TELEGRAM_BOT_TOKEN").filter(|t| !t.trim().is_empty())?;
        let api = env("TELEGRAM_API_URL").unwrap_or_else(|| "https://api.telegram.org".into());
        let owner = env("TELEGRAM_OWNER_ID").and_then(|id| id.trim().parse().ok());
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|err| tracing::error!("telegram: cannot set up TLS: {err}"))
            .ok()?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Some(Arc::new(Self {
            base: format!("{}/bot{}", api.trim_end_matches('/'), token.trim()),
            owner,
            client: Client::builder(TokioExecutor::new()).build(https),
        }))
    }

    /// One Bot API call. A "too many requests" answer is waited out (its
    /// `retry_after`, at most a minute) and the call made again, twice at
    /// most: a retried delivery would send the earlier parts of a long
    /// message again.
    async fn call(&self, method: &str, body: Value) -> Result<Value, ChannelError> {
        let mut attempts = 0;
        loop {
            match self.call_once(method, &body).await? {
                Ok(result) => return Ok(result),
                Err((Some(wait), _)) if attempts < 2 => {
                    attempts += 1;
                    tracing::warn!("telegram {method}: rate limited, waiting {wait}s");
                    tokio::time::sleep(Duration::from_secs(wait.min(60))).await;
                }
                Err((_, description)) => {
                    return Err(ChannelError(format!("telegram {method}: {description}")));
                }
            }
        }
    }

    /// The call's result, or the API's refusal: (`retry_after`, description).
    async fn call_once(
        &self,
        method: &str,
        body: &Value,
    ) -> Result<Result<Value, (Option<u64>, String)>, ChannelError> {
        let fail = |what: String| ChannelError(format!("telegram {method}: {what}"));
        let request = hyper::Request::post(format!("{}/{method}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|err| fail(err.to_string()))?;
        let response = tokio::time::timeout(
            Duration::from_secs(POLL_SECONDS + 15),
            self.client.request(request),
        )
        .await
        .map_err(|_| fail("timed out".into()))?
        .map_err(|err| fail(err.to_string()))?;
        let bytes = Limited::new(response.into_body(), 16 * 1024 * 1024)
            .collect()
            .await
            .map_err(|err| fail(err.to_string()))?
            .to_bytes();
        let reply: Value = serde_json::from_slice(&bytes).map_err(|err| fail(err.to_string()))?;
        if reply["ok"] != true {
            return Ok(Err((
                reply["parameters"]["retry_after"].as_u64(),
                reply["description"].as_str().unwrap_or("not ok").to_owned(),
            )));
        }
        Ok(Ok(reply["result"].clone()))
    }

    fn chat_of(&self, chat_id: &str) -> Option<i64> {
        if chat_id == MAIN_CHAT {
            return self.owner;
        }
        chat_id.strip_prefix("telegram:")?.parse().ok()
    }
}

impl Channel for TelegramChannel {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn owns(&self, chat_id: &str) -> bool {
        chat_id.starts_with("telegram:") || (self.owner.is_some() && chat_id == MAIN_CHAT)
    }

    fn run(&self, inbox: Arc<dyn Inbox>) -> BoxFuture<'_, Result<(), ChannelError>> {
        Box::pin(async move {
            let mut offset: i64 = 0;
            let mut backoff = Duration::from_secs(1);
            loop {
                let body = json!({"offset": offset, "timeout": POLL_SECONDS, "allowed_updates": ["message"]});
                let updates = match self.call("getUpdates", body).await {
                    Ok(updates) => {
                        backoff = Duration::from_secs(1);
                        updates
                    }
                    Err(err) => {
                        tracing::warn!("{err}; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        continue;
                    }
                };
                for update in updates.as_array().into_iter().flatten() {
                    let id = update["update_id"].as_i64().unwrap_or(offset);
                    let message = &update["message"];
                    if let (Some(text), Some(chat)) =
                        (message["text"].as_str(), message["chat"]["id"].as_i64())
                    {
                        let from = &message["from"];
                        let sender = from["username"]
                            .as_str()
                            .or(from["first_name"].as_str())
                            .unwrap_or("someone")
                            .to_owned();
                        let private_with_owner = message["chat"]["type"] == "private"
                            && from["id"].as_i64().is_some()
                            && from["id"].as_i64() == self.owner;
                        let target = if private_with_owner {
                            MAIN_CHAT.to_owned()
                        } else {
                            format!("telegram:{chat}")
                        };
                        // Under its chat and message id (update ids start
                        // over at random after a quiet week): a message
                        // handed over again (the offset not yet confirmed
                        // when the host stopped) is neither stored nor
                        // answered twice.
                        let accepted = match message["message_id"].as_i64() {
                            Some(number) => inbox.accept_from(
                                &format!("telegram:{chat}:{number}"),
                                &target,
                                &sender,
                                text,
                            ),
                            None => inbox.accept(&target, &sender, text).map(Some),
                        };
                        match accepted {
                            Ok(None) => tracing::debug!(
                                "telegram: a message from chat {chat} handed over again"
                            ),
                            Ok(Some(_)) => {
                                let _ = self
                                    .call(
                                        "sendChatAction",
                                        json!({"chat_id": chat, "action": "typing"}),
                                    )
                                    .await;
                            }
                            // A chat nobody registered: dropped, on purpose.
                            Err(err) => tracing::debug!(
                                "telegram: ignoring a message from chat {chat}: {err}"
                            ),
                        }
                    }
                    offset = offset.max(id + 1);
                }
            }
        })
    }

    fn deliver<'a>(
        &'a self,
        _id: i64,
        chat_id: &'a str,
        _sender: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelError>> {
        Box::pin(async move {
            let chat = self.chat_of(chat_id).ok_or_else(|| {
                ChannelError(format!("telegram: {chat_id} is not a Telegram chat"))
            })?;
            let chars: Vec<char> = text.chars().collect();
            for part in chars.chunks(MAX_TEXT_CHARS) {
                let part: String = part.iter().collect();
                self.call("sendMessage", json!({"chat_id": chat, "text": part}))
                    .await?;
            }
            Ok(())
        })
    }
}
