//! apply-skill on real git repositories: the review branch, merges, conflicts, `--continue` and `--abort`, refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::{ApplyOutcome, Engine, SkillError, State};
use std::path::Path;

#[test]
fn a_clean_apply_lands_on_a_review_branch_and_leaves_main_alone() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10, changed by the skill", "");
    let main_before = repo.commit("add the skill");

    let (branch, commit) = committed(repo.engine().apply("demo", true).unwrap());
    assert_eq!(branch, "skill/demo");
    assert_eq!(repo.branch(), "skill/demo");
    assert_eq!(
        repo.git(&["rev-parse", "main"]),
        main_before,
        "the owner's branch did not move"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), commit);
    assert!(repo.clean());
    assert!(
        repo.read("core/src/a.rs")
            .ends_with("a line 10, changed by the skill\n")
    );
    assert_eq!(repo.read("core/src/demo.rs"), "// added by demo\n");
    let cargo = repo.read("Cargo.toml");
    assert!(cargo.starts_with("# The owner's workspace\n"), "{cargo}");
    assert!(
        cargo.contains("# keep this comment") && cargo.contains("# alphabetical, please"),
        "{cargo}"
    );
    let order: Vec<&str> = cargo
        .lines()
        .filter(|l| l.contains(" = \""))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["anyhow", "demo-dep", "serde"],
        "sorted stays sorted: {cargo}"
    );
    let state = State::load(repo.root()).unwrap();
    assert_eq!(state.applied.len(), 1);
    assert_eq!(state.applied[0].files.len(), 2, "{state:?}");
    assert!(
        repo.git(&["log", "-1", "--format=%B"])
            .contains("Pincer-Skill: apply demo 1.0.0")
    );
}

#[test]
fn a_fork_that_edited_other_lines_merges_cleanly() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 1\n", "a line 1 by the owner\n"),
    );
    repo.commit("owner edit");
    committed(repo.engine().apply("demo", false).unwrap());
    let a = repo.read("core/src/a.rs");
    assert!(
        a.starts_with("a line 1 by the owner\n") && a.ends_with("a line 10 by the skill\n"),
        "{a}"
    );
}

#[test]
fn a_true_conflict_leaves_markers_and_continue_or_abort_finish_it() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by the owner\n"),
    );
    let main_before = repo.commit("owner edit of the same line");

    let outcome = repo.engine().apply("demo", false).unwrap();
    let ApplyOutcome::Conflicts { branch, files } = outcome else {
        panic!("no conflict")
    };
    assert_eq!(branch, "skill/demo");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "core/src/a.rs");
    assert!(
        files[0].1.contains("<<<<<<< fork") && files[0].1.contains(">>>>>>> skill"),
        "{}",
        files[0].1
    );
    // Markers left: --continue refuses.
    let err = repo
        .engine()
        .continue_pending(false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conflict markers remain in: core/src/a.rs"),
        "{err}"
    );
    // Another apply meanwhile is refused too.
    assert!(
        repo.engine()
            .apply("demo", false)
            .unwrap_err()
            .to_string()
            .contains("in progress")
    );

    // --abort: back on main, as it was.
    assert_eq!(repo.engine().abort().unwrap(), "refs/heads/main");
    assert_eq!(repo.branch(), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
    assert!(repo.git(&["branch", "--list", "skill/*"]).is_empty());

    // Again, resolved this time: --continue commits.
    assert!(matches!(
        repo.engine().apply("demo", false).unwrap(),
        ApplyOutcome::Conflicts { .. }
    ));
    repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by both\n"),
    );
    let (branch, _) = committed(repo.engine().continue_pending(true).unwrap());
    assert_eq!(branch, "skill/demo");
    assert!(repo.clean());
    assert_eq!(State::load(repo.root()).unwrap().applied[0].name, "demo");
}

#[test]
fn a_base_missing_from_the_forks_history_uses_the_kept_copy() {
    let repo = Repo::new();
    upstream(&repo);
    let absent = "0123456789abcdef0123456789abcdef01234567";
    add_skill(&repo, "demo", absent, "a line 10 by the skill", "");
    repo.commit("add the skill without a kept base");
    let err = repo.engine().apply("demo", false).unwrap_err().to_string();
    assert!(
        err.contains("not in this repository") && err.contains("keeps no copy"),
        "{err}"
    );
    assert_eq!(repo.branch(), "main");
    assert!(
        repo.git(&["branch", "--list", "skill/*"]).is_empty(),
        "nothing changed"
    );

    repo.write("skills/demo/base/core/src/a.rs", &lines(10, "a"));
    repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 2\n", "a line 2 by the owner\n"),
    );
    repo.commit("keep a copy of the base; owner edit");
    committed(repo.engine().apply("demo", false).unwrap());
    let a = repo.read("core/src/a.rs");
    assert!(
        a.contains("a line 2 by the owner") && a.ends_with("a line 10 by the skill\n"),
        "{a}"
    );
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "x", "");
    add_skill(&repo, "needs", &base, "y", "depends = [\"demo\"]");
    add_skill(&repo, "rival", &base, "z", "conflicts = [\"demo\"]");
    package(&repo, "typo", &base, "modfies = []");
    package(&repo, "escape", &base, "adds = [\"../outside.rs\"]");
    package(&repo, "absolute", &base, "adds = [\"/etc/passwd\"]");
    package(&repo, "linked", &base, "adds = [\"core/src/l.rs\"]");
    package(
        &repo,
        "badvar",
        &base,
        "env = [\"OK\", \"TOKEN\\n# skill x\"]",
    );
    package(&repo, "twice", &base, "env = [\"TOKEN\", \"TOKEN\"]");
    package(&repo, "envfile", &base, "adds = [\".env.example\"]");
    repo.write("skills/envfile/files/.env.example", "TOKEN=\n");
    std::fs::create_dir_all(repo.root().join("skills/linked/files/core/src")).unwrap();
    std::os::unix::fs::symlink(
        "/etc/passwd",
        repo.root().join("skills/linked/files/core/src/l.rs"),
    )
    .unwrap();
    let main_before = repo.commit("skills, good and bad");

    let cases: &[(&str, &str)] = &[
        ("nope", "no skill named \"nope\""),
        ("typo", "modfies"),
        ("escape", "must not contain `..`"),
        ("absolute", "must be a relative path"),
        ("linked", "symlinks are refused"),
        (
            "badvar",
            "`env`: \"TOKEN\\n# skill x\" is not a variable name",
        ),
        ("twice", "`env`: \"TOKEN\" is listed twice"),
        ("envfile", "`adds`: \".env.example\" is written from `env`"),
        ("needs", "needs demo: apply it first"),
    ];
    for (name, why) in cases {
        let err = repo.engine().apply(name, false).unwrap_err().to_string();
        assert!(err.contains(why), "{name}: {err}");
        assert_eq!(repo.branch(), "main", "{name}");
        assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before, "{name}");
        assert!(repo.clean(), "{name}");
    }
    assert!(repo.git(&["branch", "--list", "skill/*"]).is_empty());

    // A dirty tree is refused, naming the files.
    repo.write("core/src/a.rs", "dirty\n");
    let err = repo.engine().apply("demo", false).unwrap_err();
    assert!(
        matches!(err, SkillError::Dirty(ref files) if files == &["core/src/a.rs"]),
        "{err}"
    );
    repo.git(&["checkout", "--", "core/src/a.rs"]);

    // Applying twice, and a conflicting skill, are refused.
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    assert!(
        repo.engine()
            .apply("demo", false)
            .unwrap_err()
            .to_string()
            .contains("demo is applied (version 1.0.0); remove-skill demo first, or update")
    );
    assert!(
        repo.engine()
            .apply("rival", false)
            .unwrap_err()
            .to_string()
            .contains("conflicts with demo")
    );
}

#[test]
fn a_failing_skill_test_stops_before_the_commit() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "x", "");
    let toml = repo
        .read("skills/demo/skill.toml")
        .replace("test = \"test -f core/src/demo.rs\"", "test = \"false\"");
    repo.write("skills/demo/skill.toml", &toml);
    repo.commit("a skill whose test fails");
    let err = repo.engine().apply("demo", true).unwrap_err().to_string();
    assert!(err.contains("the skill's test `false` failed"), "{err}");
    assert_eq!(
        repo.branch(),
        "skill/demo",
        "left on the review branch to fix"
    );
    assert_eq!(repo.engine().abort().unwrap(), "refs/heads/main");
    assert!(repo.clean());
}

#[test]
fn a_failed_test_fixed_and_continued_records_the_skill_once_and_commits() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "x", "");
    let toml = repo.read("skills/demo/skill.toml").replace(
        "test = \"test -f core/src/demo.rs\"",
        "test = \"grep -q fixed core/src/demo.rs\"",
    );
    repo.write("skills/demo/skill.toml", &toml);
    let main_before = repo.commit("a skill whose test needs a fix in the fork");

    let err = repo.engine().apply("demo", true).unwrap_err().to_string();
    assert!(err.contains("--continue"), "{err}");
    assert_eq!(repo.branch(), "skill/demo");
    // --continue before the fix: the test fails again.
    let err = repo
        .engine()
        .continue_pending(true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed"), "{err}");

    // The owner fixes it on the review branch, and continues.
    repo.write("core/src/demo.rs", "// added by demo, fixed\n");
    let (branch, commit) = committed(repo.engine().continue_pending(true).unwrap());
    assert_eq!(branch, "skill/demo");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), commit);
    assert_eq!(repo.git(&["rev-parse", "HEAD^"]), main_before, "one commit");
    assert!(
        repo.git(&["log", "-1", "--format=%B"])
            .contains("Pincer-Skill: apply demo 1.0.0")
    );
    assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
    assert!(!pending_exists(&repo));
    let state = State::load(repo.root()).unwrap();
    let names: Vec<&str> = state.applied.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["demo"], "{}", repo.read(".pincer/skills.toml"));

    // The state holds the fixed file, so remove-skill knows it as the skill's.
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    committed(repo.engine().remove("demo", true).unwrap());
    assert!(!repo.root().join("core/src/demo.rs").exists());
    assert!(State::load(repo.root()).unwrap().applied.is_empty());
}

#[test]
fn an_abbreviated_base_is_refused_with_a_clear_error() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base[..12], "a line 10 by the skill", "");
    let main_before = repo.commit("a skill with a short base");
    let err = repo.engine().apply("demo", false).unwrap_err().to_string();
    assert!(
        err.contains("`base`") && err.contains("40 hex") && err.contains(&base[..12]),
        "{err}"
    );
    assert_eq!(repo.branch(), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
}

#[test]
fn diff_skill_is_exactly_what_apply_commits() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
    add_skill(&repo, "two", &base, "a line 10", TWO_ENV);
    repo.write(
        "skills/two/files/core/src/a.rs",
        &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
    );
    repo.commit("two skills");
    let patches = tempfile::tempdir().unwrap();
    // First with no state file (nor .env.example) yet, then with `one`
    // applied and merged.
    for (name, env_header) in [
        ("one", "--- /dev/null\n+++ b/.env.example\n"),
        ("two", "--- a/.env.example\n+++ b/.env.example\n"),
    ] {
        let diff = repo.engine().diff(name, false).unwrap();
        assert!(diff.contains("+++ b/.pincer/skills.toml"), "{diff}");
        assert!(
            diff.contains(env_header)
                && diff.contains(&format!("+# skill {name} (see skills/{name}/SKILL.md)\n")),
            "{name}: {diff}"
        );
        let (branch, _) = committed(repo.engine().apply(name, false).unwrap());
        repo.git(&["checkout", "-q", "main"]);
        let patch = patches.path().join(format!("{name}.diff"));
        std::fs::write(&patch, &diff).unwrap();
        repo.git(&["apply", "--index", patch.to_str().unwrap()]);
        assert_eq!(
            repo.git(&["diff", "--cached", "--stat", &branch]),
            "",
            "{name}: the diff was not what the apply committed:\n{diff}"
        );
        repo.git(&["reset", "-q", "--hard"]);
        repo.git(&["merge", "-q", &branch]);
    }
}

#[test]
fn the_shipped_skills_pass_the_manifest_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let listed = Engine::open(root).unwrap().list().unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    for shipped in ["gvisor", "irc", "openai-compatible", "telegram"] {
        assert!(names.contains(&shipped), "{names:?}");
    }
}

#[test]
fn applying_an_applied_skill_says_so() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "env = [\"CHAT_TOKEN\"]");
    repo.commit("a crate skill with variables");
    land(&repo, "apply", "chat");
    let main_before = repo.git(&["rev-parse", "HEAD"]);
    for run_test in [false, true] {
        let err = repo
            .engine()
            .apply("chat", run_test)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "chat is applied (version 1.0.0); remove-skill chat first, or update"
        );
    }
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert_eq!(repo.branch(), "main");
    assert!(repo.clean());
}

#[test]
fn applied_is_said_before_a_dirty_tree_or_a_broken_package() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "env = [\"CHAT_TOKEN\"]");
    repo.commit("a crate skill with variables");
    land(&repo, "apply", "chat");
    let said = |repo: &Repo| repo.engine().apply("chat", true).unwrap_err().to_string();
    let applied = "chat is applied (version 1.0.0); remove-skill chat first, or update";

    // The owner is filling in the variables: the tree is dirty.
    let env = repo
        .read(".env.example")
        .replace("CHAT_TOKEN=", "CHAT_TOKEN=secret");
    repo.write(".env.example", &env);
    assert_eq!(said(&repo), applied);
    repo.git(&["checkout", "--", ".env.example"]);

    // Its package broken since (a key misspelt), committed.
    let manifest = repo
        .read("skills/chat/skill.toml")
        .replace("description =", "descripton =");
    repo.write("skills/chat/skill.toml", &manifest);
    let main_before = repo.commit("a typo in the applied skill's manifest");
    assert_eq!(said(&repo), applied);
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert_eq!(repo.branch(), "main");
    assert!(repo.clean());
}
