//! What the host offers on every socket (the model, the store, the way out,
//! the limits) and what the connections of one socket share.

use std::sync::Arc;

use crate::budget::Limits;
use crate::caller::Caller;
use crate::egress::Egress;
use crate::upstream::Upstream;
use pincer_store::Store;

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
