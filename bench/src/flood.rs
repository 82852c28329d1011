//! `bench flood`: how long `main` takes to answer while another group's
//! agent floods its host socket, against the same answer with no flood, in
//! one run (quiet, flood, quiet again: the baseline is both quiet phases).
//!
//! The flooding agent is a real agent in a real container: its model asks
//! it to run a shell loop that, until it is cancelled, keeps eight idle
//! connections open (half its socket's cap: the rest of the flood flows), sends 8 MiB model bodies in parallel, and pipes
//! hundreds of refused host-API calls with long paths.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use pincer_assistant::config::Paths;
use pincer_assistant::daemon::{ControlClient, Daemon};
use pincer_core::group::GroupName;

use crate::model_server;

const FLOOD: &str = r#"long=$(head -c 30000 /dev/zero | tr '\0' a)
i=0; while [ $i -lt 8 ]; do sleep 600 | nc 127.0.0.1 3128 > /dev/null 2>&1 & i=$((i+1)); done
while true; do
  i=0; bodies=""
  while [ $i -lt 8 ]; do
    { printf 'POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\nConnection: close\r\n\r\n'; head -c 8000000 /dev/zero; sleep 1; } | nc 127.0.0.1 3128 > /dev/null 2>&1 &
    bodies="$bodies $!"; i=$((i+1))
  done
  { i=0; while [ $i -lt 300 ]; do printf 'POST /host/v1/%s%s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}' $long $i; i=$((i+1)); done; sleep 1; } | nc 127.0.0.1 3128 > /dev/null 2>&1
  wait $bodies
done"#;

fn answer(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if text.contains("@pincer flood") && !text.contains("tool_result") {
        let input = serde_json::json!({"command": FLOOD, "timeout_ms": 600_000});
        return serde_json::json!({
            "id": "m", "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "tool_use", "id": "t1", "name": "bash", "input": input}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 1, "output_tokens": 1}
        })
        .to_string();
    }
    crate::e2e::OK_ANSWER.to_owned()
}

pub(crate) async fn run(runs: usize) -> anyhow::Result<()> {
    let model_url = model_server::start(Arc::new(answer))?;
    let dir = std::env::temp_dir().join(format!("pf-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let (host, settings) = crate::bench_host(&paths, &model_url, &[]).await?;
    host.store()
        .add_group(&GroupName::new("family")?, "bench:family", None)?;
    let daemon = Daemon::new(
        host,
        settings,
        pincer_assistant::Registry::default().channels(&|_| None),
    );
    let store = Arc::clone(daemon.store());
    let (mut client, stop, serving) = crate::serve_daemon(daemon, &paths).await?;

    println!(
        "bench flood: main answers {runs} messages quiet, {runs} while family floods, {runs} quiet"
    );
    let mut quiet = ask_main(&mut client, runs).await?;
    let mut flooder = ControlClient::connect(&paths.home).await?;
    flooder
        .request(&serde_json::json!({"op": "send", "group": "family", "text": "@pincer flood"}))
        .await?;
    // The flood is under way once its container has had time to start.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut flooded = ask_main(&mut client, runs).await?;
    let mut canceller = ControlClient::connect(&paths.home).await?;
    canceller
        .request(&serde_json::json!({"op": "cancel", "group": "family"}))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    quiet.extend(ask_main(&mut client, runs).await?);

    // What the flood made the host do, as the audit counted it.
    let (mut rows, mut events) = (0, 0);
    for entry in store.audit_entries(Some("family"), None)? {
        rows += 1;
        events += entry.count;
    }
    println!("family's flood: {events} events audited in {rows} rows");
    if events < 100 {
        bail!("the flood did not run: {events} events");
    }
    let (quiet_median, flooded_median) = (
        crate::percentile(&mut quiet, 50),
        crate::percentile(&mut flooded, 50),
    );
    let (quiet_p95, flooded_p95) = (
        crate::percentile(&mut quiet, 95),
        crate::percentile(&mut flooded, 95),
    );
    println!("{:<34} {:>10} {:>10}", "", "median", "p95");
    println!(
        "{:<34} {:>8.1}ms {:>8.1}ms",
        "main's reply, quiet",
        crate::ms(quiet_median),
        crate::ms(quiet_p95)
    );
    println!(
        "{:<34} {:>8.1}ms {:>8.1}ms",
        "main's reply, family flooding",
        crate::ms(flooded_median),
        crate::ms(flooded_p95)
    );
    println!(
        "{:<34} {:>10.2} {:>10.2}",
        "ratio (flooding / quiet)",
        crate::ms(flooded_median) / crate::ms(quiet_median),
        crate::ms(flooded_p95) / crate::ms(quiet_p95)
    );
    let _ = stop.send(());
    let _ = serving.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn ask_main(client: &mut ControlClient, runs: usize) -> anyhow::Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let (reply, failed) = client.ask("main", "hi").await?;
        if failed || reply != "ok" {
            bail!("unexpected reply: {reply}");
        }
        times.push(started.elapsed());
    }
    Ok(times)
}
