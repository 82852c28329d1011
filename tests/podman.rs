//! Pincer on Podman: the agent in a user namespace of its own, and an engine
//! that cannot enforce the spec refused.
//!
//! These need Podman's API service (rootful at `PINCER_TEST_PODMAN`, default
//! `/run/podman/podman.sock`) and a rootless one of an ordinary user
//! (`PINCER_TEST_ROOTLESS_PODMAN=<socket>`); `.ci/run` starts both. The
//! sandbox, mounts, egress and host-API tests run against Podman as well:
//! `.ci/run` runs them again with `DOCKER_HOST` at Podman's socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::*;

fn podman_host() -> String {
    let socket = std::env::var("PINCER_TEST_PODMAN")
        .unwrap_or_else(|_| "/run/podman/podman.sock".to_owned());
    assert!(
        Path::new(&socket).exists(),
        "no Podman API service at {socket}: start one (`podman system service --time=0 \
         unix://{socket}`, as .ci/run does) or set PINCER_TEST_PODMAN"
    );
    format!("unix://{socket}")
}

/// Host uids that a user database entry has (`getent passwd`: files, LDAP, systemd).
fn account_uids() -> Vec<u32> {
    let output = Command::new("getent").arg("passwd").output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(':').nth(2)?.parse().ok())
        .collect()
}

/// `pincer image build` through `docker_host`, as `uid` when given.
fn build_image(install: &Installation, docker_host: &str, agent: Option<&Path>) -> Command {
    let mut command = install.pincer("http://127.0.0.1:1");
    command
        .args(["image", "build"])
        .env("DOCKER_HOST", docker_host);
    if let Some(agent) = agent {
        command.env("PINCER_AGENT_BIN", agent);
    }
    command
}

/// Containers of this installation on the engine at `docker_host`.
fn containers_on(install: &Installation, docker_host: &str) -> Vec<String> {
    let output = Command::new("docker")
        .env("DOCKER_HOST", docker_host)
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=pincer.installation={}", install.id))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn on_podman_the_agent_runs_in_its_own_user_namespace_and_writes_as_no_host_account() {
    let podman = podman_host();
    let install = Installation::new();
    let output = build_image(&install, &podman, None).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));

    let doctor = install
        .pincer("http://127.0.0.1:1")
        .arg("doctor")
        .env("DOCKER_HOST", &podman)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        said.contains("Podman (rootful), a user namespace per container"),
        "{}",
        text(&doctor)
    );

    let model = ScriptedModel::start(vec![
        tool_use(
            "bash",
            json!({"command": "cat /proc/self/uid_map; id -u; echo made > /workspace/group/made.txt"}),
        ),
        answer(|request| request.last_tool_result()),
    ]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--json", "who are you?"])
        .env("DOCKER_HOST", &podman)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "ok", "{result}");
    let seen = result["text"].as_str().unwrap();
    assert!(seen.contains("\n65530\n"), "the agent's uid: {seen}");
    let map = pincer_core::sandbox::parse_id_map(seen);
    let host_of = |inside: u32| {
        map.iter()
            .find_map(|&(start, host, count)| {
                (inside >= start && inside - start < count).then(|| host + (inside - start))
            })
            .unwrap_or_else(|| panic!("uid {inside} is not mapped: {seen}"))
    };
    // The container's root is a host uid, not root; and no mapped host uid,
    // root's or the agent's, is anyone's account.
    assert_ne!(host_of(0), 0, "{seen}");
    let accounts = account_uids();
    for &(_, host, count) in &map {
        let taken: Vec<_> = accounts
            .iter()
            .filter(|&&uid| uid >= host && uid - host < count)
            .collect();
        assert!(
            taken.is_empty(),
            "host uids {taken:?} of accounts are mapped: {seen}"
        );
    }
    // What the agent wrote in its group folder belongs, on the host, to the
    // uid its own uid maps to; nothing was re-owned.
    let made = install.home().join("groups/main/made.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "made\n");
    let meta = std::fs::metadata(&made).unwrap();
    assert_eq!(meta.uid(), host_of(65_530));
    assert!(!accounts.contains(&meta.uid()));
    assert_eq!(containers_on(&install, &podman), Vec::<String>::new());
}

/// A static `pincer-agent` the test's own image build left (any user can read it).
fn static_agent() -> PathBuf {
    // The workspace root (this test belongs to the `pincer` package, one down).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let found = std::fs::read_dir(root.join("target/agent-static"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("release/pincer-agent"))
        .find(|path| path.exists());
    found.expect("no static pincer-agent under target/agent-static (Installation::new builds it)")
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

#[test]
fn an_engine_that_drops_the_limits_runs_no_agent_and_says_what_to_do() {
    let Ok(socket) = std::env::var("PINCER_TEST_ROOTLESS_PODMAN") else {
        panic!(
            "set PINCER_TEST_ROOTLESS_PODMAN to the socket of an ordinary user's Podman API \
             service (.ci/run starts one)"
        );
    };
    let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert!(
        !cgroup_v2,
        "this host has cgroup v2, where rootless Podman can enforce limits: this test needs a \
         cgroup v1 host, where it cannot"
    );
    let owner = std::fs::metadata(&socket).unwrap();
    let (uid, gid) = (owner.uid(), owner.gid());
    let rootless = format!("unix://{socket}");
    let install = Installation::new();
    let agent = static_agent();
    std::fs::create_dir_all(install.user_home()).unwrap();
    chown_tree(install.dir.path(), uid, gid);
    let runtime = Path::new(&socket)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned();
    let as_owner = |mut command: Command| {
        command
            .uid(uid)
            .gid(gid)
            .env("XDG_RUNTIME_DIR", &runtime)
            .current_dir(install.dir.path());
        command
    };
    let output = as_owner(build_image(&install, &rootless, Some(&agent)))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));

    let model = ScriptedModel::start(vec![answer(|_| "ran".into())]);
    let mut run = install.pincer(&model.url());
    run.args(["run-once", "--json", "hello"])
        .env("DOCKER_HOST", &rootless);
    let output = as_owner(run).output().unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    let said = text(&output);
    for expected in [
        "the engine dropped limits of the container: memory (asked",
        "pids (asked 256, the container has none)",
        "nothing ran",
        "cgroup v2",
    ] {
        assert!(said.contains(expected), "missing {expected:?}: {said}");
    }
    assert!(model.requests().is_empty(), "the model was asked: {said}");
    assert_eq!(containers_on(&install, &rootless), Vec::<String>::new());
}
