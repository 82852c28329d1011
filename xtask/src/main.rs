//! `cargo xtask`: Pincer's developer tasks.
//!
//! * `bench spawn [--runs N]`: the container round trip of a trivial
//!   invocation through Pincer's sandbox (engine API: create → attach → start
//!   → wait → remove) against `docker run --rm` of the same image with the
//!   same flags, interleaved in one run, reported as medians, p95s and ratios.
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

const USAGE: &str = "usage: cargo xtask bench spawn [--runs N]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bench", "spawn", rest @ ..] => {
            let runs = match rest {
                [] => 30,
                ["--runs", n] => n.parse().context("--runs takes a whole number")?,
                _ => bail!("{USAGE}"),
            };
            tokio::runtime::Runtime::new()?.block_on(bench_spawn(runs))
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
            .run(&spec, b"", Duration::from_secs(60), &mut |_| {})
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

fn percentile(samples: &mut [Duration], pct: usize) -> Duration {
    samples.sort();
    let index = ((samples.len() * pct).div_ceil(100)).saturating_sub(1);
    samples.get(index).copied().unwrap_or_default()
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
