//! The body of the `host_socket` target (see `fuzz_targets/host_socket.rs`).

use std::convert::Infallible;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use pincer_socket::egress::MAX_FORWARD_REQUEST_BYTES;
use pincer_socket::egress::policy;
use pincer_socket::gateway::MAX_REQUEST_BYTES;
use pincer_socket::gateway_check::{self, ModelPolicy};
use pincer_socket::hostapi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::egress_request::{self, check_match, head_bytes};
use crate::host_api_body::{self, GROUP, check_reply};

/// The gateway's read buffer (`gateway.rs`: `max_buf_size(64 * 1024)`).
const MAX_BUF_SIZE: usize = 64 * 1024;

struct World {
    runtime: tokio::runtime::Runtime,
    host: host_api_body::World,
    policy: ModelPolicy,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World {
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
        host: host_api_body::new_world("host_socket"),
        // As the gateway tests' owner allows (`tests/support/mod.rs`).
        policy: ModelPolicy {
            model: "m".into(),
            models: vec!["untranslatable".into()],
            group_models: Default::default(),
            max_tokens: 8192,
            max_requests: 31,
            thinking_budget: 0,
            betas: vec!["tools-2024".into()],
        },
    })
}

/// `data` is what a container writes to its socket (then it shuts its
/// side); the host's answers are read until the host closes.
pub fn fuzz(data: &[u8]) {
    let world = world();
    world.runtime.block_on(async {
        let (container, host) = tokio::io::duplex(MAX_BUF_SIZE);
        let service = hyper::service::service_fn(move |request| async move {
            Ok::<_, Infallible>(route(request, world).await)
        });
        let serve = async {
            // The result is the connection's end, well or badly: either is fine.
            let _ = hyper::server::conn::http1::Builder::new()
                .max_buf_size(MAX_BUF_SIZE)
                // Not the gateway's: its clients wait for their answers with
                // their side open, this one shuts its side once it has
                // written everything. Without this, hyper would take that
                // end for a client gone and drop the request in flight.
                .half_close(true)
                .serve_connection(TokioIo::new(host), service)
                .with_upgrades()
                .await;
        };
        let (mut answers, mut requests) = tokio::io::split(container);
        let write = async move {
            // The host may close first: then the rest is not read.
            let _ = requests.write_all(data).await;
            let _ = requests.shutdown().await;
        };
        let read = async move {
            let mut answered = Vec::new();
            let _ = answers.read_to_end(&mut answered).await;
        };
        tokio::join!(serve, write, read);
    });
}

/// `gateway::route`, for what it decides without the network.
async fn route(request: Request<Incoming>, world: &World) -> Response<Full<Bytes>> {
    let is_connect = request.method() == Method::CONNECT;
    if is_connect || request.uri().scheme().is_some() {
        return egress(request, is_connect).await;
    }
    let path = request.uri().path().to_owned();
    if let Some(action) = path.strip_prefix(hostapi::PREFIX) {
        return host_api(request, action, world).await;
    }
    if path != "/v1/messages" {
        return answer(StatusCode::NOT_FOUND, "unknown route");
    }
    model(request, world).await
}

/// `Egress::connect` and `Egress::forward` up to the name's resolution:
/// the target, the body's bound, the leak guard and the allowlist.
async fn egress(request: Request<Incoming>, is_connect: bool) -> Response<Full<Bytes>> {
    let checks = egress_request::world();
    let uri = request.uri().clone();
    let head = head_bytes(&uri, request.headers());
    if !is_connect && uri.scheme_str() != Some("http") {
        return answer(StatusCode::BAD_REQUEST, "only http:// is forwarded");
    }
    let Some(authority) = uri.authority() else {
        return answer(StatusCode::BAD_REQUEST, "no host:port");
    };
    let port = match authority.port_u16() {
        Some(port) => port,
        None if is_connect => return answer(StatusCode::BAD_REQUEST, "CONNECT needs host:port"),
        None => 80,
    };
    let mut outbound = vec![head];
    if !is_connect {
        match collect(request, MAX_FORWARD_REQUEST_BYTES).await {
            Ok(body) => outbound.push(body.to_vec()),
            Err(status) => return answer(status, "cannot read the body"),
        }
    }
    for bytes in &outbound {
        egress_request::check_guard(&checks.guard, bytes);
    }
    if outbound
        .iter()
        .any(|bytes| checks.guard.finds_secret_in(bytes))
    {
        return answer(StatusCode::FORBIDDEN, "the request carries a secret");
    }
    match policy::match_rule(&checks.rules, authority.host(), port) {
        Ok(rule) => {
            check_match(rule, authority.host(), port);
            answer(
                StatusCode::BAD_GATEWAY,
                "allowed; the fuzzer has no network",
            )
        }
        Err(reason) => answer(StatusCode::FORBIDDEN, &reason),
    }
}

/// `gateway::host_api`: the call as the non-main group.
async fn host_api(
    request: Request<Incoming>,
    action: &str,
    world: &World,
) -> Response<Full<Bytes>> {
    let guard = &egress_request::world().guard;
    let action = if guard.finds_secret_in(action.as_bytes()) {
        "(an action naming a secret)"
    } else {
        action
    };
    if request.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "use POST");
    }
    let body = match collect(request, hostapi::MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(status) => return answer(status, "cannot read the body"),
    };
    if guard.finds_secret_in(&body) {
        return answer(StatusCode::FORBIDDEN, "the request carries a secret");
    }
    if action == "web_fetch" {
        return answer(StatusCode::BAD_GATEWAY, "the fuzzer has no network");
    }
    let (store, caller) = (&world.host.store, &world.host.other);
    let reply = hostapi::handle(
        store,
        &pincer_socket::budget::Limits::default(),
        caller,
        action,
        &body,
    );
    check_reply(store, caller, action, &body, &reply);
    let status = StatusCode::from_u16(reply.status).unwrap();
    answer(status, &reply.body.to_string())
}

/// `gateway_model::serve` up to forwarding: the method, the declared and
/// the real size, the betas, the policy. What passes passes again.
async fn model(request: Request<Incoming>, world: &World) -> Response<Full<Bytes>> {
    if request.method() != Method::POST {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "use POST /v1/messages");
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES) {
        return answer(StatusCode::PAYLOAD_TOO_LARGE, "too large");
    }
    let betas: Vec<String> = request
        .headers()
        .get_all("anthropic-beta")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let betas: Vec<&str> = betas.iter().map(String::as_str).collect();
    let body = match collect(request, MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(status) => return answer(status, "cannot read the body"),
    };
    match gateway_check::check(&body, &betas, GROUP, &world.policy) {
        Ok(checked) => {
            let again = gateway_check::check(&checked.body, &betas, GROUP, &world.policy)
                .unwrap_or_else(|refusal| panic!("a checked request is refused: {refusal}"));
            assert_eq!(again.model, checked.model);
            answer(StatusCode::OK, "checked; the fuzzer has no model")
        }
        Err(refusal) => {
            let _ = egress_request::world()
                .guard
                .finds_secret_in(refusal.to_string().as_bytes());
            answer(StatusCode::BAD_REQUEST, &refusal.to_string())
        }
    }
}

/// The body, bounded as it streams: 413 past `limit`, 400 if it breaks off.
async fn collect(request: Request<Incoming>, limit: usize) -> Result<Bytes, StatusCode> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(StatusCode::PAYLOAD_TOO_LARGE)
        }
        Err(_) => Err(StatusCode::BAD_REQUEST),
    }
}

fn answer(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
    *response.status_mut() = status;
    response
}
