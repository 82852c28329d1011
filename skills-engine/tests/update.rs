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
    assert_eq!(report.skills.len(), 1, "{report:?}");
    let demo = &report.skills[0];
    assert_eq!(demo.name, "demo");
    assert_eq!(demo.before.as_deref(), Some("1.0.0"));
    assert_eq!(demo.after, "1.0.0");
    assert_eq!(demo.files, ["core/src/a.rs"]);
    assert_eq!(demo.test, Some(true));
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
    // `upstream/main` is current, as after `git fetch upstream`.
    assert_eq!(fork.git(&["rev-parse", "upstream/main"]), upstream_head);

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
    // git knows it is merging: `git status` says so, and names the file.
    let status = fork.git(&["status"]);
    assert!(
        status.contains("All conflicts fixed") || status.contains("Unmerged paths"),
        "{status}"
    );
    assert!(
        status.contains("both modified:   core/src/a.rs"),
        "{status}"
    );
    let err = fork
        .engine()
        .continue_update(false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conflict markers remain"), "{err}");
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by both\n"),
    );
    // Fixed without `git add`: the engine stages it.
    let finished = fork.engine().continue_update(false).unwrap();
    assert_eq!(finished.branch, report.branch);
    assert!(finished.conflicts.is_empty(), "{finished:?}");
    assert_eq!(finished.from, "refs/heads/main");
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

/// A fork whose owner changed line 10 of a.rs, and an upstream that did
/// too: an update that stops at a conflict. Returns (fork, upstream, the
/// fork's main before, upstream's head).
fn conflicting_update() -> (Repo, Repo, String, String) {
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
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by the owner\n"),
    );
    let main_before = fork.commit("the owner's line");
    upstream_repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 upstream\n"),
    );
    upstream_repo.write("core/src/new.rs", "// new upstream\n");
    let upstream_head = upstream_repo.commit("upstream's line");
    (fork, upstream_repo, main_before, upstream_head)
}

#[test]
fn a_conflicting_update_is_finished_with_plain_git() {
    let (fork, _upstream, main_before, upstream_head) = conflicting_update();
    let report = fork
        .engine()
        .update("upstream", "refs/heads/main", false)
        .unwrap();
    assert_eq!(report.conflicts, ["core/src/a.rs"]);

    // As a git user would: resolve, `git add`, `git commit` (no message:
    // git takes the one the update prepared).
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by both\n"),
    );
    fork.git(&["add", "core/src/a.rs"]);
    fork.git(&["commit", "-q", "--no-edit"]);
    assert_eq!(fork.git(&["rev-parse", "HEAD^1"]), main_before);
    assert_eq!(fork.git(&["rev-parse", "HEAD^2"]), upstream_head, "a merge");
    let message = fork.git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("Pincer-Skill: update"), "{message}");
    assert_eq!(fork.read("core/src/new.rs"), "// new upstream\n");

    // The engine sees the update finished: the next verb is not blocked,
    // and the next update finds nothing to take.
    fork.git(&["checkout", "-q", "main"]);
    fork.git(&["merge", "-q", &report.branch]);
    let err = fork
        .engine()
        .update("upstream", "refs/heads/main", false)
        .unwrap_err();
    assert!(matches!(err, SkillError::UpToDate(_)), "{err}");
    assert!(!pending_exists(&fork));
}

#[test]
fn an_update_is_aborted_back_to_where_it_started() {
    let (fork, _upstream, main_before, _) = conflicting_update();
    let before = fork.git(&["for-each-ref", "refs/heads"]);
    let report = fork
        .engine()
        .update("upstream", "refs/heads/main", false)
        .unwrap();
    assert_eq!(report.conflicts, ["core/src/a.rs"]);
    let back = fork.engine().abort().unwrap();
    assert_eq!(back, "refs/heads/main");
    assert_eq!(fork.branch(), "main");
    assert_eq!(fork.git(&["rev-parse", "HEAD"]), main_before);
    assert_eq!(fork.git(&["for-each-ref", "refs/heads"]), before);
    assert!(!fork.root().join(".git/MERGE_HEAD").exists());
    assert!(fork.clean(), "{}", fork.git(&["status", "--porcelain"]));
    assert!(!fork.root().join("core/src/new.rs").exists());
    assert!(!pending_exists(&fork));
}

/// The pending file an engine before formats wrote at an update's
/// conflicts (its fields, exactly): no upstream id, the short one as
/// `version`, the path it fetched from as `name`.
const FORMAT_1_PENDING: &str = "op = \"update\"\nname = \"{upstream}\"\nversion = \"{short}\"\nfrom = \"refs/heads/main\"\nbranch = \"update/{short}\"\nfiles = [\"core/src/a.rs\"]\n";

#[test]
fn an_update_an_older_engine_stopped_is_finished_by_this_one() {
    let (fork, upstream_repo, main_before, upstream_head) = conflicting_update();
    // What such an engine left: the branch, the merged files in the working
    // tree (the index at HEAD, no MERGE_HEAD), upstream's commit fetched
    // into refs/pincer/upstream, and its pending file.
    let short = &upstream_head[..10];
    fork.git(&["fetch", "-q", "upstream", "main:refs/pincer/upstream"]);
    fork.git(&["checkout", "-q", "-b", &format!("update/{short}")]);
    fork.git(&[
        "checkout",
        "-q",
        "refs/pincer/upstream",
        "--",
        "core/src/new.rs",
    ]);
    fork.git(&["reset", "-q"]);
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace(
            "a line 10\n",
            "<<<<<<< ours\na line 10 by the owner\n=======\na line 10 upstream\n>>>>>>> theirs\n",
        ),
    );
    std::fs::write(
        fork.root().join(".git/pincer-skill-pending.toml"),
        FORMAT_1_PENDING
            .replace("{upstream}", upstream_repo.root().to_str().unwrap())
            .replace("{short}", short),
    )
    .unwrap();

    let engine = fork.engine();
    assert!(engine.update_pending().unwrap());
    let err = engine.continue_update(false).unwrap_err().to_string();
    assert!(
        err.contains("conflict markers remain in: core/src/a.rs"),
        "{err}"
    );
    fork.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by both\n"),
    );
    let report = engine.continue_update(false).unwrap();
    assert_eq!(report.branch, format!("update/{short}"));
    assert_eq!(fork.git(&["rev-parse", "HEAD^1"]), main_before);
    assert_eq!(fork.git(&["rev-parse", "HEAD^2"]), upstream_head, "a merge");
    assert_eq!(fork.read("core/src/new.rs"), "// new upstream\n");
    assert!(fork.clean(), "{}", fork.git(&["status", "--porcelain"]));
    assert!(!pending_exists(&fork));
}

#[test]
fn every_older_state_format_is_read_and_a_newer_one_refused() {
    // Format 1 as the first engines wrote it: name, version, files.
    let first = "# Written by `cargo xtask apply-skill`; do not edit by hand.\n\
                 [[applied]]\nname = \"telegram\"\nversion = \"0.1.0\"\n\n\
                 [applied.files]\n\"core/src/telegram.rs\" = \"0123456789012345678901234567890123456789\"\n";
    let state = State::parse(first).unwrap();
    assert_eq!(state.format, 1);
    assert_eq!(state.applied[0].name, "telegram");
    assert_eq!(state.applied[0].files.len(), 1);
    assert!(state.applied[0].register.is_empty() && state.applied[0].cargo.is_empty());
    // Written again, it is the current format, and reads back the same.
    let rendered = state.render().unwrap();
    assert!(
        rendered.contains(&format!("format = {}", pincer_skills::STATE_FORMAT)),
        "{rendered}"
    );
    assert_eq!(State::parse(&rendered).unwrap().applied, state.applied);

    // One older engine recorded a skill twice after `--continue`: read once,
    // as the later record.
    let twice = format!("{first}\n[[applied]]\nname = \"telegram\"\nversion = \"0.1.1\"\n");
    let state = State::parse(&twice).unwrap();
    assert_eq!(state.applied.len(), 1, "{state:?}");
    assert_eq!(state.applied[0].version, "0.1.1");

    let newer = format!("format = {}\n", pincer_skills::STATE_FORMAT + 1);
    let err = State::parse(&newer).unwrap_err();
    assert!(err.contains("written by a newer skills engine"), "{err}");
}

#[test]
fn a_pending_file_of_a_newer_engine_is_refused_by_name() {
    let repo = Repo::new();
    upstream(&repo);
    std::fs::write(
        repo.root().join(".git/pincer-skill-pending.toml"),
        "format = 99\nop = \"update\"\nsomething = \"new\"\n",
    )
    .unwrap();
    let err = repo.engine().apply("demo", false).unwrap_err().to_string();
    assert!(
        err.contains("written by a newer skills engine (format 99"),
        "{err}"
    );
}
