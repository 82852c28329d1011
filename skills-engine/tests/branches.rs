//! Review branches left over from earlier operations: reused once merged,
//! refused while they hold commits the owner's branch lacks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::ApplyOutcome;

/// A fork with the skill `demo` in it, on `main`.
fn fork_with_demo() -> Repo {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    repo
}

#[test]
fn merged_review_branches_are_moved_to_head_and_reused() {
    let repo = fork_with_demo();
    // Apply, remove and apply again, merging each: both branches stay
    // behind, merged.
    land(&repo, "apply", "demo");
    land(&repo, "remove", "demo");
    let main_before = repo.git(&["rev-parse", "main"]);
    assert_ne!(repo.git(&["rev-parse", "skill/demo"]), main_before);

    let outcome = repo.engine().apply("demo", true).unwrap();
    let ApplyOutcome::Committed {
        branch, summary, ..
    } = outcome
    else {
        panic!("expected a commit, got {outcome:?}")
    };
    assert_eq!(branch, "skill/demo");
    assert_eq!(repo.branch(), "skill/demo");
    assert_eq!(
        repo.git(&["rev-parse", "skill/demo^"]),
        main_before,
        "the branch starts at main again"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.contains("skill/demo was merged already")),
        "{summary:?}"
    );
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);

    // Merged and equal to HEAD (fast-forwarded): reused too.
    assert_eq!(
        repo.git(&["rev-parse", "skill/demo"]),
        repo.git(&["rev-parse", "main"])
    );
    let main_before = repo.git(&["rev-parse", "main"]);
    let (branch, _) = committed(repo.engine().remove("demo", true).unwrap());
    assert_eq!(branch, "skill/remove-demo");
    assert_eq!(repo.git(&["rev-parse", "skill/remove-demo^"]), main_before);
    assert!(repo.clean());
}

#[test]
fn a_review_branch_with_commits_head_lacks_is_refused_and_kept() {
    let repo = fork_with_demo();
    // Applied, not merged: the review branch has the apply's commit.
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    let unmerged = repo.git(&["rev-parse", "skill/demo"]);
    let main_before = repo.git(&["rev-parse", "main"]);
    let err = repo.engine().apply("demo", false).unwrap_err().to_string();
    assert_eq!(
        err,
        "the branch skill/demo exists already and has commits main lacks \
         (merge or delete it first)"
    );
    assert_eq!(repo.git(&["rev-parse", "skill/demo"]), unmerged, "kept");
    assert_eq!(repo.git(&["rev-parse", "main"]), main_before);
    assert_eq!(repo.branch(), "main");
    assert!(repo.clean());

    // Merged, then the owner added a commit of their own on it: refused too.
    repo.git(&["merge", "-q", "skill/demo"]);
    repo.git(&["checkout", "-q", "skill/demo"]);
    repo.write("notes.md", "the owner's notes\n");
    let owners = repo.commit("the owner's work on the review branch");
    repo.git(&["checkout", "-q", "main"]);
    land(&repo, "remove", "demo");
    let err = repo.engine().apply("demo", false).unwrap_err().to_string();
    assert!(err.contains("has commits main lacks"), "{err}");
    assert_eq!(repo.git(&["rev-parse", "skill/demo"]), owners, "kept");
    assert_eq!(repo.branch(), "main");
}

#[test]
fn standing_on_the_review_branch_itself_is_refused() {
    let repo = fork_with_demo();
    repo.git(&["checkout", "-q", "-b", "skill/demo"]);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let err = repo.engine().apply("demo", false).unwrap_err().to_string();
    assert!(
        err.contains("you are on skill/demo, the review branch itself"),
        "{err}"
    );
    assert_eq!(repo.branch(), "skill/demo");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert!(!pending_exists(&repo));
}
