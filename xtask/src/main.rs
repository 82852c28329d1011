//! `cargo xtask`: Pincer's developer tasks.
//!
//! * `bench spawn [--runs N]`: the container round trip of a trivial
//!   invocation through Pincer's sandbox (engine API: create → attach → start
//!   → wait → remove) against `docker run --rm` of the same image with the
//!   same flags, interleaved in one run, reported as medians, p95s and ratios.
//!
//! * `bench egress [--runs N]`: one HTTP request to a loopback server through
//!   the egress proxy on a host socket (plain HTTP forward, and a CONNECT
//!   tunnel) against the same request sent directly, interleaved.
//!
//! Benchmarks print ratios against a baseline measured in the same run, never
//! absolute thresholds: the machine's speed cancels out.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pincer::config::Paths;
use pincer::group::GroupName;
use pincer::mounts::{self, ContainerUser, MountPlan, MountPolicy};
use pincer::sandbox::{
    ContainerSpec, EngineEndpoint, ImageSources, Resources, Sandbox, default_image,
};

const USAGE: &str = "usage: cargo xtask bench spawn|egress [--runs N]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bench", which @ ("spawn" | "egress"), rest @ ..] => {
            let runs = match rest {
                [] if *which == "spawn" => 30,
                [] => 300,
                ["--runs", n] => n.parse().context("--runs takes a whole number")?,
                _ => bail!("{USAGE}"),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            if *which == "spawn" {
                runtime.block_on(bench_spawn(runs))
            } else {
                runtime.block_on(bench_egress(runs))
            }
        }
        _ => bail!("{USAGE}"),
    }
}

async fn bench_spawn(runs: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pincer-bench-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let engine = EngineEndpoint::from_docker_host(std::env::var("DOCKER_HOST").ok());
    let sandbox = Sandbox::connect(&paths, engine).await?;
    let image = default_image();
    sandbox
        .ensure_image(&image, &ImageSources::default())
        .await?;

    // The mounts of a real invocation (a plain file stands in for the socket).
    std::fs::create_dir_all(paths.run_dir())?;
    let socket = paths.run_dir().join("host.sock");
    std::fs::write(&socket, "")?;
    let user = ContainerUser::for_this_host();
    let spec = ContainerSpec {
        image: image.clone(),
        command: Some(vec![
            "/usr/local/bin/pincer-agent".into(),
            "--version".into(),
        ]),
        user,
        mounts: mounts::invocation_mounts(
            &paths,
            &MountPlan {
                group: &GroupName::main(),
                user,
                host_socket: &socket,
                project: None,
                extra: &[],
                policy: &MountPolicy::load(&pincer::invoke::host_facts(
                    &paths,
                    sandbox.endpoint(),
                ))?,
                home: None,
            },
        )?,
        resources: Resources::default(),
        labels: BTreeMap::new(),
        working_dir: mounts::GROUP_TARGET.into(),
    };
    let cli_args = spec.docker_run_args(&sandbox.ownership_labels());

    println!("bench spawn: {runs} runs each, interleaved, image {image}");
    let (mut ours, mut cli) = (Vec::new(), Vec::new());
    for round in 0..runs + 2 {
        let started = Instant::now();
        let exit = sandbox
            .run(
                &spec,
                b"",
                pincer::sandbox::Deadlines::total(Duration::from_secs(60)),
                &mut |_| {},
            )
            .await?;
        let ours_time = started.elapsed();
        if exit.exit_code != 0 {
            bail!(
                "the container exited with {}: {}",
                exit.exit_code,
                exit.stderr_tail
            );
        }

        let started = Instant::now();
        let status = Command::new("docker")
            .args(&cli_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .context("cannot run the docker CLI")?;
        let cli_time = started.elapsed();
        if !status.success() {
            bail!("docker run failed: {status} (args: {cli_args:?})");
        }
        // The first rounds warm the engine's caches; they are not counted.
        if round >= 2 {
            ours.push(ours_time);
            cli.push(cli_time);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (ours_median, ours_p95) = (percentile(&mut ours, 50), percentile(&mut ours, 95));
    let (cli_median, cli_p95) = (percentile(&mut cli, 50), percentile(&mut cli, 95));
    println!("{:<34} {:>10} {:>10}", "", "median", "p95");
    println!(
        "{:<34} {:>8.1}ms {:>8.1}ms",
        "pincer sandbox (engine API)",
        ms(ours_median),
        ms(ours_p95)
    );
    println!(
        "{:<34} {:>8.1}ms {:>8.1}ms",
        "docker run --rm (CLI), same spec",
        ms(cli_median),
        ms(cli_p95)
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "ratio (pincer / docker run)",
        ms(ours_median) / ms(cli_median),
        ms(ours_p95) / ms(cli_p95)
    );
    Ok(())
}

async fn bench_egress(runs: usize) -> anyhow::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;

    use pincer::egress::{Egress, LeakGuard};
    use pincer::gateway::{ApiKey, Caller, Gateway, Services, Upstream};
    use pincer::store::Store;

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

fn percentile(samples: &mut [Duration], pct: usize) -> Duration {
    samples.sort();
    let index = ((samples.len() * pct).div_ceil(100)).saturating_sub(1);
    samples.get(index).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
