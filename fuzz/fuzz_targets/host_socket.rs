//! Fuzzes the host socket: the bytes a container writes to it, parsed as
//! HTTP/1.1 by hyper set up as the gateway sets it up (`http1::Builder`,
//! 64 KiB buffer, upgrades on) over an in-memory duplex, and routed as the
//! gateway routes them, for everything decided without the network:
//! `/host/v1/<action>` bodies (bounded by `hostapi::MAX_BODY_BYTES`) to
//! `hostapi::handle` over a real store as a non-main group, `/v1/messages`
//! bodies (bounded by `gateway::MAX_REQUEST_BYTES`) to
//! `gateway_check::check`, CONNECT and absolute URIs to the leak guard and
//! the egress allowlist. Asserts: no panic and no hang, whatever is written;
//! every host-API reply is one `hostapi::handle` may give and grants a
//! non-main group only its own (as `host_api_body` checks); a checked model
//! request passes the check again, for the same model; an allowed egress
//! target is what the rule names; the leak guard finds the secret in a head
//! or body that holds it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pincer_fuzz::host_socket::fuzz(data));
