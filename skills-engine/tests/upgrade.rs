//! An update brings each applied skill to the version upstream has: a crate
//! skill's new links, and a skill that was files merged into the fork
//! (before skills were crates) becoming a crate, the owner's edits kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::State;

/// Upstream with the host crate and a crate skill `chat` at 1.0.0, and a
/// fork of it with `chat` applied and merged.
fn fork_with_chat() -> (Repo, Repo) {
    let upstream_repo = Repo::new();
    let base = host_upstream(&upstream_repo);
    crate_skill(&upstream_repo, "chat", &base, "env = [\"CHAT_TOKEN\"]");
    upstream_repo.commit("the skill");
    let fork = Repo::new();
    fork.git(&["pull", "-q", upstream_repo.root().to_str().unwrap(), "main"]);
    land(&fork, "apply", "chat");
    (fork, upstream_repo)
}

fn update(fork: &Repo, upstream_repo: &Repo) -> pincer_skills::UpdateReport {
    fork.engine()
        .update(
            upstream_repo.root().to_str().unwrap(),
            "refs/heads/main",
            true,
        )
        .unwrap()
}

#[test]
fn a_crate_skills_new_version_arrives_with_its_new_links() {
    let (fork, upstream_repo) = fork_with_chat();
    // The owner tuned the skill's code; upstream fixed another part of it,
    // and its 2.0.0 registers a second line and needs another variable.
    let lib = "//! A skill.\n\npub fn register(_registry: &mut ()) {}\n";
    fork.write(
        "skills/chat/src/lib.rs",
        &format!("{lib}// the owner's tuning\n"),
    );
    fork.commit("tune chat");
    upstream_repo.write(
        "skills/chat/src/lib.rs",
        &lib.replace("//! A skill.", "//! A skill, with back-off."),
    );
    let manifest = upstream_repo
        .read("skills/chat/skill.toml")
        .replace("version = \"1.0.0\"", "version = \"2.0.0\"")
        .replace(
            "env = [\"CHAT_TOKEN\"]",
            "env = [\"CHAT_TOKEN\", \"CHAT_URL\"]",
        )
        .replace(
            "description = \"a crate\"",
            "description = \"a crate\"\ntest = \"grep -q back-off skills/chat/src/lib.rs\"",
        )
        + "\n[[register]]\nfile = \"host/src/skills.rs\"\nline = \"chat_skill::register_backoff(registry);\"\n";
    upstream_repo.write("skills/chat/skill.toml", &manifest);
    upstream_repo.commit("chat 2.0.0");

    let report = update(&fork, &upstream_repo);
    assert!(report.conflicts.is_empty(), "{report:?}");
    let chat = &report.skills[0];
    assert_eq!(
        (chat.before.as_deref(), chat.after.as_str()),
        (Some("1.0.0"), "2.0.0")
    );
    assert!(
        chat.files.contains(&"skills/chat/src/lib.rs".to_owned()),
        "{chat:?}"
    );
    assert!(
        chat.files.contains(&"host/src/skills.rs".to_owned()),
        "{chat:?}"
    );
    assert_eq!(chat.test, Some(true), "upstream's new code is there");
    let lib_now = fork.read("skills/chat/src/lib.rs");
    assert!(
        lib_now.contains("with back-off") && lib_now.contains("the owner's tuning"),
        "{lib_now}"
    );
    let registry = fork.read("host/src/skills.rs");
    assert!(
        registry.contains("    chat_skill::register(registry);\n"),
        "{registry}"
    );
    assert!(
        registry.contains("    chat_skill::register_backoff(registry);\n"),
        "{registry}"
    );
    assert_eq!(
        fork.read(".env.example"),
        "# skill chat (see skills/chat/SKILL.md)\nCHAT_TOKEN=\nCHAT_URL=\n"
    );
    let state = State::load(fork.root()).unwrap();
    assert_eq!(state.get("chat").unwrap().version, "2.0.0");
    assert_eq!(state.get("chat").unwrap().register.len(), 2);
    // One commit for the merge, one for the upgrade, on the review branch.
    let log = fork.git(&["log", "--format=%s", "-2"]);
    assert_eq!(
        log,
        format!(
            "Upgrade skill chat 1.0.0 -> 2.0.0\nUpdate from upstream {}",
            report.merged.as_deref().unwrap()
        )
    );
    assert!(fork.clean(), "{}", fork.git(&["status", "--porcelain"]));

    // `skills` says so, and removing it takes out both lines and the block.
    let listed = fork.engine().list().unwrap();
    assert_eq!(listed[0].applied.as_deref(), Some("2.0.0"));
    fork.git(&["checkout", "-q", "main"]);
    fork.git(&["merge", "-q", &report.branch]);
    land(&fork, "remove", "chat");
    assert_eq!(fork.read("host/src/skills.rs"), REGISTRY);
    assert!(!fork.root().join(".env.example").exists());
}

/// A skill the way skills were before they were crates: `adds` a file,
/// `modifies` the host's main.rs (one line), applied at 1.0.0.
fn files_skill(repo: &Repo, base: &str) {
    repo.write("skills/chat/SKILL.md", "# chat\n");
    repo.write("skills/chat/files/host/src/chat.rs", "// chat, as files\n");
    repo.write(
        "skills/chat/files/host/src/main.rs",
        "mod chat;\nfn main() {}\n",
    );
    repo.write(
        "skills/chat/skill.toml",
        &format!(
            "name = \"chat\"\nversion = \"1.0.0\"\ndescription = \"files\"\nbase = \"{base}\"\n\
             adds = [\"host/src/chat.rs\"]\nmodifies = [\"host/src/main.rs\"]\n"
        ),
    );
}

#[test]
fn a_skill_that_was_files_becomes_a_crate_and_its_old_files_go() {
    let upstream_repo = Repo::new();
    let base = host_upstream(&upstream_repo);
    files_skill(&upstream_repo, &base);
    upstream_repo.commit("chat as files");
    let fork = Repo::new();
    fork.git(&["pull", "-q", upstream_repo.root().to_str().unwrap(), "main"]);
    land(&fork, "apply", "chat");
    assert_eq!(fork.read("host/src/main.rs"), "mod chat;\nfn main() {}\n");
    // The owner's own edit of the same file stays through everything.
    fork.write(
        "host/src/main.rs",
        "mod chat;\nfn main() {}\n// the owner's\n",
    );
    fork.commit("the owner's line");

    // Upstream makes chat a crate (2.0.0), linked by a registry line.
    upstream_repo.git(&["rm", "-q", "-r", "skills/chat"]);
    crate_skill(&upstream_repo, "chat", &base, "");
    let manifest = upstream_repo
        .read("skills/chat/skill.toml")
        .replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    upstream_repo.write("skills/chat/skill.toml", &manifest);
    upstream_repo.commit("chat is a crate");

    let report = update(&fork, &upstream_repo);
    assert!(report.conflicts.is_empty(), "{report:?}");
    let chat = &report.skills[0];
    assert_eq!(
        (chat.before.as_deref(), chat.after.as_str()),
        (Some("1.0.0"), "2.0.0")
    );
    assert!(chat.notes.is_empty(), "{chat:?}");
    assert!(
        !fork.root().join("host/src/chat.rs").exists(),
        "the old added file goes"
    );
    assert_eq!(
        fork.read("host/src/main.rs"),
        "fn main() {}\n// the owner's\n",
        "the old edit goes, the owner's stays"
    );
    assert_eq!(
        fork.read("host/src/skills.rs"),
        REGISTRY.replace(
            "    // apply-skill: end",
            "    chat_skill::register(registry);\n    // apply-skill: end"
        )
    );
    assert!(
        fork.read("host/Cargo.toml")
            .contains("chat-skill = { path = \"../skills/chat\" }")
    );
    let state = State::load(fork.root()).unwrap();
    let recorded = state.get("chat").unwrap();
    assert_eq!(recorded.version, "2.0.0");
    assert!(recorded.files.is_empty(), "{recorded:?}");
    assert!(fork.clean(), "{}", fork.git(&["status", "--porcelain"]));
}

#[test]
fn an_old_file_the_owner_changed_is_kept_and_named() {
    let upstream_repo = Repo::new();
    let base = host_upstream(&upstream_repo);
    files_skill(&upstream_repo, &base);
    upstream_repo.commit("chat as files");
    let fork = Repo::new();
    fork.git(&["pull", "-q", upstream_repo.root().to_str().unwrap(), "main"]);
    land(&fork, "apply", "chat");
    fork.write(
        "host/src/chat.rs",
        "// chat, as files, and the owner's fix\n",
    );
    fork.commit("the owner fixes chat.rs");
    upstream_repo.git(&["rm", "-q", "-r", "skills/chat"]);
    crate_skill(&upstream_repo, "chat", &base, "");
    upstream_repo.commit("chat is a crate");

    let report = update(&fork, &upstream_repo);
    let chat = &report.skills[0];
    assert_eq!(
        fork.read("host/src/chat.rs"),
        "// chat, as files, and the owner's fix\n"
    );
    assert_eq!(chat.notes.len(), 1, "{chat:?}");
    assert!(
        chat.notes[0].starts_with("kept host/src/chat.rs"),
        "{chat:?}"
    );
    let message = fork.git(&["log", "-1", "--format=%B"]);
    assert!(message.contains("- kept host/src/chat.rs"), "{message}");
}

#[test]
fn an_update_finished_with_git_brings_the_skills_along_next_time() {
    let (fork, upstream_repo) = fork_with_chat();
    let manifest = upstream_repo
        .read("skills/chat/skill.toml")
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"");
    upstream_repo.write("skills/chat/skill.toml", &manifest);
    upstream_repo.commit("chat 1.1.0");
    // The owner merges upstream with git alone.
    fork.git(&[
        "pull",
        "-q",
        "--no-rebase",
        upstream_repo.root().to_str().unwrap(),
        "main",
    ]);
    assert_eq!(
        fork.engine().list().unwrap()[0].applied.as_deref(),
        Some("1.0.0")
    );

    let report = update(&fork, &upstream_repo);
    assert_eq!(report.merged, None, "nothing new upstream");
    assert!(report.branch.starts_with("update/skills-"), "{report:?}");
    assert_eq!(report.skills[0].after, "1.1.0");
    assert_eq!(
        State::load(fork.root())
            .unwrap()
            .get("chat")
            .unwrap()
            .version,
        "1.1.0"
    );
}
