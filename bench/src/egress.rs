//! `bench egress`: a request through the egress proxy against the same request sent directly.

use std::time::{Duration, Instant};

use anyhow::bail;
use pincer_core::group::GroupName;

use crate::{ms, percentile};

pub(crate) async fn bench_egress(runs: usize) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    use pincer_socket::egress::{Egress, LeakGuard};
    use pincer_socket::gateway::{ApiKey, Caller, Gateway, Services, Upstream};
    use pincer_store::Store;

    // The destination: a loopback server answering a small response.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let _ = (&stream).write_all(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok");
            });
        }
    });

    let dir = std::env::temp_dir().join(format!("pincer-bench-egress-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = std::sync::Arc::new(Store::open(&dir.join("pincer.db"))?);
    store.allow_egress("main", &format!("127.0.0.1:{port}"))?;
    let services = std::sync::Arc::new(Services {
        upstream: std::sync::Arc::new(Upstream::new(
            "http://127.0.0.1:9",
            ApiKey::new("unused-key".into())?,
        )?),
        egress: std::sync::Arc::new(Egress::new(
            std::sync::Arc::clone(&store),
            LeakGuard::default(),
        )?),
        store,
        limits: Default::default(),
    });
    let socket = dir.join("host.sock");
    let _gateway = Gateway::serve(
        &socket,
        services,
        Caller {
            group: GroupName::main(),
            invocation_id: "bench".into(),
        },
    )?;

    fn read_all(mut stream: impl Read) -> anyhow::Result<Vec<u8>> {
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        if !response.ends_with(b"ok") {
            bail!(
                "unexpected response: {}",
                String::from_utf8_lossy(&response)
            );
        }
        Ok(response)
    }
    let direct = move || -> anyhow::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.write_all(b"GET /x HTTP/1.0\r\n\r\n")?;
        read_all(stream).map(drop)
    };
    let socket_for_forward = socket.clone();
    let forward = move || -> anyhow::Result<()> {
        let mut stream = UnixStream::connect(&socket_for_forward)?;
        write!(
            stream,
            "GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )?;
        read_all(stream).map(drop)
    };
    let tunnel = move || -> anyhow::Result<()> {
        let mut stream = UnixStream::connect(&socket)?;
        write!(
            stream,
            "CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\nGET /x HTTP/1.0\r\n\r\n"
        )?;
        read_all(stream).map(drop)
    };

    let measured = tokio::task::spawn_blocking(move || -> anyhow::Result<[Vec<Duration>; 3]> {
        let mut samples: [Vec<Duration>; 3] = Default::default();
        for round in 0..runs + 20 {
            for (index, run) in [
                &direct as &dyn Fn() -> anyhow::Result<()>,
                &forward,
                &tunnel,
            ]
            .iter()
            .enumerate()
            {
                let started = Instant::now();
                run()?;
                if round >= 20 {
                    samples[index].push(started.elapsed());
                }
            }
        }
        Ok(samples)
    })
    .await??;
    let _ = std::fs::remove_dir_all(&dir);

    let [mut direct, mut forward, mut tunnel] = measured;
    let (direct_median, direct_p95) = (percentile(&mut direct, 50), percentile(&mut direct, 95));
    println!("bench egress: {runs} requests each, interleaved, to a loopback HTTP server");
    println!(
        "{:<40} {:>10} {:>10} {:>14}",
        "", "median", "p95", "added (median)"
    );
    println!(
        "{:<40} {:>8.3}ms {:>8.3}ms {:>14}",
        "direct from the host",
        ms(direct_median),
        ms(direct_p95),
        "-"
    );
    for (name, samples) in [
        ("through the proxy: plain HTTP", &mut forward),
        ("through the proxy: CONNECT tunnel", &mut tunnel),
    ] {
        let (median, p95) = (percentile(samples, 50), percentile(samples, 95));
        println!(
            "{name:<40} {:>8.3}ms {:>8.3}ms {:>12.3}ms  ({:.1}x)",
            ms(median),
            ms(p95),
            ms(median) - ms(direct_median),
            ms(median) / ms(direct_median)
        );
    }
    Ok(())
}
