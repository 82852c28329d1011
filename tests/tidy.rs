//! Tidy: rules about the code base that a test can hold (after rust-analyzer's
//! tidy). Each names the invariant it keeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = [
        "core", "agent", "protocol", "xtask", "tests", "skills", "fuzz",
    ]
    .iter()
    .map(|d| root().join(d))
    .filter(|d| d.exists())
    .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 10, "found only {files:?}");
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Where a file lands: a skill's `skills/<name>/files/<path>` is `<path>`
/// once applied, and is held to the same rules.
fn landed(name: &str) -> String {
    match name
        .strip_prefix("skills/")
        .and_then(|rest| rest.split_once("/files/"))
    {
        Some((_, path)) => path.to_owned(),
        None => name.to_owned(),
    }
}

/// Every module says what it is for, in a `//!` doc at its top.
#[test]
fn every_module_has_a_doc_comment() {
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !first.starts_with("//!")
        })
        .map(|p| relative(&p))
        .collect();
    assert!(missing.is_empty(), "modules without a //! doc: {missing:?}");
}

/// Only the sandbox talks to the engine and only the mounts module builds a
/// mount: the engine client crate is named nowhere else, and the clippy
/// escape hatch for the disallowed types is used only by those owners.
#[test]
fn only_the_owners_touch_the_engine() {
    let owners = |path: &str| {
        path.starts_with("core/src/sandbox/")
            || path.starts_with("core/src/mounts/")
            || path.starts_with("core/src/store/")
    };
    for path in rust_files() {
        let name = landed(&relative(&path));
        if name.starts_with("tests/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("bollard") || text.contains("clippy::disallowed_types") {
            assert!(
                owners(&name),
                "{name} uses the container engine's client directly"
            );
        }
    }
}

/// One store module owns the schema: SQL that shapes tables lives nowhere else.
#[test]
fn only_the_store_knows_the_schema() {
    for path in rust_files() {
        let name = landed(&relative(&path));
        if name.starts_with("tests/") || name.starts_with("core/src/store/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in ["rusqlite", "CREATE TABLE", "ALTER TABLE"] {
            assert!(
                !text.contains(needle),
                "{name} contains {needle:?}: the schema belongs to core/src/store"
            );
        }
    }
}

/// The model key is read in one place (the binary's edge) and held in one
/// (the gateway); nothing else names it.
#[test]
fn only_the_edge_and_the_gateway_know_the_key() {
    for path in rust_files() {
        let name = landed(&relative(&path));
        if name.starts_with("tests/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("ANTHROPIC_API_KEY") {
            assert!(
                name == "core/src/main.rs" || name == "core/src/gateway.rs",
                "{name} names the model key's variable"
            );
        }
    }
}

/// Every test SECURITY.md cites (as `path/to/file.rs::test_name`) exists,
/// so the document cannot drift from what is actually checked.
#[test]
fn security_md_cites_only_real_tests() {
    let security = std::fs::read_to_string(root().join("SECURITY.md")).unwrap();
    let mut cited = 0;
    for quoted in security.split('`').skip(1).step_by(2) {
        let Some((file, test)) = quoted.split_once(".rs::") else {
            continue;
        };
        let file = format!("{file}.rs");
        let text = std::fs::read_to_string(root().join(&file))
            .unwrap_or_else(|_| panic!("SECURITY.md cites {file}, which does not exist"));
        assert!(
            text.contains(&format!("fn {test}(")),
            "SECURITY.md cites {quoted}, which is not a test in {file}"
        );
        cited += 1;
    }
    assert!(cited >= 10, "SECURITY.md cites only {cited} tests");
}

/// Host file operations under folders an agent can write (a group's folder,
/// its session, the global folder, a read-write grant) go through
/// `core/src/beneath.rs`, which never follows a link and never leaves the
/// folder. The std calls that change or walk the file system by path are
/// allowed only in the files below, each for a path only the host writes.
#[test]
fn host_file_operations_under_agent_folders_go_through_beneath() {
    const HOST_OWNED: &[(&str, &str)] = &[
        ("core/src/beneath.rs", "the module itself"),
        ("core/src/sandbox/owner.rs", "owner locks under run/"),
        ("core/src/sandbox/verify.rs", "reads /proc"),
        (
            "core/src/daemon/control.rs",
            "the control socket under run/",
        ),
        (
            "core/src/gateway.rs",
            "the invocation's socket under run/inv/",
        ),
        (
            "core/src/invoke.rs",
            "the invocation's run folder under run/inv/",
        ),
        ("core/src/mounts/mod.rs", "hands the run/inv/ socket over"),
        (
            "core/src/mounts/shadow.rs",
            "the empty covers under run/shadow",
        ),
        ("core/src/main.rs", "creates PINCER_HOME itself"),
    ];
    const CALLS: &[&str] = &[
        "fs::rename",
        "fs::remove_file",
        "fs::remove_dir",
        "fs::create_dir",
        "DirBuilder",
        "fs::read_dir",
        "fs::set_permissions",
        "fs::write",
        "OpenOptions",
        "File::create",
        "fs::chown",
        "fs::lchown",
        "fs::copy",
        "fs::hard_link",
        "fs::symlink",
    ];
    for path in rust_files() {
        let name = landed(&relative(&path));
        if !name.starts_with("core/src/") || HOST_OWNED.iter().any(|(f, _)| *f == name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for call in CALLS {
            assert!(
                !code.contains(call),
                "{name} calls {call}: use pincer::beneath (or, for a path only the host \
                 writes, add the file to HOST_OWNED with the reason)"
            );
        }
    }
}
