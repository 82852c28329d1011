//! `upstream-diff`: the owner's own changes out, as patches upstream can take.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn upstream_diff_keeps_only_the_owners_own_core_changes() {
    let repo = Repo::new();
    let base = upstream(&repo);
    repo.git(&["branch", "upstream"]);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    repo.write(
        "core/src/a.rs",
        &repo
            .read("core/src/a.rs")
            .replace("a line 4\n", "a line 4, fixed\n"),
    );
    repo.commit("Fix line four");

    // By default into the git directory: the tree stays clean for the next
    // apply, and an earlier run's patches go.
    let stale = repo
        .root()
        .join(".git/pincer-upstream-patches/0002-stale.patch");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "an earlier run's\n").unwrap();
    let (out, patches) = repo.engine().upstream_diff("upstream", None).unwrap();
    assert_eq!(out, repo.engine().default_patch_dir());
    assert!(out.starts_with(repo.root().join(".git")), "{out:?}");
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0].starts_with(&out), "{patches:?}");
    assert!(!stale.exists());
    assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
    // Or where the owner says.
    let elsewhere = tempfile::tempdir().unwrap();
    let (out, patches) = repo
        .engine()
        .upstream_diff("upstream", Some(elsewhere.path()))
        .unwrap();
    assert_eq!(out, elsewhere.path());
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert!(patches[0].starts_with(elsewhere.path()));
    let patch = std::fs::read_to_string(&patches[0]).unwrap();
    assert!(
        patch.contains("Subject: [PATCH 1/1] Fix line four"),
        "{patch}"
    );
    assert!(patch.contains("+a line 4, fixed"), "{patch}");
    assert!(
        !patch.contains("skills/") && !patch.contains("demo.rs"),
        "{patch}"
    );

    // It applies to upstream as it is.
    let upstream_clone = Repo::new();
    upstream_clone.git(&["pull", "-q", repo.root().to_str().unwrap(), "upstream"]);
    upstream_clone.git(&["apply", "--check", patches[0].to_str().unwrap()]);
}
