//! The per-container socket server: the model gateway and the host API.
//!
//! Each invocation gets its own Unix socket, created here and mounted into
//! its container. The gateway knows whose socket it is ([`Caller`]) because it
//! made it; nothing the agent writes can change that. Two things are served:
//! the host API under `/host/v1/` ([`crate::hostapi`]), and the model: it
//! forwards exactly one route, `POST /v1/messages`, to `<model_url>/v1/messages`, passing on only a
//! short list of harmless headers and adding the key itself: a credential the
//! agent sends (`Authorization`, `X-Api-Key`, cookies…) is dropped. The client
//! that talks to the model is plain hyper, which reads no proxy variables, so
//! the key cannot be steered through a proxy of the host's environment.
//!
//! The model route lives in `gateway_model.rs`. The body is not
//! forwarded as it came: [`crate::gateway_check`] checks it
//! against the owner's [`ModelPolicy`] (model, caps, no URL sources, no
//! server tools or MCP servers, allowed betas only) and the checked request
//! is what leaves. Every model request is audited (group, size, status;
//! never the key), a refused one with where and why.
//!
//! The gateway knows nothing about containers: it serves a socket path.

use std::convert::Infallible;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::budget::{Budget, Limits};
use crate::egress::Egress;
use crate::gateway_check::ModelPolicy;
use crate::group::GroupName;
use crate::hostapi;
use crate::store::{AuditRecord, Store};

/// The default largest model request body (`[limits] model_request_bytes`);
/// twice it bounds a model answer the gateway reads whole.
pub const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// The gateway could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The model URL is not a URL.
    #[error("invalid model URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// No key to give the model API.
    #[error(
        "ANTHROPIC_API_KEY is not set on the host, nor PINCER_MODEL_KEY (the gateway adds the key; agents never see it)"
    )]
    NoKey,
    /// TLS could not be set up.
    #[error("cannot set up TLS for the model API: {0}")]
    Tls(String),
    /// The socket could not be created.
    #[error("cannot serve the host socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The model API key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key; an empty one is no key.
    pub fn new(key: String) -> Result<Self, GatewayError> {
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err(GatewayError::NoKey);
        }
        Ok(Self(key))
    }

    /// The key itself, for the leak checks of tests and the egress guard.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;
pub(crate) type GatewayBody = BoxBody<Bytes, hyper::Error>;

/// Where model requests go, and with which key. One per host process.
#[derive(Debug)]
pub struct Upstream {
    pub(crate) client: HttpsClient,
    pub(crate) messages_url: Uri,
    pub(crate) key: ApiKey,
    pub(crate) provider: Option<Arc<dyn Provider>>,
    pub(crate) policy: ModelPolicy,
    pub(crate) budget: Budget,
}

/// A model API other than Anthropic's Messages API. The agent always speaks
/// the Messages API to the gateway; a provider translates each request to its
/// own API and each answer back, on the host. Provider skills implement it
/// and register it in [`provider`].
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The path after the model URL (e.g. `/v1/chat/completions`).
    fn path(&self) -> &'static str;
    /// The header that carries the key, and its value.
    fn credential(&self, key: &str) -> (HeaderName, String);
    /// A Messages API request body → the provider's.
    fn request(&self, messages_request: &[u8]) -> Result<Vec<u8>, String>;
    /// The provider's answer (status, body) → a Messages API answer.
    fn response(&self, status: u16, body: &[u8]) -> (u16, Vec<u8>);
}

/// The provider called `name` (`anthropic`: none, the Messages API as it is).
pub fn provider(name: &str) -> Result<Option<Arc<dyn Provider>>, GatewayError> {
    match name {
        "anthropic" => Ok(None),
        // Provider skills register here, one line each.
        other => Err(GatewayError::BadUrl {
            url: other.to_owned(),
            reason: "unknown model provider (provider skills add others)".into(),
        }),
    }
}

impl Upstream {
    /// A client for `<model_url>/v1/messages`.
    pub fn new(model_url: &str, key: ApiKey) -> Result<Self, GatewayError> {
        Self::with_provider(model_url, key, None)
    }

    /// A client for `<model_url><provider's path>`, translating through `provider`.
    pub fn with_provider(
        model_url: &str,
        key: ApiKey,
        provider: Option<Arc<dyn Provider>>,
    ) -> Result<Self, GatewayError> {
        let path = provider.as_ref().map_or("/v1/messages", |p| p.path());
        let url = format!("{}{path}", model_url.trim_end_matches('/'));
        let messages_url: Uri =
            url.parse()
                .map_err(|err: hyper::http::uri::InvalidUri| GatewayError::BadUrl {
                    url: model_url.into(),
                    reason: err.to_string(),
                })?;
        if !matches!(messages_url.scheme_str(), Some("http" | "https")) {
            return Err(GatewayError::BadUrl {
                url: model_url.into(),
                reason: "must be http:// or https://".into(),
            });
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|err| GatewayError::Tls(err.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            client,
            messages_url,
            key,
            provider,
            policy: ModelPolicy {
                model: crate::config::DEFAULT_MODEL.into(),
                models: Vec::new(),
                group_models: Default::default(),
                max_tokens: crate::config::DEFAULT_MAX_TOKENS,
                max_requests: crate::config::DEFAULT_MAX_TURNS + 1,
                thinking_budget: 0,
                betas: Vec::new(),
            },
            budget: Budget::default(),
        })
    }

    /// The same upstream, holding requests to the owner's `budget`.
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// The same upstream, checking requests against `policy` (the default:
    /// the defaults of `config`: model, tokens and turns; no thinking, no betas).
    pub fn with_policy(mut self, policy: ModelPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The key (for leak checks).
    pub fn key(&self) -> &ApiKey {
        &self.key
    }
}

/// Who is on the other end of a socket: decided by the host when it made the socket.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The group the container runs for.
    pub group: GroupName,
    /// The invocation.
    pub invocation_id: String,
}

/// A served socket; stops serving and removes the socket when dropped.
#[derive(Debug)]
pub struct Gateway {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Serves `caller`'s socket at `path` with the host's `services`.
    pub fn serve(
        path: &Path,
        services: Arc<Services>,
        caller: Caller,
    ) -> Result<Self, GatewayError> {
        let fail = |source| GatewayError::Socket {
            path: path.to_owned(),
            source,
        };
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(fail(err)),
        }
        let listener = UnixListener::bind(path).map_err(fail)?;
        // The host's own user only; `mounts` hands it to the container's user
        // (still 0600) when it prepares the invocation's mounts.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        let shared = Arc::new(Shared {
            services,
            caller,
            model_turn: tokio::sync::Mutex::new(0),
            buffered: Arc::new(tokio::sync::Mutex::new(())),
            messages_sent: tokio::sync::Mutex::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(Self {
            path: path.to_owned(),
            task,
        })
    }

    /// The socket's path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the host offers on every socket: the model, the store (host API and
/// audit), and the egress proxy.
#[derive(Debug)]
pub struct Services {
    /// The model API.
    pub upstream: Arc<Upstream>,
    /// State and audit.
    pub store: Arc<Store>,
    /// The way out.
    pub egress: Arc<Egress>,
    /// What one invocation may make the host do.
    pub limits: Limits,
}

/// What every connection of one socket shares.
pub(crate) struct Shared {
    pub(crate) services: Arc<Services>,
    pub(crate) caller: Caller,
    /// Model requests of this invocation the model answered (the socket is
    /// the invocation's). Held across each request, so that an agent firing
    /// many at once gets them one at a time: the count and the budget are
    /// checked against what the answers before them cost.
    pub(crate) model_turn: tokio::sync::Mutex<u32>,
    /// Held across each egress exchange the host buffers (plain HTTP
    /// through the proxy, `web_fetch`): one at a time per invocation, so
    /// that what they cost the host's memory does not grow with connections.
    pub(crate) buffered: Arc<tokio::sync::Mutex<()>>,
    /// Messages this invocation has sent to chats.
    pub(crate) messages_sent: tokio::sync::Mutex<u32>,
}

async fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    // Connections live in this set: aborting the loop aborts them all.
    let mut connections = JoinSet::new();
    // A connection holds a slot from before it is accepted until it ends (a
    // CONNECT tunnel takes its slot along): while none is free, new ones
    // wait in the kernel's queue, holding no descriptor of the host's.
    let slots = Arc::new(Semaphore::new(shared.services.limits.connections.max(1)));
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!("host socket accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = Slot {
            _held: Arc::new(slot),
        };
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                let shared = Arc::clone(&shared);
                request.extensions_mut().insert(slot.clone());
                async move { Ok::<_, Infallible>(route(request, &shared).await) }
            });
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), service)
                // CONNECT tunnels take over the connection.
                .with_upgrades()
                .await
            {
                tracing::debug!("host socket connection ended: {err}");
            }
        });
    }
}

/// One of an invocation's connection slots; a request carries its
/// connection's, so that a tunnel the request opens keeps it while it lasts.
#[derive(Clone)]
pub(crate) struct Slot {
    _held: Arc<OwnedSemaphorePermit>,
}

async fn route(request: Request<Incoming>, shared: &Shared) -> Response<GatewayBody> {
    let is_connect = request.method() == Method::CONNECT;
    if is_connect || request.uri().scheme().is_some() {
        // CONNECT, or an absolute URI (plain HTTP through the proxy). Decided
        // on a task of its own: a client that hangs up mid-decision must not
        // cancel the decision's audit entry.
        let egress = Arc::clone(&shared.services.egress);
        let caller = shared.caller.clone();
        // Taken here and held by the task: a client that hangs up does not
        // free it while the task still holds what it buffered.
        let buffered = Arc::clone(&shared.buffered);
        let one_at_a_time = match is_connect {
            true => None,
            false => Some(buffered.lock_owned().await),
        };
        let decision = tokio::spawn(async move {
            let _one_at_a_time = one_at_a_time;
            if is_connect {
                egress.connect(caller, request).await
            } else {
                egress.forward(&caller, request).await
            }
        });
        return decision.await.unwrap_or_else(|err| {
            tracing::error!("egress task failed: {err}");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "egress failed",
            )
        });
    }
    let path = request.uri().path().to_owned();
    if let Some(action) = path.strip_prefix(hostapi::PREFIX) {
        return host_api(request, action, shared).await;
    }
    if path != "/v1/messages" {
        // Audited without the path: an agent chooses it, and the audit never
        // holds what might be a secret.
        shared.services.store.audit_or_log(AuditRecord {
            group: Some(shared.caller.group.as_str()),
            kind: "gateway",
            action: "unknown route",
            target: Some(&shared.caller.invocation_id),
            allowed: Some(false),
            reason: Some("the host serves POST /v1/messages and /host/v1/ only"),
            ..Default::default()
        });
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "the host serves POST /v1/messages and /host/v1/ only",
        );
    }
    crate::gateway_model::serve(request, shared).await
}

async fn host_api(
    request: Request<Incoming>,
    action: &str,
    shared: &Shared,
) -> Response<GatewayBody> {
    // The action is the agent's words, and goes into the audit.
    let action = if shared
        .services
        .egress
        .guard()
        .finds_secret_in(action.as_bytes())
    {
        "(an action naming a secret)"
    } else {
        action
    };
    let refuse = |status: StatusCode, message: &str| {
        shared.services.store.audit_or_log(AuditRecord {
            group: Some(shared.caller.group.as_str()),
            kind: "host_api",
            action,
            allowed: Some(false),
            reason: Some(message),
            ..Default::default()
        });
        json_response(status, &serde_json::json!({"ok": false, "error": message}))
    };
    if request.method() != Method::POST {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body = match Limited::new(request.into_body(), hostapi::MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let (status, message) = if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "host API requests are limited to {} bytes",
                        hostapi::MAX_BODY_BYTES
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {err}"),
                )
            };
            return refuse(status, &message);
        }
    };
    let services = &shared.services;
    // What an agent sends to a chat or the web leaves the host: same guard
    // as egress, before anything of the body can reach the audit.
    if services.egress.guard().finds_secret_in(&body) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the request carries a secret the host knows",
        );
    }
    if action == "web_fetch" {
        let _one_at_a_time = shared.buffered.lock().await;
        let (status, body) = services.egress.web_fetch(&shared.caller, &body).await;
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(status, &body);
    }
    // Messages reach the owner's chats: how many one invocation sends is
    // counted here, on its socket (held across the call, so a burst of
    // parallel sends cannot slip past the count).
    let mut sent = match action {
        "send_message" => Some(shared.messages_sent.lock().await),
        _ => None,
    };
    if let Some(sent) = &sent
        && **sent >= services.limits.messages_per_invocation
    {
        let message = format!(
            "this invocation has sent {} messages, the most it may ([limits] messages_per_invocation)",
            **sent
        );
        return refuse(StatusCode::TOO_MANY_REQUESTS, &message);
    }
    let reply = hostapi::handle(
        &services.store,
        &services.limits,
        &shared.caller,
        action,
        &body,
    );
    if let Some(sent) = &mut sent
        && reply.status == 200
    {
        **sent += 1;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &reply.body)
}

/// An error in the Messages API's own shape, so any client understands it.
pub(crate) fn error_response(
    status: StatusCode,
    kind: &str,
    message: &str,
) -> Response<GatewayBody> {
    json_response(
        status,
        &serde_json::json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<GatewayBody> {
    full_response(status, "application/json", Bytes::from(body.to_string()))
}

/// A whole response with a body in hand: what every route of the socket
/// answers when it does not stream.
pub(crate) fn full_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
) -> Response<GatewayBody> {
    let mut response = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("sk-secret".into()).unwrap();
        assert!(!format!("{key:?}").contains("sk-secret"));
        assert!(matches!(ApiKey::new("  ".into()), Err(GatewayError::NoKey)));
    }

    #[test]
    fn providers_are_registered_by_name() {
        assert!(provider("anthropic").unwrap().is_none());
        let err = provider("made-up").unwrap_err().to_string();
        assert!(err.contains("unknown model provider"), "{err}");
    }

    #[test]
    fn upstream_urls_are_checked() {
        let key = ApiKey::new("k".into()).unwrap();
        assert!(Upstream::new("http://127.0.0.1:1/", key.clone()).is_ok());
        assert!(Upstream::new("ftp://x", key.clone()).is_err());
        assert!(Upstream::new("not a url", key).is_err());
    }
}
