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

/// An owner's own `.env.example`.
const OWNERS_ENV: &str = "# the owner's settings\nPINCER_HOME=/srv/pincer\n";
/// The `env` of the skills `one` and `two`, and the blocks apply writes.
const ONE_ENV: &str = "env = [\"ONE_TOKEN\", \"ONE_URL\"]";
const ONE_BLOCK: &str = "# skill one (see skills/one/SKILL.md)\nONE_TOKEN=\nONE_URL=\n";
const TWO_ENV: &str = "env = [\"TWO_KEY\"]";
const TWO_BLOCK: &str = "# skill two (see skills/two/SKILL.md)\nTWO_KEY=\n";

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
    // Its variables, in .env.example: they become the skill's `env`.
    repo.write(
        ".env.example",
        "# the feature\nFEATURE_KEY=\nexport FEATURE_URL=https://example.org\n",
    );
    repo.commit("a feature");
    let dir = repo.engine().new_skill("feature", &base).unwrap();
    let manifest = std::fs::read_to_string(dir.join("skill.toml")).unwrap();
    assert!(
        manifest.contains("adds = [\"core/src/feature.rs\"]")
            && manifest.contains("modifies = [\"core/src/a.rs\"]")
            && manifest.contains("env = [\"FEATURE_KEY\", \"FEATURE_URL\"]"),
        "{manifest}"
    );
    assert!(!dir.join("files/.env.example").exists());
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
    assert_eq!(
        repo.read(".env.example"),
        "# skill feature (see skills/feature/SKILL.md)\nFEATURE_KEY=\nFEATURE_URL=\n"
    );
}

/// Every ref (branches, HEAD's target, the engine's own refs), for "nothing changed".
fn refs(repo: &Repo) -> String {
    format!(
        "{}\nHEAD {}",
        repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
        repo.git(&["symbolic-ref", "HEAD"])
    )
}

fn pending_exists(repo: &Repo) -> bool {
    repo.root().join(".git/pincer-skill-pending.toml").exists()
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
    committed(repo.engine().remove("demo").unwrap());
    assert!(!repo.root().join("core/src/demo.rs").exists());
    assert!(State::load(repo.root()).unwrap().applied.is_empty());
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
        let err = fork
            .engine()
            .update(upstream, refname, false)
            .unwrap_err()
            .to_string();
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

#[test]
fn the_shipped_skills_pass_the_manifest_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let listed = Engine::open(root).unwrap().list().unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    for shipped in ["gvisor", "irc", "openai-compatible", "telegram"] {
        assert!(names.contains(&shipped), "{names:?}");
    }
}

/// A skill package `name` (SKILL.md and skill.toml) with these manifest lines.
fn package(repo: &Repo, name: &str, base: &str, lines: &str) {
    repo.write(&format!("skills/{name}/SKILL.md"), &format!("# {name}\n"));
    repo.write(
        &format!("skills/{name}/skill.toml"),
        &format!(
            "name = \"{name}\"\nversion = \"1\"\ndescription = \"d\"\nbase = \"{base}\"\n{lines}\n"
        ),
    );
}

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
    let err = repo.engine().remove("demo").unwrap_err().to_string();
    assert!(err.contains("symlink") && err.contains("core"), "{err}");
    assert!(outside.path().join("core/src/demo.rs").exists());
    assert_eq!(repo.branch(), "main");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
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
    committed(repo.engine().remove("demo").unwrap());
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
            repo.engine().remove(name)
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

/// Applies (or removes) `name` and merges its review branch into main.
fn land(repo: &Repo, verb: &str, name: &str) {
    let outcome = if verb == "apply" {
        repo.engine().apply(name, false)
    } else {
        repo.engine().remove(name)
    };
    let (branch, _) = committed(outcome.unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", &branch]);
}

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
    let err = repo.engine().remove("one").unwrap_err().to_string();
    assert!(
        err.contains(".env.example") && err.contains("symlink"),
        "{err}"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), ONE_BLOCK);
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
