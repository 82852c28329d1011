//! A loopback HTTP/1.1 server for the benches, standing in for the model
//! API: each request's body goes to `answer`, whose text is the JSON
//! answered, on the same connection, as long as the client keeps it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// What answers a request body.
pub(crate) type Answer = Arc<dyn Fn(&[u8]) -> String + Send + Sync>;

/// Starts the server; returns its base URL.
pub(crate) fn start(answer: Answer) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || serve(&stream, &*answer));
        }
    });
    Ok(url)
}

fn serve(stream: &TcpStream, answer: &(dyn Fn(&[u8]) -> String + Send + Sync)) {
    let mut reader = BufReader::new(stream);
    while let Some(body) = read_body(&mut reader) {
        let reply = answer(&body);
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if (&*stream).write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The body of the next request (its head is read past), or `None` at the end.
fn read_body(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
            return None;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}
