//! What every route of the socket answers with: whole bodies, the Messages
//! API's error shape, and the connection slot a request carries.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;

/// The body of every response the socket sends.
pub(crate) type GatewayBody = BoxBody<Bytes, hyper::Error>;

/// One of an invocation's connection slots; a request carries its
/// connection's, so that a tunnel the request opens keeps it while it lasts.
#[derive(Clone)]
pub(crate) struct Slot {
    pub(crate) _held: Arc<OwnedSemaphorePermit>,
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

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<GatewayBody> {
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
