//! `bench spawn`: the container round trip through the sandbox against `docker run --rm`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use pincer_assistant::config::Paths;
use pincer_core::sandbox::EngineKind;

use crate::{ms, percentile, trivial_container};

pub(crate) async fn bench_spawn(runs: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pincer-bench-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let (sandbox, spec) = trivial_container(&paths).await?;
    let image = spec.image.clone();
    // The baseline is the engine's own CLI through the same engine: `docker
    // run` (which reads DOCKER_HOST), or `podman --url … run`.
    let profile = sandbox.profile();
    let (cli, mut cli_args) = match profile.kind {
        EngineKind::Docker => ("docker", Vec::new()),
        EngineKind::Podman => (
            "podman",
            vec!["--url".to_owned(), sandbox.endpoint().to_string()],
        ),
    };
    cli_args.extend(spec.docker_run_args(
        &sandbox.ownership_labels(),
        profile.userns_mode(spec.user).as_deref(),
    ));
    println!("engine: {}", profile.describe());

    println!("bench spawn: {runs} runs each, interleaved, image {image}");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..runs + 2 {
        let started = Instant::now();
        let exit = sandbox
            .run(
                &spec,
                b"",
                pincer_core::sandbox::Deadlines::total(Duration::from_secs(60)),
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
        let status = Command::new(cli)
            .args(&cli_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .with_context(|| format!("cannot run the {cli} CLI"))?;
        let cli_time = started.elapsed();
        if !status.success() {
            bail!("{cli} run failed: {status} (args: {cli_args:?})");
        }
        // The first rounds warm the engine's caches; they are not counted.
        if round >= 2 {
            ours.push(ours_time);
            theirs.push(cli_time);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let (ours_median, ours_p95) = (percentile(&mut ours, 50), percentile(&mut ours, 95));
    let (cli_median, cli_p95) = (percentile(&mut theirs, 50), percentile(&mut theirs, 95));
    println!("{:<34} {:>10} {:>10}", "", "median", "p95");
    println!(
        "{:<34} {:>8.1}ms {:>8.1}ms",
        "pincer sandbox (engine API)",
        ms(ours_median),
        ms(ours_p95)
    );
    println!(
        "{:<34} {:>8.1}ms {:>8.1}ms",
        format!("{cli} run --rm (CLI), same spec"),
        ms(cli_median),
        ms(cli_p95)
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        format!("ratio (pincer / {cli} run)"),
        ms(ours_median) / ms(cli_median),
        ms(ours_p95) / ms(cli_p95)
    );
    Ok(())
}
