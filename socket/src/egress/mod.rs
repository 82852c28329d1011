//! Network egress: the container's only way out, decided per request.
//!
//! Containers have no network at all (`network_mode: none`). What they can
//! reach goes through the host socket: HTTP `CONNECT host:port` (for HTTPS and
//! anything else over TCP), plain HTTP with an absolute URI, and the runner's
//! `web_fetch` host tool. Each request is checked against the calling group's
//! allowlist ([`policy`]), the name is resolved here on the host and the
//! request goes only to the addresses that were checked, the [`LeakGuard`]
//! refuses anything that carries a secret the host knows, and every attempt,
//! allowed or denied, is audited with host, port, bytes and duration.
//!
//! This module knows nothing about containers or sockets: it serves requests
//! handed to it by the gateway, for a caller the gateway vouches for.

mod fetch;
mod leak;
pub mod policy;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub use leak::LeakGuard;
pub use policy::{Allowed, EgressRule};

use crate::caller::Caller;
use pincer_store::{AuditRecord, Store};

/// How long connecting to an allowed destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a plain-HTTP or `web_fetch` exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest plain-HTTP request body forwarded (it is checked for secrets
/// whole, so it is held whole: one at a time per invocation).
pub const MAX_FORWARD_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// The largest plain-HTTP response passed back.
pub const MAX_FORWARD_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// How much of a page `web_fetch` gives the model.
pub const MAX_FETCH_BYTES: usize = 1024 * 1024;
/// Request headers never forwarded (hop-by-hop, or meant for the proxy).
const DROPPED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

use crate::response::{GatewayBody as Body, Slot, full_response};

/// The egress proxy of one host process.
pub struct Egress {
    store: Arc<Store>,
    guard: Arc<LeakGuard>,
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").finish_non_exhaustive()
    }
}

/// Why the TLS client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up TLS for egress: {0}")]
pub struct EgressError(String);

impl Egress {
    /// An egress proxy deciding with `store`'s allowlists and guarding `guard`'s secrets.
    pub fn new(store: Arc<Store>, guard: LeakGuard) -> Result<Self, EgressError> {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|err| EgressError(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            store,
            guard: Arc::new(guard),
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The leak guard (the host API uses it on outgoing messages too).
    pub fn guard(&self) -> &LeakGuard {
        &self.guard
    }

    /// The group's rules, as stored (a stored rule that no longer parses is
    /// skipped: it allows nothing).
    pub fn rules(&self, group: &str) -> Result<Vec<EgressRule>, String> {
        let stored = self
            .store
            .egress_rules(group)
            .map_err(|err| err.to_string())?;
        Ok(stored
            .iter()
            .filter_map(|text| match text.parse() {
                Ok(rule) => Some(rule),
                Err(err) => {
                    tracing::warn!(group, "ignoring a stored egress rule: {err}");
                    None
                }
            })
            .collect())
    }

    /// Decides `host:port` for `group`: the rule, then the name resolved here.
    pub async fn decide(&self, group: &str, host: &str, port: u16) -> Result<Allowed, String> {
        let rules = self.rules(group)?;
        policy::match_rule(&rules, host, port)?;
        let name = policy::normalise_host(host);
        let resolved: Vec<IpAddr> = match name.parse::<IpAddr>() {
            Ok(address) => vec![address],
            Err(_) => tokio::net::lookup_host((name.as_str(), port))
                .await
                .map_err(|err| format!("cannot resolve {name}: {err}"))?
                .map(|socket| socket.ip())
                .collect(),
        };
        policy::check_addresses(&rules, host, port, &resolved)
    }

    fn audit(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        allowed: bool,
        reason: &str,
        detail: Value,
    ) {
        self.store.audit_or_log(AuditRecord {
            group: Some(caller.group.as_str()),
            kind: "egress",
            action,
            target: Some(target),
            allowed: Some(allowed),
            reason: Some(reason),
            detail: Some(detail.to_string()),
        });
    }

    /// Audits a request refused before any destination was decided (it was
    /// malformed); the target, as the agent wrote it, unless it holds a
    /// secret the host knows.
    fn refuse_malformed(&self, caller: &Caller, action: &str, target: Option<&str>, reason: &str) {
        let target = match target {
            Some(target) if !self.guard().finds_secret_in(target.as_bytes()) => target,
            Some(_) => "(a target naming a secret)",
            None => "-",
        };
        self.audit(caller, action, target, false, reason, json!({}));
    }

    /// Checks what the agent wrote so far for secrets and decides the
    /// destination; audits a refusal. Nothing is connected yet.
    async fn allow(
        &self,
        caller: &Caller,
        action: &str,
        host: &str,
        port: u16,
        outbound: &[&[u8]],
    ) -> Result<Allowed, (StatusCode, String)> {
        let target = format!("{}:{port}", policy::normalise_host(host));
        self.no_secret_in(caller, action, &target, outbound)?;
        self.decide(caller.group.as_str(), host, port)
            .await
            .map_err(|reason| {
                self.audit(caller, action, &target, false, &reason, json!({}));
                (StatusCode::FORBIDDEN, reason)
            })
    }

    /// Refuses (and audits) what carries a secret the host knows.
    fn no_secret_in(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        outbound: &[&[u8]],
    ) -> Result<(), (StatusCode, String)> {
        if !outbound
            .iter()
            .any(|bytes| self.guard.finds_secret_in(bytes))
        {
            return Ok(());
        }
        let reason = "the request carries a secret the host knows";
        self.audit(caller, action, target, false, reason, json!({}));
        Err((StatusCode::FORBIDDEN, reason.into()))
    }

    /// Connects to the first address of `allowed` that answers; audits a failure.
    async fn reach(
        &self,
        caller: &Caller,
        action: &str,
        target: &str,
        allowed: &Allowed,
    ) -> Result<TcpStream, (StatusCode, String)> {
        let mut last_error = String::from("no address");
        for address in &allowed.addresses {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(err)) => last_error = format!("{address}: {err}"),
                Err(_) => last_error = format!("{address}: timed out"),
            }
        }
        let reason = format!(
            "allowed by {}, but cannot connect: {last_error}",
            allowed.rule
        );
        self.audit(caller, action, target, false, &reason, json!({}));
        Err((StatusCode::BAD_GATEWAY, reason))
    }

    /// Checks, decides and connects; audits a refusal.
    async fn open(
        &self,
        caller: &Caller,
        action: &str,
        host: &str,
        port: u16,
        outbound: &[&[u8]],
    ) -> Result<(TcpStream, Allowed), (StatusCode, String)> {
        let allowed = self.allow(caller, action, host, port, outbound).await?;
        let target = format!("{}:{port}", policy::normalise_host(host));
        let stream = self.reach(caller, action, &target, &allowed).await?;
        Ok((stream, allowed))
    }

    /// `CONNECT host:port`: a TCP tunnel to an allowed destination.
    pub async fn connect(
        self: Arc<Self>,
        caller: Caller,
        mut request: Request<Incoming>,
    ) -> Response<Body> {
        let authority = request.uri().authority().cloned();
        let Some((authority, port)) = authority
            .as_ref()
            .and_then(|a| a.port_u16().map(|port| (a.clone(), port)))
        else {
            let reason = "CONNECT needs host:port";
            let written = authority.as_ref().map(|a| a.as_str());
            self.refuse_malformed(&caller, "CONNECT", written, reason);
            return text(StatusCode::BAD_REQUEST, reason);
        };
        let head = head_bytes(request.uri(), request.headers());
        let (mut upstream, allowed) = match self
            .open(&caller, "CONNECT", authority.host(), port, &[&head])
            .await
        {
            Ok(opened) => opened,
            Err((status, reason)) => return text(status, &reason),
        };
        let target = format!("{}:{port}", policy::normalise_host(authority.host()));
        let started = Instant::now();
        // The tunnel outlives the request: it keeps its connection's slot.
        let slot = request.extensions_mut().remove::<Slot>();
        // Written when the tunnel opens, and again with its figures when it
        // closes: a tunnel still open when the host dies is on record.
        self.audit(
            &caller,
            "CONNECT",
            &target,
            true,
            &format!("tunnel opened, allowed by {}", allowed.rule),
            json!({"phase": "opened", "address": allowed.addresses.first().map(|a| a.to_string())}),
        );
        tokio::spawn(async move {
            let _slot = slot;
            match hyper::upgrade::on(&mut request).await {
                Ok(upgraded) => {
                    let mut client = TokioIo::new(upgraded);
                    let (up, down) = tokio::io::copy_bidirectional(&mut client, &mut upstream)
                        .await
                        .unwrap_or((0, 0));
                    self.audit(
                        &caller,
                        "CONNECT",
                        &target,
                        true,
                        &format!("allowed by {}", allowed.rule),
                        json!({"phase": "closed", "bytes_up": up, "bytes_down": down, "duration_ms": started.elapsed().as_millis() as u64,
                               "address": allowed.addresses.first().map(|a| a.to_string())}),
                    );
                }
                Err(err) => self.audit(
                    &caller,
                    "CONNECT",
                    &target,
                    true,
                    &format!("tunnel not established: {err}"),
                    json!({}),
                ),
            }
        });
        full_response(StatusCode::OK, "application/octet-stream", Bytes::new())
    }

    /// Plain HTTP with an absolute URI (`GET http://host/path`), forwarded.
    pub async fn forward(&self, caller: &Caller, request: Request<Incoming>) -> Response<Body> {
        let uri = request.uri().clone();
        let method = request.method().as_str().to_owned();
        let written = uri.authority().map(|a| a.as_str().to_owned());
        let refuse = |status: StatusCode, reason: &str| {
            self.refuse_malformed(caller, &method, written.as_deref(), reason);
            text(status, reason)
        };
        if uri.scheme_str() != Some("http") {
            return refuse(
                StatusCode::BAD_REQUEST,
                "only http:// is forwarded; use CONNECT for https",
            );
        }
        let Some(authority) = uri.authority().cloned() else {
            return refuse(StatusCode::BAD_REQUEST, "the URI has no host");
        };
        let port = authority.port_u16().unwrap_or(80);
        let head = head_bytes(&uri, request.headers());
        let (parts, body) = request.into_parts();
        let action = parts.method.as_str().to_owned();
        let target = format!("{}:{port}", policy::normalise_host(authority.host()));
        // Decided on the request line and headers: a destination that is
        // not allowed costs the host no body.
        let allowed = match self
            .allow(caller, &action, authority.host(), port, &[&head])
            .await
        {
            Ok(allowed) => allowed,
            Err((status, reason)) => return text(status, &reason),
        };
        let body = match Limited::new(body, MAX_FORWARD_REQUEST_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large for the proxy",
                );
            }
        };
        if let Err((status, reason)) = self.no_secret_in(caller, &action, &target, &[&body]) {
            return text(status, &reason);
        }
        let stream = match self.reach(caller, &action, &target, &allowed).await {
            Ok(stream) => stream,
            Err((status, reason)) => return text(status, &reason),
        };
        let started = Instant::now();
        let mut outbound = Request::builder()
            .method(parts.method)
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        for (name, value) in &parts.headers {
            if !DROPPED_HEADERS.contains(&name.as_str()) && name != header::HOST {
                outbound = outbound.header(name, value);
            }
        }
        outbound = outbound.header(header::HOST, authority.as_str());
        let sent = body.len();
        let result = match outbound.body(Full::new(body)) {
            Ok(outbound) => exchange(stream, outbound, MAX_FORWARD_RESPONSE_BYTES).await,
            Err(err) => Err(err.to_string()),
        };
        match result {
            Ok((status, headers, body, _)) => {
                self.audit(
                    caller,
                    &action,
                    &target,
                    true,
                    &format!("allowed by {}", allowed.rule),
                    json!({"bytes_up": sent, "bytes_down": body.len(), "status": status.as_u16(),
                           "duration_ms": started.elapsed().as_millis() as u64}),
                );
                let mut response =
                    Response::new(Full::new(body).map_err(|never| match never {}).boxed());
                *response.status_mut() = status;
                for (name, value) in &headers {
                    if !DROPPED_HEADERS.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
                        response.headers_mut().append(name, value.clone());
                    }
                }
                response
            }
            Err(reason) => {
                self.audit(
                    caller,
                    &action,
                    &target,
                    true,
                    &format!("exchange failed: {reason}"),
                    json!({}),
                );
                text(StatusCode::BAD_GATEWAY, &reason)
            }
        }
    }
}

/// The request line and header values, for the leak guard.
fn head_bytes(uri: &Uri, headers: &HeaderMap) -> Vec<u8> {
    let mut head = uri.to_string().into_bytes();
    for (name, value) in headers {
        head.push(b'\n');
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
    }
    head
}

/// One HTTP/1.1 exchange over an already-connected stream; the response body
/// is read up to `limit` bytes (the rest is dropped and `truncated` says so).
async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    limit: usize,
) -> Result<(StatusCode, HeaderMap, Bytes, bool), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let work = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| err.to_string())?;
        let driver = tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|err| err.to_string())?;
        let (parts, mut body) = response.into_parts();
        let mut collected = Vec::new();
        let mut truncated = false;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| err.to_string())?;
            if let Ok(data) = frame.into_data() {
                let room = limit.saturating_sub(collected.len());
                collected.extend_from_slice(&data[..data.len().min(room)]);
                if data.len() > room {
                    truncated = true;
                    break;
                }
            }
        }
        driver.abort();
        Ok((
            parts.status,
            parts.headers,
            Bytes::from(collected),
            truncated,
        ))
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, work)
        .await
        .map_err(|_| "timed out".to_owned())?
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    full_response(
        status,
        "text/plain; charset=utf-8",
        Bytes::from(format!("pincer egress: {message}\n")),
    )
}
