//! Tidy: rules about the code base that a test can hold (after rust-analyzer's
//! tidy). Each names the invariant it keeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// The crates of the host process, from the core up.
const HOST_CRATES: &[&str] = &["core", "store", "socket", "assistant", "cli"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack: Vec<PathBuf> = HOST_CRATES
        .iter()
        .chain(&[
            "pincer",
            "bench",
            "agent",
            "protocol",
            "skills-engine",
            "xtask",
            "tests",
            "skills",
            "fuzz",
        ])
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

/// Inside the core, only the sandbox talks to the engine and only the mounts
/// module builds a mount: the engine client is named nowhere else there
/// (no other crate can name it: only `pincer-core` depends on it, which
/// `the_crate_graph_is_the_architecture` checks), and the clippy escape hatch
/// for the disallowed types is used only by those owners and the store.
#[test]
fn only_the_owners_touch_the_engine() {
    let owners = |path: &str| {
        path.starts_with("core/src/sandbox/")
            || path.starts_with("core/src/mounts/")
            || path == "store/src/lib.rs"
    };
    for path in rust_files() {
        let name = relative(&path);
        // Tests, a skill's among them, may open the database behind the
        // store's back, as a crash or a tool would.
        let a_skills_test = name.starts_with("skills/") && name.contains("/tests/");
        if name.starts_with("tests/") || name.starts_with("fuzz/") || a_skills_test {
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

/// One crate owns the schema: only `pincer-store` depends on SQLite (the
/// crate graph holds that), and SQL that shapes tables lives nowhere else.
#[test]
fn only_the_store_knows_the_schema() {
    for path in rust_files() {
        let name = relative(&path);
        if name.starts_with("tests/") || name.starts_with("store/src/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in ["CREATE TABLE", "ALTER TABLE"] {
            assert!(
                !text.contains(needle),
                "{name} contains {needle:?}: the schema belongs to store/src"
            );
        }
    }
}

/// The model key is read in one place (the binary's edge) and held in one
/// (the gateway); nothing else names it.
#[test]
fn only_the_edge_and_the_gateway_know_the_key() {
    for path in rust_files() {
        let name = relative(&path);
        if name.starts_with("tests/") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("ANTHROPIC_API_KEY") {
            assert!(
                name == "cli/src/lib.rs" || name == "socket/src/upstream.rs",
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
            "assistant/src/daemon/control.rs",
            "the control socket under run/",
        ),
        (
            "socket/src/gateway.rs",
            "the invocation's socket under run/inv/",
        ),
        (
            "assistant/src/invoke.rs",
            "the invocation's run folder under run/inv/",
        ),
        ("core/src/mounts/mod.rs", "hands the run/inv/ socket over"),
        (
            "core/src/mounts/shadow.rs",
            "the empty covers under run/shadow",
        ),
        ("cli/src/lib.rs", "creates PINCER_HOME itself"),
        (
            "cli/src/logging.rs",
            "rotates the log under logs/, never mounted",
        ),
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
        let name = relative(&path);
        let host = HOST_CRATES
            .iter()
            .any(|c| name.starts_with(&format!("{c}/src/")))
            || (name.starts_with("skills/") && name.contains("/src/"));
        // Unit tests in files of their own (`tests.rs`) set up temp folders.
        if !host || name.ends_with("/tests.rs") || HOST_OWNED.iter().any(|(f, _)| *f == name) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for call in CALLS {
            assert!(
                !code.contains(call),
                "{name} calls {call}: use pincer_core::beneath (or, for a path only the host \
                 writes, add the file to HOST_OWNED with the reason)"
            );
        }
    }
}

/// Each workspace crate's normal (not dev) dependencies: (name, path-or-registry).
fn crate_graph() -> Vec<(String, Vec<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (package["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// The crate graph is the architecture: the host's crates form layers (core
/// ← store ← socket ← assistant ← cli ← pincer), each using only the layers
/// below it; a skill uses the assistant's registry and the public API below
/// it, and only the `pincer` binary links skills. The dangerous dependencies
/// each have one owner: the container engine's client is the core's, SQLite
/// the store's, TLS the socket's (the model key and the way out), the
/// terminal the CLI's. The core's own dependencies are a short, fixed list:
/// adding one is a decision to write down here.
#[test]
fn the_crate_graph_is_the_architecture() {
    const LAYERS: &[(&str, &[&str])] = &[
        ("pincer-protocol", &[]),
        ("pincer-core", &["pincer-protocol"]),
        ("pincer-store", &["pincer-core"]),
        ("pincer-socket", &["pincer-core", "pincer-store"]),
        (
            "pincer-assistant",
            &[
                "pincer-core",
                "pincer-store",
                "pincer-socket",
                "pincer-protocol",
            ],
        ),
        (
            "pincer-cli",
            &[
                "pincer-core",
                "pincer-store",
                "pincer-socket",
                "pincer-assistant",
                "pincer-protocol",
            ],
        ),
        ("pincer", &["pincer-cli", "pincer-assistant"]),
        (
            "pincer-bench",
            &[
                "pincer-core",
                "pincer-store",
                "pincer-socket",
                "pincer-assistant",
                "pincer-protocol",
            ],
        ),
        (
            "pincer-test-support",
            &[
                "pincer-core",
                "pincer-store",
                "pincer-socket",
                "pincer-assistant",
            ],
        ),
        // The skill verbs build the skills engine only, never the host.
        ("xtask", &[]),
        ("pincer-agent", &["pincer-protocol"]),
    ];
    // The assistant re-exports what a skill needs; the core, the store and
    // the socket are not a skill's to name.
    const SKILL_MAY_USE: &[&str] = &[
        "pincer-assistant",
        // Only for the skill's test host binary (host.rs).
        "pincer-cli",
    ];
    // (dependency, its owner, whether a skill may bring it too)
    const OWNED: &[(&str, &str, bool)] = &[
        ("bollard", "pincer-core", false),
        ("rusqlite", "pincer-store", false),
        ("rustls", "pincer-socket", true),
        ("hyper-rustls", "pincer-socket", true),
        ("tokio-rustls", "pincer-socket", true),
        ("clap", "pincer-cli", true),
        ("rustyline", "pincer-cli", true),
        ("indicatif", "pincer-cli", true),
    ];
    const CORE_DEPENDENCIES: &[&str] = &[
        "pincer-protocol",
        "serde",
        "serde_json",
        "thiserror",
        "tracing",
        "bollard",
        "tokio",
        "futures-util",
        "tar",
        "libc",
        "rustix",
        // SHA-256 of staged files: the crypto crate the TLS stack already builds.
        "ring",
    ];
    let graph = crate_graph();
    let is_skill = |name: &str| name.starts_with("pincer-skill-");
    let internal =
        |dep: &str| dep.starts_with("pincer-") && dep != "pincer-skills" && !is_skill(dep);
    for (name, deps) in &graph {
        if let Some((_, allowed)) = LAYERS.iter().find(|(layer, _)| layer == name) {
            for dep in deps.iter().filter(|d| internal(d)) {
                assert!(
                    allowed.contains(&dep.as_str()),
                    "{name} depends on {dep}: the host's crates use only the layers below them"
                );
            }
        }
        if is_skill(name) {
            for dep in deps.iter().filter(|d| internal(d)) {
                assert!(
                    SKILL_MAY_USE.contains(&dep.as_str()),
                    "skill {name} depends on {dep}"
                );
            }
        }
        for dep in deps.iter().filter(|d| is_skill(d)) {
            assert!(
                name == "pincer" || (is_skill(name) && name == dep),
                "{name} depends on the skill {dep}: only the pincer binary links skills"
            );
        }
        // Skills bring what they reach (a channel its TLS client): issue 16's
        // capability review shows that; never the engine client or SQLite.
        for (owned, owner, _) in OWNED.iter().filter(|o| !(o.2 && is_skill(name))) {
            if deps.iter().any(|d| d == owned) {
                assert_eq!(name, owner, "{name} depends on {owned}, which is {owner}'s");
            }
        }
    }
    let core = &graph.iter().find(|(n, _)| n == "pincer-core").unwrap().1;
    let mut core: Vec<&str> = core.iter().map(String::as_str).collect();
    core.sort_unstable();
    let mut expected = CORE_DEPENDENCIES.to_vec();
    expected.sort_unstable();
    assert_eq!(core, expected, "pincer-core's dependencies changed");
}

/// No module cycles inside a crate: a module's `crate::x` references name
/// only modules that do not reach back to it (the same rule the crate graph
/// holds between crates, one level down).
#[test]
fn no_crate_has_a_module_cycle() {
    use std::collections::{BTreeMap, BTreeSet};
    let crates = HOST_CRATES
        .iter()
        .chain(&["bench", "agent", "skills-engine", "xtask"]);
    for krate in crates {
        let src = root().join(krate).join("src");
        // Names the crate root re-exports (`pub use registry::Registry;`)
        // lead to the module they come from.
        let mut reexported: BTreeMap<String, String> = BTreeMap::new();
        for root_file in ["lib.rs", "main.rs"] {
            let text = std::fs::read_to_string(src.join(root_file)).unwrap_or_default();
            for line in text.lines() {
                let Some(rest) = line
                    .strip_prefix("pub use ")
                    .or_else(|| line.strip_prefix("pub(crate) use "))
                else {
                    continue;
                };
                let Some((module, names)) = rest.trim_end_matches(';').split_once("::") else {
                    continue;
                };
                let names = names.trim_start_matches('{').trim_end_matches('}');
                for name in names.split(',') {
                    let name = name.trim().rsplit("::").next().unwrap_or("").to_owned();
                    reexported.insert(name, module.to_owned());
                }
            }
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for path in rust_files().into_iter().filter(|p| p.starts_with(&src)) {
            let inner = path.strip_prefix(&src).unwrap().display().to_string();
            let top = inner
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Code only: a doc link is not a dependency.
            let code: String = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut named = BTreeSet::new();
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let group = &group[..group.find('}').unwrap_or(group.len())];
                    for item in group.split(',') {
                        let module = item.trim().split("::").next().unwrap_or("");
                        named.insert(module.to_owned());
                    }
                } else {
                    let end = rest
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(rest.len());
                    named.insert(rest[..end].to_owned());
                }
            }
            let named: BTreeSet<String> = named
                .into_iter()
                .map(|name| reexported.get(&name).cloned().unwrap_or(name))
                .filter(|name| *name != top)
                .collect();
            edges.entry(top).or_default().extend(named);
        }
        let modules: BTreeSet<String> = edges.keys().cloned().collect();
        assert!(
            modules.len() > 1,
            "{krate}: found no modules under {}",
            src.display()
        );
        for (module, named) in &edges {
            // Depth-first from each module it names: reaching `module` is a cycle.
            let mut stack: Vec<&String> = named.iter().filter(|m| modules.contains(*m)).collect();
            let mut seen = BTreeSet::new();
            while let Some(next) = stack.pop() {
                assert!(
                    next != module,
                    "{krate}: module {module} is in a cycle (through {named:?})"
                );
                if seen.insert(next) {
                    stack.extend(edges[next].iter().filter(|m| modules.contains(*m)));
                }
            }
        }
    }
}
