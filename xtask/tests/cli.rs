//! `cargo xtask`'s skill verbs as an owner runs them: exit codes and output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn write(dir: &Path, path: &str, content: &str) {
    let path = dir.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn xtask(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn the_skill_verbs_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Owner"]);
    git(root, &["config", "user.email", "owner@example.org"]);
    write(root, "src/lib.rs", "fn one() {}\nfn two() {}\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "upstream"]);
    let base = git(root, &["rev-parse", "HEAD"]);
    write(
        root,
        "skills/hello/SKILL.md",
        "---\nname: hello\ndescription: says hello\n---\n# hello\nAdds a greeting.\n",
    );
    write(
        root,
        "skills/hello/files/src/lib.rs",
        "fn one() {}\nfn two() { hello() }\n",
    );
    write(
        root,
        "skills/hello/skill.toml",
        &format!(
            "name = \"hello\"\nversion = \"0.1.0\"\ndescription = \"says hello\"\nbase = \"{base}\"\nmodifies = [\"src/lib.rs\"]\nenv = [\"HELLO_NAME\"]\n"
        ),
    );
    // The owner changed the same line.
    write(root, "src/lib.rs", "fn one() {}\nfn two() { owner() }\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "owner"]);

    let listed = xtask(root, &["skills"]);
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("hello"));
    let shown = xtask(root, &["show-skill", "hello"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("modifies  src/lib.rs")
            && shown.contains("env       HELLO_NAME (into .env.example)"),
        "{shown}"
    );
    let diff = xtask(root, &["diff-skill", "hello"]);
    let diff_text = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff_text.contains("--- a/src/lib.rs") && !diff_text.contains("\x1b["),
        "plain when piped: {diff_text}"
    );
    assert!(
        diff_text.contains("+++ b/.pincer/skills.toml"),
        "the state file apply writes is in the diff: {diff_text}"
    );
    assert!(
        diff_text.contains("+++ b/.env.example\n")
            && diff_text.contains("+# skill hello (see skills/hello/SKILL.md)\n+HELLO_NAME=\n"),
        "and the skill's variables: {diff_text}"
    );
    assert!(
        git(root, &["status", "--porcelain"]).is_empty(),
        "diff-skill writes nothing"
    );

    let applied = xtask(root, &["apply-skill", "hello"]);
    assert_eq!(
        applied.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(String::from_utf8_lossy(&applied.stdout).contains("<<<<<<< fork"));
    let aborted = xtask(root, &["apply-skill", "--abort"]);
    assert!(aborted.status.success());
    assert_eq!(git(root, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert!(
        !root.join(".env.example").exists(),
        "the .env.example the apply created went with the abort"
    );

    let unknown = xtask(root, &["apply-skill", "nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no skill named \"nope\""));

    // upstream-diff writes its patches outside the working tree, says where,
    // and the next apply-skill is not refused for a dirty tree.
    let sent = xtask(root, &["upstream-diff", &base]);
    let said = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(said.contains(".git/pincer-upstream-patches"), "{said}");
    let patches: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(".patch"))
        .collect();
    assert_eq!(patches.len(), 1, "{said}");
    let patch = std::fs::read_to_string(patches[0]).unwrap();
    assert!(
        patch.contains("+fn two() { owner() }") && !patch.contains("skills/"),
        "{patch}"
    );
    assert_eq!(git(root, &["status", "--porcelain"]), "");
    let again = xtask(root, &["apply-skill", "hello"]);
    assert_eq!(
        again.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// A repository with one commit, for the verbs that need no skill.
fn one_commit_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Owner"]);
    git(root, &["config", "user.email", "owner@example.org"]);
    write(root, "README.md", "a fork\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "upstream"]);
    dir
}

#[test]
fn new_skill_scaffolds_a_pincer_skill_crate() {
    let dir = one_commit_repo();
    let root = dir.path();
    let made = xtask(root, &["new-skill", "my-chat"]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    assert!(String::from_utf8_lossy(&made.stdout).contains("scaffolded"));
    let read =
        |path: &str| std::fs::read_to_string(root.join("skills/my-chat").join(path)).unwrap();
    let cargo = read("Cargo.toml");
    assert!(
        cargo.contains("name = \"pincer-skill-my-chat\"")
            && cargo.contains("edition.workspace = true")
            && cargo.contains("pincer-assistant = { path = \"../../assistant\" }")
            && cargo.contains("[lints]\nworkspace = true"),
        "{cargo}"
    );
    assert!(
        read("src/lib.rs")
            .contains("pub fn register(_registry: &mut pincer_assistant::Registry) {}")
    );
    let test = read("tests/my-chat.rs");
    assert!(
        test.contains("#[ignore = \"write this skill's test\"]")
            && test.contains("env!(\"CARGO_BIN_EXE_pincer-skill-my-chat-host\")"),
        "{test}"
    );
    assert!(read("host.rs").contains("pincer_cli::main(pincer_skill_my_chat::register)"));
    assert!(read("SKILL.md").contains("cargo xtask remove-skill my-chat"));
    let manifest = read("skill.toml");
    assert!(
        manifest.contains("[[crate]]\nmanifest = \"pincer/Cargo.toml\"\ndependencies = { pincer-skill-my-chat = { path = \"../skills/my-chat\" } }")
            && manifest.contains("[[register]]\nfile = \"pincer/src/skills.rs\"\nline = \"pincer_skill_my_chat::register(registry);\"")
            && manifest.contains(
                "test = \"cargo build -p pincer && cargo test -p pincer-skill-my-chat\""
            ),
        "{manifest}"
    );
    let shown = xtask(root, &["show-skill", "my-chat"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("package   pincer-skill-my-chat in skills/my-chat/")
            && shown.contains("new deps  unknown: there is no Cargo.lock"),
        "{shown}"
    );
    let again = xtask(root, &["new-skill", "my-chat"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
}

#[test]
fn update_takes_flags_as_flags_and_up_to_date_is_no_failure() {
    let dir = one_commit_repo();
    let root = dir.path();
    let help = xtask(root, &["update", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("usage: cargo xtask update"));
    for args in [
        &["update", "--bogus"][..],
        &["update", ".", "--ref", "--no-test"],
    ] {
        let refused = xtask(root, args);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {said}");
        assert!(
            said.contains("usage: cargo xtask update"),
            "{args:?}: {said}"
        );
        assert!(!said.contains("could not fetch"), "{args:?}: {said}");
    }
    let current = xtask(root, &["update", root.to_str().unwrap()]);
    assert_eq!(
        current.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&current.stderr)
    );
    assert!(
        String::from_utf8_lossy(&current.stdout).contains("main already has everything in"),
        "{}",
        String::from_utf8_lossy(&current.stdout)
    );
    assert_eq!(git(root, &["branch", "--list", "update/*"]), "");
}

/// Every verb `cargo xtask help` lists.
const VERBS: [&str; 10] = [
    "skills",
    "show-skill",
    "diff-skill",
    "apply-skill",
    "remove-skill",
    "update",
    "upstream-diff",
    "new-skill",
    "bench",
    "help",
];

#[test]
fn help_lists_the_verbs_and_each_verb_has_its_usage() {
    // Not a repository: help needs none.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let overview = xtask(root, &["help"]);
    assert_eq!(overview.status.code(), Some(0));
    assert!(overview.stderr.is_empty());
    let listed = String::from_utf8_lossy(&overview.stdout).into_owned();
    for verb in VERBS {
        assert!(
            listed
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "{verb}: {listed}"
        );
    }
    for same in [&["--help"][..], &["-h"]] {
        let again = xtask(root, same);
        assert_eq!(again.status.code(), Some(0));
        assert_eq!(String::from_utf8_lossy(&again.stdout), listed, "{same:?}");
    }

    for verb in VERBS {
        let help = xtask(root, &["help", verb]);
        assert_eq!(help.status.code(), Some(0), "{verb}");
        let text = String::from_utf8_lossy(&help.stdout).into_owned();
        assert!(
            text.starts_with(&format!("usage: cargo xtask {verb}")) && text.lines().count() >= 3,
            "{verb}: {text}"
        );
        for flag in ["--help", "-h"] {
            let asked = xtask(root, &[verb, flag]);
            assert_eq!(asked.status.code(), Some(0), "{verb} {flag}");
            assert_eq!(
                String::from_utf8_lossy(&asked.stdout),
                text,
                "{verb} {flag}"
            );
            assert!(asked.stderr.is_empty(), "{verb} {flag}");
        }
    }
    let flags = String::from_utf8_lossy(&xtask(root, &["remove-skill", "-h"]).stdout).into_owned();
    assert!(
        flags.contains("--no-test") && flags.contains("NAME"),
        "{flags}"
    );
}

#[test]
fn a_wrong_invocation_is_one_error_line_and_the_usage_with_exit_2() {
    // Not a repository either: the command line is checked first.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &["nope"],
            "unknown verb \"nope\"",
            "usage: cargo xtask VERB",
        ),
        (&[], "no verb given", "usage: cargo xtask VERB"),
        (
            &["help", "nope"],
            "unknown verb \"nope\"",
            "usage: cargo xtask help",
        ),
        (
            &["skills", "extra"],
            "unexpected argument \"extra\"",
            "usage: cargo xtask skills",
        ),
        (
            &["apply-skill"],
            "apply-skill needs NAME",
            "usage: cargo xtask apply-skill",
        ),
        (
            &["apply-skill", "irc", "telegram"],
            "unexpected argument \"telegram\": one NAME only",
            "usage: cargo xtask apply-skill",
        ),
        (
            &["apply-skill", "irc", "--bogus"],
            "apply-skill takes no flag --bogus",
            "usage: cargo xtask apply-skill",
        ),
        (
            &["apply-skill", "--continue", "irc"],
            "unexpected argument \"irc\"",
            "usage: cargo xtask apply-skill",
        ),
        (
            &["remove-skill", "irc", "--no-test", "--no-test"],
            "--no-test is given twice",
            "usage: cargo xtask remove-skill",
        ),
        (
            &["update", ".", "--ref"],
            "--ref needs REF",
            "usage: cargo xtask update",
        ),
        (
            &["update", "--continue", "--abort"],
            "--continue or --abort, not both",
            "usage: cargo xtask update",
        ),
        (
            &["new-skill", "-x"],
            "new-skill takes no flag -x",
            "usage: cargo xtask new-skill",
        ),
        (
            &["upstream-diff", "main", "--out=x", "y"],
            "unexpected argument \"y\": one UPSTREAM_REF only",
            "usage: cargo xtask upstream-diff",
        ),
        (
            &["bench", "nope"],
            "no benchmark named \"nope\"",
            "usage: cargo xtask bench",
        ),
        (
            &["bench", "skills", "--runs", "many"],
            "--runs takes a whole number above 0, not \"many\"",
            "usage: cargo xtask bench",
        ),
        (
            &["bench", "tokens", "--runs", "3"],
            "bench tokens takes no --runs",
            "usage: cargo xtask bench",
        ),
    ];
    for (args, error, usage) in cases {
        let refused = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(*args)
            .current_dir(root)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(2), "{args:?}: {said}");
        assert!(refused.stdout.is_empty(), "{args:?}");
        assert_eq!(
            said.lines().next(),
            Some(format!("error: {error}").as_str()),
            "{args:?}: {said}"
        );
        assert!(said.contains(&format!("\n\n{usage}")), "{args:?}: {said}");
        assert!(
            !said.contains("backtrace") && !said.contains("Error:"),
            "{args:?}: {said}"
        );
    }
}

#[test]
fn remove_skill_builds_pincer_and_shows_why_it_failed() {
    let dir = one_commit_repo();
    let root = dir.path();
    let base = git(root, &["rev-parse", "HEAD"]);
    write(root, "skills/hi/SKILL.md", "# hi\n");
    write(root, "skills/hi/files/src/hi.rs", "// hi\n");
    write(
        root,
        "skills/hi/skill.toml",
        &format!(
            "name = \"hi\"\nversion = \"0.1.0\"\ndescription = \"says hi\"\nbase = \"{base}\"\nadds = [\"src/hi.rs\"]\n"
        ),
    );
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "a skill"]);
    let applied = xtask(root, &["apply-skill", "hi"]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    git(root, &["checkout", "-q", "main"]);
    git(root, &["merge", "-q", "skill/hi"]);

    // No pincer to build here: the removal stops on its branch, and says
    // why with the build's own output, shown live and again at the end.
    let removed = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["remove-skill", "hi"])
        .current_dir(root)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&removed.stderr);
    assert_eq!(removed.status.code(), Some(1), "{said}");
    assert!(!said.contains("backtrace"), "{said}");
    let log = root.join(".git/pincer-skill-test.log");
    assert!(
        said.contains("error: the build `cargo build -p pincer` failed")
            && said.contains(&format!("its output is in {}", log.display())),
        "{said}"
    );
    let first = std::fs::read_to_string(&log).unwrap();
    let first = first.lines().next().unwrap();
    assert_eq!(
        said.matches(first).count(),
        2,
        "live and in the error: {said}"
    );
    assert_eq!(
        git(root, &["rev-parse", "--abbrev-ref", "HEAD"]),
        "skill/remove-hi"
    );
    assert!(xtask(root, &["apply-skill", "--abort"]).status.success());

    let removed = xtask(root, &["remove-skill", "hi", "--no-test"]);
    let out = String::from_utf8_lossy(&removed.stdout);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(
        out.contains("committed")
            && out.contains("not run   the build and the other skills' tests"),
        "{out}"
    );
}

#[test]
fn upstream_diff_defaults_to_upstream_main_and_takes_its_flags() {
    let upstream = one_commit_repo();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Owner"]);
    git(root, &["config", "user.email", "owner@example.org"]);
    let url = upstream.path().to_str().unwrap();
    git(root, &["remote", "add", "upstream", url]);
    git(root, &["fetch", "-q", "upstream"]);
    git(root, &["reset", "-q", "--hard", "upstream/main"]);
    write(root, ".pincer/local", "notes.md\n");
    write(root, "notes.md", "mine\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "My notes"]);
    write(root, "README.md", "a fork, fixed\n");
    git(root, &["commit", "-q", "-am", "Fix the readme"]);
    let fix = git(root, &["rev-parse", "HEAD"]);
    let stdout = |output: &std::process::Output| {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    let listed = stdout(&xtask(root, &["upstream-diff", "--list"]));
    assert!(
        listed.contains("your commits that upstream/main lacks")
            && listed.contains(&format!("   1  {}  Fix the readme\n", &fix[..10]))
            && listed.contains("README.md\n")
            && !listed.contains("notes"),
        "{listed}"
    );

    // Upstream moves on: upstream/main is stale until fetched.
    write(upstream.path(), "CHANGES.md", "news\n");
    git(upstream.path(), &["add", "-A"]);
    git(upstream.path(), &["commit", "-q", "-m", "news"]);
    let stale = xtask(root, &["upstream-diff"]);
    assert_eq!(stale.status.code(), Some(1));
    let said = String::from_utf8_lossy(&stale.stderr);
    assert!(
        said.contains("upstream/main is behind the remote") && said.contains("git fetch upstream"),
        "{said}"
    );

    let sent = stdout(&xtask(root, &["upstream-diff", "--offline", "--pick", "1"]));
    assert!(
        sent.contains("wrote 1 patch(es)") && sent.contains("0001-fix-the-readme.patch"),
        "{sent}"
    );
    // A commit number --list does not show is the engine's to refuse (1);
    // the rest are wrong invocations (2, with the usage).
    for (args, why, code) in [
        (
            &["upstream-diff", "--offline", "--pick", "2"][..],
            "--pick 2: there is no commit 2",
            1,
        ),
        (
            &["upstream-diff", "--pick", "one"],
            "\"one\" is not a commit number",
            2,
        ),
        (
            &["upstream-diff", "--list", "--pick", "1"],
            "--list writes nothing",
            2,
        ),
        (
            &["upstream-diff", "upstream/main", "extra"],
            "usage: cargo xtask upstream-diff",
            2,
        ),
    ] {
        let refused = xtask(root, args);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(code), "{args:?}: {said}");
        assert!(said.contains(why), "{args:?}: {said}");
    }
}
