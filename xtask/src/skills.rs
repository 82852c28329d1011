//! The skill verbs of `cargo xtask` (the logic is in the `pincer-skills`
//! crate, which knows no project's layout), and Pincer's scaffold for a new
//! skill: a crate in `skills/<name>/` that applying links into the `pincer`
//! binary (a dependency, one line in its registry file).

use std::io::IsTerminal;

use anyhow::bail;
use pincer_skills::{ApplyOutcome, CrateEdit, Engine, RegisterLine, Scaffold, SkillError};

/// The skill verbs' usage.
pub(crate) const USAGE: &str = "usage: cargo xtask skills | show-skill NAME | diff-skill NAME | \
apply-skill NAME [--no-test] | apply-skill --continue|--abort | remove-skill NAME [--no-test] | \
update REMOTE|PATH|URL [--ref REF] [--no-test] | upstream-diff UPSTREAM_REF [--out DIR] | \
new-skill NAME [--base REV]";

/// What `remove-skill` runs before the other skills' tests: the fork must
/// still build without the skill.
const BUILD: &str = "cargo build -p pincer";

const VERBS: [&str; 8] = [
    "skills",
    "show-skill",
    "diff-skill",
    "apply-skill",
    "remove-skill",
    "update",
    "upstream-diff",
    "new-skill",
];

/// The skill verbs; `Some(exit code)` when `words` was one of them.
pub(crate) fn run(words: &[&str]) -> anyhow::Result<Option<i32>> {
    if !words.first().is_some_and(|w| VERBS.contains(w)) {
        return Ok(None);
    }
    if words.iter().any(|w| *w == "--help" || *w == "-h") {
        println!("{USAGE}");
        return Ok(Some(0));
    }
    let engine = Engine::open(&std::env::current_dir()?)?.with_build(BUILD);
    let code = match words {
        ["skills"] => list(&engine)?,
        ["show-skill", name] => {
            print!("{}", engine.show(operand(name)?)?);
            0
        }
        ["diff-skill", name] => {
            let colour = std::io::stdout().is_terminal();
            print!("{}", engine.diff(operand(name)?, colour)?);
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
        ["apply-skill", name] => report(engine.apply(operand(name)?, true)?),
        ["apply-skill", name, "--no-test"] => report(engine.apply(operand(name)?, false)?),
        ["remove-skill", name] => report(engine.remove(operand(name)?, true)?),
        ["remove-skill", name, "--no-test"] => report(engine.remove(operand(name)?, false)?),
        ["update", upstream, rest @ ..] => update(&engine, operand(upstream)?, rest)?,
        ["upstream-diff", upstream, rest @ ..] => upstream_diff(&engine, operand(upstream)?, rest)?,
        ["new-skill", name, rest @ ..] => new_skill(&engine, operand(name)?, rest)?,
        _ => bail!("{USAGE}"),
    };
    Ok(Some(code))
}

/// A name, path or URL where one is expected: never a flag (`update --ref`
/// must not fetch from a remote called `--ref`).
fn operand(word: &str) -> anyhow::Result<&str> {
    if word.starts_with('-') {
        bail!("{word}: not a flag here\n{USAGE}");
    }
    Ok(word)
}

fn list(engine: &Engine) -> anyhow::Result<i32> {
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
    Ok(0)
}

/// Prints how an apply, a remove or a continued operation ended; its exit
/// code (3: conflicts to resolve).
fn report(outcome: ApplyOutcome) -> i32 {
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
}

fn update(engine: &Engine, upstream: &str, rest: &[&str]) -> anyhow::Result<i32> {
    let (refname, run_tests) = match rest {
        [] => ("refs/heads/main".to_owned(), true),
        ["--no-test"] => ("refs/heads/main".to_owned(), false),
        ["--ref", r] => (full_ref(operand(r)?), true),
        ["--ref", r, "--no-test"] => (full_ref(operand(r)?), false),
        _ => bail!("{USAGE}"),
    };
    let update = match engine.update(upstream, &refname, run_tests) {
        Ok(update) => update,
        // Nothing to take is no failure.
        Err(SkillError::UpToDate(message)) => {
            println!("{message}: up to date");
            return Ok(0);
        }
        Err(err) => return Err(err.into()),
    };
    if !update.conflicts.is_empty() {
        println!(
            "upstream conflicts on {}: {}",
            update.branch,
            update.conflicts.join(", ")
        );
        println!("resolve them, then `cargo xtask apply-skill --continue` (or `--abort`)");
        return Ok(3);
    }
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
    Ok(i32::from(failed))
}

fn upstream_diff(engine: &Engine, upstream: &str, rest: &[&str]) -> anyhow::Result<i32> {
    let out = match rest {
        [] => None,
        ["--out", dir] => Some(std::path::Path::new(operand(dir)?)),
        _ => bail!("{USAGE}"),
    };
    let (dir, patches) = engine.upstream_diff(upstream, out)?;
    if patches.is_empty() {
        println!("no changes of your own to send upstream");
        return Ok(0);
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
    Ok(0)
}

fn new_skill(engine: &Engine, name: &str, rest: &[&str]) -> anyhow::Result<i32> {
    let from = match rest {
        [] => None,
        ["--base", base] => Some(operand(base)?),
        _ => bail!("{USAGE}"),
    };
    let dir = engine.new_skill(name, &scaffold()?, from)?;
    println!(
        "scaffolded {}: a crate, pincer-skill-{name}, linked into pincer when applied. Fill in \
         src/lib.rs, its test, SKILL.md and skill.toml (description, env), then commit it \
         (the workspace's members must include it: `skills/*`)",
        dir.display()
    );
    Ok(0)
}

fn full_ref(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    }
}

/// A skill's crate manifest: a member of Pincer's workspace that depends on
/// the assistant's public API only.
const CARGO_TOML: &str = r#"[package]
name = "pincer-skill-{name}"
description = "TODO: one line about the {name} skill"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
publish.workspace = true

# The pincer binary with only this skill linked, for the skill's own tests
# (never built into the owner's pincer).
[[bin]]
name = "pincer-skill-{name}-host"
path = "host.rs"
test = false
bench = false
doc = false

[dependencies]
pincer-assistant = { path = "../../assistant" }
pincer-cli = { path = "../../cli" }

[dev-dependencies]
pincer-test-support = { path = "../../tests/support" }

[lints]
workspace = true
"#;

const HOST_RS: &str = r#"//! The `pincer` binary with only the {name} skill linked: what this skill's
//! tests run (`support::use_host`), so they go through the real host.

fn main() -> std::process::ExitCode {
    pincer_cli::main(pincer_skill_{name_snake}::register)
}
"#;

const LIB_RS: &str = r#"//! The {name} skill: TODO, what it adds to Pincer.
//!
//! `cargo xtask apply-skill {name}` links this crate into the `pincer`
//! binary: a dependency, and a call to `register` in `pincer/src/skills.rs`.

/// Registers what the skill adds (a channel, a model provider, a check…)
/// with Pincer (rename `_registry` once you use it).
pub fn register(_registry: &mut pincer_assistant::Registry) {}
"#;

const TEST_RS: &str = r#"//! The {name} skill's test: `cargo test -p pincer-skill-{name}`, which
//! apply-skill runs, against the real host with the skill linked.

use pincer_test_support as support;

#[test]
#[ignore = "write this skill's test"]
fn the_skill_does_what_skill_md_says() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-{name}-host"));
}
"#;

const SKILL_MD: &str = "---\nname: {name}\ndescription: TODO\n---\n\n# {name}\n\n\
## What it adds\n\nTODO\n\n\
## Set-up\n\nTODO: keys to create, configuration to write (the variables it needs go in \
`env` in skill.toml).\n\n\
## Check that it works\n\n`cargo test -p pincer-skill-{name}`, then TODO\n\n\
## Remove it\n\n`cargo xtask remove-skill {name}`\n";

/// Pincer's scaffold for `new-skill`: the crate, and what applying it does
/// (the dependency in `pincer/Cargo.toml`, the line in `pincer/src/skills.rs`).
fn scaffold() -> anyhow::Result<Scaffold> {
    Ok(Scaffold {
        files: vec![
            ("Cargo.toml".into(), CARGO_TOML.into()),
            ("src/lib.rs".into(), LIB_RS.into()),
            ("host.rs".into(), HOST_RS.into()),
            ("tests/{name}.rs".into(), TEST_RS.into()),
            ("SKILL.md".into(), SKILL_MD.into()),
        ],
        crates: vec![CrateEdit::dependency(
            "pincer/Cargo.toml",
            "pincer-skill-{name}",
            r#"{ path = "../skills/{name}" }"#,
        )?],
        register: vec![RegisterLine {
            file: "pincer/src/skills.rs".into(),
            line: "pincer_skill_{name_snake}::register(registry);".into(),
        }],
        test: Some("cargo build -p pincer && cargo test -p pincer-skill-{name}".into()),
    })
}
