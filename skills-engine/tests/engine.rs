//! The skills engine on real git repositories in temp folders.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pincer_skills::{ApplyOutcome, Engine, SkillError, State, merge3};

/// A repository driven with the real `git`.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let repo = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo.git(&["config", "user.name", "Owner"]);
        repo.git(&["config", "user.email", "owner@example.org"]);
        repo
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn write(&self, path: &str, content: &str) {
        let path = self.root().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root().join(path)).unwrap()
    }

    fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn branch(&self) -> String {
        self.git(&["rev-parse", "--abbrev-ref", "HEAD"])
    }

    fn engine(&self) -> Engine {
        Engine::open(self.root()).unwrap()
    }

    fn clean(&self) -> bool {
        self.git(&["status", "--porcelain"]).is_empty()
    }
}

const CARGO: &str = "# The owner's workspace\n[workspace]\nmembers = [\"core\"] # keep this comment\n\n[dependencies]\n# alphabetical, please\nanyhow = \"1\"\nserde = \"1\"\n";

fn lines(n: usize, tag: &str) -> String {
    (1..=n).map(|i| format!("{tag} line {i}\n")).collect()
}

/// An upstream with a core file and a Cargo.toml; returns the base commit.
fn upstream(repo: &Repo) -> String {
    repo.write("core/src/a.rs", &lines(10, "a"));
    repo.write("Cargo.toml", CARGO);
    repo.commit("upstream")
}

/// A skill that changes the last line of a.rs, adds b.rs and a dependency.
fn add_skill(repo: &Repo, name: &str, base: &str, last_line: &str, extra: &str) {
    let dir = format!("skills/{name}");
    let mut a = lines(10, "a");
    a = a.replace("a line 10\n", &format!("{last_line}\n"));
    repo.write(&format!("{dir}/files/core/src/a.rs"), &a);
    repo.write(
        &format!("{dir}/files/core/src/{name}.rs"),
        &format!("// added by {name}\n"),
    );
    repo.write(
        &format!("{dir}/SKILL.md"),
        &format!("---\nname: {name}\ndescription: test skill\n---\n# {name}\n"),
    );
    repo.write(
        &format!("{dir}/skill.toml"),
        &format!(
            "name = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"test skill\"\nbase = \"{base}\"\n\
             adds = [\"core/src/{name}.rs\"]\nmodifies = [\"core/src/a.rs\"]\ntest = \"test -f core/src/{name}.rs\"\n{extra}\n\
             [[crate]]\nmanifest = \"Cargo.toml\"\ndependencies = {{ {name}-dep = \"0.1\" }}\n"
        ),
    );
}

fn committed(outcome: ApplyOutcome) -> (String, String) {
    match outcome {
        ApplyOutcome::Committed { branch, commit, .. } => (branch, commit),
        other => panic!("expected a commit, got {other:?}"),
    }
}

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
    repo.write("skills/typo/SKILL.md", "# typo\n");
    repo.write(
        "skills/typo/skill.toml",
        "name = \"typo\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"x\"\nmodfies = []\n",
    );
    repo.write("skills/escape/SKILL.md", "# escape\n");
    repo.write("skills/escape/skill.toml", "name = \"escape\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"x\"\nadds = [\"../outside.rs\"]\n");
    repo.write("skills/absolute/SKILL.md", "# absolute\n");
    repo.write("skills/absolute/skill.toml", "name = \"absolute\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"x\"\nadds = [\"/etc/passwd\"]\n");
    repo.write("skills/linked/SKILL.md", "# linked\n");
    repo.write("skills/linked/skill.toml", "name = \"linked\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"x\"\nadds = [\"core/src/l.rs\"]\n");
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
            .contains("applied already")
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

    let (branch, _) = committed(repo.engine().remove("demo").unwrap());
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
        add_skill(&repo, "one", &base, "a line 10 by one", "");
        // `two` changes the first line instead.
        add_skill(&repo, "two", &base, "a line 10", "");
        repo.write(
            "skills/two/files/core/src/a.rs",
            &lines(10, "a").replace("a line 1\n", "a line 1 by two\n"),
        );
        repo.commit("two skills");
        for name in [first, second] {
            committed(repo.engine().apply(name, false).unwrap());
            repo.git(&["checkout", "-q", "main"]);
            repo.git(&["merge", "-q", &format!("skill/{name}")]);
        }
        // Everything but the skill packages themselves (their `base` is a
        // commit id, which differs between the two repositories).
        repo.git(&["ls-tree", "-r", "HEAD"])
            .lines()
            .filter(|line| !line.contains("\tskills/"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (forward, backward) = (tree_after("one", "two"), tree_after("two", "one"));
    assert!(
        forward.contains(".pincer/skills.toml") && forward.contains("core/src/two.rs"),
        "{forward}"
    );
    assert_eq!(forward, backward);
}

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

    let out = repo.root().join("patches");
    let patches = repo.engine().upstream_diff("upstream", &out).unwrap();
    assert_eq!(patches.len(), 1, "{patches:?}");
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

#[test]
fn new_skill_scaffolds_a_package_that_applies_back() {
    let repo = Repo::new();
    let base = upstream(&repo);
    repo.git(&["branch", "upstream"]);
    repo.write(
        "core/src/a.rs",
        &lines(10, "a").replace("a line 7\n", "a line 7, feature\n"),
    );
    repo.write("core/src/feature.rs", "pub fn feature() {}\n");
    repo.commit("a feature");
    let dir = repo.engine().new_skill("feature", &base).unwrap();
    let manifest = std::fs::read_to_string(dir.join("skill.toml")).unwrap();
    assert!(
        manifest.contains("adds = [\"core/src/feature.rs\"]")
            && manifest.contains("modifies = [\"core/src/a.rs\"]"),
        "{manifest}"
    );
    assert!(dir.join("SKILL.md").exists() && dir.join("base/core/src/a.rs").exists());
    assert!(
        repo.engine()
            .new_skill("feature", &base)
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
    let toml = manifest.replace("test = \"cargo test --workspace\"", "test = \"true\"");
    std::fs::write(dir.join("skill.toml"), toml).unwrap();
    repo.commit("package the feature as a skill");

    // Applied to a fork at the base, it gives the feature.
    repo.git(&["checkout", "-q", "-b", "fresh", "upstream"]);
    repo.git(&["checkout", "-q", "main", "--", "skills"]);
    repo.commit("bring the skill");
    committed(repo.engine().apply("feature", true).unwrap());
    assert!(repo.read("core/src/a.rs").contains("a line 7, feature"));
    assert_eq!(repo.read("core/src/feature.rs"), "pub fn feature() {}\n");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The engine's merge is `git merge-file`'s: same text, same verdict.
    #[test]
    fn merges_match_git_merge_file(
        base in proptest::collection::vec(0u8..6, 0..12),
        ours_edits in proptest::collection::vec((0usize..12, 0u8..9), 0..4),
        theirs_edits in proptest::collection::vec((0usize..12, 0u8..9), 0..4),
    ) {
        let render = |v: &[u8]| v.iter().map(|n| format!("line {n}\n")).collect::<String>();
        let edit = |edits: &[(usize, u8)]| {
            let mut v = base.clone();
            for (at, what) in edits {
                match what {
                    6 if !v.is_empty() => { v.remove(at % v.len()); }
                    7 => v.insert(at % (v.len() + 1), 100 + *what),
                    w => if !v.is_empty() { let len = v.len(); v[at % len] = 50 + *w; },
                }
            }
            v
        };
        let (base_text, ours, theirs) = (render(&base), render(&edit(&ours_edits)), render(&edit(&theirs_edits)));
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (o, b, t) = (write("ours", &ours), write("base", &base_text), write("theirs", &theirs));
        let git = Command::new("git")
            .args(["merge-file", "-p", "-L", "fork", "-L", "base", "-L", "skill"])
            .args([&o, &b, &t])
            .output()
            .unwrap();
        let code = git.status.code().unwrap();
        proptest::prop_assert!(code >= 0, "git merge-file failed");
        let ours_merge = merge3(base_text.as_bytes(), ours.as_bytes(), theirs.as_bytes(), "f").unwrap();
        proptest::prop_assert_eq!(String::from_utf8_lossy(&ours_merge.content), String::from_utf8_lossy(&git.stdout));
        proptest::prop_assert_eq!(ours_merge.conflicted, code > 0);
    }
}
