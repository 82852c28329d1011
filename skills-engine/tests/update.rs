//! `update`: upstream's new commits in, on a review branch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::{SkillError, State};

#[test]
fn update_reports_what_upstream_changed_under_each_skill() {
    let upstream_repo = Repo::new();
    let base = upstream(&upstream_repo);
    add_skill(&upstream_repo, "demo", &base, "a line 10 by the skill", "");
    upstream_repo.commit("the skill");

    let fork = Repo::new();
    fork.git(&["pull", "-q", upstream_repo.root().to_str().unwrap(), "main"]);
    committed(fork.engine().apply("demo", true).unwrap());
    fork.git(&["checkout", "-q", "main"]);
    fork.git(&["merge", "-q", "skill/demo"]);

    // Upstream changes a file the skill modifies (another line) and adds one.
    upstream_repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 5\n", "a line 5, new upstream\n"),
    );
    upstream_repo.write("core/src/new.rs", "// new upstream file\n");
    upstream_repo.commit("upstream moves on");

    let report = fork
        .engine()
        .update(
            upstream_repo.root().to_str().unwrap(),
            "refs/heads/main",
            true,
        )
        .unwrap();
    assert!(report.branch.starts_with("update/"));
    assert!(report.conflicts.is_empty());
    assert_eq!(
        report.skills,
        [(
            "demo".to_owned(),
            vec!["core/src/a.rs".to_owned()],
            Some(true)
        )]
    );
    let a = fork.read("core/src/a.rs");
    assert!(
        a.contains("a line 5, new upstream") && a.ends_with("a line 10 by the skill\n"),
        "{a}"
    );
    assert_eq!(fork.read("core/src/new.rs"), "// new upstream file\n");
    assert_eq!(
        fork.git(&["rev-parse", "--abbrev-ref", "HEAD"]),
        report.branch
    );
}

#[test]
fn a_bad_upstream_changes_nothing() {
    let fork = Repo::new();
    upstream(&fork);
    fork.git(&["branch", "keep"]);
    let unrelated = Repo::new();
    unrelated.write("other.txt", "another project\n");
    unrelated.commit("unrelated history");
    let before = refs(&fork);

    let missing = fork.root().join("no-such-repository");
    let cases: [(&str, &str, &str); 4] = [
        (
            unrelated.root().to_str().unwrap(),
            "refs/heads/main",
            "has no history in common with main",
        ),
        (
            unrelated.root().to_str().unwrap(),
            "refs/heads/nope",
            "has no refs/heads/nope",
        ),
        (
            missing.to_str().unwrap(),
            "refs/heads/main",
            "could not fetch refs/heads/main from",
        ),
        (
            fork.root().to_str().unwrap(),
            "refs/heads/keep",
            "main already has everything in",
        ),
    ];
    for (upstream, refname, why) in cases {
        let err = fork.engine().update(upstream, refname, false).unwrap_err();
        assert_eq!(
            matches!(err, SkillError::UpToDate(_)),
            why.contains("already has everything"),
            "{err}"
        );
        let err = err.to_string();
        assert!(err.contains(why), "{upstream} {refname}: {err}");
        assert_eq!(fork.branch(), "main", "{upstream} {refname}: {err}");
        assert_eq!(refs(&fork), before, "{upstream} {refname}: {err}");
        assert!(fork.clean(), "{upstream} {refname}");
        assert!(!pending_exists(&fork), "{upstream} {refname}");
    }
}

#[test]
fn update_takes_a_named_remote() {
    let upstream_repo = Repo::new();
    upstream(&upstream_repo);
    let fork = Repo::new();
    fork.git(&[
        "remote",
        "add",
        "upstream",
        upstream_repo.root().to_str().unwrap(),
    ]);
    fork.git(&["pull", "-q", "upstream", "main"]);
    fork.write("core/src/mine.rs", "// the owner's\n");
    fork.commit("the owner's own file");
    upstream_repo.write("core/src/new.rs", "// new upstream file\n");
    let upstream_head = upstream_repo.commit("upstream moves on");

    let report = fork
        .engine()
        .update("upstream", "refs/heads/main", false)
        .unwrap();
    assert!(report.conflicts.is_empty());
    assert_eq!(fork.branch(), report.branch);
    assert_eq!(fork.read("core/src/new.rs"), "// new upstream file\n");
    assert_eq!(fork.read("core/src/mine.rs"), "// the owner's\n");
    assert_eq!(fork.git(&["rev-parse", "HEAD^2"]), upstream_head);

    // A failed update after it puts the engine's upstream ref back, too.
    let before = refs(&fork);
    assert!(before.contains(&format!("refs/pincer/upstream {upstream_head}")));
    let err = fork
        .engine()
        .update("upstream", "refs/heads/nope", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no refs/heads/nope"), "{err}");
    assert_eq!(refs(&fork), before);
}

#[test]
fn an_update_with_conflicts_continues_into_the_merge_commit() {
    let upstream_repo = Repo::new();
    upstream(&upstream_repo);
    let fork = Repo::new();
    fork.git(&["pull", "-q", upstream_repo.root().to_str().unwrap(), "main"]);
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by the owner\n"),
    );
    let main_before = fork.commit("the owner's line");
    upstream_repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 upstream\n"),
    );
    let upstream_head = upstream_repo.commit("upstream's line");

    let report = fork
        .engine()
        .update(
            upstream_repo.root().to_str().unwrap(),
            "refs/heads/main",
            false,
        )
        .unwrap();
    assert_eq!(report.conflicts, ["core/src/a.rs"]);
    assert_eq!(fork.branch(), report.branch);
    assert!(fork.read("core/src/a.rs").contains("<<<<<<<"));
    let err = fork
        .engine()
        .continue_pending(false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conflict markers remain"), "{err}");
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by both\n"),
    );
    let (branch, commit) = committed(fork.engine().continue_pending(false).unwrap());
    assert_eq!(branch, report.branch);
    assert_eq!(fork.git(&["rev-parse", "HEAD"]), commit);
    assert_eq!(fork.git(&["rev-parse", "HEAD^1"]), main_before);
    assert_eq!(fork.git(&["rev-parse", "HEAD^2"]), upstream_head, "a merge");
    let message = fork.git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("Pincer-Skill: update"), "{message}");
    assert!(fork.clean(), "{}", fork.git(&["status", "--porcelain"]));
    assert!(!pending_exists(&fork));
    assert!(State::load(fork.root()).unwrap().applied.is_empty());
    assert_eq!(
        fork.read("core/src/a.rs"),
        lines(10, "a").replace("a line 10\n", "a line 10 by both\n")
    );
}
