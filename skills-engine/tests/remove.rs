//! remove-skill, and skills applied together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::{ApplyOutcome, State};

#[test]
fn remove_after_apply_restores_the_files_and_keeps_the_owners_later_edits() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    let before_cargo = repo.read("Cargo.toml");
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    let a = repo
        .read("core/src/a.rs")
        .replace("a line 3\n", "a line 3 by the owner, later\n");
    repo.write("core/src/a.rs", &a);
    repo.commit("owner edit after the skill");

    let (branch, _) = committed(repo.engine().remove("demo", false).unwrap());
    assert_eq!(branch, "skill/remove-demo");
    let a = repo.read("core/src/a.rs");
    assert_eq!(
        a,
        lines(10, "a").replace("a line 3\n", "a line 3 by the owner, later\n")
    );
    assert!(!repo.root().join("core/src/demo.rs").exists());
    assert_eq!(repo.read("Cargo.toml"), before_cargo);
    assert!(State::load(repo.root()).unwrap().applied.is_empty());
    assert!(repo.clean());
}

#[test]
fn two_independent_skills_give_the_same_tree_in_either_order() {
    let tree_after = |first: &str, second: &str| {
        let repo = Repo::new();
        let base = upstream(&repo);
        // Both need variables, which go into the owner's .env.example.
        repo.write(".env.example", OWNERS_ENV);
        add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
        // `two` changes the first line instead.
        add_skill(&repo, "two", &base, "a line 10", TWO_ENV);
        repo.write(
            "skills/two/files/core/src/a.rs",
            &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
        );
        // And both add one dependency (which each records as its own).
        for name in ["one", "two"] {
            let path = format!("skills/{name}/skill.toml");
            let toml = repo.read(&path).replace(
                &format!("{{ {name}-dep = \"0.1\" }}"),
                &format!("{{ {name}-dep = \"0.1\", shared = \"2\" }}"),
            );
            repo.write(&path, &toml);
        }
        repo.commit("two skills");
        for name in [first, second] {
            committed(repo.engine().apply(name, false).unwrap());
            repo.git(&["checkout", "-q", "main"]);
            repo.git(&["merge", "-q", &format!("skill/{name}")]);
        }
        // Everything but the skill packages themselves (their `base` is a
        // commit id, which differs between the two repositories).
        let tree = repo
            .git(&["ls-tree", "-r", "HEAD"])
            .lines()
            .filter(|line| !line.contains("\tskills/"))
            .collect::<Vec<_>>()
            .join("\n");
        (tree, repo.read(".env.example"))
    };
    let (forward, forward_env) = tree_after("one", "two");
    let (backward, backward_env) = tree_after("two", "one");
    assert!(
        forward.contains(".pincer/skills.toml")
            && forward.contains("core/src/two.rs")
            && forward.contains("\t.env.example"),
        "{forward}"
    );
    assert_eq!(
        forward_env,
        format!("{OWNERS_ENV}\n{ONE_BLOCK}\n{TWO_BLOCK}")
    );
    assert_eq!(forward_env, backward_env);
    assert_eq!(forward, backward);
}

#[test]
fn remove_takes_out_only_the_cargo_entries_the_apply_added() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    // The owner uses the skill's dependency already, exactly as the skill has it.
    let owners = CARGO.replace("anyhow = \"1\"\n", "anyhow = \"1\"\ndemo-dep = \"0.1\"\n");
    repo.write("Cargo.toml", &owners);
    repo.commit("the owner's own demo-dep");
    committed(repo.engine().apply("demo", false).unwrap());
    assert_eq!(repo.read("Cargo.toml"), owners);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    committed(repo.engine().remove("demo", false).unwrap());
    assert_eq!(
        repo.read("Cargo.toml"),
        owners,
        "the owner's dependency survives"
    );
    assert!(!repo.root().join("core/src/demo.rs").exists());
}

#[test]
fn a_dependency_two_skills_add_goes_with_the_last_of_them() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "one", &base, "a line 10 by one", "");
    add_skill(&repo, "two", &base, "a line 10", "");
    repo.write(
        "skills/two/files/core/src/a.rs",
        &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
    );
    for name in ["one", "two"] {
        let path = format!("skills/{name}/skill.toml");
        let toml = repo.read(&path).replace(
            &format!("{{ {name}-dep = \"0.1\" }}"),
            &format!("{{ {name}-dep = \"0.1\", shared = \"2\" }}"),
        );
        repo.write(&path, &toml);
    }
    repo.commit("two skills sharing a dependency");
    let round = |verb: &str, name: &str| {
        let outcome = if verb == "apply" {
            repo.engine().apply(name, false)
        } else {
            repo.engine().remove(name, false)
        };
        let (branch, _) = committed(outcome.unwrap());
        repo.git(&["checkout", "-q", "main"]);
        repo.git(&["merge", "-q", &branch]);
    };
    round("apply", "one");
    round("apply", "two");
    round("remove", "one");
    let cargo = repo.read("Cargo.toml");
    assert!(
        cargo.contains("shared = \"2\"") && cargo.contains("two-dep") && !cargo.contains("one-dep"),
        "{cargo}"
    );
    round("remove", "two");
    assert_eq!(repo.read("Cargo.toml"), CARGO);
}

/// A fork with `one` and `two` applied and merged; `two`'s test is `test`.
fn one_and_two_applied(two_test: &str) -> Repo {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "one", &base, "a line 10 by one", "");
    add_skill(&repo, "two", &base, "a line 10", "");
    repo.write(
        "skills/two/files/core/src/a.rs",
        &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
    );
    let manifest = repo.read("skills/two/skill.toml").replace(
        "test = \"test -f core/src/two.rs\"",
        &format!("test = {two_test:?}"),
    );
    repo.write("skills/two/skill.toml", &manifest);
    repo.commit("two skills");
    land(&repo, "apply", "one");
    land(&repo, "apply", "two");
    repo
}

#[test]
fn remove_builds_and_runs_the_other_skills_tests_before_the_commit() {
    let marks = tempfile::tempdir().unwrap();
    let ran = marks.path().join("ran");
    let repo = one_and_two_applied(&format!("echo two >> {}", ran.display()));
    let build = format!("echo build >> {}", ran.display());

    let outcome = repo
        .engine()
        .with_build(&build)
        .remove("one", true)
        .unwrap();
    let ApplyOutcome::Committed { summary, .. } = outcome else {
        panic!("expected a commit, got {outcome:?}")
    };
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap(),
        "build\ntwo\n",
        "the build, then the test of the skill still applied (not one's)"
    );
    let tested: Vec<&String> = summary.iter().filter(|l| l.contains("passed")).collect();
    assert_eq!(
        tested,
        [
            &format!("  passed    the build: {build}"),
            &format!("  passed    two's test: echo two >> {}", ran.display()),
        ],
        "{summary:?}"
    );
    assert!(repo.clean());

    // --no-test: neither runs, and the summary says so.
    std::fs::remove_file(&ran).unwrap();
    repo.git(&["checkout", "-q", "main"]);
    let outcome = repo
        .engine()
        .with_build(&build)
        .remove("two", false)
        .unwrap();
    let ApplyOutcome::Committed { summary, .. } = outcome else {
        panic!("expected a commit, got {outcome:?}")
    };
    assert!(!ran.exists());
    assert!(
        summary.contains(&"  not run   the build and the other skills' tests".to_owned()),
        "{summary:?}"
    );
}

#[test]
fn a_remaining_skills_failing_test_stops_the_removal_until_fixed() {
    // `two` needs a file `one` added, without saying so.
    let repo = one_and_two_applied("test -f core/src/one.rs || test -f core/src/two-own.rs");
    let main_before = repo.git(&["rev-parse", "main"]);

    let err = repo.engine().remove("one", true).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "two's test `test -f core/src/one.rs || test -f core/src/two-own.rs` failed"
        ),
        "{err}"
    );
    assert_eq!(repo.branch(), "skill/remove-one", "left there to fix");
    assert!(pending_exists(&repo));
    assert_eq!(repo.engine().abort().unwrap(), "refs/heads/main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
    assert!(
        repo.git(&["branch", "--list", "skill/remove-one"])
            .is_empty()
    );

    // A failing build stops it the same way.
    let err = repo
        .engine()
        .with_build("echo cannot build; false")
        .remove("one", true)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("the build `echo cannot build; false` failed"),
        "{err}"
    );
    assert!(err.contains("  | cannot build"), "{err}");
    repo.engine().abort().unwrap();

    // Fixed on the review branch, --continue runs them again and commits.
    assert!(repo.engine().remove("one", true).is_err());
    repo.write("core/src/two-own.rs", "// two's own copy\n");
    let (branch, _) = committed(
        repo.engine()
            .with_build("true")
            .continue_pending(true)
            .unwrap(),
    );
    assert_eq!(branch, "skill/remove-one");
    assert_eq!(repo.git(&["rev-parse", "HEAD^"]), main_before, "one commit");
    assert!(!repo.root().join("core/src/one.rs").exists());
    assert!(repo.root().join("core/src/two-own.rs").exists());
    let names: Vec<String> = State::load(repo.root())
        .unwrap()
        .applied
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["two"]);
    assert!(repo.clean());
}
