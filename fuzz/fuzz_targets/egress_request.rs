//! Fuzzes what the egress proxy reads of a request: the data as an
//! `EgressRule` (whole and line by line), and as a request head parsed by
//! `httparse` (hyper's parser), whose target is taken as `egress/mod.rs`
//! takes it (`Uri`, `authority().port_u16()`, 80 for plain HTTP) and
//! decided by `policy::match_rule` against `example.com`, `*.example.org`,
//! `10.0.0.5:8080` and `[fd00::1]:*`, and whose head (as `egress::head_bytes`
//! builds it) goes through `LeakGuard::finds_secret_in`. Asserts: a rule
//! that parses prints as written and parses again to itself, allows the
//! host it names (any case, a trailing dot) on its ports and refuses a port
//! it does not name, and a `*.` rule refuses the domain itself; an allowed
//! target is what its rule names (`example.com` normalises to `example.com`,
//! a subdomain of `example.org`, 10.0.0.5 in any IPv6 form that carries
//! it, fd00::1), on the rule's ports; the guard finds the secret in bytes
//! that hold it, raw or percent-encoded.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pincer_fuzz::egress_request::fuzz(data));
