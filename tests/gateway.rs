//! The model gateway on its real Unix socket, driven by raw HTTP the way a
//! hostile agent would: forged credentials, other routes, huge and broken
//! requests. The model behind it is the scripted loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

use pincer_core::group::GroupName;
use pincer_socket::gateway::{Caller, Gateway, MAX_REQUEST_BYTES};
use support::*;

fn serve(dir: &Path, model_url: &str) -> Gateway {
    Gateway::serve(
        &dir.join("host.sock"),
        services(&dir.join("pincer.db"), model_url),
        Caller {
            group: GroupName::main(),
            invocation_id: "test".into(),
        },
    )
    .unwrap()
}

/// Sends raw bytes on a fresh connection and reads one response (blocking,
/// on a thread of its own so the gateway's runtime keeps going).
async fn raw(socket: &Path, request: Vec<u8>) -> (u16, Vec<u8>) {
    let socket = socket.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = UnixStream::connect(&socket).unwrap();
        // The gateway may answer (and close) before taking the whole body.
        let _ = stream.write_all(&request);
        let (status, _, body) = read_response(&mut stream);
        (status, body)
    })
    .await
    .unwrap()
}

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn forged_credentials_are_dropped_and_the_hosts_key_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![say("hello")]);
    let gateway = serve(dir.path(), &model.url());
    let forged = "Authorization: Bearer stolen\r\nX-Api-Key: forged-key\r\nCookie: session=1\r\n\
                  Proxy-Authorization: Basic eDp5\r\nX-Forwarded-For: 10.0.0.1\r\n\
                  Anthropic-Beta: tools-2024\r\nAnthropic-Version: 2023-06-01\r\n";
    let (status, body) = raw(
        gateway.path(),
        post("/v1/messages", forged, &minimal_request("m")),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("hello"));

    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
        serde_json::from_str::<serde_json::Value>(&minimal_request("m")).unwrap()
    );
    let keys: Vec<_> = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "x-api-key")
        .collect();
    assert_eq!(keys.len(), 1, "{:?}", seen.headers);
    assert_eq!(seen.header("x-api-key"), Some(TEST_KEY));
    for dropped in [
        "authorization",
        "cookie",
        "proxy-authorization",
        "x-forwarded-for",
    ] {
        assert_eq!(seen.header(dropped), None, "{dropped} was forwarded");
    }
    assert_eq!(seen.header("anthropic-beta"), Some("tools-2024"));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test]
async fn only_post_v1_messages_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![]);
    let gateway = serve(dir.path(), &model.url());
    let get = b"GET /v1/messages HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    assert_eq!(raw(gateway.path(), get).await.0, 405);
    for path in [
        "/v1/complete",
        "/",
        "/v1/messages/../../admin",
        "/v1/models",
    ] {
        let (status, body) = raw(gateway.path(), post(path, "", "{}")).await;
        assert_eq!(status, 404, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("not_found_error"));
    }
    // An absolute URI is an egress request: with no allowlist, refused.
    let absolute = post("http://169.254.169.254/latest/meta-data", "", "{}");
    assert_eq!(raw(gateway.path(), absolute).await.0, 403);
    assert!(
        model.requests().is_empty(),
        "a refused request reached the model"
    );
}

#[tokio::test]
async fn huge_requests_are_refused_without_being_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![]);
    let gateway = serve(dir.path(), &model.url());
    // Declared too large: refused from the head alone.
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        MAX_REQUEST_BYTES + 1
    );
    let (status, body) = raw(gateway.path(), head.into_bytes()).await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    // Chunked, with no declared size: refused once the limit is crossed.
    let mut chunked =
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'a'; 1024 * 1024];
    for _ in 0..(MAX_REQUEST_BYTES / chunk.len() + 2) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(gateway.path(), chunked).await.0, 413);
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn garbage_gets_a_400_and_the_gateway_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![say("still here")]);
    let gateway = serve(dir.path(), &model.url());
    let (status, _) = raw(
        gateway.path(),
        b"\x16\x03\x01 this is not http\r\n\r\n".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = raw(
        gateway.path(),
        post("/v1/messages", "", &minimal_request("m")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("still here"));
}

#[tokio::test]
async fn an_unreachable_model_is_a_502_in_the_apis_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = serve(dir.path(), &format!("http://127.0.0.1:{port}"));
    let (status, body) = raw(
        gateway.path(),
        post("/v1/messages", "", &minimal_request("m")),
    )
    .await;
    assert_eq!(status, 502);
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach the model API")
    );
    assert!(!String::from_utf8_lossy(&body).contains(TEST_KEY));
}

#[tokio::test]
async fn the_socket_is_the_hosts_alone_until_handed_over_and_gone_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![]);
    let gateway = serve(dir.path(), &model.url());
    let path = gateway.path().to_owned();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(gateway);
    assert!(!path.exists());
    tokio::task::spawn_blocking(move || {
        assert!(UnixStream::connect(&path).is_err());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn every_refused_request_is_audited_with_why_and_never_with_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![]);
    let gateway = serve(dir.path(), &model.url());
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let too_large = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        MAX_REQUEST_BYTES + 1
    )
    .into_bytes();
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (get("/v1/messages"), 405, "model"),
        (post("/v1/complete", "", "{}"), 404, "gateway"),
        // The agent's path may carry the key: refused, and not written down.
        (post(&format!("/v1/{TEST_KEY}"), "", "{}"), 404, "gateway"),
        (too_large, 413, "model"),
        (get("/host/v1/list_tasks"), 405, "host_api"),
        (get("https://example.com/"), 400, "egress"),
        (
            post("/host/v1/web_fetch", "", r#"{"url":"ftp://example.com/x"}"#),
            400,
            "egress",
        ),
        (
            post(
                "/host/v1/web_fetch",
                "",
                &format!(r#"{{"url":"http://example.com/","{TEST_KEY}":1}}"#),
            ),
            403,
            "host_api",
        ),
    ];
    let store = pincer_store::Store::open(&dir.path().join("pincer.db")).unwrap();
    for (index, (request, status, kind)) in cases.into_iter().enumerate() {
        let (got, body) = raw(gateway.path(), request).await;
        assert_eq!(
            got,
            status,
            "case {index}: {}",
            String::from_utf8_lossy(&body)
        );
        let entries = store.audit_entries(None, None).unwrap();
        // A refusal the same as the one before counts on its row.
        let events: i64 = entries.iter().map(|e| e.count).sum();
        assert_eq!(events, index as i64 + 1, "case {index} audited once");
        let entry = entries
            .iter()
            .max_by_key(|e| e.last_at.as_ref().unwrap_or(&e.at).clone())
            .unwrap();
        assert_eq!(entry.kind, kind, "case {index}: {entry:?}");
        assert_eq!(entry.allowed, Some(false), "case {index}: {entry:?}");
        assert!(
            entry.reason.as_deref().is_some_and(|r| !r.is_empty()),
            "case {index}: {entry:?}"
        );
        assert!(
            !format!("{entry:?}").contains(TEST_KEY),
            "case {index}: the audit holds the key: {entry:?}"
        );
    }
    assert!(model.requests().is_empty());
}

/// A provider for the test: another path, another credential header, bodies
/// wrapped one way and unwrapped the other.
#[derive(Debug)]
struct Wrapping;

impl pincer_socket::gateway::Provider for Wrapping {
    fn path(&self) -> &'static str {
        "/v9/wrapped"
    }

    fn credential(&self, key: &str) -> (hyper::header::HeaderName, String) {
        (hyper::header::AUTHORIZATION, format!("Bearer {key}"))
    }

    fn request(&self, messages_request: &[u8]) -> Result<Vec<u8>, String> {
        let request: serde_json::Value =
            serde_json::from_slice(messages_request).map_err(|err| err.to_string())?;
        if request["model"] == "untranslatable" {
            return Err("no such model here".into());
        }
        Ok(serde_json::json!({"wrapped": request})
            .to_string()
            .into_bytes())
    }

    fn response(&self, status: u16, body: &[u8]) -> (u16, Vec<u8>) {
        let text = format!("{status} {}", String::from_utf8_lossy(body).len());
        (
            200,
            serde_json::to_vec(&message(&format!("unwrapped {text}"))).unwrap(),
        )
    }
}

#[tokio::test]
async fn a_provider_translates_both_ways_and_gets_the_key_its_own_way() {
    use pincer_socket::gateway::{ApiKey, Services, Upstream};
    let dir = tempfile::tempdir().unwrap();
    let model = ScriptedModel::start(vec![say("hello")]);
    let store = Arc::new(pincer_store::Store::open(&dir.path().join("pincer.db")).unwrap());
    let services = Arc::new(Services {
        upstream: Arc::new(
            Upstream::with_provider(
                &model.url(),
                ApiKey::new(TEST_KEY.into()).unwrap(),
                Some(Arc::new(Wrapping)),
            )
            .unwrap()
            .with_policy(test_policy()),
        ),
        egress: Arc::new(
            pincer_socket::egress::Egress::new(
                Arc::clone(&store),
                pincer_socket::egress::LeakGuard::new([TEST_KEY.to_owned()]),
            )
            .unwrap(),
        ),
        store: Arc::clone(&store),
        limits: Default::default(),
    });
    let gateway = Gateway::serve(
        &dir.path().join("host.sock"),
        services,
        Caller {
            group: GroupName::main(),
            invocation_id: "test".into(),
        },
    )
    .unwrap();
    let (status, body) = raw(
        gateway.path(),
        post(
            "/v1/messages",
            "X-Api-Key: forged\r\n",
            &minimal_request("m"),
        ),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("unwrapped 200"));
    let seen = &model.requests()[0];
    assert_eq!(seen.path, "/v9/wrapped");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(),
        serde_json::json!({"wrapped": serde_json::from_str::<serde_json::Value>(&minimal_request("m")).unwrap()})
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {TEST_KEY}").as_str())
    );
    assert_eq!(seen.header("x-api-key"), None, "{:?}", seen.headers);

    // A request the provider cannot translate: refused, audited, not sent.
    let (status, _) = raw(
        gateway.path(),
        post("/v1/messages", "", &minimal_request("untranslatable")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(model.requests().len(), 1);
    let last = store.audit_entries(None, None).unwrap().pop().unwrap();
    assert_eq!(last.allowed, Some(false));
    assert!(last.reason.unwrap().contains("no such model here"));
}
