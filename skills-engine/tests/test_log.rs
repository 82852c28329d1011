//! A failing skill test says where its whole output is and shows how it
//! ended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

/// 100 lines on stdout, one on stderr, then a failure.
const NOISY_FAILURE: &str = "i=1; while [ $i -le 100 ]; do echo out line $i; i=$((i+1)); done; \
                             echo on stderr >&2; exit 7";

#[test]
fn a_failing_test_names_its_log_and_shows_its_last_lines() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "x", "");
    let manifest = repo.read("skills/demo/skill.toml").replace(
        "test = \"test -f core/src/demo.rs\"",
        &format!("test = {NOISY_FAILURE:?}"),
    );
    repo.write("skills/demo/skill.toml", &manifest);
    repo.commit("a skill whose test fails noisily");

    let err = repo.engine().apply("demo", true).unwrap_err().to_string();
    let log = repo.root().join(".git/pincer-skill-test.log");
    assert!(
        err.contains("the skill's test `i=1;")
            && err.contains("(exit status: 7)")
            && err.contains(&format!("its output is in {}", log.display())),
        "{err}"
    );
    // The last 40 lines, stderr's included, in the order they were written.
    let shown: Vec<&str> = err.lines().filter_map(|l| l.strip_prefix("  | ")).collect();
    let mut expected: Vec<String> = (62..=100).map(|i| format!("out line {i}")).collect();
    expected.push("on stderr".into());
    assert_eq!(shown, expected, "{err}");
    // The log has all of it, outside the working tree.
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(
        written.starts_with("out line 1\nout line 2\n")
            && written.ends_with("out line 100\non stderr\n"),
        "{written}"
    );
    assert_eq!(written.lines().count(), 101);
    let status = repo.git(&["status", "--porcelain", "--ignored"]);
    assert!(!status.contains("pincer-skill-test.log"), "{status}");

    // Fixed on the review branch: the next run replaces the log.
    let fixed = repo.read("skills/demo/skill.toml").replace(
        &format!("test = {NOISY_FAILURE:?}"),
        "test = \"echo fixed\"",
    );
    repo.write("skills/demo/skill.toml", &fixed);
    committed(repo.engine().continue_pending(true).unwrap());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "fixed\n");
}

#[test]
fn a_test_without_output_says_so() {
    let repo = Repo::new();
    let base = upstream(&repo);
    add_skill(&repo, "demo", &base, "x", "");
    let manifest = repo
        .read("skills/demo/skill.toml")
        .replace("test = \"test -f core/src/demo.rs\"", "test = \"false\"");
    repo.write("skills/demo/skill.toml", &manifest);
    repo.commit("a skill whose test fails silently");
    let err = repo.engine().apply("demo", true).unwrap_err().to_string();
    assert!(err.ends_with("it ends:\n  (no output)"), "{err}");
}
