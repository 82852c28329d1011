//! The egress bridge: `127.0.0.1:3128` inside the container, piped to the
//! host's socket, so that tools which honour `HTTP_PROXY`/`HTTPS_PROXY` (curl,
//! git, pip, wget) reach the host's egress proxy. The bridge decides nothing:
//! it copies bytes, and the host allows or refuses each request.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;

use pincer_protocol::{EGRESS_PROXY_PORT, HOST_SOCKET_PATH};

/// Starts listening in the background; a failure to bind is reported on
/// stderr and leaves the agent without egress (nothing else changes).
pub(crate) fn start() {
    let listener = match TcpListener::bind(("127.0.0.1", EGRESS_PROXY_PORT)) {
        Ok(listener) => listener,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "egress bridge not started: {err}");
            return;
        }
    };
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            thread::spawn(move || {
                if let Ok(host) = UnixStream::connect(Path::new(HOST_SOCKET_PATH)) {
                    pipe(client, host);
                }
            });
        }
    });
}

/// Copies both ways until either side closes, then closes the other.
fn pipe(client: TcpStream, host: UnixStream) {
    let (Ok(client_reader), Ok(host_writer)) = (client.try_clone(), host.try_clone()) else {
        return;
    };
    let upstream =
        thread::spawn(move || copy(client_reader, host_writer, |h| h.shutdown(Shutdown::Write)));
    copy(host, client, |c| c.shutdown(Shutdown::Write));
    let _ = upstream.join();
}

fn copy<R: Read, W: Write>(mut from: R, mut to: W, close: impl FnOnce(&W) -> std::io::Result<()>) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = close(&to);
}
