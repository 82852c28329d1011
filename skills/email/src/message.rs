//! Mail in (parsed with `mail-parser`) and mail out (composed here): what
//! the inbox is handed, the owner's authentication, and a reply that lands
//! in its thread with nothing an agent wrote in its headers.

use std::time::{SystemTime, UNIX_EPOCH};

use mail_parser::{HeaderName, MessageParser};

/// Most bytes of a message's text handed to the inbox.
pub(crate) const MAX_TEXT: usize = 64 * 1024;
/// Most message ids kept in References.
const MAX_REFERENCES: usize = 20;

/// What the channel needs of a message that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inbound {
    /// The From address, lowercased.
    pub(crate) from: Option<String>,
    pub(crate) thread: Thread,
    /// `Subject: …`, a blank line, the plain text body: what the agent reads.
    pub(crate) text: String,
    /// The topmost Authentication-Results header (the receiving server's).
    pub(crate) auth_results: Option<String>,
    /// Sent by a machine (a vacation notice, a list, a bounce): answering
    /// it could start two robots talking to each other.
    pub(crate) automatic: bool,
}

/// Where a reply goes and how it threads: the last message of a chat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Thread {
    /// Who wrote it (the reply's recipient for a domain's chat).
    pub(crate) address: String,
    /// Its Message-ID, without brackets.
    pub(crate) message_id: Option<String>,
    /// Its References, then its In-Reply-To if not among them.
    pub(crate) references: Vec<String>,
    pub(crate) subject: String,
}

impl Thread {
    /// One field a line, for the channel's state in the store.
    pub(crate) fn to_state(&self) -> String {
        [
            clean(&self.address),
            clean(self.message_id.as_deref().unwrap_or("")),
            clean(&self.subject),
            self.references.join(" "),
        ]
        .join("\n")
    }

    pub(crate) fn from_state(state: &str) -> Self {
        let mut lines = state.split('\n');
        let mut next = || lines.next().unwrap_or("").to_owned();
        let (address, message_id, subject, references) = (next(), next(), next(), next());
        Self {
            address,
            message_id: Some(message_id).filter(|id| is_message_id(id)),
            references: references
                .split(' ')
                .filter(|id| is_message_id(id))
                .map(str::to_owned)
                .collect(),
            subject,
        }
    }
}

/// Parses a message as fetched; `None` when it is not mail at all.
pub(crate) fn parse(raw: &[u8]) -> Option<Inbound> {
    let message = MessageParser::default().parse(raw)?;
    let from = message
        .from()
        .and_then(|from| from.first())
        .and_then(|addr| addr.address())
        .map(str::to_ascii_lowercase);
    let subject = clean(message.subject().unwrap_or(""));
    let body = match message.body_text(0) {
        Some(text) => text.into_owned(),
        None if message.body_html(0).is_some() => "(HTML only)".to_owned(),
        None => String::new(),
    };
    let mut references: Vec<String> = message
        .references()
        .as_text_list()
        .unwrap_or_default()
        .iter()
        .map(|id| id.to_string())
        .filter(|id| is_message_id(id))
        .collect();
    if let Some(parent) = message.in_reply_to().as_text()
        && is_message_id(parent)
        && !references.iter().any(|r| r == parent)
    {
        references.push(parent.to_owned());
    }
    let raw_header = |wanted: &str| {
        message
            .headers()
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(wanted))
            .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
            .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
    };
    let auth_results = message
        .headers()
        .iter()
        .find(|h| h.name == HeaderName::AuthenticationResults)
        .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
        .map(|v| String::from_utf8_lossy(v).into_owned());
    // RFC 3834's Auto-Submitted, and what older robots say instead.
    let automatic = raw_header("Auto-Submitted").is_some_and(|v| !v.starts_with("no"))
        || raw_header("Precedence").is_some_and(|v| ["bulk", "junk", "list"].contains(&v.as_str()))
        || raw_header("X-Autoreply").is_some()
        || raw_header("X-Autorespond").is_some()
        || from
            .as_deref()
            .is_some_and(|f| f.starts_with("mailer-daemon@"));
    let text = truncate(
        format!("Subject: {subject}\n\n{}", body.trim_end()),
        MAX_TEXT,
    );
    Some(Inbound {
        thread: Thread {
            address: from.clone().unwrap_or_default(),
            message_id: message
                .message_id()
                .filter(|id| is_message_id(id))
                .map(str::to_owned),
            references,
            subject,
        },
        from,
        text,
        auth_results,
        automatic,
    })
}

/// Whether the Authentication-Results header `value`, if it is the one
/// `authserv_id` wrote, says the mail comes from `domain`: DKIM passed for
/// it (`header.d`) or DMARC passed for it (`header.from`).
pub(crate) fn authenticates(value: &str, authserv_id: &str, domain: &str) -> bool {
    let value = strip_comments(&value.replace(['\r', '\n'], " "));
    let mut parts = value.split(';');
    let id = parts
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next()
        .unwrap_or("");
    if !id.eq_ignore_ascii_case(authserv_id) {
        return false;
    }
    parts.any(|part| {
        let mut words = part.split_whitespace();
        let Some((method, result)) = words.next().and_then(|w| w.split_once('=')) else {
            return false;
        };
        let property = match method.to_ascii_lowercase().as_str() {
            "dkim" => "header.d",
            "dmarc" => "header.from",
            _ => return false,
        };
        result.eq_ignore_ascii_case("pass")
            && words.any(|w| {
                w.split_once('=').is_some_and(|(name, v)| {
                    name.eq_ignore_ascii_case(property)
                        && v.trim_matches('"').eq_ignore_ascii_case(domain)
                })
            })
    })
}

/// The header without (comments), which may hold anything.
fn strip_comments(value: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// A reply to compose.
pub(crate) struct Reply<'a> {
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    pub(crate) thread: Option<&'a Thread>,
    pub(crate) message_id: &'a str,
    pub(crate) text: &'a str,
}

/// The reply as sent: headers from the settings and the inbound mail
/// (cleaned of line breaks, non-ASCII encoded), the agent's text only in
/// the quoted-printable body.
pub(crate) fn compose(reply: &Reply<'_>, now: SystemTime) -> Vec<u8> {
    let subject = reply.thread.map(|t| clean(&t.subject));
    let subject = match subject.as_deref() {
        Some("") | None => "Pincer".to_owned(),
        Some(s) if s.len() >= 3 && s[..3].eq_ignore_ascii_case("re:") => s.to_owned(),
        Some(s) => format!("Re: {s}"),
    };
    let mut headers = vec![
        format!("From: <{}>", clean(reply.from)),
        format!("To: <{}>", clean(reply.to)),
        format!("Subject: {}", encode_word(&subject)),
        format!("Date: {}", rfc5322_date(now)),
        format!("Message-ID: <{}>", clean(reply.message_id)),
    ];
    if let Some(thread) = reply.thread
        && let Some(parent) = &thread.message_id
    {
        let mut references: Vec<&str> = thread.references.iter().map(String::as_str).collect();
        references.retain(|r| r != parent);
        references.push(parent);
        let keep = references.len().saturating_sub(MAX_REFERENCES);
        let references: Vec<String> = references[keep..]
            .iter()
            .map(|r| format!("<{r}>"))
            .collect();
        headers.push(format!("In-Reply-To: <{parent}>"));
        headers.push(format!("References: {}", references.join("\r\n ")));
    }
    headers.extend([
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: quoted-printable".to_owned(),
        "Auto-Submitted: auto-replied".to_owned(),
    ]);
    let mut out = headers.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(quoted_printable(reply.text).as_bytes());
    out
}

/// Text fit for one header line: line breaks and other controls out.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A message id (without brackets) we repeat in a header: printable ASCII, no spaces.
fn is_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 250
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// An unstructured header value: as it is if ASCII, else RFC 2047
/// encoded-words (base64, at most 45 bytes of text each, on character
/// boundaries), folded.
pub(crate) fn encode_word(text: &str) -> String {
    if text.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) && text.len() <= 900 {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut rest = truncate(text.to_owned(), 900);
    while !rest.is_empty() {
        let mut cut = rest.len().min(45);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let tail = rest.split_off(cut);
        words.push(format!("=?utf-8?B?{}?=", base64(rest.as_bytes())));
        rest = tail;
    }
    words.join("\r\n ")
}

/// Quoted-printable (RFC 2045 6.7): lines of at most 76 characters, CRLF.
pub(crate) fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for line in text.lines() {
        let mut width = 0;
        let bytes = line.as_bytes();
        for (i, &byte) in bytes.iter().enumerate() {
            let last = i + 1 == bytes.len();
            let plain = (byte.is_ascii_graphic() && byte != b'=')
                || (byte == b' ' || byte == b'\t') && !last;
            let piece = if plain {
                (byte as char).to_string()
            } else {
                format!("={byte:02X}")
            };
            if width + piece.len() > 75 {
                out.push_str("=\r\n");
                width = 0;
            }
            width += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Mon, 01 Dec 2025 09:01:11 +0000`.
pub(crate) fn rfc5322_date(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(month - 1).clamp(0, 11) as usize];
    format!("{weekday}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} +0000")
}

#[cfg(test)]
mod tests;
