//! Skills that are crates in place: applying one links it into the host (a
//! dependency and one line in the registry block), removing it unlinks it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::{FileChange, SkillError, State};

/// The registry with these lines in its block, in this order.
fn registry_with(lines: &[&str]) -> String {
    let block: String = lines.iter().map(|l| format!("    {l}\n")).collect();
    REGISTRY.replace(
        "    // apply-skill: end\n",
        &format!("{block}    // apply-skill: end\n"),
    )
}

#[test]
fn apply_links_a_crate_skill_and_remove_unlinks_it() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "env = [\"CHAT_TOKEN\"]");
    repo.commit("a crate skill");

    let (_, planned) = repo.engine().plan("chat").unwrap();
    let kinds: Vec<(&str, FileChange)> = planned
        .iter()
        .map(|p| (p.path.as_str(), p.change))
        .collect();
    assert_eq!(
        kinds,
        [
            ("host/Cargo.toml", FileChange::Manifest),
            ("host/src/skills.rs", FileChange::Register),
            (".env.example", FileChange::EnvExample),
            (".pincer/skills.toml", FileChange::State),
        ]
    );
    let diff = repo.engine().diff("chat", false).unwrap();
    assert!(
        diff.contains("+++ b/host/src/skills.rs\n")
            && diff.contains("+    chat_skill::register(registry);\n"),
        "{diff}"
    );
    let shown = repo.engine().show("chat").unwrap();
    assert!(
        shown.contains("  register  chat_skill::register(registry); in host/src/skills.rs"),
        "{shown}"
    );

    committed(repo.engine().apply("chat", true).unwrap());
    assert_eq!(
        repo.read("host/src/skills.rs"),
        registry_with(&["chat_skill::register(registry);"])
    );
    assert!(
        repo.read("host/Cargo.toml")
            .contains("chat-skill = { path = \"../skills/chat\" }"),
        "{}",
        repo.read("host/Cargo.toml")
    );
    let state = State::load(repo.root()).unwrap();
    assert_eq!(state.applied[0].register.len(), 1);
    assert_eq!(state.applied[0].register[0].file, "host/src/skills.rs");
    assert!(repo.clean());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/chat"]);

    land(&repo, "remove", "chat");
    assert_eq!(repo.read("host/src/skills.rs"), REGISTRY);
    assert_eq!(repo.read("host/Cargo.toml"), HOST_CARGO);
    assert!(State::load(repo.root()).unwrap().applied.is_empty());
    assert!(repo.clean());
}

#[test]
fn two_skills_give_a_sorted_block_in_either_order_and_remove_keeps_the_other() {
    let after = |first: &str, second: &str| {
        let repo = Repo::new();
        let base = host_upstream(&repo);
        crate_skill(&repo, "alpha", &base, "");
        crate_skill(&repo, "beta", &base, "");
        repo.commit("two crate skills");
        land(&repo, "apply", first);
        land(&repo, "apply", second);
        let both = (
            repo.read("host/src/skills.rs"),
            repo.read("host/Cargo.toml"),
        );
        // Taking out the first keeps the second's line.
        land(&repo, "remove", first);
        assert_eq!(
            repo.read("host/src/skills.rs"),
            registry_with(&[&registry_line(second)])
        );
        land(&repo, "remove", second);
        assert_eq!(repo.read("host/src/skills.rs"), REGISTRY);
        both
    };
    let forward = after("alpha", "beta");
    assert_eq!(
        forward.0,
        registry_with(&[
            "alpha_skill::register(registry);",
            "beta_skill::register(registry);"
        ])
    );
    assert_eq!(forward, after("beta", "alpha"));
}

#[test]
fn a_registry_without_its_block_is_refused_and_nothing_is_written() {
    let broken: &[(&str, &str)] = &[
        (
            "fn register() {}\n",
            "no line containing `apply-skill: begin`",
        ),
        (
            "// apply-skill: begin\n// apply-skill: end\n// apply-skill: begin\n",
            "2 lines contain `apply-skill: begin`",
        ),
        (
            "// apply-skill: end\n// apply-skill: begin\n",
            "comes before",
        ),
    ];
    for (text, why) in broken {
        let repo = Repo::new();
        let base = host_upstream(&repo);
        repo.write("host/src/skills.rs", text);
        crate_skill(&repo, "chat", &base, "");
        let main_before = repo.commit("a registry without a proper block");
        for err in [
            repo.engine().diff("chat", false).unwrap_err(),
            repo.engine().apply("chat", false).unwrap_err(),
        ] {
            let err = err.to_string();
            assert!(
                err.starts_with("host/src/skills.rs: ") && err.contains(why),
                "{err}"
            );
        }
        assert_eq!(repo.branch(), "main");
        assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
        assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
        assert!(repo.git(&["branch", "--list", "skill/*"]).is_empty());
    }
}

#[test]
fn a_line_there_already_a_dirty_tree_and_bad_registry_files_are_refused() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "");
    repo.write(
        "host/src/skills.rs",
        &registry_with(&["chat_skill::register(registry);"]),
    );
    let main_before = repo.commit("the owner linked it by hand");
    let err = repo.engine().apply("chat", false).unwrap_err().to_string();
    assert!(
        err.contains(
            "host/src/skills.rs: it has the line `chat_skill::register(registry);` already"
        ),
        "{err}"
    );
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert!(repo.clean());

    repo.write("host/src/skills.rs", REGISTRY);
    repo.commit("not by hand after all");
    repo.write("host/src/skills.rs", "dirty\n");
    let err = repo.engine().apply("chat", false).unwrap_err();
    assert!(
        matches!(err, SkillError::Dirty(ref files) if files == &["host/src/skills.rs"]),
        "{err}"
    );
    repo.git(&["checkout", "--", "host/src/skills.rs"]);

    // Untracked (ignored), and reached through a symlinked folder.
    repo.write(".gitignore", "host/src/skills.rs\n");
    repo.git(&["rm", "-q", "--cached", "host/src/skills.rs"]);
    repo.commit("an ignored registry");
    let err = repo.engine().apply("chat", false).unwrap_err().to_string();
    assert!(
        err.contains("host/src/skills.rs in this fork: not tracked by git"),
        "{err}"
    );
    std::fs::remove_file(repo.root().join(".gitignore")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::rename(repo.root().join("host/src"), outside.path().join("src")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("src"), repo.root().join("host/src")).unwrap();
    let main_before = repo.commit("host/src linked from elsewhere");
    let err = repo.engine().apply("chat", false).unwrap_err().to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), main_before);
    assert_eq!(
        std::fs::read_to_string(outside.path().join("src/skills.rs")).unwrap(),
        REGISTRY
    );
    assert!(repo.clean());
}

#[test]
fn register_entries_are_checked() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    let entry = |name: &str, file: &str, line: &str| {
        package(
            &repo,
            name,
            &base,
            &format!("\n[[register]]\nfile = {file:?}\nline = {line:?}\n"),
        );
    };
    entry("multi", "host/src/skills.rs", "a();\nb();");
    entry("empty", "host/src/skills.rs", " ");
    entry("spaced", "host/src/skills.rs", "  a();");
    entry("marker", "host/src/skills.rs", "a(); // apply-skill: end");
    entry("outside", "../skills.rs", "a();");
    package(
        &repo,
        "twice",
        &base,
        "\n[[register]]\nfile = \"host/src/skills.rs\"\nline = \"a();\"\n\
         [[register]]\nfile = \"host/src/skills.rs\"\nline = \"a();\"\n",
    );
    repo.commit("bad register entries");
    let cases = [
        (
            "multi",
            "`register.line`: \"a();\\nb();\" is more than one line",
        ),
        ("empty", "`register.line`: \" \" is empty"),
        ("spaced", "has spaces around it"),
        ("marker", "contains a marker of the block"),
        (
            "outside",
            "`register.file`: \"../skills.rs\" must not contain `..`",
        ),
        ("twice", "is listed twice"),
    ];
    for (name, why) in cases {
        let err = repo.engine().apply(name, false).unwrap_err().to_string();
        assert!(err.contains(why), "{name}: {err}");
        assert!(repo.clean(), "{name}");
    }
}

#[test]
fn update_reports_upstream_changes_to_a_crate_skill() {
    let upstream_repo = Repo::new();
    let base = host_upstream(&upstream_repo);
    crate_skill(&upstream_repo, "chat", &base, "");
    upstream_repo.commit("the skill");
    let fork = Repo::new();
    fork.git(&["pull", "-q", upstream_repo.root().to_str().unwrap(), "main"]);
    land(&fork, "apply", "chat");

    upstream_repo.write("skills/chat/src/lib.rs", "//! A better skill.\n");
    upstream_repo.write("host/src/main.rs", "fn main() { /* faster */ }\n");
    upstream_repo.commit("upstream improves the skill");
    let report = fork
        .engine()
        .update(
            upstream_repo.root().to_str().unwrap(),
            "refs/heads/main",
            false,
        )
        .unwrap();
    assert_eq!(report.skills.len(), 1, "{report:?}");
    assert_eq!(report.skills[0].name, "chat");
    assert_eq!(report.skills[0].files, ["skills/chat/src/lib.rs"]);
    assert_eq!(report.skills[0].test, None);
    assert_eq!(
        fork.read("host/src/skills.rs"),
        registry_with(&["chat_skill::register(registry);"])
    );
}

#[test]
fn a_skill_that_modifies_nothing_needs_no_base() {
    let repo = Repo::new();
    host_upstream(&repo);
    crate_skill(&repo, "chat", "", "");
    package(&repo, "merged", "", "modifies = [\"host/src/main.rs\"]");
    repo.write("skills/merged/files/host/src/main.rs", "fn main() {}\n");
    repo.commit("skills without a base");
    let shown = repo.engine().show("chat").unwrap();
    assert!(shown.contains("\n---\nchat 1.0.0\n"), "{shown}");
    land(&repo, "apply", "chat");
    assert_eq!(
        repo.read("host/src/skills.rs"),
        registry_with(&["chat_skill::register(registry);"])
    );
    let err = repo
        .engine()
        .apply("merged", false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`base` is missing"), "{err}");
}
