//! Servers a hostile agent tries to reach: a trap that must never be hit, and a destination the allowlist lets through.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

/// A listener that counts connections and never answers: a trap for traffic
/// that must not happen (a proxy the gateway must not use).
pub struct Trap {
    pub addr: std::net::SocketAddr,
    pub hits: Arc<Mutex<usize>>,
}

impl Trap {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&hits);
        thread::spawn(move || {
            for stream in listener.incoming() {
                *counter.lock().unwrap() += 1;
                drop(stream);
            }
        });
        Self { addr, hits }
    }

    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

/// A plain HTTP server on loopback that answers `egress-ok <path>` and
/// counts what reached it: the destination of egress tests.
pub struct Destination {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Destination {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) if line.trim().is_empty() => break,
                            Ok(_) => {}
                        }
                    }
                    let path = first.split_whitespace().nth(1).unwrap_or("?").to_owned();
                    seen.lock().unwrap().push(first.trim().to_owned());
                    let body = format!("egress-ok {path}");
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Self { port, requests }
    }

    pub fn hits(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
