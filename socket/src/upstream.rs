//! The model API as the gateway reaches it: the key (never printed), the
//! HTTPS client (plain hyper on rustls: it reads no proxy variables, so the
//! key cannot be steered through a proxy of the host's environment), the
//! owner's policy and budget, and the provider that translates when the
//! model is not the Messages API.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Uri;
use hyper::header::HeaderName;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::budget::Budget;
use crate::gateway_check::ModelPolicy;

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
                model: crate::gateway_check::DEFAULT_MODEL.into(),
                models: Vec::new(),
                group_models: Default::default(),
                max_tokens: crate::gateway_check::DEFAULT_MAX_TOKENS,
                max_requests: crate::gateway_check::DEFAULT_MAX_TURNS + 1,
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
    fn upstream_urls_are_checked() {
        let key = ApiKey::new("k".into()).unwrap();
        assert!(Upstream::new("http://127.0.0.1:1/", key.clone()).is_ok());
        assert!(Upstream::new("ftp://x", key.clone()).is_err());
        assert!(Upstream::new("not a url", key).is_err());
    }
}
