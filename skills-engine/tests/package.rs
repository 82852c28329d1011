//! What the owner is about to run: a crate skill's files, their lines, and
//! the dependencies it brings, from a hand-written `Cargo.lock`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use pincer_skills::{ApplyOutcome, NewDependencies};

const REGISTRY_SOURCE: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// The lock of the fixture workspace: the host uses `anyhow`; the skill
/// `chat` uses `anyhow` too, and `ureq`, which brings `base64`.
fn lockfile() -> String {
    format!(
        "version = 4\n\n\
         [[package]]\nname = \"anyhow\"\nversion = \"1.0.0\"\nsource = \"{REGISTRY_SOURCE}\"\n\n\
         [[package]]\nname = \"base64\"\nversion = \"0.22.0\"\nsource = \"{REGISTRY_SOURCE}\"\n\n\
         [[package]]\nname = \"chat-skill\"\nversion = \"0.1.0\"\ndependencies = [\n \"anyhow\",\n \"ureq 2.0.0\",\n]\n\n\
         [[package]]\nname = \"host\"\nversion = \"0.1.0\"\ndependencies = [\n \"anyhow\",\n]\n\n\
         [[package]]\nname = \"ureq\"\nversion = \"2.0.0\"\nsource = \"{REGISTRY_SOURCE}\"\ndependencies = [\n \"base64\",\n]\n"
    )
}

#[test]
fn show_diff_and_apply_list_the_crate_and_its_new_dependencies() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "");
    repo.write("Cargo.lock", &lockfile());
    // Build output git ignores is not what the owner runs; a symlink is named.
    repo.write(".gitignore", "target/\n");
    repo.write("skills/chat/target/debug/junk", "x\n");
    std::os::unix::fs::symlink("lib.rs", repo.root().join("skills/chat/src/alias.rs")).unwrap();
    repo.commit("a crate skill, locked");

    let package = repo.engine().package("chat").unwrap().unwrap();
    assert_eq!(package.name, "chat-skill");
    assert_eq!(package.dir, "skills/chat");
    let files: Vec<&str> = package.files.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        files,
        [
            "Cargo.toml",
            "SKILL.md",
            "skill.toml",
            "src/lib.rs",
            "tests/chat.rs"
        ]
    );
    assert_eq!(package.files[0].1, 5);
    assert_eq!(package.files[3].1, 3);
    assert_eq!(package.symlinks, ["src/alias.rs"]);
    assert_eq!(package.linked_into, ["host"]);
    assert_eq!(
        package.new_dependencies,
        NewDependencies::Known(vec![
            ("base64".into(), "0.22.0".into()),
            ("ureq".into(), "2.0.0".into()),
        ])
    );
    let total = package.total_lines();
    let headline = format!("  package   chat-skill in skills/chat/: {total} lines in 5 files");
    let deps = "  new deps  base64 0.22.0, ureq 2.0.0 (2 of them: in Cargo.lock, used by chat-skill and not by host)";

    let shown = repo.engine().show("chat").unwrap();
    assert!(
        shown.contains(&headline)
            && shown.contains("         3  src/lib.rs\n")
            && shown.contains("src/alias.rs (a symlink)")
            && shown.contains(deps),
        "{shown}"
    );
    let diff = repo.engine().diff("chat", false).unwrap();
    assert!(diff.starts_with(&headline) && diff.contains(deps), "{diff}");

    let ApplyOutcome::Committed {
        branch, summary, ..
    } = repo.engine().apply("chat", false).unwrap()
    else {
        panic!("no commit")
    };
    assert!(summary.contains(&headline), "{summary:?}");
    assert!(summary.iter().any(|l| l == deps), "{summary:?}");
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("  M host/src/skills.rs")),
        "{summary:?}"
    );

    // The description before the diff does not stop `git apply`.
    repo.git(&["checkout", "-q", "main"]);
    let patch = repo.root().join(".git/chat.diff");
    std::fs::write(&patch, &diff).unwrap();
    repo.git(&["apply", "--index", patch.to_str().unwrap()]);
    assert_eq!(repo.git(&["diff", "--cached", "--stat", &branch]), "");
}

#[test]
fn without_a_lock_or_a_package_it_says_so() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "");
    // A skill of the older kind: files merged in, no Cargo package.
    package(&repo, "plain", &base, "");
    repo.commit("no Cargo.lock");
    let shown = repo.engine().show("chat").unwrap();
    assert!(
        shown.contains("  new deps  unknown: there is no Cargo.lock at the repository's root"),
        "{shown}"
    );
    assert!(repo.engine().package("plain").unwrap().is_none());
    assert!(!repo.engine().show("plain").unwrap().contains("package"));

    // A lock from before the skill was added.
    let without_chat = lockfile().replace(
        "[[package]]\nname = \"chat-skill\"\nversion = \"0.1.0\"\ndependencies = [\n \"anyhow\",\n \"ureq 2.0.0\",\n]\n\n",
        "",
    );
    repo.write("Cargo.lock", &without_chat);
    repo.commit("a stale lock");
    let shown = repo.engine().show("chat").unwrap();
    assert!(
        shown.contains("  new deps  unknown: chat-skill is not in Cargo.lock"),
        "{shown}"
    );
}

#[test]
fn a_skill_that_brings_nothing_new_says_none() {
    let repo = Repo::new();
    let base = host_upstream(&repo);
    crate_skill(&repo, "chat", &base, "");
    repo.write(
        "Cargo.lock",
        &lockfile().replace(" \"anyhow\",\n \"ureq 2.0.0\",\n", " \"anyhow\",\n"),
    );
    repo.commit("a skill that uses what the host uses");
    let shown = repo.engine().show("chat").unwrap();
    assert!(
        shown.contains("  new deps  none (host uses everything chat-skill uses, says Cargo.lock)"),
        "{shown}"
    );
}
