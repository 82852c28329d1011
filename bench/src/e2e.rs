//! `bench e2e`: the whole path of one message against the bare container round trip; the host's memory; the host and daemon the other benches start.

use std::time::{Duration, Instant};

use anyhow::bail;
use pincer_assistant::config::Paths;
use pincer_core::group::GroupName;
use pincer_core::sandbox::EngineEndpoint;

use crate::model_server;
use crate::{ms, percentile, trivial_container};

/// A model answer with nothing to do: the text `ok`.
pub(crate) const OK_ANSWER: &str = r#"{"id":"m","type":"message","role":"assistant","model":"bench","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}"#;

/// A daemon serving in this process: its control client once it answers,
/// the sender that stops it, and its task.
pub(crate) type Serving =
    tokio::task::JoinHandle<Result<(), pincer_assistant::daemon::DaemonError>>;

/// This process's resident memory, in KiB.
pub(crate) fn rss_kib() -> u64 {
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

pub(crate) async fn bench_e2e(runs: usize) -> anyhow::Result<()> {
    use pincer_assistant::daemon::{ControlClient, Daemon};

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
    let daemon = Daemon::new(
        host,
        settings,
        pincer_assistant::Registry::default().channels(&|_| None),
    );
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
                pincer_core::sandbox::Deadlines::total(Duration::from_secs(60)),
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

/// A host under `paths` with the model at `model_url`, no project mount,
/// and the `extra` settings (`("PINCER_MAX_CONCURRENT", "20")`, say).
pub(crate) async fn bench_host(
    paths: &Paths,
    model_url: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<(
    pincer_assistant::invoke::Host,
    pincer_assistant::config::Settings,
)> {
    let settings = pincer_assistant::config::Settings::from_env(|key| match key {
        "PINCER_MODEL_URL" => Some(model_url.to_owned()),
        "PINCER_PROJECT_DIR" => Some("none".into()),
        other => extra
            .iter()
            .find(|(name, _)| *name == other)
            .map(|(_, value)| (*value).to_owned()),
    })?;
    let engine = EngineEndpoint::detect(
        std::env::var("DOCKER_HOST").ok(),
        std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
    );
    let host = pincer_assistant::invoke::Host::start(
        paths.clone(),
        settings.clone(),
        engine,
        Some("bench-key".into()),
        Vec::new(),
        &pincer_assistant::Registry::default(),
    )
    .await?;
    Ok((host, settings))
}

pub(crate) async fn serve_daemon(
    daemon: std::sync::Arc<pincer_assistant::daemon::Daemon>,
    paths: &Paths,
) -> anyhow::Result<(
    pincer_assistant::daemon::ControlClient,
    tokio::sync::oneshot::Sender<()>,
    Serving,
)> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(daemon.run(async {
        let _ = stopped.await;
    }));
    for _ in 0..200 {
        if let Ok(client) = pincer_assistant::daemon::ControlClient::connect(&paths.home).await {
            return Ok((client, stop, serving));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the daemon did not come up")
}
