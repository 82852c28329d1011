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

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::hostapi;
use pincer_store::AuditRecord;

pub use crate::caller::Caller;
use crate::response::{GatewayBody, Slot, error_response, json_response};
pub use crate::services::Services;
use crate::services::Shared;
pub use crate::upstream::{ApiKey, GatewayError, MAX_REQUEST_BYTES, Provider, Upstream};

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
