//! A skill's variables in `.env.example`: in with apply-skill, out with remove-skill, only the engine's lines.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::State;

#[test]
fn apply_writes_the_skills_variables_into_env_example_and_remove_takes_them_out() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
    repo.commit("a skill with variables");
    let main_before = repo.git(&["rev-parse", "HEAD"]);

    let (_, commit) = committed(repo.engine().apply("one", false).unwrap());
    assert_eq!(
        repo.read(".env.example"),
        ONE_BLOCK,
        "created, with the block"
    );
    assert_eq!(
        repo.git(&[
            "diff",
            "--name-status",
            &main_before,
            &commit,
            "--",
            ".env.example"
        ]),
        "A\t.env.example",
        "committed with the apply"
    );
    assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
    let state = State::load(repo.root()).unwrap();
    assert_eq!(state.applied[0].env, ["ONE_TOKEN", "ONE_URL"]);
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/one"]);

    // Nothing else was in it: removing the skill takes the file out again.
    land(&repo, "remove", "one");
    assert!(!repo.root().join(".env.example").exists());
    assert_eq!(repo.git(&["ls-files", ".env.example"]), "");
    assert!(repo.clean());
}

#[test]
fn a_skill_without_env_leaves_env_example_alone() {
    for owners in [None, Some(OWNERS_ENV)] {
        let repo = Repo::new();
        let base = upstream(&repo);
        if let Some(text) = owners {
            repo.write(".env.example", text);
        }
        add_skill(&repo, "plain", &base, "a line 10 by plain", "");
        let main_before = repo.commit("a skill without variables");
        let diff = repo.engine().diff("plain", false).unwrap();
        assert!(!diff.contains(".env.example"), "{diff}");
        let (_, commit) = committed(repo.engine().apply("plain", false).unwrap());
        let changed = repo.git(&["diff", "--name-only", &main_before, &commit]);
        assert!(!changed.contains(".env.example"), "{changed}");
        match owners {
            None => assert!(!repo.root().join(".env.example").exists()),
            Some(text) => assert_eq!(repo.read(".env.example"), text),
        }
        repo.git(&["checkout", "-q", "main"]);
        repo.git(&["merge", "-q", "skill/plain"]);
        land(&repo, "remove", "plain");
        match owners {
            None => assert!(!repo.root().join(".env.example").exists()),
            Some(text) => assert_eq!(repo.read(".env.example"), text),
        }
    }
}

#[test]
fn remove_takes_out_only_its_env_block_and_keeps_the_owners_lines() {
    let repo = Repo::new();
    let base = upstream(&repo);
    repo.write(".env.example", OWNERS_ENV);
    add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
    add_skill(&repo, "two", &base, "a line 10", TWO_ENV);
    repo.write(
        "skills/two/files/core/src/a.rs",
        &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
    );
    repo.commit("two skills with variables");
    land(&repo, "apply", "two");
    land(&repo, "apply", "one");
    assert_eq!(
        repo.read(".env.example"),
        format!("{OWNERS_ENV}\n{ONE_BLOCK}\n{TWO_BLOCK}")
    );
    // The owner fills in a value in one's block, and adds lines of their own
    // (one in that block, with no value, as the engine writes them).
    let edited = format!(
        "{OWNERS_ENV}\n# skill one (see skills/one/SKILL.md)\nONE_TOKEN=\nONE_URL=https://one.example\nMINE=\n\n{TWO_BLOCK}\n# mine, later\nLATER=1\n"
    );
    repo.write(".env.example", &edited);
    repo.commit("the owner's values");

    land(&repo, "remove", "two");
    assert_eq!(
        repo.read(".env.example"),
        format!(
            "{OWNERS_ENV}\n# skill one (see skills/one/SKILL.md)\nONE_TOKEN=\nONE_URL=https://one.example\nMINE=\n\n# mine, later\nLATER=1\n"
        )
    );
    land(&repo, "remove", "one");
    assert_eq!(
        repo.read(".env.example"),
        format!("{OWNERS_ENV}\nONE_URL=https://one.example\nMINE=\n\n# mine, later\nLATER=1\n"),
        "only the lines the engine wrote went"
    );
    assert!(repo.clean());
}

#[test]
fn env_example_refusals_change_nothing() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
    // A fork that ignores .env* files: the block would not be committed.
    repo.write(".gitignore", ".env*\n");
    let main_before = repo.commit("a fork that ignores .env files");
    let refused = |why: &str| {
        let err = repo.engine().diff("one", false).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
        let err = repo.engine().apply("one", false).unwrap_err().to_string();
        assert!(err.contains(why), "{err}");
        assert_eq!(repo.branch(), "main");
        assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
        assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
        assert!(repo.git(&["branch", "--list", "skill/*"]).is_empty());
    };
    refused(".env.example is ignored by this fork's .gitignore");
    assert!(!repo.root().join(".env.example").exists());

    // A block for the skill there already (the owner's copy, say).
    let owners = format!("{OWNERS_ENV}\n{ONE_BLOCK}");
    repo.write(".env.example", &owners);
    repo.git(&["add", "-f", ".env.example"]);
    let main_before = repo.commit("the owner's .env.example, with a block for one");
    let err = repo.engine().apply("one", false).unwrap_err().to_string();
    assert!(
        err.contains(".env.example: it has a block for skill one already"),
        "{err}"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());

    // Tracked, though ignored: the block goes in and is committed.
    repo.write(".env.example", OWNERS_ENV);
    repo.commit("no block");
    land(&repo, "apply", "one");
    assert_eq!(
        repo.git(&["show", "HEAD:.env.example"]),
        format!("{OWNERS_ENV}\n{ONE_BLOCK}").trim_end()
    );
    assert!(repo.clean());
}

#[test]
fn env_example_is_never_written_through_a_symlink() {
    let repo = Repo::new();
    let base = upstream(&repo);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("elsewhere.env");
    std::fs::write(&target, "SECRET=do-not-show\n").unwrap();
    std::os::unix::fs::symlink(&target, repo.root().join(".env.example")).unwrap();
    add_skill(&repo, "one", &base, "a line 10 by one", ONE_ENV);
    let main_before = repo.commit("a symlinked .env.example");
    let err = repo.engine().diff("one", false).unwrap_err().to_string();
    assert!(
        err.contains(".env.example") && err.contains("symlink"),
        "{err}"
    );
    let err = repo.engine().apply("one", false).unwrap_err().to_string();
    assert!(
        err.contains(".env.example") && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(repo.branch(), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "SECRET=do-not-show\n"
    );

    // Nor by remove-skill, when it became a symlink after the apply.
    std::fs::remove_file(repo.root().join(".env.example")).unwrap();
    repo.commit("a plain .env.example");
    land(&repo, "apply", "one");
    std::fs::write(&target, ONE_BLOCK).unwrap();
    std::fs::remove_file(repo.root().join(".env.example")).unwrap();
    std::os::unix::fs::symlink(&target, repo.root().join(".env.example")).unwrap();
    let main_before = repo.commit(".env.example linked again");
    let err = repo.engine().remove("one", false).unwrap_err().to_string();
    assert!(
        err.contains(".env.example") && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), ONE_BLOCK);
}
