//! `new-skill`: a package scaffolded from what the caller gives, and from a
//! fork's changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::{CrateEdit, RegisterLine, Scaffold, SkillManifest};

/// A crate scaffold for the fixture's host (as a project's xtask gives one).
fn crate_scaffold() -> Scaffold {
    Scaffold {
        files: vec![
            (
                "Cargo.toml".into(),
                "[package]\nname = \"{name}-skill\"\nversion = \"0.1.0\"\n".into(),
            ),
            (
                "src/lib.rs".into(),
                "//! The {name} skill, written against {base}.\n\npub fn register(_registry: &mut ()) {}\n"
                    .into(),
            ),
            (
                "tests/{name}.rs".into(),
                "#[test]\n#[ignore = \"write this skill's test\"]\nfn works() {}\n".into(),
            ),
        ],
        crates: vec![
            CrateEdit::dependency(
                "host/Cargo.toml",
                "{name}-skill",
                "{ path = \"../skills/{name}\" }",
            )
            .unwrap(),
        ],
        register: vec![RegisterLine {
            file: "host/src/skills.rs".into(),
            line: "{name_snake}_skill::register(registry);".into(),
        }],
        test: Some("test -f skills/{name}/src/lib.rs".into()),
    }
}

#[test]
fn new_skill_scaffolds_a_crate_that_links_in() {
    let repo = Repo::new();
    host_upstream(&repo);
    let head = repo.git(&["rev-parse", "HEAD"]);
    let dir = repo
        .engine()
        .new_skill("my-chat", &crate_scaffold(), None)
        .unwrap();
    assert_eq!(dir, repo.root().join("skills/my-chat"));
    assert_eq!(
        repo.read("skills/my-chat/Cargo.toml"),
        "[package]\nname = \"my-chat-skill\"\nversion = \"0.1.0\"\n"
    );
    assert!(
        repo.read("skills/my-chat/src/lib.rs")
            .starts_with(&format!("//! The my-chat skill, written against {head}.\n"))
    );
    assert!(
        repo.read("skills/my-chat/tests/my-chat.rs")
            .contains("#[ignore")
    );
    assert!(repo.read("skills/my-chat/SKILL.md").contains("# my-chat"));
    let text = repo.read("skills/my-chat/skill.toml");
    assert!(
        text.contains("# The command that proves it works once applied (run from the root):\ntest = \"test -f skills/my-chat/src/lib.rs\"\n")
            && text.contains("[[crate]]\nmanifest = \"host/Cargo.toml\"\ndependencies = { my-chat-skill = { path = \"../skills/my-chat\" } }\n")
            && text.contains("[[register]]\nfile = \"host/src/skills.rs\"\nline = \"my_chat_skill::register(registry);\"\n"),
        "{text}"
    );
    let manifest = SkillManifest::load(repo.root(), "my-chat").unwrap();
    assert_eq!(manifest.base, head);
    assert!(manifest.adds.is_empty() && manifest.modifies.is_empty());
    assert_eq!(
        manifest.crates,
        [CrateEdit::dependency(
            "host/Cargo.toml",
            "my-chat-skill",
            "{ path = \"../skills/my-chat\" }"
        )
        .unwrap()]
    );
    assert_eq!(
        manifest.register,
        [RegisterLine {
            file: "host/src/skills.rs".into(),
            line: "my_chat_skill::register(registry);".into()
        }]
    );

    // Committed, it applies: linked into the host.
    repo.commit("the my-chat skill");
    land(&repo, "apply", "my-chat");
    assert!(
        repo.read("host/src/skills.rs")
            .contains("    my_chat_skill::register(registry);\n")
    );
    assert!(
        repo.read("host/Cargo.toml")
            .contains("my-chat-skill = { path = \"../skills/my-chat\" }")
    );
}

#[test]
fn a_bad_scaffold_leaves_nothing_behind() {
    let repo = Repo::new();
    host_upstream(&repo);
    let with_file = |path: &str| {
        let mut scaffold = crate_scaffold();
        scaffold.files.push((path.into(), "x\n".into()));
        scaffold
    };
    let mut bad_line = crate_scaffold();
    bad_line.register[0].line = "a();\nb();".into();
    let cases = [
        (
            with_file("../outside.rs"),
            "scaffold file \"../outside.rs\" must not contain `..`",
        ),
        (with_file("skill.toml"), "the engine's to write"),
        (with_file("files/core/x.rs"), "the engine's to write"),
        (with_file("Cargo.toml"), "is given twice"),
        (
            bad_line,
            "`register.line`: \"a();\\nb();\" is more than one line",
        ),
    ];
    for (scaffold, why) in cases {
        let err = repo
            .engine()
            .new_skill("chat", &scaffold, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{err}");
        assert!(!repo.root().join("skills/chat").exists(), "{why}");
        assert!(repo.clean(), "{why}");
    }
    assert!(
        repo.engine()
            .new_skill("Chat", &crate_scaffold(), None)
            .unwrap_err()
            .to_string()
            .contains("lowercase")
    );
    assert!(
        CrateEdit::dependency("host/Cargo.toml", "x", "{ path = ")
            .unwrap_err()
            .to_string()
            .contains("not a TOML value")
    );
}

#[test]
fn new_skill_from_a_commit_captures_the_changes_that_apply_back() {
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
    let scaffold = Scaffold {
        test: Some("true".into()),
        ..Scaffold::default()
    };
    let dir = repo
        .engine()
        .new_skill("feature", &scaffold, Some(&base))
        .unwrap();
    let manifest = std::fs::read_to_string(dir.join("skill.toml")).unwrap();
    assert!(
        manifest.contains(&format!("base = \"{base}\""))
            && manifest.contains("adds = [\"core/src/feature.rs\"]")
            && manifest.contains("modifies = [\"core/src/a.rs\"]")
            && manifest.contains("env = [\"FEATURE_KEY\", \"FEATURE_URL\"]"),
        "{manifest}"
    );
    assert!(!dir.join("files/.env.example").exists());
    assert!(dir.join("SKILL.md").exists() && dir.join("base/core/src/a.rs").exists());
    assert!(
        repo.engine()
            .new_skill("feature", &scaffold, Some(&base))
            .unwrap_err()
            .to_string()
            .contains("exists already")
    );
    repo.commit("package the feature as a skill");
    assert!(
        repo.engine()
            .new_skill("again", &scaffold, Some("HEAD"))
            .unwrap_err()
            .to_string()
            .contains("nothing changed since HEAD")
    );

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

#[test]
fn new_skill_with_the_name_of_an_applied_or_existing_skill_says_which() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "");
    crate_skill(&repo, "idle", &base, "");
    repo.commit("two crate skills");
    land(&repo, "apply", "chat");
    let scaffold = crate_scaffold();
    let refused = |name: &str| {
        repo.engine()
            .new_skill(name, &scaffold, None)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        refused("chat"),
        "chat is applied (version 1.0.0); a new skill needs another name"
    );
    assert_eq!(
        refused("idle"),
        "skills/idle exists already; a new skill needs another name"
    );
    // Recorded as applied, its folder gone: still said.
    repo.git(&["rm", "-rq", "skills/chat"]);
    repo.commit("the package went, the record stayed");
    assert_eq!(
        refused("chat"),
        "chat is applied (version 1.0.0); a new skill needs another name"
    );
    assert!(!repo.root().join("skills/chat").exists());
    assert!(repo.clean());
}
