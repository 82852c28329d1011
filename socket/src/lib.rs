//! The per-invocation socket: everything an agent can ask of the host goes
//! through one Unix socket made for one caller (group, invocation).
//!
//! [`gateway`] serves it and routes each request: the model route (checked by
//! [`gateway_check`], counted against [`budget`], forwarded with the key the
//! gateway alone holds), the host tools ([`hostapi`]: authorization, audited),
//! and the way out ([`egress`]: the allowlisting proxy and its leak guard).
//! The socket knows nothing about containers: the caller is fixed when the
//! socket is made, and identity never comes from what a request says.

pub mod budget;
mod caller;
pub mod egress;
pub mod gateway;
pub mod gateway_check;
mod gateway_model;
pub mod hostapi;
pub mod probe;
mod response;
mod services;
mod upstream;
