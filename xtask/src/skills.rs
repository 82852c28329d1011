//! The skill verbs of `cargo xtask` (their arguments read by `usage.rs`; the
//! logic is in the `pincer-skills` crate, which knows no project's layout:
//! Pincer's build command comes from here), and Pincer's scaffold for a new
//! skill: a crate in `skills/<name>/` that applying links into the `pincer`
//! binary (a dependency, one line in its registry file).

use std::io::IsTerminal;

use pincer_skills::{ApplyOutcome, CrateEdit, Engine, RegisterLine, Scaffold, SkillError};

use crate::usage::{Args, UsageError};

/// What `remove-skill` runs before the other skills' tests: the fork must
/// still build without the skill.
const BUILD: &str = "cargo build -p pincer";

/// A skill verb, its arguments checked.
pub(crate) enum SkillCommand<'a> {
    List,
    Show(&'a str),
    Diff(&'a str),
    Apply {
        name: &'a str,
        run_test: bool,
    },
    Continue {
        run_test: bool,
    },
    Abort,
    Remove {
        name: &'a str,
        run_tests: bool,
    },
    Update {
        upstream: &'a str,
        refname: String,
        run_tests: bool,
    },
    UpstreamDiff {
        upstream: &'a str,
        out: Option<&'a str>,
    },
    NewSkill {
        name: &'a str,
        base: Option<&'a str>,
    },
}

/// The skill verb `args` asks for.
pub(crate) fn command<'a>(args: &Args<'a>) -> Result<SkillCommand<'a>, UsageError> {
    let run_tests = !args.has("--no-test");
    Ok(match args.verb.name {
        "skills" => {
            args.no_operand()?;
            SkillCommand::List
        }
        "show-skill" => SkillCommand::Show(args.operand()?),
        "diff-skill" => SkillCommand::Diff(args.operand()?),
        "apply-skill" => apply_command(args)?,
        "remove-skill" => SkillCommand::Remove {
            name: args.operand()?,
            run_tests,
        },
        "update" => SkillCommand::Update {
            upstream: args.operand()?,
            refname: args
                .value("--ref")
                .map_or_else(|| "refs/heads/main".to_owned(), full_ref),
            run_tests,
        },
        "upstream-diff" => SkillCommand::UpstreamDiff {
            upstream: args.operand()?,
            out: args.value("--out"),
        },
        "new-skill" => SkillCommand::NewSkill {
            name: args.operand()?,
            base: args.value("--base"),
        },
        other => return Err(args.verb.wrong(format!("{other} is not a skill verb"))),
    })
}

/// `apply-skill`'s three forms.
fn apply_command<'a>(args: &Args<'a>) -> Result<SkillCommand<'a>, UsageError> {
    let run_test = !args.has("--no-test");
    match (args.has("--continue"), args.has("--abort")) {
        (true, true) => Err(args.verb.wrong("--continue or --abort, not both")),
        (true, false) => {
            args.no_operand()?;
            Ok(SkillCommand::Continue { run_test })
        }
        (false, true) if !run_test => Err(args.verb.wrong("--abort takes no --no-test")),
        (false, true) => {
            args.no_operand()?;
            Ok(SkillCommand::Abort)
        }
        (false, false) => Ok(SkillCommand::Apply {
            name: args.operand()?,
            run_test,
        }),
    }
}

/// Runs a skill verb on the repository here; its exit code.
pub(crate) fn run(command: SkillCommand<'_>) -> anyhow::Result<i32> {
    let engine = Engine::open(&std::env::current_dir()?)?.with_build(BUILD);
    let code = match command {
        SkillCommand::List => list(&engine)?,
        SkillCommand::Show(name) => {
            print!("{}", engine.show(name)?);
            0
        }
        SkillCommand::Diff(name) => {
            let colour = std::io::stdout().is_terminal();
            print!("{}", engine.diff(name, colour)?);
            0
        }
        SkillCommand::Apply { name, run_test } => report(engine.apply(name, run_test)?),
        SkillCommand::Continue { run_test } => report(engine.continue_pending(run_test)?),
        SkillCommand::Abort => {
            let back = engine.abort()?;
            println!(
                "aborted; back on {}",
                back.trim_start_matches("refs/heads/")
            );
            0
        }
        SkillCommand::Remove { name, run_tests } => report(engine.remove(name, run_tests)?),
        SkillCommand::Update {
            upstream,
            refname,
            run_tests,
        } => update(&engine, upstream, &refname, run_tests)?,
        SkillCommand::UpstreamDiff { upstream, out } => upstream_diff(&engine, upstream, out)?,
        SkillCommand::NewSkill { name, base } => new_skill(&engine, name, base)?,
    };
    Ok(code)
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

fn update(engine: &Engine, upstream: &str, refname: &str, run_tests: bool) -> anyhow::Result<i32> {
    let update = match engine.update(upstream, refname, run_tests) {
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

fn upstream_diff(engine: &Engine, upstream: &str, out: Option<&str>) -> anyhow::Result<i32> {
    let (dir, patches) = engine.upstream_diff(upstream, out.map(std::path::Path::new))?;
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

fn new_skill(engine: &Engine, name: &str, base: Option<&str>) -> anyhow::Result<i32> {
    let dir = engine.new_skill(name, &scaffold()?, base)?;
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
