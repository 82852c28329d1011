//! Egress rules and decisions: pure functions, no I/O.
//!
//! A group's allowlist is a list of rules: `example.com` (that host),
//! `*.example.com` (its subdomains, not itself), an IP address (`10.0.0.5`,
//! `[fd00::1]`), each with an optional port: none means 80 and 443, `:8080`
//! that port, `:*` any. A name is resolved on the host, and if any address it
//! resolves to is loopback, private, link-local (cloud metadata), or otherwise
//! not public, the request is refused unless a rule names that exact address:
//! a DNS answer cannot steer a request into the owner's LAN.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    host: HostPattern,
    ports: Ports,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Subdomains(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    Web,
    Any,
    One(u16),
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for EgressRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad = |why: &str| Err(format!("invalid egress rule {text:?}: {why}"));
        if text.is_empty() {
            return bad("it is empty");
        }
        // [v6]:port, [v6], host:port, host
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((address, after)) = rest.split_once(']') else {
                return bad("unclosed `[`");
            };
            match after {
                "" => (address, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (address, Some(port)),
                    None => return bad("expected `:port` after `]`"),
                },
            }
        } else if text.matches(':').count() > 1 {
            return bad("write IPv6 addresses in brackets, like [fd00::1]:443");
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let ports = match port {
            None => Ports::Web,
            Some("*") => Ports::Any,
            Some(port) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return bad("the port must be 1-65535 or *"),
                Ok(port) => Ports::One(port),
            },
        };
        let host = if let Ok(address) = host.parse::<IpAddr>() {
            HostPattern::Address(address)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if !valid_name(suffix) || !suffix.contains('.') {
                return bad("`*.` must be followed by a domain with at least two labels");
            }
            HostPattern::Subdomains(suffix.to_ascii_lowercase())
        } else if valid_name(host) {
            HostPattern::Exact(host.to_ascii_lowercase())
        } else {
            return bad("not a host name, `*.domain` or an IP address");
        };
        Ok(Self {
            host,
            ports,
            text: text.to_owned(),
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl EgressRule {
    fn allows_port(&self, port: u16) -> bool {
        match self.ports {
            Ports::Web => port == 80 || port == 443,
            Ports::Any => true,
            Ports::One(allowed) => allowed == port,
        }
    }

    fn matches_name(&self, host: &str) -> bool {
        match &self.host {
            HostPattern::Exact(name) => host == name,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostPattern::Address(_) => false,
        }
    }

    fn names_address(&self, address: IpAddr, port: u16) -> bool {
        matches!(self.host, HostPattern::Address(a) if canonical(a) == canonical(address))
            && self.allows_port(port)
    }
}

/// An allowed destination: the checked addresses to connect to (and only
/// those: the name is never resolved again), and the rule that allowed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// Where to connect.
    pub addresses: Vec<SocketAddr>,
    /// The rule that allowed the host.
    pub rule: String,
}

/// The first step: is there a rule for `host:port` at all? (Before any DNS.)
pub fn match_rule<'a>(
    rules: &'a [EgressRule],
    host: &str,
    port: u16,
) -> Result<&'a EgressRule, String> {
    let host = normalise_host(host);
    if let Ok(address) = host.parse::<IpAddr>() {
        return rules
            .iter()
            .find(|rule| rule.names_address(address, port))
            .ok_or_else(|| format!("{host}:{port} is not in this group's egress allowlist"));
    }
    let by_name: Vec<&EgressRule> = rules
        .iter()
        .filter(|rule| rule.matches_name(&host))
        .collect();
    if by_name.is_empty() {
        return Err(format!("{host} is not in this group's egress allowlist"));
    }
    by_name
        .into_iter()
        .find(|rule| rule.allows_port(port))
        .ok_or_else(|| format!("port {port} of {host} is not allowed"))
}

/// The second step: `host` resolved to `resolved`; may we connect?
pub fn check_addresses(
    rules: &[EgressRule],
    host: &str,
    port: u16,
    resolved: &[IpAddr],
) -> Result<Allowed, String> {
    let rule = match_rule(rules, host, port)?;
    if resolved.is_empty() {
        return Err(format!("{} does not resolve", normalise_host(host)));
    }
    for address in resolved {
        if !is_public(*address) && !rules.iter().any(|rule| rule.names_address(*address, port)) {
            return Err(format!(
                "{} resolves to {address}, a {} address; allow that address explicitly to reach it",
                normalise_host(host),
                describe(*address)
            ));
        }
    }
    Ok(Allowed {
        addresses: resolved.iter().map(|a| SocketAddr::new(*a, port)).collect(),
        rule: rule.to_string(),
    })
}

/// Lowercase, without brackets or a trailing dot.
pub fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// IPv6 addresses that carry an IPv4 address — mapped (`::ffff:a.b.c.d`),
/// NAT64 (`64:ff9b::/96`), IPv4-compatible (`::a.b.c.d`) and 6to4
/// (`2002:AABB:CCDD::/48`) — judged as the IPv4 address inside.
fn canonical(address: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = address else {
        return address;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    };
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return v4(s[6], s[7]);
    }
    // `::` and `::1` are IPv6's own; anything else with 96 zero bits ahead is
    // an IPv4-compatible address.
    if s[0..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1) {
        return v4(s[6], s[7]);
    }
    if s[0] == 0x2002 {
        return v4(s[1], s[2]);
    }
    address
}

/// Whether an address is on the public internet (not loopback, private,
/// link-local, shared, documentation, multicast, reserved or unspecified).
pub fn is_public(address: IpAddr) -> bool {
    match canonical(address) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                // Teredo: an IPv4 address inside, obfuscated; never needed here.
                || (first == 0x2001 && v6.segments()[1] == 0)
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1))
        }
    }
}

fn describe(address: IpAddr) -> &'static str {
    match canonical(address) {
        IpAddr::V4(v4) if v4.is_loopback() => "loopback",
        IpAddr::V4(v4) if v4.is_private() => "private",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local (cloud metadata)",
        IpAddr::V6(v6) if v6.is_loopback() => "loopback",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => "private",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "link-local",
        _ => "non-public",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[&str]) -> Vec<EgressRule> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn rules_parse_and_refuse_nonsense() {
        for good in [
            "github.com",
            "*.github.com",
            "api.github.com:443",
            "10.0.0.5:8080",
            "[fd00::1]:443",
            "[::1]",
            "x.io:*",
        ] {
            assert!(good.parse::<EgressRule>().is_ok(), "{good}");
        }
        for bad in [
            "",
            "*",
            "*.com",
            "http://github.com",
            "github.com:0",
            "github.com:99999",
            "fd00::1",
            "a b",
            "-x.com",
            "[::1",
            "x..com",
            "github.com/path",
        ] {
            assert!(bad.parse::<EgressRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_ports_and_wildcards() {
        let r = rules(&["github.com", "*.githubusercontent.com", "pypi.org:8443"]);
        assert!(match_rule(&r, "github.com", 443).is_ok());
        assert!(match_rule(&r, "GitHub.com.", 80).is_ok());
        assert!(
            match_rule(&r, "github.com", 22)
                .unwrap_err()
                .contains("port 22")
        );
        assert!(
            match_rule(&r, "api.github.com", 443).is_err(),
            "exact names do not cover subdomains"
        );
        assert!(match_rule(&r, "raw.githubusercontent.com", 443).is_ok());
        assert!(
            match_rule(&r, "githubusercontent.com", 443).is_err(),
            "*. covers subdomains only"
        );
        assert!(match_rule(&r, "evilgithubusercontent.com", 443).is_err());
        assert!(match_rule(&r, "pypi.org", 8443).is_ok());
        assert!(match_rule(&r, "pypi.org", 443).is_err());
        assert!(
            match_rule(&[], "github.com", 443).is_err(),
            "empty allows nothing"
        );
    }

    #[test]
    fn private_and_metadata_answers_are_refused_unless_named() {
        let r = rules(&["*.example.test:*", "127.0.0.1:8080"]);
        let public = [ip("93.184.216.34")];
        assert!(check_addresses(&r, "www.example.test", 443, &public).is_ok());
        for (address, kind) in [
            ("169.254.169.254", "link-local"),
            ("10.1.2.3", "private"),
            ("192.168.1.1", "private"),
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("fd00::5", "private"),
            ("::ffff:10.0.0.1", "private"),
            ("100.64.0.1", "non-public"),
        ] {
            let err = check_addresses(&r, "www.example.test", 443, &[ip(address)]).unwrap_err();
            assert!(err.contains(kind), "{address}: {err}");
        }
        // A rebind answer mixing public and private is refused whole.
        assert!(
            check_addresses(
                &r,
                "www.example.test",
                443,
                &[ip("93.184.216.34"), ip("10.0.0.1")]
            )
            .is_err()
        );
        // Named explicitly, with the port: allowed.
        assert!(check_addresses(&r, "www.example.test", 8080, &[ip("127.0.0.1")]).is_ok());
        assert!(check_addresses(&r, "www.example.test", 8081, &[ip("127.0.0.1")]).is_err());
        assert!(check_addresses(&r, "www.example.test", 443, &[]).is_err());
    }

    #[test]
    fn ip_literals_need_an_address_rule() {
        let r = rules(&["127.0.0.1:8080", "*.example.test"]);
        assert!(match_rule(&r, "127.0.0.1", 8080).is_ok());
        assert!(match_rule(&r, "127.0.0.1", 8081).is_err());
        assert!(
            match_rule(&r, "[::ffff:127.0.0.1]", 8080).is_ok(),
            "mapped forms are the same address"
        );
        assert!(
            match_rule(&r, "93.184.216.34", 443).is_err(),
            "a public literal is not a name in the list"
        );
        assert!(match_rule(&r, "169.254.169.254", 80).is_err());
    }

    #[test]
    fn public_addresses() {
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "2002:0101:0101::1",
        ] {
            assert!(is_public(ip(public)), "{public}");
        }
        for special in [
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "ff02::1",
            "fe80::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            // IPv4 inside IPv6, every way: private or loopback all the same.
            "::127.0.0.1",
            "::10.0.0.1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!is_public(ip(special)), "{special}");
        }
    }
}
