//! Which string literals name a place outside the program: a URL's host, a
//! bare host name, a path in the owner's home or the system's folders.
//!
//! A literal is a hint, not proof (the code may never use it), so these
//! rules lean towards missing a literal rather than flagging file names,
//! version strings or HTTP routes: only `http(s)`, `ws(s)` and `ftp` URLs,
//! hosts whose last label is a common top-level domain, and absolute paths
//! whose first folder is one a system has (`/etc`, `/home`, …).

/// URL schemes whose host is reported.
const SCHEMES: &[&str] = &["http://", "https://", "ws://", "wss://", "ftp://"];

/// Top-level domains a bare host must end in: common ones, and none that is
/// also a usual file extension (`.rs`, `.sh`, `.md`, `.py`, `.so`, `.in`).
const TLDS: &[&str] = &[
    "com", "org", "net", "io", "dev", "app", "ai", "co", "me", "chat", "gg", "xyz", "info", "biz",
    "us", "uk", "de", "fr", "eu", "nl", "se", "ch", "it", "es", "jp", "cn", "ru", "ca", "au", "br",
    "cloud", "tech", "tv", "fm", "ly", "gov", "edu", "int", "social", "im", "online", "site",
    "network", "systems", "services",
];

/// First folders of an absolute path that name a real place on a system
/// (so `/api/v1` or `/health`, routes, are not taken for files).
const ROOTS: &[&str] = &[
    "etc", "home", "root", "usr", "var", "tmp", "proc", "sys", "dev", "bin", "sbin", "lib",
    "lib64", "opt", "run", "srv", "mnt", "media", "boot", "Users", "private", "Library", "System",
    "Volumes",
];

/// The host a literal names: a URL's (scheme in [`SCHEMES`]) or the literal
/// itself when it is a bare host name or IPv4 address (with an optional
/// `:port`).
pub(super) fn host(literal: &str) -> Option<String> {
    let text = literal.trim();
    for scheme in SCHEMES {
        let Some(rest) = strip_prefix_ignore_case(text, scheme) else {
            continue;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            v6.split(']').next().unwrap_or_default()
        } else {
            host_port.split(':').next().unwrap_or_default()
        };
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        return valid.then(|| host.to_ascii_lowercase());
    }
    let host = match text.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => text,
    };
    (bare_host(host) || host.parse::<std::net::Ipv4Addr>().is_ok())
        .then(|| host.to_ascii_lowercase())
}

/// Letters, digits and dashes in two labels or more, the last one a
/// top-level domain of [`TLDS`].
fn bare_host(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    let good_label = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.iter().all(good_label)
        && (2..=24).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
        && TLDS.contains(&tld.to_ascii_lowercase().as_str())
}

/// Whether a literal is a path in the owner's home (`~/…`) or an absolute
/// path under one of [`ROOTS`].
pub(super) fn fs_path(literal: &str) -> bool {
    if literal.chars().any(char::is_whitespace) || literal.contains("://") {
        return false;
    }
    if let Some(rest) = literal.strip_prefix("~/") {
        return !rest.is_empty();
    }
    let Some(rest) = literal.strip_prefix('/') else {
        return false;
    };
    let first = rest.split('/').next().unwrap_or_default();
    ROOTS.contains(&first)
}

/// `text` without `prefix`, compared without regard to ASCII case.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_hosts_are_found_and_file_names_are_not() {
        assert_eq!(
            host("https://collect.example.com/x").as_deref(),
            Some("collect.example.com")
        );
        assert_eq!(
            host("wss://user@Chat.Example.org:8443/ws").as_deref(),
            Some("chat.example.org")
        );
        assert_eq!(host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(
            host("api.telegram.org").as_deref(),
            Some("api.telegram.org")
        );
        assert_eq!(
            host("irc.libera.chat:6697").as_deref(),
            Some("irc.libera.chat")
        );
        assert_eq!(host("https://{host}/x"), None);
        assert_eq!(host("203.0.113.5:443").as_deref(), Some("203.0.113.5"));
        assert_eq!(host("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(host("http://10.0.0.1/x").as_deref(), Some("10.0.0.1"));
        for not_a_host in [
            "lib.rs",
            "Cargo.toml",
            ".toml",
            "1.2.3",
            "v1.0",
            "run.sh",
            "a.b",
            "README.md",
            "x.com/path",
            "hello world.com",
            "com",
            "file://etc/x",
        ] {
            assert_eq!(host(not_a_host), None, "{not_a_host}");
        }
    }

    #[test]
    fn paths_in_home_and_system_folders_are_found_and_routes_are_not() {
        for path in ["~/.ssh/id_rsa", "/etc/passwd", "/home/x", "/usr/bin/runsc"] {
            assert!(fs_path(path), "{path}");
        }
        for not_a_path in [
            "/",
            "~/",
            "/api/v1",
            "/health",
            "src/lib.rs",
            "/etc/a b",
            "~",
        ] {
            assert!(!fs_path(not_a_path), "{not_a_path}");
        }
    }
}
