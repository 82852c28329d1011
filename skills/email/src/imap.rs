//! A small IMAP4rev1 client: what the channel needs and no more (STARTTLS,
//! AUTHENTICATE PLAIN, SELECT, UID SEARCH, UID FETCH BODY.PEEK[], UID STORE,
//! IDLE, NOOP, LOGOUT). Responses are read with every line and literal
//! bounded.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::net::{self, Conn, Server, Tls};

/// Longest response line we accept (Dovecot's lines are far shorter).
const MAX_LINE: usize = 64 * 1024;
/// Largest literal (one message): a bigger one is refused, not allocated.
pub(crate) const MAX_LITERAL: usize = 25 * 1024 * 1024;
/// Most bytes of literals in one response.
const MAX_RESPONSE: usize = MAX_LITERAL + 1024 * 1024;

/// One response: its lines joined (each literal's `{n}` left in place) and
/// its literals, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) text: String,
    pub(crate) literals: Vec<Vec<u8>>,
}

impl Response {
    fn is_tagged(&self, tag: &str) -> bool {
        self.text
            .strip_prefix(tag)
            .is_some_and(|rest| rest.starts_with(' '))
    }

    /// `OK`, `NO` or `BAD` of a tagged response, and its text.
    fn status(&self) -> (&str, &str) {
        let mut words = self.text.splitn(3, ' ').skip(1);
        (words.next().unwrap_or(""), words.next().unwrap_or(""))
    }

    /// The number in `[NAME n]` (a response code), if there is one.
    fn code(&self, name: &str) -> Option<u32> {
        let start = self.text.find(&format!("[{name} "))? + name.len() + 2;
        let rest = &self.text[start..];
        rest[..rest.find(']')?].trim().parse().ok()
    }
}

/// Reads one response (a line, and more lines after each literal).
pub(crate) async fn read_response<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> Result<Response, String> {
    let mut response = Response::default();
    let mut literal_bytes = 0usize;
    loop {
        let line = net::read_line(reader, MAX_LINE).await?;
        let line = String::from_utf8_lossy(&line);
        if response.text.len() + line.len() > MAX_LINE {
            return Err(format!(
                "the server sent a response longer than {MAX_LINE} bytes"
            ));
        }
        response.text.push_str(&line);
        let Some(size) = literal_size(&line)? else {
            return Ok(response);
        };
        literal_bytes += size;
        if size > MAX_LITERAL || literal_bytes > MAX_RESPONSE {
            return Err(format!(
                "the server announced a literal of {size} bytes, more than the {MAX_LITERAL} we take"
            ));
        }
        response.literals.push(net::read_exact(reader, size).await?);
    }
}

/// The size of the literal a line announces at its end (`{123}`, `{123+}`).
fn literal_size(line: &str) -> Result<Option<usize>, String> {
    let Some(inner) = line.strip_suffix('}') else {
        return Ok(None);
    };
    let Some(open) = inner.rfind('{') else {
        return Ok(None);
    };
    let digits = inner[open + 1..].trim_end_matches('+');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    digits
        .parse::<usize>()
        .map(Some)
        .map_err(|_| format!("the server announced a literal of {digits} bytes"))
}

/// The UID in a FETCH response's text.
fn fetched_uid(text: &str) -> Option<u32> {
    let mut words = text
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty());
    while let Some(word) = words.next() {
        if word.eq_ignore_ascii_case("UID") {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// The selected mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mailbox {
    pub(crate) validity: u32,
    /// The uid the next message will get, if the server said.
    pub(crate) uidnext: Option<u32>,
}

/// A logged-in (or about to be) IMAP session.
pub(crate) struct Imap {
    conn: Conn,
    tag: u32,
    capabilities: Vec<String>,
    /// An untagged EXISTS arrived: there may be new mail to look for.
    pub(crate) news: bool,
}

impl Imap {
    /// Connects and secures the connection: implicit TLS, or STARTTLS, which
    /// is required unless the owner allowed plaintext to a loopback server.
    pub(crate) async fn connect(server: &Server, tls: &Tls) -> Result<Self, String> {
        let mut imap = Self {
            conn: Conn::connect(server, tls).await?,
            tag: 0,
            capabilities: Vec::new(),
            news: false,
        };
        let greeting = imap.read().await?;
        if !greeting.text.starts_with("* OK") {
            return Err(format!("greeting: {}", greeting.text));
        }
        if !imap.conn.is_secure() {
            imap.capability().await?;
            if imap.has("STARTTLS") {
                imap.command("STARTTLS").await?;
                imap.conn.starttls(&server.host, tls).await?;
            } else if !server.plaintext_ok {
                return Err(
                    "the server offers no STARTTLS: refusing to send a password unencrypted".into(),
                );
            }
        }
        imap.capability().await?;
        Ok(imap)
    }

    pub(crate) fn has(&self, capability: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(capability))
    }

    async fn read(&mut self) -> Result<Response, String> {
        tokio::time::timeout(net::TIMEOUT, read_response(&mut self.conn.reader))
            .await
            .map_err(|_| "the server did not answer in time".to_owned())?
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("p{}", self.tag)
    }

    /// Reads until the tagged answer to `tag`; the untagged responses on the way.
    async fn finish(&mut self, tag: &str, what: &str) -> Result<Vec<Response>, String> {
        let mut untagged = Vec::new();
        loop {
            let response = self.read().await?;
            if response.is_tagged(tag) {
                let (status, text) = response.status();
                if status.eq_ignore_ascii_case("OK") {
                    return Ok(untagged);
                }
                return Err(format!("{what} refused: {status} {text}"));
            }
            if response.text.starts_with("* BYE") {
                return Err(format!("the server hung up: {}", response.text));
            }
            if response.text.starts_with("* ") && response.text.ends_with(" EXISTS") {
                self.news = true;
            }
            untagged.push(response);
        }
    }

    /// Runs `command` (no secrets in it: it may be in an error).
    async fn command(&mut self, command: &str) -> Result<Vec<Response>, String> {
        let tag = self.next_tag();
        self.conn
            .write(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        let what = command.split(' ').take(2).collect::<Vec<_>>().join(" ");
        self.finish(&tag, &what).await
    }

    async fn capability(&mut self) -> Result<(), String> {
        let untagged = self.command("CAPABILITY").await?;
        self.capabilities = untagged
            .iter()
            .filter_map(|r| r.text.strip_prefix("* CAPABILITY "))
            .flat_map(|caps| caps.split(' ').map(str::to_owned))
            .collect();
        Ok(())
    }

    /// AUTHENTICATE PLAIN (RFC 4616), the password sent only after the
    /// server's continuation, on the secured connection.
    pub(crate) async fn login(&mut self, user: &str, password: &str) -> Result<(), String> {
        let tag = self.next_tag();
        self.conn
            .write(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes())
            .await?;
        let response = self.read().await?;
        if !response.text.starts_with('+') {
            let (status, text) = response.status();
            return Err(format!("login refused: {status} {text}"));
        }
        let credentials = crate::message::base64(format!("\0{user}\0{password}").as_bytes());
        self.conn
            .write(format!("{credentials}\r\n").as_bytes())
            .await?;
        self.finish(&tag, "login").await.map(drop)
    }

    pub(crate) async fn select(&mut self, mailbox: &str) -> Result<Mailbox, String> {
        let untagged = self.command(&format!("SELECT {mailbox}")).await?;
        let validity = untagged
            .iter()
            .find_map(|r| r.code("UIDVALIDITY"))
            .ok_or("SELECT: the server named no UIDVALIDITY")?;
        let uidnext = untagged.iter().find_map(|r| r.code("UIDNEXT"));
        Ok(Mailbox { validity, uidnext })
    }

    /// The uids from `first` on, ascending (`n:*` also names the highest
    /// message when it is below `n`: filtered out).
    pub(crate) async fn uids_from(&mut self, first: u32) -> Result<Vec<u32>, String> {
        let untagged = self.command(&format!("UID SEARCH UID {first}:*")).await?;
        let mut uids: Vec<u32> = untagged
            .iter()
            .filter_map(|r| r.text.strip_prefix("* SEARCH"))
            .flat_map(|list| list.split(' ').filter_map(|n| n.parse().ok()))
            .filter(|&uid| uid >= first)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The highest uid in the mailbox (0 when it is empty).
    pub(crate) async fn highest_uid(&mut self) -> Result<u32, String> {
        let untagged = self.command("UID SEARCH ALL").await?;
        Ok(untagged
            .iter()
            .filter_map(|r| r.text.strip_prefix("* SEARCH"))
            .flat_map(|list| list.split(' ').filter_map(|n| n.parse().ok()))
            .max()
            .unwrap_or(0))
    }

    /// The whole message `uid`, without setting \Seen; `None` if it is gone.
    pub(crate) async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, String> {
        let untagged = self
            .command(&format!("UID FETCH {uid} (UID BODY.PEEK[])"))
            .await?;
        Ok(untagged
            .into_iter()
            .filter(|r| r.text.contains(" FETCH ") && fetched_uid(&r.text) == Some(uid))
            .find_map(|r| r.literals.into_iter().next()))
    }

    pub(crate) async fn mark_seen(&mut self, uid: u32) -> Result<(), String> {
        self.command(&format!("UID STORE {uid} +FLAGS.SILENT (\\Seen)"))
            .await
            .map(drop)
    }

    pub(crate) async fn noop(&mut self) -> Result<(), String> {
        self.command("NOOP").await.map(drop)
    }

    /// IDLE until the server tells of new mail or `limit` passes.
    pub(crate) async fn idle(&mut self, limit: Duration) -> Result<(), String> {
        let tag = self.next_tag();
        self.conn
            .write(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        loop {
            let response = self.read().await?;
            if response.text.starts_with('+') {
                break;
            }
            if response.is_tagged(&tag) {
                return Err(format!("IDLE refused: {}", response.text));
            }
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Waiting for bytes consumes none, so a timeout here loses nothing.
            let ready = tokio::time::timeout_at(deadline, self.conn.reader.fill_buf()).await;
            match ready {
                Err(_) => break,
                Ok(Err(err)) => return Err(format!("read: {err}")),
                Ok(Ok(_)) => {}
            }
            let response = self.read().await?;
            if response.text.starts_with("* BYE") {
                return Err(format!("the server hung up: {}", response.text));
            }
            if response.text.ends_with(" EXISTS") {
                self.news = true;
                break;
            }
        }
        self.conn.write(b"DONE\r\n").await?;
        self.finish(&tag, "IDLE").await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Response, String> {
        let mut input = bytes;
        read_response(&mut input).await
    }

    #[tokio::test]
    async fn responses_with_literals_parse() {
        let r = parse(b"* 3 FETCH (UID 7 BODY[] {12}\r\nHello\r\nthere)\r\n")
            .await
            .unwrap();
        assert_eq!(r.text, "* 3 FETCH (UID 7 BODY[] {12})");
        assert_eq!(r.literals, vec![b"Hello\r\nthere".to_vec()]);
        assert_eq!(fetched_uid(&r.text), Some(7));
        // The UID may come after the literal.
        let r = parse(b"* 3 FETCH (BODY[] {2}\r\nhi UID 9)\r\n")
            .await
            .unwrap();
        assert_eq!(fetched_uid(&r.text), Some(9));
        let r = parse(b"p1 OK [READ-WRITE] done\r\n").await.unwrap();
        assert!(r.is_tagged("p1") && !r.is_tagged("p"));
        assert_eq!(r.status(), ("OK", "[READ-WRITE] done"));
        let r = parse(b"* OK [UIDVALIDITY 1796115673] UIDs valid\r\n")
            .await
            .unwrap();
        assert_eq!(r.code("UIDVALIDITY"), Some(1_796_115_673));
        assert_eq!(r.code("UIDNEXT"), None);
        // Braces that are not a literal.
        let r = parse(b"* OK [ALERT] {not a literal}\r\n").await.unwrap();
        assert!(r.literals.is_empty());
    }

    #[tokio::test]
    async fn hostile_responses_are_errors_not_allocations() {
        let huge = format!("* 1 FETCH (BODY[] {{{}}}\r\n", MAX_LITERAL + 1);
        let err = parse(huge.as_bytes()).await.unwrap_err();
        assert!(err.contains("more than the"), "{err}");
        let err = parse(b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n")
            .await
            .unwrap_err();
        assert!(err.contains("literal"), "{err}");
        let long = vec![b'a'; MAX_LINE + 10];
        let err = parse(&long).await.unwrap_err();
        assert!(err.contains("longer than"), "{err}");
        // A literal cut short by the end of the connection.
        let err = parse(b"* 1 FETCH (BODY[] {100}\r\nshort")
            .await
            .unwrap_err();
        assert!(err.contains("middle of a literal"), "{err}");
    }
}
