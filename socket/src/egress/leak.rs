//! The leak guard: finds a secret the host knows in bytes an agent sends out.
//!
//! It reads the bytes four ways besides as they are: JSON-string-unescaped,
//! percent-decoded, unescaped then decoded, and decoded then unescaped. In
//! each it looks for the secret, its hex (all lower or all upper case) and
//! its base64 (standard or URL-safe alphabet, at any alignment inside a longer
//! stream, padded or not).
//!
//! What it cannot see, so cannot stop:
//! * the payload of a CONNECT tunnel: it is TLS, and the host sees only the
//!   target and the request's head;
//! * a secret cut across two requests, or across two parts checked apart
//!   (a request's head and its body);
//! * any other encoding: compression, encryption, other alphabets (base32,
//!   mixed-case hex, base64 broken across lines), a listed encoding applied
//!   twice or stacked (JSON escaped twice, base64 of hex), a secret reversed,
//!   interleaved with other characters or spelled out in words.
//!
//! It is a second line: the agent never holds the model key.

use std::fmt;

/// Secrets shorter than this are not looked for (too many false alarms).
const MIN_SECRET_LEN: usize = 8;

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
const BASE64_STANDARD: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_URL_SAFE: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Finds secrets the host knows in outbound bytes.
#[derive(Clone, Default)]
pub struct LeakGuard {
    /// Every spelling of every secret, indexed by its first byte so that one
    /// pass over a view tries, at each byte, only the needles that start with
    /// it. Empty when there is no secret.
    needles_by_first_byte: Vec<Vec<Vec<u8>>>,
    secrets: usize,
}

// By hand: a derived Debug would print the secrets into any log that shows
// the guard.
impl fmt::Debug for LeakGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakGuard")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl LeakGuard {
    /// A guard for these secret values (trimmed; those under eight bytes are
    /// dropped). Every spelling is worked out here, once per host process,
    /// so that checking a request is one pass per view.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut needles = Vec::new();
        let mut count = 0;
        for secret in secrets {
            let secret = secret.trim().as_bytes();
            if secret.len() < MIN_SECRET_LEN {
                continue;
            }
            count += 1;
            needles.push(secret.to_vec());
            needles.push(hex(secret, LOWER_HEX));
            needles.push(hex(secret, UPPER_HEX));
            for prefix in 0..3 {
                needles.push(base64_core(secret, prefix, BASE64_STANDARD));
                needles.push(base64_core(secret, prefix, BASE64_URL_SAFE));
            }
        }
        needles.sort_unstable();
        needles.dedup();
        let mut needles_by_first_byte = Vec::new();
        if count > 0 {
            needles_by_first_byte.resize(256, Vec::new());
        }
        for needle in needles {
            let slot = needle
                .first()
                .and_then(|&first| needles_by_first_byte.get_mut(usize::from(first)));
            if let Some(slot) = slot {
                slot.push(needle);
            }
        }
        Self {
            needles_by_first_byte,
            secrets: count,
        }
    }

    /// Whether `bytes`, read any of the ways the module names, carry a secret.
    pub fn finds_secret_in(&self, bytes: &[u8]) -> bool {
        if self.secrets == 0 {
            return false;
        }
        if self.scan(bytes) {
            return true;
        }
        // A view is built only when decoding changed something; otherwise it
        // is a view already scanned.
        let unescaped = json_unescape(bytes);
        let decoded = percent_decode(bytes);
        [&unescaped, &decoded]
            .into_iter()
            .flatten()
            .any(|view| self.scan(view))
            || unescaped
                .as_deref()
                .and_then(percent_decode)
                .is_some_and(|view| self.scan(&view))
            || decoded
                .as_deref()
                .and_then(json_unescape)
                .is_some_and(|view| self.scan(&view))
    }

    fn scan(&self, haystack: &[u8]) -> bool {
        let mut rest = haystack;
        while let Some((&first, tail)) = rest.split_first() {
            if let Some(needles) = self.needles_by_first_byte.get(usize::from(first))
                && needles.iter().any(|needle| rest.starts_with(needle))
            {
                return true;
            }
            rest = tail;
        }
        false
    }
}

fn hex(bytes: &[u8], digits: &[u8; 16]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|byte| {
            [
                digits[usize::from(byte >> 4)],
                digits[usize::from(byte & 0x0f)],
            ]
        })
        .collect()
}

/// The base64 characters that stand for `secret` alone when it follows
/// `prefix` bytes (0 to 2) of a stream: the characters that also carry bits
/// of the bytes before it or after it differ from stream to stream, so they
/// are left out. Whatever comes before the secret, one of the three
/// alignments is the one the stream uses, and padding is never in the needle.
fn base64_core(secret: &[u8], prefix: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut encoded = Vec::with_capacity((prefix + secret.len()) * 4 / 3);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in std::iter::repeat_n(&0, prefix).chain(secret) {
        buffer = (buffer << 8 | u32::from(byte)) & 0xffff;
        bits += 8;
        // Only whole six-bit groups: a partial last character would depend
        // on the byte after the secret.
        while bits >= 6 {
            bits -= 6;
            encoded.push(alphabet[((buffer >> bits) & 0x3f) as usize]);
        }
    }
    let shared_with_prefix = (prefix * 8).div_ceil(6);
    encoded
        .get(shared_with_prefix..)
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The bytes with JSON string escapes decoded, or `None` when there were
/// none. Lenient, over arbitrary bytes: an escape that is not valid JSON (an
/// unknown letter, a lone surrogate, short hex) is left as it is.
fn json_unescape(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'\\'
            && let Some(used) = json_escape(tail, &mut out)
        {
            changed = true;
            rest = tail.get(used..).unwrap_or_default();
            continue;
        }
        out.push(byte);
        rest = tail;
    }
    changed.then_some(out)
}

/// Decodes the escape whose backslash precedes `after` onto `out`; how many
/// bytes of `after` it took.
fn json_escape(after: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let decoded = match after.first()? {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => return unicode_escape(after, out),
        _ => return None,
    };
    out.push(decoded);
    Some(1)
}

/// `uXXXX`, or a surrogate pair `uD83D\uDE00`, as UTF-8.
fn unicode_escape(after: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let unit = after.get(1..5).and_then(hex4)?;
    let (code, used) = if (0xd800..0xdc00).contains(&unit) {
        let low = after
            .get(5..7)
            .filter(|mark| *mark == b"\\u")
            .and_then(|_| after.get(7..11))
            .and_then(hex4)
            .filter(|low| (0xdc00..0xe000).contains(low))?;
        (0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00), 11)
    } else {
        (unit, 5)
    };
    let decoded = char::from_u32(code)?;
    out.extend_from_slice(decoded.encode_utf8(&mut [0; 4]).as_bytes());
    Some(used)
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |value, &digit| {
        Some(value * 16 + char::from(digit).to_digit(16)?)
    })
}

/// The bytes percent-decoded (`+` as a space, as in a query or a form), or
/// `None` when nothing was encoded.
fn percent_decode(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.iter().any(|&byte| byte == b'%' || byte == b'+') {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut rest = bytes;
    while let Some((&byte, tail)) = rest.split_first() {
        let high = tail.first().copied().and_then(digit);
        let low = tail.get(1).copied().and_then(digit);
        match (byte, high, low) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                rest = tail.get(2..).unwrap_or_default();
                changed = true;
            }
            (b'+', ..) => {
                out.push(b' ');
                rest = tail;
                changed = true;
            }
            (byte, ..) => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with `+/` or `-_` in some places once aligned, so the two
    /// alphabets give different text.
    const KEY: &str = "sk-ant-api03-Xq9~>?w_Lm7";

    fn guard() -> LeakGuard {
        LeakGuard::new([KEY.to_owned()])
    }

    /// Padded base64, written apart from the guard's encoder so that a
    /// mistake in one is not repeated in the other.
    fn reference_base64(bytes: &[u8], url_safe: bool) -> String {
        let alphabet = if url_safe {
            BASE64_URL_SAFE
        } else {
            BASE64_STANDARD
        };
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(alphabet[(n >> (18 - 6 * i)) as usize & 0x3f]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn the_leak_guard_sees_raw_and_encoded_secrets() {
        let guard = LeakGuard::new(["sk-secret-123".to_owned(), "short".to_owned()]);
        assert!(guard.finds_secret_in(b"GET /?k=sk-secret-123 HTTP/1.1"));
        assert!(guard.finds_secret_in(b"/?k=sk%2Dsecret%2D123"));
        assert!(
            !guard.finds_secret_in(b"nothing here, short"),
            "secrets under 8 bytes are ignored"
        );
        assert!(!LeakGuard::default().finds_secret_in(b"sk-secret-123"));
    }

    #[test]
    fn json_escapes_inside_the_key_are_seen_through() {
        let guard = guard();
        let dashes = KEY.replace('-', "\\u002d");
        let body = format!(r#"{{"chat":"main","text":"the key is {dashes}"}}"#);
        assert!(guard.finds_secret_in(body.as_bytes()), "{body}");
        let first_letter = format!(r#"{{"text":"\u0073{}"}}"#, &KEY[1..]);
        assert!(guard.finds_secret_in(first_letter.as_bytes()));
        let upper_hex_escape = format!(r#"{{"text":"{}"}}"#, KEY.replace('~', "\\u007E"));
        assert!(guard.finds_secret_in(upper_hex_escape.as_bytes()));
        let solidus = LeakGuard::new(["path/to/secret".to_owned()]);
        assert!(solidus.finds_secret_in(br#"{"text":"path\/to\/secret"}"#));
        let newline = LeakGuard::new(["line one\nline two".to_owned()]);
        assert!(newline.finds_secret_in(br#"{"text":"line one\nline two"}"#));
        let emoji = LeakGuard::new(["key-\u{1F600}-value".to_owned()]);
        assert!(emoji.finds_secret_in(br#"{"text":"key-\ud83d\ude00-value"}"#));
    }

    #[test]
    fn invalid_json_escapes_are_left_as_they_are() {
        let guard = LeakGuard::new(["a\\qb\\u12c-\\ud83d.".to_owned()]);
        assert!(guard.finds_secret_in(b"x a\\qb\\u12c-\\ud83d. y"));
        assert_eq!(json_unescape(b"\\q \\u12 \\ud83d \\"), None);
        assert_eq!(
            json_unescape(b"\\ud83d\\u0041").as_deref(),
            Some(&b"\\ud83dA"[..])
        );
    }

    #[test]
    fn base64_of_the_key_is_seen_at_every_alignment_in_both_alphabets() {
        // The reference encoder, against a known value.
        assert_eq!(
            reference_base64(format!("note: x{KEY} and more").as_bytes(), false),
            "bm90ZTogeHNrLWFudC1hcGkwMy1YcTl+Pj93X0xtNyBhbmQgbW9yZQ=="
        );
        let guard = guard();
        for url_safe in [false, true] {
            for prefix in ["", "x", "xy"] {
                let stream = |after: &str| {
                    let text = format!("note: {prefix}{KEY}{after}");
                    reference_base64(text.as_bytes(), url_safe)
                };
                let padded = stream("");
                let unpadded = padded.trim_end_matches('=');
                for encoded in [stream(" and more"), padded.clone(), unpadded.to_owned()] {
                    let body = format!(r#"{{"text":"{encoded}"}}"#);
                    assert!(
                        guard.finds_secret_in(body.as_bytes()),
                        "url_safe={url_safe} prefix={prefix:?}: {body}"
                    );
                }
            }
        }
    }

    #[test]
    fn base64_of_text_without_the_key_is_not_flagged() {
        let guard = guard();
        for url_safe in [false, true] {
            for prefix in ["", "x", "xy"] {
                let text = format!("{prefix}sk-ant-api03-nothing secret here, only the prefix");
                let encoded = reference_base64(text.as_bytes(), url_safe);
                assert!(!guard.finds_secret_in(encoded.as_bytes()), "{encoded}");
            }
        }
    }

    #[test]
    fn hex_of_the_key_is_seen_in_either_case() {
        let guard = guard();
        let lower: String = KEY.bytes().map(|b| format!("{b:02x}")).collect();
        let upper: String = KEY.bytes().map(|b| format!("{b:02X}")).collect();
        assert_ne!(lower, upper);
        assert!(guard.finds_secret_in(format!("data=0x{lower}00").as_bytes()));
        assert!(guard.finds_secret_in(format!("DATA={upper};").as_bytes()));
    }

    #[test]
    fn percent_and_json_encodings_are_seen_in_either_order() {
        let guard = guard();
        // Percent-encoded JSON escapes: decode, then unescape.
        let escaped = KEY.replace('-', "%5Cu002d");
        assert!(guard.finds_secret_in(format!("/send?text={escaped}").as_bytes()));
        // JSON escapes of percent signs: unescape, then decode.
        let percent = KEY.replace('-', "\\u00252D");
        assert!(guard.finds_secret_in(format!(r#"{{"url":"/?k={percent}"}}"#).as_bytes()));
    }

    #[test]
    fn text_with_only_the_keys_prefix_is_not_flagged() {
        let guard = guard();
        let body = br#"{"text":"our keys look like sk-ant-api03-... and \u0073k-ant-api03-Xq9 is cut short"}"#;
        assert!(!guard.finds_secret_in(body));
        assert!(!guard.finds_secret_in(b"sk%2Dant%2Dapi03%2DXq9~%3E?w_Lm"));
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let shown = format!("{:?}", guard());
        assert!(!shown.contains("Xq9"), "{shown}");
        assert!(shown.contains("secrets: 1"), "{shown}");
    }
}
