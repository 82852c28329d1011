//! A minimal blocking HTTP/1.1 client for the host's Unix socket.
//!
//! The runner talks to exactly one server, the host, over a socket it mounts
//! at [`pincer_protocol::HOST_SOCKET_PATH`]. One request per connection
//! (`Connection: close`) keeps this small: no pool, no keep-alive state. It
//! reads `Content-Length`, chunked and read-to-close bodies, and bounds all of
//! them so that a broken peer cannot make the runner buffer without end.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The largest response body accepted.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("cannot connect to the host socket {path}: {source}")]
    Connect {
        path: String,
        source: std::io::Error,
    },
    #[error("i/o error talking to the host: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed response from the host: {0}")]
    Malformed(String),
    #[error("response from the host is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

/// A response: status and body (headers are not needed by the runner).
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

/// Sends `POST path` with a JSON body and returns the whole response.
pub(crate) fn post_json(
    socket: &Path,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| HttpError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: pincer-host\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    read_response(BufReader::new(stream))
}

fn read_response(mut reader: impl BufRead) -> Result<Response, HttpError> {
    let mut head_bytes = 0usize;
    let mut status_line = String::new();
    head_bytes += reader.read_line(&mut status_line)?;
    let status = parse_status_line(&status_line)?;

    let mut content_length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line)?;
        head_bytes += read;
        if head_bytes > MAX_HEAD_BYTES {
            return Err(HttpError::Malformed("response head too large".into()));
        }
        if read == 0 {
            return Err(HttpError::Malformed(
                "connection closed inside the head".into(),
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed(format!("bad header line {line:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let length = value
                .parse::<usize>()
                .map_err(|_| HttpError::Malformed(format!("bad content-length {value:?}")))?;
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }

    let body = if chunked {
        read_chunked(&mut reader)?
    } else if let Some(length) = content_length {
        if length > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        reader
            .take(MAX_BODY_BYTES as u64 + 1)
            .read_to_end(&mut body)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        body
    };
    Ok(Response { status, body })
}

fn parse_status_line(line: &str) -> Result<u16, HttpError> {
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code
            .parse()
            .map_err(|_| HttpError::Malformed(format!("bad status line {line:?}"))),
        _ => Err(HttpError::Malformed(format!("bad status line {line:?}"))),
    }
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(HttpError::Malformed(
                "connection closed inside a chunk".into(),
            ));
        }
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        let response = read_response(&raw[..]).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello");
    }

    #[test]
    fn reads_chunked_body() {
        let raw = b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let response = read_response(&raw[..]).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.body, b"abcde");
    }

    #[test]
    fn reads_until_close_without_length() {
        let raw = b"HTTP/1.0 502 Bad Gateway\r\n\r\nupstream down";
        let response = read_response(&raw[..]).unwrap();
        assert_eq!(response.status, 502);
        assert_eq!(response.body, b"upstream down");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            read_response(&b"SSH-2.0-OpenSSH\r\n\r\n"[..]),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n"[..]),
            Err(HttpError::TooLarge)
        ));
        assert!(matches!(
            read_response(&b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"[..]),
            Err(HttpError::Malformed(_))
        ));
    }
}
