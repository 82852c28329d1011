//! `pincer-bench`: the host's benchmarks, run through `cargo xtask bench …`
//! (in a crate of their own so that the skill verbs of `xtask` build no host).
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
//! * `bench e2e [--runs N]`: the whole path of one message (control socket
//!   in → store → queue → container with the agent → model (answering at
//!   once) → reply out) against the bare container round trip; and the
//!   host's memory (RSS) idle and with 20 groups' agents running at once.
//!
//! * `bench flood [--runs N]`: `main`'s reply while another group's agent
//!   floods its host socket, against the same reply with no flood.
//!
//! * `bench staging [--runs N]`: a staged read-write grant's copy and
//!   comparison of a 31 MiB project, against `cp -a` of the same folder.
//!
//! * `bench tokens`: the share of model input that prompt caching would
//!   serve from cache, for a 20-turn invocation and a resumed one, with
//!   Pincer's breakpoints against the same requests without them.
//!
//! Benchmarks print ratios against a baseline measured in the same run, never
//! absolute thresholds: the machine's speed cancels out.

mod e2e;
mod egress;
mod flood;
mod model_server;
mod spawn;
mod staging;
mod tokens;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use pincer_assistant::config::Paths;
use pincer_assistant::image::{ImageSources, ensure_image};
use pincer_core::group::GroupName;
use pincer_core::mounts::{self, ContainerUser, MountPlan, MountPolicy};
use pincer_core::sandbox::{ContainerSpec, EngineEndpoint, Resources, Sandbox, default_image};

pub(crate) use e2e::{bench_host, serve_daemon};

const USAGE: &str =
    "usage: cargo xtask bench spawn|egress|e2e|flood|staging [--runs N] | bench tokens";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    match words.as_slice() {
        ["tokens"] => runtime.block_on(tokens::run()),
        [
            which @ ("spawn" | "egress" | "e2e" | "flood" | "staging"),
            rest @ ..,
        ] => {
            let runs = match rest {
                [] if *which == "flood" || *which == "staging" => 20,
                [] if *which == "spawn" || *which == "e2e" => 30,
                [] => 300,
                ["--runs", n] => n.parse().context("--runs takes a whole number")?,
                _ => bail!("{USAGE}"),
            };
            match *which {
                "spawn" => runtime.block_on(spawn::bench_spawn(runs)),
                "egress" => runtime.block_on(egress::bench_egress(runs)),
                "flood" => runtime.block_on(flood::run(runs)),
                "staging" => staging::run(runs),
                _ => runtime.block_on(e2e::bench_e2e(runs)),
            }
        }
        _ => bail!("{USAGE}"),
    }
}

/// A connected sandbox with the agent image, and the spec of a trivial
/// invocation (`pincer-agent --version`) with a real invocation's mounts.
pub(crate) async fn trivial_container(paths: &Paths) -> anyhow::Result<(Sandbox, ContainerSpec)> {
    let engine = EngineEndpoint::detect(
        std::env::var("DOCKER_HOST").ok(),
        std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
    );
    let sandbox = Sandbox::connect(paths, engine).await?;
    let image = default_image();
    ensure_image(&sandbox, &image, &ImageSources::default(), &|_| {}).await?;
    // The mounts of a real invocation (a plain file stands in for the socket).
    std::fs::create_dir_all(paths.run_dir())?;
    let socket = paths.run_dir().join("bench.sock");
    std::fs::write(&socket, "")?;
    let user = ContainerUser::for_this_host();
    let host_user = sandbox.profile().host_user(user);
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
                user: host_user,
                host_socket: &socket,
                project: None,
                extra: &[],
                policy: &MountPolicy::load(&pincer_assistant::invoke::host_facts(
                    paths,
                    sandbox.endpoint(),
                ))?,
                home: None,
                staging: &paths.home.join("staging"),
                stage_limits: pincer_core::staging::StageLimits::with_bytes(0),
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

pub(crate) fn percentile(samples: &mut [Duration], pct: usize) -> Duration {
    samples.sort();
    let index = ((samples.len() * pct).div_ceil(100)).saturating_sub(1);
    samples.get(index).copied().unwrap_or_default()
}

pub(crate) fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
