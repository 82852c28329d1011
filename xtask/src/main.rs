//! `cargo xtask`: Pincer's developer tasks.
//!
//! Skills (the logic is in the `pincer-skills` crate):
//! `skills`, `show-skill NAME`, `diff-skill NAME`,
//! `apply-skill NAME [--no-test] | --continue | --abort`, `remove-skill NAME`,
//! `update UPSTREAM [--ref REF] [--no-test]` (UPSTREAM: a remote's name, a
//! path or a URL), `upstream-diff UPSTREAM_REF [--out DIR]` (by default into
//! the git directory, outside the working tree), `new-skill NAME [--base REV]`
//! (a crate linked into `pincer` when applied; with `--base`, also the
//! changes since REV). The verbs and Pincer's scaffold are in `skills.rs`.
//! Conflicts exit with 3.
//!
//! Benchmarks:
//! * `bench spawn [--runs N]`: the container round trip of a trivial
//!   invocation through Pincer's sandbox (engine API: create → attach → start
//!   → wait → remove) against `docker run --rm` of the same image with the
//!   same flags, interleaved in one run, reported as medians, p95s and ratios.
//!
//! * `bench egress [--runs N]`: one HTTP request to a loopback server through
//!   the egress proxy on a host socket (plain HTTP forward, and a CONNECT
//!   tunnel) against the same request sent directly, interleaved.
//!
//! * `bench e2e [--runs N]`: the whole path of one message (control socket
//!   in → store → queue → container with the agent → model (answering at
//!   once) → reply out) against the bare container round trip; and the
//!   host's memory (RSS) idle and with 20 groups' agents running at once.
//!
//! * `bench flood [--runs N]`: `main`'s reply while another group's agent
//!   floods its host socket, against the same reply with no flood.
//!
//! * `bench tokens`: the share of model input that prompt caching would
//!   serve from cache, for a 20-turn invocation and a resumed one, with
//!   Pincer's breakpoints against the same requests without them.
//!
//! Benchmarks print ratios against a baseline measured in the same run, never
//! absolute thresholds: the machine's speed cancels out.

mod bench_flood;
mod bench_tokens;
mod model_server;
mod skills;

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

const USAGE: &str = "usage: cargo xtask skills | show-skill NAME | diff-skill NAME | \
apply-skill NAME [--no-test] | apply-skill --continue|--abort | remove-skill NAME | \
update REMOTE|PATH|URL [--ref REF] [--no-test] | upstream-diff UPSTREAM_REF [--out DIR] | new-skill NAME [--base REV] | \
bench spawn|egress|e2e|flood|skills [--runs N] | bench tokens";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(code) = skills::run(&words)? {
        std::process::exit(code);
    }
    match words.as_slice() {
        ["bench", "tokens"] => tokio::runtime::Runtime::new()?.block_on(bench_tokens::run()),
        ["bench", "skills", rest @ ..] => {
            let runs = match rest {
                [] => 5,
                ["--runs", n] => n.parse().context("--runs takes a whole number")?,
                _ => bail!("{USAGE}"),
            };
            bench_skills(runs)
        }
        [
            "bench",
            which @ ("spawn" | "egress" | "e2e" | "flood"),
            rest @ ..,
        ] => {
            let runs = match rest {
                [] if *which == "flood" => 20,
                [] if *which == "spawn" || *which == "e2e" => 30,
                [] => 300,
                ["--runs", n] => n.parse().context("--runs takes a whole number")?,
                _ => bail!("{USAGE}"),
            };
            let runtime = tokio::runtime::Runtime::new()?;
            match *which {
                "spawn" => runtime.block_on(bench_spawn(runs)),
                "egress" => runtime.block_on(bench_egress(runs)),
                "flood" => runtime.block_on(bench_flood::run(runs)),
                _ => runtime.block_on(bench_e2e(runs)),
            }
        }
        _ => bail!("{USAGE}"),
    }
}

/// A connected sandbox with the agent image, and the spec of a trivial
/// invocation (`pincer-agent --version`) with a real invocation's mounts.
async fn trivial_container(paths: &Paths) -> anyhow::Result<(Sandbox, ContainerSpec)> {
    let engine = EngineEndpoint::from_docker_host(std::env::var("DOCKER_HOST").ok());
    let sandbox = Sandbox::connect(paths, engine).await?;
    let image = default_image();
    sandbox
        .ensure_image(&image, &ImageSources::default())
        .await?;
    // The mounts of a real invocation (a plain file stands in for the socket).
    std::fs::create_dir_all(paths.run_dir())?;
    let socket = paths.run_dir().join("bench.sock");
    std::fs::write(&socket, "")?;
    let user = ContainerUser::for_this_host();
    let spec = ContainerSpec {
        image,
        // Like the runner, it waits for its stdin (the sandbox checks the
        // mounts of a started container before it writes it), then exits.
        command: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            "read -r _; exec /usr/local/bin/pincer-agent --version".into(),
        ]),
        user,
        mounts: mounts::invocation_mounts(
            paths,
            &MountPlan {
                group: &GroupName::main(),
                user,
                host_socket: &socket,
                project: None,
                extra: &[],
                policy: &MountPolicy::load(&pincer::invoke::host_facts(paths, sandbox.endpoint()))?,
                home: None,
            },
        )?
        .mounts,
        resources: Resources::default(),
        labels: BTreeMap::new(),
        working_dir: mounts::GROUP_TARGET.into(),
        runtime: std::env::var("PINCER_RUNTIME")
            .ok()
            .filter(|r| !r.is_empty()),
    };
    Ok((sandbox, spec))
}

/// Apply time of a small skill on a fork 0 and 500 commits away from the
/// skill's base, in the same run.
fn bench_skills(runs: usize) -> anyhow::Result<()> {
    use git2::{Repository, Signature};
    use pincer_skills::{ApplyOutcome, Engine};

    fn commit_all(repo: &Repository, message: &str) -> anyhow::Result<git2::Oid> {
        let mut index = repo.index()?;
        index.add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)?;
        index.write()?;
        let tree = repo.find_tree(index.write_tree()?)?;
        let signature = Signature::now("bench", "bench@pincer.invalid")?;
        let parents: Vec<git2::Commit<'_>> = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_commit().ok())
            .into_iter()
            .collect();
        let parents: Vec<&git2::Commit<'_>> = parents.iter().collect();
        Ok(repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )?)
    }

    let measure = |divergence: usize| -> anyhow::Result<Vec<Duration>> {
        let dir = tempfile_dir()?;
        let root = dir.as_path();
        let repo = Repository::init(root)?;
        for i in 0..50 {
            std::fs::create_dir_all(root.join("core/src"))?;
            let body: String = (0..200).map(|l| format!("fn f{i}_{l}() {{}}\n")).collect();
            std::fs::write(root.join(format!("core/src/m{i}.rs")), body)?;
        }
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"core\"]\n",
        )?;
        let base = commit_all(&repo, "upstream")?;
        let skill = root.join("skills/demo");
        std::fs::create_dir_all(skill.join("files/core/src"))?;
        for i in 0..3 {
            let mut body = std::fs::read_to_string(root.join(format!("core/src/m{i}.rs")))?;
            body.push_str("fn added_by_the_skill() {}\n");
            std::fs::write(skill.join(format!("files/core/src/m{i}.rs")), body)?;
        }
        std::fs::write(skill.join("files/core/src/demo.rs"), "pub fn demo() {}\n")?;
        std::fs::write(skill.join("SKILL.md"), "# demo\n")?;
        std::fs::write(
            skill.join("skill.toml"),
            format!(
                "name = \"demo\"\nversion = \"1.0.0\"\ndescription = \"bench\"\nbase = \"{base}\"\n\
                     adds = [\"core/src/demo.rs\"]\nmodifies = [\"core/src/m0.rs\", \"core/src/m1.rs\", \"core/src/m2.rs\"]\n"
            ),
        )?;
        commit_all(&repo, "add the skill")?;
        // The owner's divergence: commits editing the files the skill modifies (other lines) and others.
        for c in 0..divergence {
            let file = root.join(format!("core/src/m{}.rs", c % 50));
            let mut body = std::fs::read_to_string(&file)?;
            body = body.replacen(
                &format!("fn f{}_{}() {{}}", c % 50, c % 200),
                &format!("fn f{}_{}() {{ /* owner {c} */ }}", c % 50, c % 200),
                1,
            );
            std::fs::write(&file, body)?;
            commit_all(&repo, &format!("owner change {c}"))?;
        }
        let engine = Engine::open(root)?;
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let outcome = engine.apply("demo", false)?;
            times.push(started.elapsed());
            let ApplyOutcome::Committed { from, branch, .. } = outcome else {
                bail!("the bench skill conflicted")
            };
            // Back to where we were, for the next run.
            repo.set_head(&from)?;
            repo.checkout_head(Some(
                git2::build::CheckoutBuilder::new()
                    .force()
                    .remove_untracked(true),
            ))?;
            repo.find_branch(&branch, git2::BranchType::Local)?
                .delete()?;
        }
        let _ = std::fs::remove_dir_all(root);
        Ok(times)
    };
    let mut fresh = measure(0)?;
    let mut diverged = measure(500)?;
    let (fresh_median, diverged_median) =
        (percentile(&mut fresh, 50), percentile(&mut diverged, 50));
    println!("bench skills: apply-skill (3 merged files, 1 added, 50-file fork), {runs} runs each");
    println!("{:<40} {:>10}", "", "median");
    println!(
        "{:<40} {:>8.1}ms",
        "fork at the skill's base",
        ms(fresh_median)
    );
    println!(
        "{:<40} {:>8.1}ms",
        "fork 500 commits of divergence away",
        ms(diverged_median)
    );
    println!(
        "{:<40} {:>10.2}",
        "ratio (500 commits / none)",
        ms(diverged_median) / ms(fresh_median)
    );
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "pincer-bench-skills-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn bench_spawn(runs: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pincer-bench-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let (sandbox, spec) = trivial_container(&paths).await?;
    let image = spec.image.clone();
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
                &mut |_| std::ops::ControlFlow::Continue(()),
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

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn bench_e2e(runs: usize) -> anyhow::Result<()> {
    use pincer::daemon::{ControlClient, Daemon};

    // A model that answers at once.
    let model_url = model_server::start(std::sync::Arc::new(|_: &[u8]| OK_ANSWER.to_owned()))?;

    let dir = std::env::temp_dir().join(format!("pincer-bench-e2e-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let (sandbox, spec) = trivial_container(&paths).await?;
    let (host, settings) =
        bench_host(&paths, &model_url, &[("PINCER_MAX_CONCURRENT", "20")]).await?;
    for g in 0..20 {
        host.store().add_group(
            &GroupName::new(&format!("g{g}"))?,
            &format!("bench:g{g}"),
            None,
        )?;
    }
    let daemon = Daemon::new(host, settings, pincer::daemon::channels(&|_| None));
    let (mut client, stop, serving) = serve_daemon(daemon, &paths).await?;

    println!("bench e2e: {runs} messages, interleaved with {runs} bare container round trips");
    let (mut path, mut bare) = (Vec::new(), Vec::new());
    for round in 0..runs + 2 {
        let started = Instant::now();
        let (reply, failed) = client.ask("main", "hi").await?;
        let message_time = started.elapsed();
        if failed || reply != "ok" {
            bail!("unexpected reply: {reply}");
        }
        let started = Instant::now();
        sandbox
            .run(
                &spec,
                b"",
                pincer::sandbox::Deadlines::total(Duration::from_secs(60)),
                &mut |_| std::ops::ControlFlow::Continue(()),
            )
            .await?;
        let bare_time = started.elapsed();
        if round >= 2 {
            path.push(message_time);
            bare.push(bare_time);
        }
    }
    let idle = rss_kib();

    // 20 groups at once: every agent running, the host's memory at its peak.
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampler = {
        let peak = std::sync::Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let mut asks = tokio::task::JoinSet::new();
    for g in 0..20 {
        let home = paths.home.clone();
        asks.spawn(async move {
            let mut client = ControlClient::connect(&home).await?;
            client.ask(&format!("g{g}"), "@pincer hi").await
        });
    }
    while let Some(answer) = asks.join_next().await {
        answer??;
    }
    sampler.abort();
    let _ = stop.send(());
    serving.await??;
    let _ = std::fs::remove_dir_all(&dir);

    let (path_median, path_p95) = (percentile(&mut path, 50), percentile(&mut path, 95));
    let (bare_median, bare_p95) = (percentile(&mut bare, 50), percentile(&mut bare, 95));
    println!("{:<44} {:>10} {:>10}", "", "median", "p95");
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        "message in -> reply out (whole path)",
        ms(path_median),
        ms(path_p95)
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms",
        "bare container round trip (same image)",
        ms(bare_median),
        ms(bare_p95)
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms  (ratio {:.2})",
        "added by the host (whole path - bare)",
        ms(path_median) - ms(bare_median),
        ms(path_p95) - ms(bare_p95),
        ms(path_median) / ms(bare_median)
    );
    println!(
        "host memory (RSS): idle {:.1} MiB, 20 groups active {:.1} MiB (peak)",
        idle as f64 / 1024.0,
        peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
    );
    Ok(())
}

/// A model answer with nothing to do: the text `ok`.
pub(crate) const OK_ANSWER: &str = r#"{"id":"m","type":"message","role":"assistant","model":"bench","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;

/// A host under `paths` with the model at `model_url`, no project mount,
/// and the `extra` settings (`("PINCER_MAX_CONCURRENT", "20")`, say).
pub(crate) async fn bench_host(
    paths: &Paths,
    model_url: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<(pincer::invoke::Host, pincer::config::Settings)> {
    let settings = pincer::config::Settings::from_env(|key| match key {
        "PINCER_MODEL_URL" => Some(model_url.to_owned()),
        "PINCER_PROJECT_DIR" => Some("none".into()),
        other => extra
            .iter()
            .find(|(name, _)| *name == other)
            .map(|(_, value)| (*value).to_owned()),
    })?;
    let engine = EngineEndpoint::from_docker_host(std::env::var("DOCKER_HOST").ok());
    let host = pincer::invoke::Host::start(
        paths.clone(),
        settings.clone(),
        engine,
        Some("bench-key".into()),
        Vec::new(),
    )
    .await?;
    Ok((host, settings))
}

/// A daemon serving in this process: its control client once it answers,
/// the sender that stops it, and its task.
pub(crate) type Serving = tokio::task::JoinHandle<Result<(), pincer::daemon::DaemonError>>;

pub(crate) async fn serve_daemon(
    daemon: std::sync::Arc<pincer::daemon::Daemon>,
    paths: &Paths,
) -> anyhow::Result<(
    pincer::daemon::ControlClient,
    tokio::sync::oneshot::Sender<()>,
    Serving,
)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(daemon.run(async {
        let _ = stopped.await;
    }));
    for _ in 0..200 {
        if let Ok(client) = pincer::daemon::ControlClient::connect(&paths.home).await {
            return Ok((client, stop, serving));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the daemon did not come up")
}

fn percentile(samples: &mut [Duration], pct: usize) -> Duration {
    samples.sort();
    let index = ((samples.len() * pct).div_ceil(100)).saturating_sub(1);
    samples.get(index).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
