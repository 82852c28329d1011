//! The skill verbs of `cargo xtask` (their arguments read by `usage.rs`; the
//! logic is in the `pincer-skills` crate, which knows no project's layout:
//! Pincer's build command comes from here), and Pincer's scaffold for a new
//! skill: a crate in `skills/<name>/` that applying links into the `pincer`
//! binary (a dependency, one line in its registry file).

use std::io::IsTerminal;

use pincer_skills::{
    ApplyOutcome, CrateEdit, Engine, RegisterLine, Scaffold, SkillError, UpdateReport,
    UpstreamDiffOptions,
};

use crate::usage::{Args, UsageError};

/// What `remove-skill` runs before the other skills' tests: the fork must
/// still build without the skill.
const BUILD: &str = "cargo build -p pincer";

/// A skill verb, its arguments checked.
pub(crate) enum SkillCommand<'a> {
    List,
    Show {
        name: &'a str,
        json: bool,
    },
    Diff(&'a str),
    Apply {
        name: &'a str,
        run_test: bool,
        accept_undeclared: bool,
    },
    /// `apply-skill --continue`: an apply's or a remove's (or an update's,
    /// as older engines told the owner).
    Continue {
        run_test: bool,
    },
    /// `apply-skill --abort` or `update --abort`: whatever waits.
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
    UpdateContinue {
        run_tests: bool,
    },
    UpstreamDiff {
        upstream: &'a str,
        list: bool,
        options: UpstreamDiffOptions,
    },
    NewSkill {
        name: &'a str,
        base: Option<&'a str>,
    },
}

/// The remote `update` takes from when not told.
const DEFAULT_UPSTREAM: &str = "upstream";

/// The upstream ref `upstream-diff` sends to when not told.
const DEFAULT_UPSTREAM_REF: &str = "upstream/main";

/// The skill verb `args` asks for.
pub(crate) fn command<'a>(args: &Args<'a>) -> Result<SkillCommand<'a>, UsageError> {
    let run_tests = !args.has("--no-test");
    Ok(match args.verb.name {
        "skills" => {
            args.no_operand()?;
            SkillCommand::List
        }
        "show-skill" => SkillCommand::Show {
            name: args.operand()?,
            json: args.has("--json"),
        },
        "diff-skill" => SkillCommand::Diff(args.operand()?),
        "apply-skill" => apply_command(args)?,
        "remove-skill" => SkillCommand::Remove {
            name: args.operand()?,
            run_tests,
        },
        "update" => update_command(args)?,
        "upstream-diff" => upstream_diff_command(args)?,
        "new-skill" => SkillCommand::NewSkill {
            name: args.operand()?,
            base: args.value("--base"),
        },
        other => return Err(args.verb.wrong(format!("{other} is not a skill verb"))),
    })
}

/// `--continue` or `--abort` (each without an operand), when given.
fn continue_or_abort(args: &Args<'_>) -> Result<Option<bool>, UsageError> {
    match (args.has("--continue"), args.has("--abort")) {
        (false, false) => Ok(None),
        (true, true) => Err(args.verb.wrong("--continue or --abort, not both")),
        (continuing, _) => {
            args.no_operand()?;
            if !continuing && args.has("--no-test") {
                return Err(args.verb.wrong("--abort takes no --no-test"));
            }
            if args.has("--ref") {
                return Err(args.verb.wrong("--ref is for a new update only"));
            }
            Ok(Some(continuing))
        }
    }
}

/// `apply-skill`'s three forms.
fn apply_command<'a>(args: &Args<'a>) -> Result<SkillCommand<'a>, UsageError> {
    let run_test = !args.has("--no-test");
    Ok(match continue_or_abort(args)? {
        Some(true) => SkillCommand::Continue { run_test },
        Some(false) => SkillCommand::Abort,
        None => SkillCommand::Apply {
            name: args.operand()?,
            run_test,
            accept_undeclared: args.has("--accept-undeclared"),
        },
    })
}

/// `update`'s three forms.
fn update_command<'a>(args: &Args<'a>) -> Result<SkillCommand<'a>, UsageError> {
    let run_tests = !args.has("--no-test");
    Ok(match continue_or_abort(args)? {
        Some(true) => SkillCommand::UpdateContinue { run_tests },
        Some(false) => SkillCommand::Abort,
        None => SkillCommand::Update {
            upstream: args.optional_operand()?.unwrap_or(DEFAULT_UPSTREAM),
            refname: args
                .value("--ref")
                .map_or_else(|| "refs/heads/main".to_owned(), full_ref),
            run_tests,
        },
    })
}

/// `upstream-diff`: the ref, whether to list only, and the options.
fn upstream_diff_command<'a>(args: &Args<'a>) -> Result<SkillCommand<'a>, UsageError> {
    let list = args.has("--list");
    if list && (args.has("--pick") || args.has("--out")) {
        return Err(args
            .verb
            .wrong("--list writes nothing: it takes neither --pick nor --out"));
    }
    let pick = match args.value("--pick") {
        Some(numbers) => Some(pick_numbers(numbers).map_err(|why| args.verb.wrong(why))?),
        None => None,
    };
    Ok(SkillCommand::UpstreamDiff {
        upstream: args.optional_operand()?.unwrap_or(DEFAULT_UPSTREAM_REF),
        list,
        options: UpstreamDiffOptions {
            out: args.value("--out").map(Into::into),
            pick,
            offline: args.has("--offline"),
        },
    })
}

/// `--pick 1,3`: the commit numbers `--list` shows.
fn pick_numbers(words: &str) -> Result<Vec<usize>, String> {
    words
        .split(',')
        .map(|number| {
            number.trim().parse::<usize>().map_err(|_| {
                format!("--pick {words}: {number:?} is not a commit number from --list")
            })
        })
        .collect()
}

/// Runs a skill verb on the repository here; its exit code.
pub(crate) fn run(command: SkillCommand<'_>) -> anyhow::Result<i32> {
    let engine = Engine::open(&std::env::current_dir()?)?.with_build(BUILD);
    let code = match command {
        SkillCommand::List => list(&engine)?,
        SkillCommand::Show { name, json: true } => {
            println!("{:#}", engine.capabilities(name)?.to_json());
            0
        }
        SkillCommand::Show { name, json: false } => {
            println!("{}", engine.capabilities(name)?.render());
            print!("{}", engine.show(name)?);
            0
        }
        SkillCommand::Diff(name) => {
            let colour = std::io::stdout().is_terminal();
            // What the code can reach comes first, as text before the first
            // file header (which `git apply` and `patch` skip).
            println!("{}", engine.capabilities(name)?.render());
            print!("{}", engine.diff(name, colour)?);
            0
        }
        SkillCommand::Apply {
            name,
            run_test,
            accept_undeclared,
        } => apply(&engine, name, run_test, accept_undeclared)?,
        // An update an older engine stopped at said `apply-skill --continue`.
        SkillCommand::Continue { run_test } if engine.update_pending()? => {
            updated(engine.continue_update(run_test)?)
        }
        SkillCommand::Continue { run_test } => report(engine.continue_pending(run_test)?),
        SkillCommand::UpdateContinue { run_tests } => updated(engine.continue_update(run_tests)?),
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
        SkillCommand::UpstreamDiff {
            upstream,
            list,
            options,
        } => upstream_diff(&engine, upstream, list, &options)?,
        SkillCommand::NewSkill { name, base } => new_skill(&engine, name, base)?,
    };
    Ok(code)
}

/// `apply-skill NAME`: the capability report first, then the apply, which
/// stops at anything found but not declared unless the owner accepts it.
fn apply(
    engine: &Engine,
    name: &str,
    run_test: bool,
    accept_undeclared: bool,
) -> anyhow::Result<i32> {
    let review = engine.capabilities(name)?;
    println!("{}", review.render());
    match engine.apply_reviewed(name, run_test, accept_undeclared) {
        Ok(outcome) => Ok(report(outcome)),
        // The report is above: the error only says what to do.
        Err(SkillError::Undeclared(found)) => Err(anyhow::anyhow!(
            "{} of what {name} was found to reach (above) is not declared in \
             skills/{name}/skill.toml; nothing was applied. Read the code at each place \
             named, then `cargo xtask apply-skill {name} --accept-undeclared` to apply it \
             anyway (the report goes into the commit)",
            found.undeclared().len()
        )),
        Err(err) => Err(err.into()),
    }
}

fn list(engine: &Engine) -> anyhow::Result<i32> {
    for skill in engine.list()? {
        // The version in the tree is what an update brings the applied one to.
        let applied = match skill.applied {
            Some(v) if v == skill.version => format!("applied ({v})"),
            Some(v) => format!(
                "applied ({v}; `cargo xtask update` brings {})",
                skill.version
            ),
            None => String::new(),
        };
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
    match engine.update(upstream, refname, run_tests) {
        Ok(update) => Ok(updated(update)),
        // Nothing to take is no failure.
        Err(SkillError::UpToDate(message)) => {
            println!("{message}: up to date");
            Ok(0)
        }
        Err(err) => Err(err.into()),
    }
}

/// Prints what an update (or its `--continue`) did; its exit code (3:
/// conflicts to resolve, 1: a skill's test fails).
fn updated(update: UpdateReport) -> i32 {
    let from = update.from.trim_start_matches("refs/heads/");
    let branch = &update.branch;
    if !update.conflicts.is_empty() {
        match &update.upgrading {
            Some(skill) => println!(
                "the upgrade of {skill} left conflicts on {branch}: {}",
                update.conflicts.join(", ")
            ),
            None => println!(
                "upstream {} conflicts on {branch}: {}",
                update.merged.as_deref().unwrap_or_default(),
                update.conflicts.join(", ")
            ),
        }
        println!(
            "resolve them (`git status` lists them; `git add` each), then `git commit` or \
             `cargo xtask update --continue`;\n`cargo xtask update --continue` also brings the \
             applied skills to upstream's versions and runs their tests (after a `git commit`, \
             run it too); `cargo xtask update --abort` goes back to {from}"
        );
        return 3;
    }
    match &update.merged {
        Some(merged) => println!("upstream {merged} merged on {branch}"),
        None => println!("upstream had nothing new; skills brought to their versions on {branch}"),
    }
    let mut failed = false;
    for skill in &update.skills {
        let version = match &skill.before {
            Some(before) if *before == skill.after => skill.after.clone(),
            Some(before) => format!("{before} -> {}", skill.after),
            None => format!("(new) {}", skill.after),
        };
        let files = if skill.files.is_empty() {
            "no file changed".to_owned()
        } else {
            format!("changed: {}", skill.files.join(", "))
        };
        let test = match skill.test {
            Some(true) => "test passes",
            Some(false) => {
                failed = true;
                "TEST FAILS"
            }
            None => "test not run",
        };
        let reach = if skill.undeclared > 0 {
            failed = true;
            format!(
                "; {} UNDECLARED (cargo xtask show-skill {})",
                skill.undeclared, skill.name
            )
        } else {
            String::new()
        };
        println!("  {:<20} {version}; {files}; {test}{reach}", skill.name);
        for note in &skill.notes {
            println!("    note: {note}");
        }
    }
    println!("\nreview:  git diff {from}..{branch}");
    println!("merge:   git checkout {from} && git merge {branch}");
    println!("discard: git checkout {from} && git branch -D {branch}");
    i32::from(failed)
}

fn upstream_diff(
    engine: &Engine,
    upstream: &str,
    list: bool,
    options: &UpstreamDiffOptions,
) -> anyhow::Result<i32> {
    if list {
        let commits = engine.upstream_commits(upstream, options.offline)?;
        if commits.is_empty() {
            println!("no changes of your own to send upstream");
            return Ok(0);
        }
        println!("your commits that {upstream} lacks (send some with --pick 1,3):");
        for commit in commits {
            println!(
                "{:>4}  {}  {}",
                commit.number,
                &commit.id[..10],
                commit.summary
            );
            for file in commit.files {
                println!("{:>18}{file}", "");
            }
        }
        return Ok(0);
    }
    let sent = engine.upstream_diff(upstream, options)?;
    for commit in &sent.already_upstream {
        println!(
            "left out {} {}: {upstream} has it already",
            &commit.id[..10],
            commit.summary
        );
    }
    if sent.patches.is_empty() {
        println!("no changes of your own to send upstream");
        return Ok(0);
    }
    let dir = std::fs::canonicalize(&sent.dir).unwrap_or(sent.dir);
    println!(
        "wrote {} patch(es) to {}, each rebased onto {upstream}:",
        sent.patches.len(),
        dir.display()
    );
    for patch in &sent.patches {
        println!("  {}", patch.display());
    }
    println!(
        "to check them: `git am {}/*.patch` on a clone of {upstream}",
        dir.display()
    );
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
         src/lib.rs, its test, SKILL.md and skill.toml (description, env), run \
         `cargo test -p pincer-skill-{name}`, then commit the folder with Cargo.lock, which \
         now knows the crate (the workspace's members must include it: `skills/*`)",
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
