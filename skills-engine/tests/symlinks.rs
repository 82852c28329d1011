//! The engine never reads a package, nor writes a fork, through a symlink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn a_symlink_anywhere_in_a_package_path_is_refused() {
    let repo = Repo::new();
    let base = upstream(&repo);
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("src")).unwrap();
    std::fs::write(outside.path().join("secret.rs"), "a secret\n").unwrap();
    std::fs::write(outside.path().join("src/a.rs"), "a secret base\n").unwrap();
    // files/core -> a folder outside the package.
    package(&repo, "linkdir", &base, "adds = [\"core/secret.rs\"]");
    std::fs::create_dir_all(repo.root().join("skills/linkdir/files")).unwrap();
    std::os::unix::fs::symlink(
        outside.path(),
        repo.root().join("skills/linkdir/files/core"),
    )
    .unwrap();
    // base/core -> a folder outside, for a base the fork's history lacks (the
    // kept copy is what the merge would read).
    let absent = "0123456789abcdef0123456789abcdef01234567";
    package(&repo, "linkbase", absent, "modifies = [\"core/src/a.rs\"]");
    repo.write(
        "skills/linkbase/files/core/src/a.rs",
        &lines(10, "a").replace("a line 10\n", "a line 10 by linkbase\n"),
    );
    std::fs::create_dir_all(repo.root().join("skills/linkbase/base")).unwrap();
    std::os::unix::fs::symlink(
        outside.path(),
        repo.root().join("skills/linkbase/base/core"),
    )
    .unwrap();
    // The package folder itself.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(elsewhere.path().join("files/core")).unwrap();
    std::fs::write(elsewhere.path().join("files/core/x.rs"), "x\n").unwrap();
    std::fs::write(elsewhere.path().join("SKILL.md"), "# whole\n").unwrap();
    std::fs::write(
        elsewhere.path().join("skill.toml"),
        format!(
            "name = \"whole\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"{base}\"\nadds = [\"core/x.rs\"]\n"
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), repo.root().join("skills/whole")).unwrap();
    let main_before = repo.commit("packages with symlinked folders");

    for name in ["linkdir", "linkbase", "whole"] {
        let err = repo.engine().apply(name, false).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{name}: {err}");
        let err = repo.engine().diff(name, false).unwrap_err().to_string();
        assert!(err.contains("symlink"), "{name}: {err}");
        assert_eq!(repo.branch(), "main", "{name}");
        assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before, "{name}");
        assert!(repo.clean(), "{name}");
    }
    assert!(repo.git(&["branch", "--list", "skill/*"]).is_empty());
    assert!(!repo.root().join("core/secret.rs").exists());
}

#[test]
fn the_engine_never_writes_through_a_symlink_in_the_fork() {
    let repo = Repo::new();
    let base = upstream(&repo);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("target.rs"), "the owner's file\n").unwrap();
    // The fork has a symlinked folder where a skill adds a file...
    std::os::unix::fs::symlink(outside.path(), repo.root().join("plugins")).unwrap();
    package(&repo, "plug", &base, "adds = [\"plugins/p.rs\"]");
    repo.write("skills/plug/files/plugins/p.rs", "// plug\n");
    // ...and a symlink where a skill adds a file.
    std::os::unix::fs::symlink(
        outside.path().join("target.rs"),
        repo.root().join("core/src/link.rs"),
    )
    .unwrap();
    package(&repo, "onto", &base, "adds = [\"core/src/link.rs\"]");
    repo.write("skills/onto/files/core/src/link.rs", "// onto\n");
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    let main_before = repo.commit("a fork with symlinks");

    let refused = |name: &str, why: &str| {
        let err = repo.engine().apply(name, false).unwrap_err().to_string();
        assert!(
            err.contains("symlink") && err.contains(why),
            "{name}: {err}"
        );
        assert_eq!(repo.branch(), "main", "{name}");
        assert!(repo.clean(), "{name}");
        assert!(
            repo.git(&["branch", "--list", "skill/*"]).is_empty(),
            "{name}"
        );
    };
    refused("plug", "plugins");
    refused("onto", "core/src/link.rs");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    let written: Vec<_> = std::fs::read_dir(outside.path()).unwrap().collect();
    assert_eq!(written.len(), 1, "only target.rs: {written:?}");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("target.rs")).unwrap(),
        "the owner's file\n"
    );

    // The state file's folder, symlinked.
    std::os::unix::fs::symlink(outside.path(), repo.root().join(".pincer")).unwrap();
    repo.commit("a symlinked .pincer");
    refused("demo", ".pincer");
    assert!(!outside.path().join("skills.toml").exists());
    std::fs::remove_file(repo.root().join(".pincer")).unwrap();
    repo.commit("no more symlinked .pincer");

    // remove-skill does not delete through a folder symlinked since the apply.
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    std::fs::rename(repo.root().join("core"), outside.path().join("core")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("core"), repo.root().join("core")).unwrap();
    let main_before = repo.commit("core moved out and linked");
    let err = repo.engine().remove("demo", false).unwrap_err().to_string();
    assert!(err.contains("symlink") && err.contains("core"), "{err}");
    assert!(outside.path().join("core/src/demo.rs").exists());
    assert_eq!(repo.branch(), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
}
