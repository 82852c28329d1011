//! What an agent may see, with real containers: the allowlist's decisions
//! enforced by the engine, the project's secrets shadowed, groups kept apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::*;

/// One bash command in the container; the answer is its output.
fn run_bash(
    install: &Installation,
    group: &str,
    extra: &[&str],
    command: &str,
) -> (std::process::Output, ScriptedModel) {
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": command})),
        answer(|request| request.last_tool_result()),
    ]);
    let mut pincer = install.pincer(&model.url());
    pincer.args(["run-once", "--group", group]);
    for spec in extra {
        pincer.args(["--mount", spec]);
    }
    let output = pincer.arg("go").output().unwrap();
    (output, model)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn mkdirs(root: &Path, dirs: &[&str]) {
    for dir in dirs {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
}

/// Unmounts a host mount when dropped, whatever the test did.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_mount_cannot_be_written_even_through_a_nested_mount() {
    let install = Installation::new();
    let data = install.user_home().join("projects/data");
    mkdirs(&data, &["nested"]);
    // A mount on the host nested inside the folder we grant read-only. Below
    // engine API 1.44 a recursive read-only bind would leave it writable.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(data.join("nested"))
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "this test needs root to make a nested mount on the host"
    );
    let _unmount = HostMount(data.join("nested"));
    std::fs::write(data.join("nested/inside.txt"), "nested").unwrap();
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);

    let (output, _) = run_bash(
        &install,
        "main",
        &["host=~/projects/data,name=data"],
        "touch /workspace/extra/data/top 2>&1; echo top=$?; \
         touch /workspace/extra/data/nested/deep 2>&1; echo deep=$?; \
         mkdir /workspace/extra/data/nested/dir 2>&1; echo dir=$?",
    );
    if on_podman() {
        // In the container's user namespace the kernel refuses to bind a
        // folder without the mounts inside it (they are locked to it), and
        // a recursive bind would leave them writable: the grant fails
        // closed, and nothing runs.
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("/workspace/extra/data"), "{said}");
        assert!(!data.join("top").exists() && !data.join("nested/deep").exists());
        assert_eq!(install.containers(), Vec::<String>::new());
        return;
    }
    assert!(output.status.success(), "{}", text(&output));
    let seen = stdout(&output);
    assert!(
        seen.contains("top=1") && seen.contains("deep=1") && seen.contains("dir=1"),
        "{seen}"
    );
    assert!(seen.contains("Read-only file system"), "{seen}");
    assert!(!data.join("top").exists());
    assert!(!data.join("nested/deep").exists() && !data.join("nested/dir").exists());
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn a_denied_path_is_not_mounted_and_nothing_starts() {
    let install = Installation::new();
    mkdirs(&install.user_home(), &["projects/app/.ssh", "elsewhere"]);
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);
    for (spec, why) in [
        ("~/projects/app/.ssh", "blocked pattern \".ssh\""),
        ("~/elsewhere", "not under any allowed root"),
        ("host=~/projects/app,name=../escape", "container name"),
        ("~/projects/missing", "does not exist"),
    ] {
        let (output, model) = run_bash(&install, "main", &[spec], "echo SHOULD_NOT_RUN");
        assert_eq!(output.status.code(), Some(1), "{spec}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("extra mount refused") && stderr.contains(why),
            "{spec}: {stderr}"
        );
        assert!(model.requests().is_empty(), "{spec}: an agent ran");
    }
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn non_main_gets_read_only_where_main_gets_read_write() {
    let install = Installation::new();
    install.add_group("family");
    mkdirs(&install.user_home(), &["projects/shared"]);
    // Writable for the container's user (the host runs these tests as root).
    std::fs::set_permissions(
        install.user_home().join("projects/shared"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true, "writes": "direct"}]}"#);
    let write = "(echo hi > /workspace/extra/shared/note-$$) 2>&1 && echo WROTE || echo REFUSED";

    let (main, _) = run_bash(&install, "main", &["host=~/projects/shared,rw"], write);
    assert!(main.status.success(), "{}", text(&main));
    assert!(stdout(&main).contains("WROTE"), "{}", stdout(&main));
    let (family, _) = run_bash(&install, "family", &["host=~/projects/shared,rw"], write);
    assert!(family.status.success(), "{}", text(&family));
    assert!(
        stdout(&family).contains("REFUSED") && stdout(&family).contains("Read-only"),
        "{}",
        stdout(&family)
    );
    let files = std::fs::read_dir(install.user_home().join("projects/shared"))
        .unwrap()
        .count();
    assert_eq!(files, 1, "only main's write reached the host");

    // `pincer mounts check` tells the same story.
    let check = |args: &[&str]| {
        let output = install
            .pincer("http://127.0.0.1:1")
            .args(["mounts", "check"])
            .args(args)
            .output()
            .unwrap();
        let value: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        (output.status.code(), value)
    };
    let (code, value) = check(&["--main", "--rw", "~/projects/shared"]);
    assert_eq!(code, Some(0));
    assert_eq!(value["read_only"], false);
    assert_eq!(value["container_path"], "/workspace/extra/shared");
    let real = install
        .user_home()
        .join("projects/shared")
        .canonicalize()
        .unwrap();
    assert_eq!(value["host_path"], real.to_str().unwrap());
    let (code, value) = check(&["--group", "family", "--rw", "~/projects/shared", "data"]);
    assert_eq!(code, Some(0));
    assert_eq!(value["read_only"], true);
    assert_eq!(value["container_path"], "/workspace/extra/data");
}

#[test]
fn the_projects_secrets_read_as_empty_in_mains_container() {
    let install = Installation::new();
    install.add_group("family");
    let project = install.dir.path().join("project");
    mkdirs(&project, &["src", "config", "keys/.ssh"]);
    std::fs::write(project.join(".env"), "SECRET_TOKEN=hunter2\n").unwrap();
    std::fs::write(project.join("src/lib.rs"), "fn visible() {}\n").unwrap();
    std::fs::write(
        project.join("config/credentials.json"),
        "{\"token\":\"hunter2\"}",
    )
    .unwrap();
    std::fs::write(project.join("keys/.ssh/id_ed25519"), "hunter2").unwrap();
    let show = "echo ENV:; cat /workspace/project/.env; echo CRED:; cat /workspace/project/config/credentials.json; \
        echo KEYS:; ls -A /workspace/project/keys/.ssh; echo CODE:; cat /workspace/project/src/lib.rs; \
        touch /workspace/project/new 2>/dev/null || echo PROJECT_READ_ONLY; \
        (: > /workspace/project/.env) 2>/dev/null || echo ENV_READ_ONLY; ls -A /workspace/project";
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": show})),
        answer(|request| request.last_tool_result()),
        tool_use("bash", json!({"command": "ls /workspace"})),
        answer(|request| request.last_tool_result()),
    ]);
    let run = |group: &str| {
        install
            .pincer(&model.url())
            .env("PINCER_PROJECT_DIR", &project)
            .args(["run-once", "--group", group, "show me"])
            .output()
            .unwrap()
    };
    let main = run("main");
    assert!(main.status.success(), "{}", text(&main));
    let seen = stdout(&main);
    assert!(!seen.contains("hunter2"), "a secret leaked:\n{seen}");
    assert!(
        seen.contains("ENV:\nCRED:\nKEYS:\nCODE:\nfn visible() {}"),
        "{seen}"
    );
    assert!(
        seen.contains("PROJECT_READ_ONLY") && seen.contains("ENV_READ_ONLY"),
        "{seen}"
    );
    assert!(seen.contains(".env") && seen.contains("src"), "{seen}");
    // The host's files are untouched.
    assert_eq!(
        std::fs::read_to_string(project.join(".env")).unwrap(),
        "SECRET_TOKEN=hunter2\n"
    );

    let family = run("family");
    assert!(family.status.success(), "{}", text(&family));
    assert_eq!(
        stdout(&family).lines().take(3).collect::<Vec<_>>(),
        ["global", "group", "session"]
    );
}

#[test]
fn groups_see_only_their_own_folders_and_global_is_read_only_for_them() {
    let install = Installation::new();
    install.add_group("family");
    let (main, _) = run_bash(
        &install,
        "main",
        &[],
        "echo main-note > /workspace/group/private.txt; echo shared > /workspace/global/MEMORY.md && echo GLOBAL_WRITTEN",
    );
    assert!(stdout(&main).contains("GLOBAL_WRITTEN"), "{}", text(&main));
    let (family, _) = run_bash(
        &install,
        "family",
        &[],
        "ls /workspace; cat /workspace/global/MEMORY.md; \
         (echo x > /workspace/global/x) 2>/dev/null || echo GLOBAL_READ_ONLY; \
         ls -A /workspace/group; find / -name private.txt 2>/dev/null; echo END",
    );
    assert!(family.status.success(), "{}", text(&family));
    let seen = stdout(&family);
    assert!(
        seen.starts_with("global\ngroup\nsession\nshared\nGLOBAL_READ_ONLY\n"),
        "{seen}"
    );
    assert!(
        !seen.contains("private.txt") && !seen.contains("main-note"),
        "{seen}"
    );
}

#[test]
fn policy_errors_stop_everything_and_mounts_check_reports_them() {
    let install = Installation::new();
    mkdirs(&install.user_home(), &["projects"]);
    // No allowlist: check denies and says why; list says so.
    let output = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "check", "--main", "~/projects"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["allowed"], false);
    assert!(
        value["reason"]
            .as_str()
            .unwrap()
            .contains("no mount allowlist")
    );
    let list = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "list"])
        .output()
        .unwrap();
    assert!(list.status.success());
    let listed = stdout(&list);
    assert!(
        listed.contains("not present: no extra mounts are allowed") && listed.contains(".ssh"),
        "{listed}"
    );

    // A malformed allowlist: a usage error for check, and no invocation starts.
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_rw": true}]}"#);
    let output = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "check", "~/projects"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("mount-allowlist.json") && stderr.contains("unknown field `allow_rw`"),
        "{stderr}"
    );
    let (run, model) = run_bash(&install, "main", &[], "echo SHOULD_NOT_RUN");
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(String::from_utf8_lossy(&run.stderr).contains("malformed mount allowlist"));
    assert!(model.requests().is_empty());

    // A bad group name is a usage error too.
    let output = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "check", "--group", "../x", "/tmp"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn a_groups_stored_mounts_reach_its_daemon_invocations_read_only() {
    let install = Installation::new();
    install.add_group("family");
    mkdirs(&install.user_home(), &["projects/recipes"]);
    std::fs::write(
        install.user_home().join("projects/recipes/soup.txt"),
        "lentil soup",
    )
    .unwrap();
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);
    let pincer = |args: &[&str]| {
        install
            .pincer("http://127.0.0.1:1")
            .args(args)
            .output()
            .unwrap()
    };
    let added = pincer(&[
        "groups",
        "mount",
        "family",
        "host=~/projects/recipes,name=recipes,rw",
    ]);
    assert!(added.status.success(), "{}", text(&added));
    let listed = pincer(&["groups", "mounts", "family"]);
    assert_eq!(
        stdout(&listed).trim(),
        "~/projects/recipes as recipes (read-write asked)"
    );
    assert_eq!(
        pincer(&["groups", "mount", "nobody", "/tmp"]).status.code(),
        Some(1)
    );

    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        if request.json()["messages"]
            .to_string()
            .contains("tool_result")
        {
            (200, message(&request.last_tool_result()))
        } else {
            tool_use(
                "bash",
                json!({"command": "cat /workspace/extra/recipes/soup.txt; (echo x > /workspace/extra/recipes/new) 2>/dev/null || echo READ_ONLY"}),
            )(request)
        }
    }));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let reply = daemon.control().ask("family", "@pincer what soup?");
    assert_eq!(daemon.terminate(), Some(0));
    let answer = reply["text"].as_str().unwrap();
    assert!(answer.contains("lentil soup"), "{reply}");
    assert!(
        answer.contains("READ_ONLY"),
        "a non-main group's rw wish stays read-only: {reply}"
    );

    let removed = pincer(&["groups", "unmount", "family", "~/projects/recipes"]);
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(
        stdout(&pincer(&["groups", "mounts", "family"]))
            .trim()
            .is_empty()
    );
}
