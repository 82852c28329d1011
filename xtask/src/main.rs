//! `cargo xtask`: Pincer's developer tasks.
//!
//! Skills (the logic is in the `pincer-skills` crate):
//! `skills`, `show-skill NAME`, `diff-skill NAME`,
//! `apply-skill NAME [--no-test] | --continue | --abort`, `remove-skill NAME`,
//! `update UPSTREAM [--ref REF] [--no-test]` (UPSTREAM: a remote's name, a
//! path or a URL), `upstream-diff [UPSTREAM_REF] [--list | --pick N,M]
//! [--offline] [--out DIR]` (the owner's own commits, rebased onto
//! UPSTREAM_REF, by default `upstream/main`, which must not be behind its
//! remote; never `skills/`, `.pincer/` or the paths in `.pincer/local`; by
//! default into the git directory, outside the working tree),
//! `new-skill NAME [--base REV]`
//! (a crate linked into `pincer` when applied; with `--base`, also the
//! changes since REV). The verbs and Pincer's scaffold are in `skills.rs`.
//! Conflicts exit with 3.
//!
//! Benchmarks: `bench skills [--runs N]` (apply time on a fork 0 and 500
//! commits from the skill's base) runs here; `bench spawn|egress|e2e|flood|tokens`
//! run the host's benchmarks in the `pincer-bench` crate (bench/src/main.rs
//! says what each measures). Benchmarks print ratios against a baseline
//! measured in the same run, never absolute thresholds.

mod bench_skills;
mod skills;

use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str =
    "usage: cargo xtask bench spawn|egress|e2e|flood|skills [--runs N] | bench tokens";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(code) = skills::run(&words)? {
        std::process::exit(code);
    }
    match words.as_slice() {
        ["bench", "skills", rest @ ..] => {
            let runs = match rest {
                [] => 5,
                ["--runs", n] => n.parse().context("--runs takes a whole number")?,
                _ => bail!("{USAGE}"),
            };
            bench_skills::run(runs)
        }
        ["bench", rest @ ..] => host_bench(rest),
        _ => bail!("{}\n{USAGE}", skills::USAGE),
    }
}

/// Runs a host benchmark in `pincer-bench`, built by the same cargo with the
/// same profile as this xtask.
fn host_bench(args: &[&str]) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--package", "pincer-bench", "--"])
        .args(args)
        .status()
        .context("cannot run cargo for pincer-bench")?;
    if !status.success() {
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
