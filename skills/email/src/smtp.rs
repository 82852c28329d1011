//! A small SMTP submission client (RFC 5321, 3207, 4954): EHLO, STARTTLS,
//! AUTH PLAIN, one message to one recipient, QUIT.

use crate::net::{Conn, Server, Tls};

/// Longest reply line we accept (RFC 5321 says 512).
const MAX_LINE: usize = 4096;
/// Most lines in one multi-line reply.
const MAX_LINES: usize = 100;

/// One message to send.
pub(crate) struct Envelope<'a> {
    pub(crate) from: &'a str,
    pub(crate) to: &'a str,
    /// The message, CRLF line endings.
    pub(crate) data: &'a [u8],
}

struct Smtp {
    conn: Conn,
}

impl Smtp {
    /// A reply: its code and its text (the lines joined).
    async fn reply(&mut self) -> Result<(u16, String), String> {
        let mut text = String::new();
        for _ in 0..MAX_LINES {
            let line = self.conn.line(MAX_LINE).await?;
            let line = String::from_utf8_lossy(&line);
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("not an SMTP reply: {line:?}"))?;
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(line.get(4..).unwrap_or(""));
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text));
            }
        }
        Err(format!("a reply of more than {MAX_LINES} lines"))
    }

    /// Sends `line` (if any) and expects a reply of class `class` (2, 3).
    async fn expect(
        &mut self,
        line: Option<&str>,
        class: u16,
        what: &str,
    ) -> Result<String, String> {
        if let Some(line) = line {
            self.conn.write(format!("{line}\r\n").as_bytes()).await?;
        }
        let (code, text) = self.reply().await?;
        if code / 100 != class {
            return Err(format!("{what} refused: {code} {text}"));
        }
        Ok(text)
    }

    async fn ehlo(&mut self, name: &str) -> Result<Vec<String>, String> {
        let text = self
            .expect(Some(&format!("EHLO {name}")), 2, "EHLO")
            .await?;
        Ok(text
            .lines()
            .skip(1)
            .map(|l| l.trim().to_ascii_uppercase())
            .collect())
    }
}

/// Sends one message through the submission server, logged in as `user`.
pub(crate) async fn send(
    server: &Server,
    tls: &Tls,
    (user, password): (&str, &str),
    helo: &str,
    message: &Envelope<'_>,
) -> Result<(), String> {
    for address in [message.from, message.to] {
        if !is_plain_address(address) {
            return Err(format!("{address:?} is not an address we send to or from"));
        }
    }
    let mut smtp = Smtp {
        conn: Conn::connect(server, tls).await?,
    };
    smtp.expect(None, 2, "greeting").await?;
    let mut extensions = smtp.ehlo(helo).await?;
    if !smtp.conn.is_secure() {
        if extensions.iter().any(|e| e == "STARTTLS") {
            smtp.expect(Some("STARTTLS"), 2, "STARTTLS").await?;
            smtp.conn.starttls(&server.host, tls).await?;
            extensions = smtp.ehlo(helo).await?;
        } else if !server.plaintext_ok {
            return Err(
                "the server offers no STARTTLS: refusing to send a password unencrypted".into(),
            );
        }
    }
    if !extensions
        .iter()
        .any(|e| e.starts_with("AUTH") && e.split([' ', '=']).any(|m| m == "PLAIN"))
    {
        return Err("the server offers no AUTH PLAIN".into());
    }
    let credentials = crate::message::base64(format!("\0{user}\0{password}").as_bytes());
    smtp.expect(Some(&format!("AUTH PLAIN {credentials}")), 2, "login")
        .await?;
    smtp.expect(
        Some(&format!("MAIL FROM:<{}>", message.from)),
        2,
        "MAIL FROM",
    )
    .await?;
    smtp.expect(Some(&format!("RCPT TO:<{}>", message.to)), 2, "RCPT TO")
        .await?;
    smtp.expect(Some("DATA"), 3, "DATA").await?;
    smtp.conn.write(&dot_stuff(message.data)).await?;
    smtp.expect(None, 2, "the message").await?;
    let _ = smtp.expect(Some("QUIT"), 2, "QUIT").await;
    Ok(())
}

/// An address fit for MAIL FROM/RCPT TO: one `@`, no spaces, brackets or controls.
pub(crate) fn is_plain_address(address: &str) -> bool {
    address.len() <= 254
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
}

/// The DATA section: CRLF line endings, a leading dot doubled, the final
/// `.` line appended (RFC 5321 4.5.2).
pub(crate) fn dot_stuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 40 + 5);
    let mut at_line_start = true;
    let mut previous = 0u8;
    for &byte in data {
        if byte == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && byte == b'.' {
            out.push(b'.');
        }
        out.push(byte);
        at_line_start = byte == b'\n';
        previous = byte;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_ends_the_data() {
        assert_eq!(
            dot_stuff(b"hi\r\n.\r\n..x\r\n"),
            b"hi\r\n..\r\n...x\r\n.\r\n"
        );
        assert_eq!(
            dot_stuff(b".start\nmid.dle\nend"),
            b"..start\r\nmid.dle\r\nend\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn only_plain_addresses_go_into_the_envelope() {
        assert!(is_plain_address("alice@example.test"));
        for bad in [
            "alice",
            "a@b@c",
            "a b@c",
            "a@c>\r\nRCPT TO:<x@y",
            "<a@b>",
            "@b",
            "a@",
        ] {
            assert!(!is_plain_address(bad), "{bad:?}");
        }
    }
}
