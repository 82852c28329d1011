//! `cargo xtask`: Pincer's developer tasks.
//!
//! Skills (the logic is in the `pincer-skills` crate):
//! `skills`, `show-skill NAME`, `diff-skill NAME`,
//! `apply-skill NAME [--no-test] | --continue | --abort`, `remove-skill NAME`,
//! `update UPSTREAM [--ref REF] [--no-test]` (UPSTREAM: a remote's name, a
//! path or a URL), `upstream-diff UPSTREAM_REF [--out DIR]` (by default into
//! the git directory, outside the working tree), `new-skill NAME --base REV`.
//! Conflicts exit with 3.
//!
//! Benchmarks: `bench skills [--runs N]` (apply time on a fork 0 and 500
//! commits from the skill's base) runs here; `bench spawn|egress|e2e|flood|tokens`
//! run the host's benchmarks in the `pincer-bench` crate (bench/src/main.rs
//! says what each measures). Benchmarks print ratios against a baseline
//! measured in the same run, never absolute thresholds.

mod bench_skills;

use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask skills | show-skill NAME | diff-skill NAME | \
apply-skill NAME [--no-test] | apply-skill --continue|--abort | remove-skill NAME | \
update REMOTE|PATH|URL [--ref REF] [--no-test] | upstream-diff UPSTREAM_REF [--out DIR] | new-skill NAME --base REV | \
bench spawn|egress|e2e|flood|skills [--runs N] | bench tokens";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(code) = skills_command(&words)? {
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
        _ => bail!("{USAGE}"),
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

fn skills_command(words: &[&str]) -> anyhow::Result<Option<i32>> {
    use pincer_skills::{ApplyOutcome, Engine};
    use std::io::IsTerminal;

    let verbs = [
        "skills",
        "show-skill",
        "diff-skill",
        "apply-skill",
        "remove-skill",
        "update",
        "upstream-diff",
        "new-skill",
    ];
    if !words.first().is_some_and(|w| verbs.contains(w)) {
        return Ok(None);
    }
    let engine = Engine::open(&std::env::current_dir()?)?;
    let report = |outcome: ApplyOutcome| -> i32 {
        match outcome {
            ApplyOutcome::Committed {
                branch,
                from,
                commit,
                summary,
            } => {
                println!("committed {} on {branch}:", &commit[..10]);
                for line in summary {
                    println!("{line}");
                }
                let from = from.trim_start_matches("refs/heads/");
                println!("\nreview:  git diff {from}..{branch}");
                println!("merge:   git checkout {from} && git merge {branch}");
                println!("discard: git checkout {from} && git branch -D {branch}");
                0
            }
            ApplyOutcome::Conflicts { branch, files } => {
                println!(
                    "conflicts on {branch}; resolve them, then `cargo xtask apply-skill --continue` (or `--abort`):"
                );
                for (file, hunks) in files {
                    println!("\n== {file}\n{hunks}");
                }
                3
            }
        }
    };
    let code = match words {
        ["skills"] => {
            for skill in engine.list()? {
                let applied = skill
                    .applied
                    .map(|v| format!("applied ({v})"))
                    .unwrap_or_default();
                println!(
                    "{:<20} {:<8} {:<14} {}",
                    skill.name, skill.version, applied, skill.description
                );
            }
            0
        }
        ["show-skill", name] => {
            print!("{}", engine.show(name)?);
            0
        }
        ["diff-skill", name] => {
            print!("{}", engine.diff(name, std::io::stdout().is_terminal())?);
            0
        }
        ["apply-skill", "--continue"] => report(engine.continue_pending(true)?),
        ["apply-skill", "--abort"] => {
            let back = engine.abort()?;
            println!(
                "aborted; back on {}",
                back.trim_start_matches("refs/heads/")
            );
            0
        }
        ["apply-skill", name] => report(engine.apply(name, true)?),
        ["apply-skill", name, "--no-test"] => report(engine.apply(name, false)?),
        ["remove-skill", name] => report(engine.remove(name)?),
        ["update", upstream, rest @ ..] => {
            let (refname, run_tests) = match rest {
                [] => ("refs/heads/main".to_owned(), true),
                ["--no-test"] => ("refs/heads/main".to_owned(), false),
                ["--ref", r] => (full_ref(r), true),
                ["--ref", r, "--no-test"] => (full_ref(r), false),
                _ => bail!("{USAGE}"),
            };
            let update = engine.update(upstream, &refname, run_tests)?;
            if !update.conflicts.is_empty() {
                println!(
                    "upstream conflicts on {}: {}",
                    update.branch,
                    update.conflicts.join(", ")
                );
                println!("resolve them, then `cargo xtask apply-skill --continue` (or `--abort`)");
                3
            } else {
                println!("upstream merged on {}", update.branch);
                let mut failed = false;
                for (name, touched, passed) in update.skills {
                    let touched = if touched.is_empty() {
                        "nothing it touches".to_owned()
                    } else {
                        touched.join(", ")
                    };
                    let test = match passed {
                        Some(true) => "test passes",
                        Some(false) => {
                            failed = true;
                            "TEST FAILS"
                        }
                        None => "test not run",
                    };
                    println!("  {name:<20} upstream changed: {touched}; {test}");
                }
                i32::from(failed)
            }
        }
        ["upstream-diff", upstream, rest @ ..] => {
            let out = match rest {
                [] => None,
                ["--out", dir] => Some(std::path::Path::new(dir)),
                _ => bail!("{USAGE}"),
            };
            let (dir, patches) = engine.upstream_diff(upstream, out)?;
            if patches.is_empty() {
                println!("no changes of your own to send upstream");
                return Ok(Some(0));
            }
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            println!("wrote {} patch(es) to {}:", patches.len(), dir.display());
            for patch in &patches {
                println!("  {}", patch.display());
            }
            let root = std::fs::canonicalize(engine.root())?;
            if dir.starts_with(&root) && !dir.starts_with(root.join(".git")) {
                println!(
                    "note: that is inside the working tree; move it out before the next \
                     apply-skill, which refuses a dirty tree"
                );
            }
            0
        }
        ["new-skill", name, "--base", base] => {
            let dir = engine.new_skill(name, base)?;
            println!(
                "scaffolded {}: fill in SKILL.md and skill.toml (description, test), then commit it",
                dir.display()
            );
            0
        }
        _ => bail!("{USAGE}"),
    };
    Ok(Some(code))
}

fn full_ref(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    }
}
