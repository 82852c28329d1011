//! `web_fetch`: the host tool that fetches one URL for the agent, through
//! the same decision, resolution and leak guard as the proxy, and answers
//! with the page's text (capped at [`MAX_FETCH_BYTES`](super::MAX_FETCH_BYTES)).

use super::*;

impl Egress {
    /// The `web_fetch` host tool: GET a URL (http or https) for the model.
    /// Answers in the host API's shape.
    pub async fn web_fetch(&self, caller: &Caller, body: &[u8]) -> (u16, Value) {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fetch {
            url: String,
        }
        let fail = |status: u16, error: &str| (status, json!({"ok": false, "error": error}));
        let fetch: Fetch = match serde_json::from_slice(body) {
            Ok(fetch) => fetch,
            Err(err) => {
                let error = format!("invalid request: {err}");
                self.audit(caller, "web_fetch", "-", false, &error, json!({}));
                return fail(400, &error);
            }
        };
        let uri: Uri = match fetch.url.parse() {
            Ok(uri) => uri,
            Err(err) => {
                self.audit(caller, "web_fetch", "-", false, "not a URL", json!({}));
                return fail(400, &format!("not a URL: {err}"));
            }
        };
        let written = uri.authority().map(|a| a.as_str().to_owned());
        let refuse = |error: &str| {
            self.refuse_malformed(caller, "web_fetch", written.as_deref(), error);
            fail(400, error)
        };
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return refuse("only http:// and https:// URLs can be fetched"),
        };
        let Some(host) = uri.host().map(str::to_owned) else {
            return refuse("the URL has no host");
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let (stream, allowed) = match self
            .open(caller, "web_fetch", &host, port, &[fetch.url.as_bytes()])
            .await
        {
            Ok(opened) => opened,
            Err((status, reason)) => return fail(status.as_u16(), &reason),
        };
        let target = format!("{}:{port}", policy::normalise_host(&host));
        let started = Instant::now();
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
            .header(
                header::HOST,
                uri.authority().map(|a| a.as_str()).unwrap_or(&host),
            )
            .header(
                header::USER_AGENT,
                concat!("pincer-web-fetch/", env!("CARGO_PKG_VERSION")),
            )
            .header(header::ACCEPT, "*/*")
            .body(Full::new(Bytes::new()));
        let request = match request {
            Ok(request) => request,
            Err(err) => return refuse(&format!("cannot build the request: {err}")),
        };
        let result = if https {
            let server_name =
                match rustls::pki_types::ServerName::try_from(policy::normalise_host(&host)) {
                    Ok(name) => name,
                    Err(err) => return refuse(&format!("not a TLS server name: {err}")),
                };
            match tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(server_name, stream)).await
            {
                Ok(Ok(tls)) => exchange(tls, request, MAX_FETCH_BYTES).await,
                Ok(Err(err)) => Err(format!("TLS failed: {err}")),
                Err(_) => Err("TLS handshake timed out".into()),
            }
        } else {
            exchange(stream, request, MAX_FETCH_BYTES).await
        };
        match result {
            Ok((status, headers, body, truncated)) => {
                self.audit(
                    caller,
                    "web_fetch",
                    &target,
                    true,
                    &format!("allowed by {}", allowed.rule),
                    json!({"bytes_down": body.len(), "status": status.as_u16(), "duration_ms": started.elapsed().as_millis() as u64}),
                );
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                (
                    200,
                    json!({"ok": true, "result": {
                        "status": status.as_u16(),
                        "content_type": content_type,
                        "body": String::from_utf8_lossy(&body),
                        "truncated": truncated,
                    }}),
                )
            }
            Err(reason) => {
                self.audit(
                    caller,
                    "web_fetch",
                    &target,
                    true,
                    &format!("exchange failed: {reason}"),
                    json!({}),
                );
                fail(502, &reason)
            }
        }
    }
}
