//! One connection to a mail server: TCP, then TLS (rustls on ring, the
//! host's one TLS stack) at once or after STARTTLS, and reads that are
//! bounded in size and time, so that a broken or hostile server gets an
//! error rather than our memory or a hang.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
    ReadBuf,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long one exchange with a server may take (a line, a write).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// A server from the settings: where, and how it is secured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// TLS from the first byte (993, 465); otherwise STARTTLS.
    pub(crate) implicit_tls: bool,
    /// The owner allowed a plaintext login to this loopback server.
    pub(crate) plaintext_ok: bool,
}

impl Server {
    /// `host:port`, with the TLS mode: `implicit` when asked or on `implicit_port`.
    pub(crate) fn parse(
        value: &str,
        implicit_port: u16,
        implicit_asked: bool,
        insecure_loopback: bool,
    ) -> Result<Self, String> {
        let value = value.trim();
        let (host, port) = value
            .rsplit_once(':')
            .ok_or_else(|| format!("{value:?} is not host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{value:?}: {port:?} is not a port"))?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{value:?}: not a host name"));
        }
        let loopback = matches!(host, "127.0.0.1" | "::1" | "localhost");
        if insecure_loopback && !loopback {
            return Err(format!(
                "EMAIL_INSECURE_LOOPBACK is only for a server on 127.0.0.1, not {host}"
            ));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            implicit_tls: implicit_asked || port == implicit_port,
            plaintext_ok: insecure_loopback,
        })
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The client side of TLS: Mozilla's roots, and the owner's own CA if named.
#[derive(Clone)]
pub(crate) struct Tls(TlsConnector);

impl Tls {
    pub(crate) fn new(ca_file: Option<&Path>) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = ca_file {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|err| format!("EMAIL_CA_FILE {shown}: {err}"))?;
            let mut added = 0;
            for cert in certs {
                let cert = cert.map_err(|err| format!("EMAIL_CA_FILE {shown}: {err}"))?;
                roots
                    .add(cert)
                    .map_err(|err| format!("EMAIL_CA_FILE {shown}: {err}"))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("EMAIL_CA_FILE {shown}: no certificate in it"));
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("tls: {err}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self(TlsConnector::from(Arc::new(config))))
    }

    async fn wrap(&self, host: &str, tcp: TcpStream) -> Result<Stream, String> {
        let name =
            ServerName::try_from(host.to_owned()).map_err(|err| format!("tls: {host:?}: {err}"))?;
        let tls = tokio::time::timeout(TIMEOUT, self.0.connect(name, tcp))
            .await
            .map_err(|_| "tls handshake timed out".to_owned())?
            .map_err(|err| format!("tls: {err}"))?;
        Ok(Stream::Tls(Box::new(tls)))
    }
}

/// A connection, plain until it is secured.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken apart for STARTTLS (never read from).
    Closed,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// A connection with a read buffer.
pub(crate) struct Conn {
    pub(crate) reader: BufReader<Stream>,
}

impl Conn {
    pub(crate) async fn connect(server: &Server, tls: &Tls) -> Result<Self, String> {
        let tcp = tokio::time::timeout(
            TIMEOUT,
            TcpStream::connect((server.host.as_str(), server.port)),
        )
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|err| format!("cannot connect: {err}"))?;
        let stream = if server.implicit_tls {
            tls.wrap(&server.host, tcp).await?
        } else {
            Stream::Plain(tcp)
        };
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    pub(crate) fn is_secure(&self) -> bool {
        matches!(self.reader.get_ref(), Stream::Tls(_))
    }

    /// Secures the connection after the server said yes to STARTTLS.
    pub(crate) async fn starttls(&mut self, host: &str, tls: &Tls) -> Result<(), String> {
        // Bytes the server sent after its "go ahead" would be read as if they
        // had come over TLS: refuse them (the STARTTLS injection attack).
        if !self.reader.buffer().is_empty() {
            return Err("the server sent data before the TLS handshake".into());
        }
        let old = std::mem::replace(&mut self.reader, BufReader::new(Stream::Closed));
        let Stream::Plain(tcp) = old.into_inner() else {
            return Err("starttls on a connection that is not plain".into());
        };
        self.reader = BufReader::new(tls.wrap(host, tcp).await?);
        Ok(())
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        let stream = self.reader.get_mut();
        tokio::time::timeout(TIMEOUT, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| "write timed out".to_owned())?
        .map_err(|err| format!("write: {err}"))
    }

    /// One line (CRLF or LF stripped), at most `max` bytes.
    pub(crate) async fn line(&mut self, max: usize) -> Result<Vec<u8>, String> {
        tokio::time::timeout(TIMEOUT, read_line(&mut self.reader, max))
            .await
            .map_err(|_| "the server did not answer in time".to_owned())?
    }
}

/// Reads one line of at most `max` bytes, without the line ending.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut line = Vec::new();
    loop {
        let buffer = reader
            .fill_buf()
            .await
            .map_err(|err| format!("read: {err}"))?;
        if buffer.is_empty() {
            return Err("the server closed the connection".into());
        }
        let (taken, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (buffer.len(), false),
        };
        if line.len() + taken > max + 2 {
            return Err(format!("the server sent a line longer than {max} bytes"));
        }
        line.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if done {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// Reads exactly `n` bytes (the caller has checked `n` against its cap).
pub(crate) async fn read_exact<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    n: usize,
) -> Result<Vec<u8>, String> {
    // Grow as the bytes arrive: a size the server announced is no reason to
    // reserve all of it up front.
    let mut bytes = Vec::with_capacity(n.min(64 * 1024));
    let read = (&mut *reader)
        .take(n as u64)
        .read_to_end(&mut bytes)
        .await
        .map_err(|err| format!("read: {err}"))?;
    if read != n {
        return Err("the server closed the connection in the middle of a literal".into());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_bounded_and_stripped() {
        let mut input: &[u8] = b"a1 OK done\r\nsecond\n";
        assert_eq!(read_line(&mut input, 100).await.unwrap(), b"a1 OK done");
        assert_eq!(read_line(&mut input, 100).await.unwrap(), b"second");
        assert!(read_line(&mut input, 100).await.is_err(), "end of stream");
        let long = vec![b'x'; 5000];
        let err = read_line(&mut long.as_slice(), 1000).await.unwrap_err();
        assert!(err.contains("longer than 1000 bytes"), "{err}");
    }

    #[test]
    fn servers_parse_with_their_tls_mode() {
        let s = Server::parse("imap.example.org:993", 993, false, false).unwrap();
        assert!(s.implicit_tls && !s.plaintext_ok);
        let s = Server::parse("imap.example.org:143", 993, false, false).unwrap();
        assert!(!s.implicit_tls);
        assert!(
            Server::parse("imap.example.org:143", 993, true, false)
                .unwrap()
                .implicit_tls
        );
        assert!(
            Server::parse("127.0.0.1:1143", 993, false, true)
                .unwrap()
                .plaintext_ok
        );
        let err = Server::parse("imap.example.org:143", 993, false, true).unwrap_err();
        assert!(err.contains("only for a server on 127.0.0.1"), "{err}");
        assert!(Server::parse("no-port", 993, false, false).is_err());
        assert!(Server::parse("host:99999", 993, false, false).is_err());
    }
}
