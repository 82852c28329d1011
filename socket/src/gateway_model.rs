//! The model route of the host socket, `POST /v1/messages`: the request is
//! read (bounded as it streams), checked against the owner's policy
//! ([`crate::gateway_check`]), counted against the invocation's turns and
//! the owner's budgets, forwarded with the key, and its answer's usage
//! recorded. Every request is audited, a refused one with why.
//!
//! An invocation's requests are taken one at a time (its socket's
//! `model_turn` lock is held across each), so the count and the budget see
//! what the answers before them cost.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::caller::Caller;
use crate::response::GatewayBody;
use crate::response::{error_response, full_response};
use crate::services::{Services, Shared};
use crate::upstream::{MAX_REQUEST_BYTES, Upstream};
use pincer_store::{AuditRecord, Store, Usage};

/// The Messages API version used when the agent names none.
const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";
/// The request headers passed on to the model API; everything else is dropped.
const FORWARDED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
];
/// Response headers that describe the hop, not the message.
const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "set-cookie",
    "upgrade",
];

/// A request the gateway answers itself, with why.
struct Refused {
    status: StatusCode,
    kind: &'static str,
    message: String,
    bytes: Option<usize>,
}

impl Refused {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            bytes: None,
        }
    }

    fn of(mut self, bytes: usize) -> Self {
        self.bytes = Some(bytes);
        self
    }
}

pub(crate) async fn serve(request: Request<Incoming>, shared: &Shared) -> Response<GatewayBody> {
    let (services, caller) = (&*shared.services, &shared.caller);
    let (upstream, store) = (&*services.upstream, &*services.store);
    let refuse = |refused: Refused| {
        audit_model(
            store,
            caller,
            refused.status.as_u16(),
            refused.bytes,
            Some(&refused.message),
        );
        error_response(refused.status, refused.kind, &refused.message)
    };
    // Taken before the body is read: an agent firing many large requests at
    // once makes the host hold one of them, not all.
    let mut answered = shared.model_turn.lock().await;
    let limit = services.limits.model_request_bytes;
    let (outgoing, body, betas) = match read(request, upstream, caller, limit).await {
        Ok(read) => read,
        Err(refused) => return refuse(refused),
    };
    let size = body.len();
    let (body, model) = match checked(&body, &betas, services, caller) {
        Ok(checked) => (Bytes::from(checked.body), checked.model),
        Err(refused) => return refuse(refused.of(size)),
    };
    // Turns and money are counted here, where the agent cannot lie about them.
    if let Err(refused) = may_ask(*answered, upstream, store, caller) {
        return refuse(refused.of(size));
    }
    let body = match &upstream.provider {
        None => body,
        Some(provider) => match provider.request(&body) {
            Ok(translated) => Bytes::from(translated),
            Err(err) => {
                let message = format!("cannot translate the request for the model provider: {err}");
                return refuse(
                    Refused::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
                        .of(size),
                );
            }
        },
    };
    let forwarded = match outgoing.body(Full::new(body)) {
        Ok(request) => request,
        Err(err) => {
            let message = format!("cannot forward the request: {err}");
            return refuse(
                Refused::new(StatusCode::BAD_REQUEST, "invalid_request_error", message).of(size),
            );
        }
    };
    let result = upstream.client.request(forwarded).await;
    let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(502);
    tracing::info!(group = %caller.group, invocation = %caller.invocation_id, bytes = size, status, "model request");
    audit_model(store, caller, status, Some(size), None);
    let response = match result {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(group = %caller.group, invocation = %caller.invocation_id, "model API unreachable: {err}");
            let message = format!("pincer gateway: cannot reach the model API: {err}");
            return error_response(StatusCode::BAD_GATEWAY, "api_error", &message);
        }
    };
    let (response, usage) = answer(response, upstream).await;
    if let Some(usage) = usage {
        *answered += 1;
        if let Err(err) =
            store.record_usage(caller.group.as_str(), &caller.invocation_id, &model, usage)
        {
            tracing::error!("cannot record model usage: {err}");
        }
    }
    response
}

/// The request's body (bounded as it streams: refused past the limit, not
/// buffered), the outgoing request's head (allowed headers and the host's
/// credential), and the `anthropic-beta` values the agent sent.
async fn read(
    request: Request<Incoming>,
    upstream: &Upstream,
    caller: &Caller,
    limit: usize,
) -> Result<(hyper::http::request::Builder, Bytes, Vec<String>), Refused> {
    let too_large = || {
        let message = format!("requests to the model are limited to {limit} bytes");
        Refused::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", message)
    };
    if request.method() != Method::POST {
        let message = "use POST /v1/messages";
        return Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            message,
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(declared) = declared.filter(|n| *n > limit) {
        tracing::warn!(group = %caller.group, invocation = %caller.invocation_id, "model request refused: too large");
        return Err(too_large().of(declared));
    }
    let betas = request
        .headers()
        .get_all("anthropic-beta")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let mut outgoing = Request::builder()
        .method(Method::POST)
        .uri(upstream.messages_url.clone());
    for name in FORWARDED_HEADERS {
        for value in request.headers().get_all(*name) {
            outgoing = outgoing.header(*name, value);
        }
    }
    if !request.headers().contains_key("anthropic-version") {
        outgoing = outgoing.header("anthropic-version", DEFAULT_ANTHROPIC_VERSION);
    }
    // The credential the model API expects: Anthropic's header, or the provider's.
    let (name, value) = match &upstream.provider {
        None => (
            HeaderName::from_static("x-api-key"),
            upstream.key.expose().to_owned(),
        ),
        Some(provider) => provider.credential(upstream.key.expose()),
    };
    let Ok(mut value) = HeaderValue::from_str(&value) else {
        let message = "the host's model key is not a valid header value";
        return Err(Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            message,
        ));
    };
    value.set_sensitive(true);
    outgoing = outgoing.header(name, value);
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok((outgoing, collected.to_bytes(), betas)),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(err) => {
            let message = format!("cannot read the request body: {err}");
            Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                message,
            ))
        }
    }
}

/// The body as the owner's policy allows it, re-serialised.
fn checked(
    body: &[u8],
    betas: &[String],
    services: &Services,
    caller: &Caller,
) -> Result<crate::gateway_check::Checked, Refused> {
    let betas: Vec<&str> = betas.iter().map(String::as_str).collect();
    let policy = &services.upstream.policy;
    match crate::gateway_check::check(body, &betas, caller.group.as_str(), policy) {
        Ok(checked) => Ok(checked),
        Err(refusal) => {
            // A refusal quotes the request; what is audited never holds a secret.
            let refusal = if services
                .egress
                .guard()
                .finds_secret_in(refusal.to_string().as_bytes())
            {
                "the request was refused, and quoting it would quote a secret".to_owned()
            } else {
                refusal.to_string()
            };
            tracing::warn!(group = %caller.group, invocation = %caller.invocation_id, "model request refused: {refusal}");
            let message = format!("pincer gateway: {refusal}");
            Err(Refused::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                message,
            ))
        }
    }
}

/// Whether the invocation may ask again: under `max_turns` + 1 answered
/// requests (the main chat is told, once, when it is not) and the owner's
/// budgets.
fn may_ask(
    answered: u32,
    upstream: &Upstream,
    store: &Store,
    caller: &Caller,
) -> Result<(), Refused> {
    let forbidden = |message: String| {
        Refused::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            format!("pincer gateway: {message}"),
        )
    };
    if answered >= upstream.policy.max_requests {
        let message = format!(
            "group {}'s invocation has made its {} model requests (max_turns, and one for a compaction)",
            caller.group, upstream.policy.max_requests
        );
        store.tell_main_once(
            "max_turns",
            &caller.invocation_id,
            &format!("Stopped: {message}."),
        );
        return Err(forbidden(message));
    }
    upstream
        .budget
        .check(store, caller.group.as_str())
        .map_err(|err| forbidden(err.to_string()))
}

/// The model's answer, read whole (requests are never streamed), translated
/// back by the provider if there is one; with the usage to count when it
/// is a success (an answer without `usage` counts as nothing, and is logged).
async fn answer(
    response: Response<Incoming>,
    upstream: &Upstream,
) -> (Response<GatewayBody>, Option<Usage>) {
    let (mut parts, body) = response.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES * 2).collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) => {
            let message = format!("pincer gateway: cannot read the model's answer: {err}");
            return (
                error_response(StatusCode::BAD_GATEWAY, "api_error", &message),
                None,
            );
        }
    };
    let (status, body) = match &upstream.provider {
        None => (parts.status, body),
        Some(provider) => {
            let (status, body) = provider.response(parts.status.as_u16(), &body);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, Bytes::from(body))
        }
    };
    let usage = status.is_success().then(|| usage_of(&body));
    if upstream.provider.is_some() {
        return (full_response(status, "application/json", body), usage);
    }
    for name in HOP_HEADERS {
        parts.headers.remove(*name);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.status = status;
    let body = Full::new(body).map_err(|never| match never {}).boxed();
    (Response::from_parts(parts, body), usage)
}

fn usage_of(body: &[u8]) -> Usage {
    let answer: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let usage = &answer["usage"];
    if !usage.is_object() {
        tracing::warn!("a model answer without usage");
    }
    let n = |key: &str| usage[key].as_u64().unwrap_or(0);
    Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_read_tokens: n("cache_read_input_tokens"),
        cache_write_tokens: n("cache_creation_input_tokens"),
    }
}

/// One model request in the audit: forwarded (`refused` is `None`) or
/// refused by the gateway, with why.
fn audit_model(
    store: &Store,
    caller: &Caller,
    status: u16,
    bytes: Option<usize>,
    refused: Option<&str>,
) {
    store.audit_or_log(AuditRecord {
        group: Some(caller.group.as_str()),
        kind: "model",
        action: "POST /v1/messages",
        target: Some(&caller.invocation_id),
        allowed: refused.map(|_| false),
        reason: refused,
        detail: Some(serde_json::json!({"bytes": bytes, "status": status}).to_string()),
    });
}
