//! The body of the `egress_request` target (see `fuzz_targets/egress_request.rs`),
//! and the egress checks `host_socket` shares.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use hyper::Uri;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use pincer_socket::egress::LeakGuard;
use pincer_socket::egress::policy::{self, EgressRule};

/// The secret the leak guard looks for.
pub const SECRET: &str = "sk-fuzz-SECRET-0123456789abcdef";

/// The allowlist requests are decided against: a name, subdomains, an IPv4
/// address on one port, an IPv6 address on any.
pub const RULES: &[&str] = &[
    "example.com",
    "*.example.org",
    "10.0.0.5:8080",
    "[fd00::1]:*",
];

/// What the egress checks are made with.
pub struct World {
    /// [`RULES`], parsed.
    pub rules: Vec<EgressRule>,
    /// A guard for [`SECRET`].
    pub guard: LeakGuard,
}

/// The world, made once.
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| World {
        rules: RULES.iter().map(|rule| rule.parse().unwrap()).collect(),
        guard: LeakGuard::new([SECRET.to_owned()]),
    })
}

/// The data as an egress rule (whole and line by line), then as a request
/// head: its target decided against [`RULES`], the head checked for the secret.
pub fn fuzz(data: &[u8]) {
    let world = world();
    if let Ok(text) = std::str::from_utf8(data) {
        for candidate in std::iter::once(text).chain(text.lines()) {
            check_rule(candidate);
        }
    }
    check_guard(&world.guard, data);

    // hyper's own parser, with hyper's limit on headers.
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    if request.parse(data).is_err() {
        return;
    }
    let (Some(method), Some(path)) = (request.method, request.path) else {
        return;
    };
    let Ok(uri) = path.parse::<Uri>() else {
        return;
    };
    let mut map = HeaderMap::new();
    for header in request.headers.iter().take_while(|h| !h.name.is_empty()) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_bytes(header.value),
        ) {
            map.append(name, value);
        }
    }
    let head = head_bytes(&uri, &map);
    check_guard(&world.guard, &head);
    // What `Egress::connect` and `Egress::forward` take from the URI.
    let target = if method == "CONNECT" {
        uri.authority()
            .and_then(|a| a.port_u16().map(|port| (a.host(), port)))
    } else if uri.scheme_str() == Some("http") {
        uri.authority()
            .map(|a| (a.host(), a.port_u16().unwrap_or(80)))
    } else {
        None
    };
    let Some((host, port)) = target else {
        return;
    };
    if let Ok(rule) = policy::match_rule(&world.rules, host, port) {
        check_match(rule, host, port);
    }
    // The Host header, as a rule, allows the URI's host only as its own rules say.
    if let Some(rule) = map
        .get("host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<EgressRule>().ok())
    {
        let _ = policy::match_rule(std::slice::from_ref(&rule), host, port);
    }
}

/// The request line and header values, as `egress::head_bytes` (private)
/// makes them for the leak guard.
pub fn head_bytes(uri: &Uri, headers: &HeaderMap) -> Vec<u8> {
    let mut head = uri.to_string().into_bytes();
    for (name, value) in headers {
        head.push(b'\n');
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
    }
    head
}

/// The guard finds the secret in bytes that hold it, as they are and
/// percent-encoded whole.
pub fn check_guard(guard: &LeakGuard, bytes: &[u8]) {
    let found = guard.finds_secret_in(bytes);
    if contains(bytes, SECRET.as_bytes()) {
        assert!(found);
        let encoded: String = bytes.iter().map(|b| format!("%{b:02X}")).collect();
        assert!(guard.finds_secret_in(encoded.as_bytes()));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `host:port` was allowed by `rule`, one of [`RULES`]: the host is what
/// the rule names.
pub fn check_match(rule: &EgressRule, host: &str, port: u16) {
    let name = policy::normalise_host(host);
    let address = name.parse::<IpAddr>().ok();
    let web = port == 80 || port == 443;
    match rule.to_string().as_str() {
        "example.com" => {
            assert_eq!(name, "example.com", "{host:?}");
            assert!(web, "{port}");
        }
        "*.example.org" => {
            let head = name.strip_suffix(".example.org");
            assert!(head.is_some_and(|h| !h.is_empty()), "{host:?}");
            assert!(address.is_none() && web, "{host:?}:{port}");
        }
        "10.0.0.5:8080" => {
            assert_eq!(port, 8080);
            assert!(
                address.is_some_and(|a| carries(a, Ipv4Addr::new(10, 0, 0, 5))),
                "{host:?}"
            );
        }
        "[fd00::1]:*" => {
            assert_eq!(address, Some("fd00::1".parse().unwrap()), "{host:?}");
        }
        other => panic!("matched {other}, which is not one of RULES"),
    }
}

/// Whether `address` is `v4` or an IPv6 form carrying it (mapped,
/// IPv4-compatible, NAT64, 6to4).
fn carries(address: IpAddr, v4: Ipv4Addr) -> bool {
    let [a, b, c, d] = v4.octets();
    let (high, low) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    match address {
        IpAddr::V4(found) => found == v4,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[6..8] == [high, low] || (s[0] == 0x2002 && s[1..3] == [high, low])
        }
    }
}

/// `text` as a rule: if it parses, it prints as written (trimmed), parses
/// again to the same rule, allows what it names on its ports, and refuses a
/// port it does not name.
pub fn check_rule(text: &str) {
    let Ok(rule) = text.parse::<EgressRule>() else {
        return;
    };
    let text = text.trim();
    assert_eq!(rule.to_string(), text);
    assert_eq!(text.parse::<EgressRule>().as_ref(), Ok(&rule));
    let rules = std::slice::from_ref(&rule);
    // The grammar: [host]:port, [host], host:port, host.
    let (host, bracketed, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']').unwrap();
            (host, true, after.strip_prefix(':'))
        }
        None => match text.split_once(':') {
            Some((host, port)) => (host, false, Some(port)),
            None => (text, false, None),
        },
    };
    let (allowed, refused): (&[u16], Option<u16>) = match port {
        None => (&[80, 443], Some(8080)),
        Some("*") => (&[1, 80, 443, 65535], None),
        Some(port) => {
            let port: u16 = port.parse().unwrap();
            let other = if port == 1 { 2 } else { port - 1 };
            (&[port], Some(other))
        }
    };
    let is_address = host.parse::<IpAddr>().is_ok();
    let (named, not_named) = match host.strip_prefix("*.") {
        Some(suffix) if !is_address => (format!("a.{suffix}"), Some(suffix.to_owned())),
        _ if bracketed => (format!("[{host}]"), None),
        _ => (host.to_owned(), None),
    };
    for &port in allowed {
        assert!(
            policy::match_rule(rules, &named, port).is_ok(),
            "{text} refuses {named}:{port}"
        );
        if !is_address && !bracketed {
            let shouted = format!("{}.", named.to_ascii_uppercase());
            assert!(
                policy::match_rule(rules, &shouted, port).is_ok(),
                "{text} refuses {shouted}:{port}"
            );
        }
        if let Some(domain) = &not_named {
            assert!(
                policy::match_rule(rules, domain, port).is_err(),
                "{text} allows {domain} itself"
            );
        }
    }
    if let Some(port) = refused {
        assert!(
            policy::match_rule(rules, &named, port).is_err(),
            "{text} allows {named}:{port}"
        );
    }
}
