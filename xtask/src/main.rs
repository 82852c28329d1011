//! `cargo xtask`: Pincer's developer tasks.
//!
//! Skills (the logic is in the `pincer-skills` crate):
//! `skills`, `show-skill NAME`, `diff-skill NAME`,
//! `apply-skill NAME [--no-test] | --continue [--no-test] | --abort`,
//! `remove-skill NAME [--no-test]` (then builds and runs the other skills'
//! tests), `update [UPSTREAM] [--ref REF] [--no-test] | --continue | --abort`
//! (UPSTREAM: a remote's name, a path or a URL; `upstream` by default),
//! `upstream-diff [UPSTREAM_REF] [--list | --pick N,M] [--offline] [--out DIR]`
//! (the owner's own commits, rebased onto UPSTREAM_REF, by default
//! `upstream/main`, which must not be behind its remote; never `skills/`,
//! `.pincer/` or the paths in `.pincer/local`; by default into the git
//! directory, outside the working tree), `new-skill NAME [--base REV]`
//! (a crate linked into `pincer` when applied; with `--base`, also the
//! changes since REV). The verbs and Pincer's scaffold are in `skills.rs`;
//! their usage, `help` and the parsing of the command line in `usage.rs`.
//! Conflicts exit with 3, a wrong invocation with 2 (its usage on stderr).
//!
//! Benchmarks: `bench skills [--runs N]` (apply time on a fork 0 and 500
//! commits from the skill's base) runs here; `bench spawn|egress|e2e|flood|staging|tokens`
//! run the host's benchmarks in the `pincer-bench` crate (bench/src/main.rs
//! says what each measures). Benchmarks print ratios against a baseline
//! measured in the same run, never absolute thresholds.

mod bench_skills;
mod skills;
mod usage;

use std::process::{Command, ExitCode};

use anyhow::Context;

use usage::{Args, Invocation, UsageError};

/// What the command line asks for, checked.
enum Task<'a> {
    /// Help to print on stdout.
    Help(String),
    /// A skill verb.
    Skills(skills::SkillCommand<'a>),
    /// `bench skills`, this many runs.
    BenchSkills(usize),
    /// A host benchmark: `pincer-bench`'s arguments.
    HostBench(Vec<&'a str>),
}

#[allow(clippy::print_stderr)] // the binary's edge: the one place errors are printed
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let task = match usage::invocation(&words).and_then(task) {
        Ok(task) => task,
        Err(wrong) => {
            eprint!("{}", wrong.report());
            return ExitCode::from(2);
        }
    };
    match run(task) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        // The message says what and where; a backtrace of this binary
        // would bury it (a failed test's last lines above all).
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// Runs a checked task; its exit code.
fn run(task: Task<'_>) -> anyhow::Result<i32> {
    Ok(match task {
        Task::Help(text) => {
            print!("{text}");
            0
        }
        Task::Skills(command) => skills::run(command)?,
        Task::BenchSkills(runs) => {
            bench_skills::run(runs)?;
            0
        }
        Task::HostBench(args) => host_bench(&args)?,
    })
}

/// An error and its causes, each once (a cause whose text the message
/// already holds, as `git: …` holds git's own, is left out).
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn task(invocation: Invocation<'_>) -> Result<Task<'_>, UsageError> {
    match invocation {
        Invocation::Help(text) => Ok(Task::Help(text)),
        Invocation::Run(args) if args.verb.name == "bench" => bench(&args),
        Invocation::Run(args) => skills::command(&args).map(Task::Skills),
    }
}

/// `bench BENCH [--runs N]`, checked here so that a wrong one never starts
/// a build of `pincer-bench`.
fn bench<'a>(args: &Args<'a>) -> Result<Task<'a>, UsageError> {
    let which = args.operand()?;
    let runs = args.value("--runs");
    if let Some(n) = runs
        && !n.parse::<usize>().is_ok_and(|n| n > 0)
    {
        return Err(args
            .verb
            .wrong(format!("--runs takes a whole number above 0, not {n:?}")));
    }
    match (which, runs) {
        ("skills", runs) => Ok(Task::BenchSkills(
            runs.and_then(|n| n.parse().ok()).unwrap_or(5),
        )),
        ("spawn" | "egress" | "e2e" | "flood" | "staging", None) => {
            Ok(Task::HostBench(vec![which]))
        }
        ("spawn" | "egress" | "e2e" | "flood" | "staging", Some(n)) => {
            Ok(Task::HostBench(vec![which, "--runs", n]))
        }
        ("tokens", None) => Ok(Task::HostBench(vec![which])),
        ("tokens", Some(_)) => Err(args.verb.wrong("bench tokens takes no --runs")),
        (other, _) => Err(args.verb.wrong(format!("no benchmark named {other:?}"))),
    }
}

/// Runs a host benchmark in `pincer-bench`, built by the same cargo with the
/// same profile as this xtask; its exit code.
fn host_bench(args: &[&str]) -> anyhow::Result<i32> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--quiet", "--package", "pincer-bench", "--"])
        .args(args)
        .status()
        .context("cannot run cargo for pincer-bench")?;
    Ok(if status.success() {
        0
    } else {
        status.code().unwrap_or(1)
    })
}
