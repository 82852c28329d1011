//! Side doors: places where the host itself could follow something an agent
//! controls — a path it swaps, a link it plants, a uid it shares, a folder it
//! hides secrets in, a name it spells differently. Each test performs the
//! attack from inside a real container first.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use pincer_test_support as support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use pincer_core::group::GroupName;
use serde_json::{Value, json};
use support::*;

fn open_up(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
}

fn groups_cmd(install: &Installation, args: &[&str]) {
    let output = install
        .pincer("http://127.0.0.1:1")
        .arg("groups")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}

/// Main's agent can write `~/share`; family is granted `~/share/docs` read-only.
/// Main's agent swaps `docs` for a link to a folder no allowlist grants, over
/// and over, while family is invoked 100 times: family's container never
/// sees anything but the checked folder, and the audit names what was mounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_source_swapped_for_a_link_is_never_what_another_group_gets() {
    let install = Installation::new();
    install.add_group("family");
    let share = install.user_home().join("share");
    let vault = install.user_home().join("vault");
    std::fs::create_dir_all(share.join("docs")).unwrap();
    std::fs::create_dir_all(&vault).unwrap();
    std::fs::write(share.join("docs/marker"), "DOCS\n").unwrap();
    std::fs::write(vault.join("marker"), "CANARY\n").unwrap();
    open_up(&share);
    install.allow(
        r#"{"allowed_roots": [{"path": "~/share", "allow_read_write": true, "writes": "direct"}]}"#,
    );
    groups_cmd(&install, &["mount", "family", "host=~/share/docs"]);
    let docs = share.join("docs").canonicalize().unwrap();
    let docs_meta = std::fs::metadata(&docs).unwrap();

    // Main's agent flips `docs` until the test is done (or 10 minutes pass).
    let flip = format!(
        "cd /workspace/extra/share; i=0; end=$(( $(date +%s) + 600 )); \
         while [ ! -e stop ] && [ $(date +%s) -lt $end ]; do \
           mv docs d2 && ln -s {vault} docs && usleep 80000 && rm docs && mv d2 docs; i=$((i+1)); usleep 20000; \
         done; echo flipped $i",
        vault = vault.display()
    );
    let flipper_model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": flip, "timeout_ms": 660000})),
        answer(|request| request.last_tool_result()),
    ]);
    let flipper = install
        .pincer(&flipper_model.url())
        .args([
            "run-once",
            "--group",
            "main",
            "--mount",
            "host=~/share,rw",
            "go",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The flipping has begun when `docs` is a link for the first time.
    assert!(
        wait_for(Duration::from_secs(120), || std::fs::symlink_metadata(
            share.join("docs")
        )
        .is_ok_and(|m| m.file_type().is_symlink())),
        "main's agent never started flipping"
    );

    let model = ScriptedModel::always(bash_then_echo(
        "cat /workspace/extra/docs/marker 2>&1; echo END",
    ));
    let (host, _) = install.start_host(&model.url(), &[]).await;
    let family = GroupName::new("family").unwrap();
    // At least 100 invocations that reach a container (those whose check
    // saw a link stop before one, and are tried again 5 ms later).
    let (mut seen_docs, mut swapped, mut refused) = (0, 0, Vec::new());
    for _ in 0..5000 {
        if seen_docs + swapped >= 100 {
            break;
        }
        let mut ignore = |_: &pincer_protocol::Event| {};
        match host.invoke(&family, "read", &[], &mut ignore).await {
            Ok(reply) => {
                assert!(
                    !reply.text.contains("CANARY"),
                    "family's container saw the folder main's link led to: {}",
                    reply.text
                );
                if reply.text.contains("DOCS") {
                    seen_docs += 1;
                }
            }
            Err(err) => {
                let err = err.to_string();
                if err.contains("not what was checked") {
                    swapped += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                refused.push(err);
            }
        }
    }
    std::fs::write(share.join("stop"), "").unwrap();
    let flipped = flipper.wait_with_output().unwrap();
    let flipped_text = String::from_utf8_lossy(&flipped.stdout).into_owned();
    eprintln!(
        "family: {seen_docs} saw the checked folder, {swapped} swapped and refused, {} refused \
         at the check ({flipped_text:?})",
        refused.len() - swapped
    );
    assert!(flipped_text.contains("flipped"), "{}", text(&flipped));
    assert!(
        seen_docs + swapped >= 100,
        "too few invocations reached a container; the last refusal: {:?}",
        refused.last()
    );
    assert!(install.containers().is_empty());

    // Every spawn of family names the checked folder, by path and identity;
    // a spawn whose container got something else is refused on record.
    let spawns: Vec<Value> = install
        .audit_of_kind("spawn")
        .into_iter()
        .filter(|e| e["group"] == "family")
        .collect();
    let mut created = 0;
    for entry in &spawns {
        if entry["action"] == "end_container" {
            // The engine refused to create or start it (the source was
            // swapped away between the check and the engine): nothing ran.
            let reason = entry["reason"].as_str().unwrap();
            assert!(
                reason.contains("while creating the container")
                    || reason.contains("while starting the container"),
                "{entry}"
            );
            continue;
        }
        if entry["action"] != "create_container" {
            assert_eq!(entry["action"], "refuse_container", "{entry}");
            assert_eq!(entry["allowed"], false);
            assert!(
                entry["reason"]
                    .as_str()
                    .unwrap()
                    .contains("not what was checked")
            );
            continue;
        }
        created += 1;
        let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap();
        let mount = detail["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["target"] == "/workspace/extra/docs")
            .unwrap_or_else(|| panic!("no docs mount in {detail}"))
            .clone();
        assert_eq!(mount["source"], docs.to_str().unwrap(), "{mount}");
        assert_eq!(mount["identity"]["ino"], docs_meta.ino(), "{mount}");
        assert_eq!(mount["identity"]["dev"], docs_meta.dev(), "{mount}");
    }
    assert!(
        created >= seen_docs,
        "{created} spawns, {seen_docs} answers"
    );
}

/// The agent plants links to a host folder and a folder where the runner
/// keeps a file, in the folders it may write. The group's next invocations
/// work, and the owner's commands on those folders (session reset, the
/// hand-over of a folder to the container's uid, groups remove) never touch
/// what the links lead to.
#[test]
fn links_an_agent_plants_in_its_folders_never_take_the_host_out() {
    let install = Installation::new();
    install.add_group("family");
    let canary = install.dir.path().join("canary");
    std::fs::create_dir_all(&canary).unwrap();
    std::fs::write(canary.join("keep"), "host").unwrap();
    let canary_owner = std::fs::metadata(canary.join("keep")).unwrap().uid();
    let plant = format!(
        "ln -s {c} /workspace/session/archive && mkdir /workspace/session/transcript.json.tmp \
         && ln -s {c}/keep /workspace/group/planted && echo 'old memory' > /workspace/group/MEMORY.md \
         && echo PLANTED",
        c = canary.display()
    );
    let model = ScriptedModel::always(bash_then_echo(&plant));
    let run = |prompt: &str| {
        install
            .pincer(&model.url())
            .args(["run-once", "--group", "family", prompt])
            .output()
            .unwrap()
    };
    let first = run("plant");
    assert!(first.status.success(), "{}", text(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("PLANTED"));
    // The group goes on: the session was saved past the planted folder.
    let second = run("again");
    assert!(second.status.success(), "{}", text(&second));

    // The owner resets the session: the transcript goes into a real archive.
    let reset = install
        .pincer("http://127.0.0.1:1")
        .args(["session", "reset", "family"])
        .output()
        .unwrap();
    assert!(reset.status.success(), "{}", text(&reset));
    let session = install.home().join("sessions/family");
    assert!(session.join("archive").symlink_metadata().unwrap().is_dir());
    assert!(
        session
            .join("archive.set-aside")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );

    // A folder that belongs to another uid (an older installation's) is
    // handed over whole, links as links.
    let group_dir = install.home().join("groups/family");
    std::os::unix::fs::chown(&group_dir, Some(0), Some(0)).unwrap();
    let third = run("after the reset");
    assert!(third.status.success(), "{}", text(&third));
    let planted = std::fs::symlink_metadata(group_dir.join("planted")).unwrap();
    assert_eq!(planted.uid(), std::fs::metadata(&group_dir).unwrap().uid());

    // Removing the group archives its folders; a new group of the name starts empty.
    let remove = install
        .pincer("http://127.0.0.1:1")
        .args(["groups", "remove", "family"])
        .output()
        .unwrap();
    assert!(remove.status.success(), "{}", text(&remove));
    assert!(text(&remove).contains("removed"), "{}", text(&remove));
    assert!(!group_dir.exists());
    let archived: Vec<_> = std::fs::read_dir(install.home().join("removed"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(archived.len(), 1);
    assert!(archived[0].join("group/MEMORY.md").is_file());
    install.add_group("family");
    let fresh_model = ScriptedModel::always(bash_then_echo(
        "cat /workspace/group/MEMORY.md 2>&1; ls /workspace/session",
    ));
    let fresh = install
        .pincer(&fresh_model.url())
        .args(["run-once", "--group", "family", "look"])
        .output()
        .unwrap();
    assert!(fresh.status.success(), "{}", text(&fresh));
    assert!(
        !String::from_utf8_lossy(&fresh.stdout).contains("old memory"),
        "{}",
        text(&fresh)
    );

    // What the links led to is as it was.
    assert_eq!(
        std::fs::read_to_string(canary.join("keep")).unwrap(),
        "host"
    );
    assert_eq!(
        std::fs::metadata(canary.join("keep")).unwrap().uid(),
        canary_owner
    );
    assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 1);
}

/// Secrets are covered wherever they are in a granted folder: a token in
/// `.git/config`, an `.env` under `node_modules`, and one the agent moved
/// into `node_modules` itself (read-write grant) to read on its next run.
#[test]
fn secrets_are_shadowed_in_every_folder_even_where_an_agent_moved_them() {
    let install = Installation::new();
    let code = install.user_home().join("code");
    for dir in ["app", ".git", "node_modules/x"] {
        std::fs::create_dir_all(code.join(dir)).unwrap();
    }
    std::fs::write(
        code.join(".git/config"),
        "url = https://SECRET1@example.org\n",
    )
    .unwrap();
    std::fs::write(code.join("node_modules/x/.env"), "SECRET2\n").unwrap();
    std::fs::write(code.join("app/.env"), "SECRET3\n").unwrap();
    std::fs::write(code.join("app/main.py"), "print('app')\n").unwrap();
    for dir in ["", "app", "node_modules"] {
        open_up(&code.join(dir));
    }
    install.allow(
        r#"{"allowed_roots": [{"path": "~/code", "allow_read_write": true, "writes": "direct"}]}"#,
    );
    let bash = |command: &str| {
        let model = ScriptedModel::always(bash_then_echo(command));
        let output = install
            .pincer(&model.url())
            .args([
                "run-once",
                "--group",
                "main",
                "--mount",
                "host=~/code,rw",
                "go",
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = bash(
        "cd /workspace/extra/code; cat .git/config node_modules/x/.env app/.env app/main.py; \
         mkdir -p node_modules/moved && mv app node_modules/moved/ && echo MOVED",
    );
    assert!(
        first.contains("print('app')") && first.contains("MOVED"),
        "{first}"
    );
    assert!(!first.contains("SECRET"), "{first}");
    assert!(code.join("node_modules/moved/app/.env").is_file());
    let second = bash("cat /workspace/extra/code/node_modules/moved/app/.env; echo READ");
    assert!(second.contains("READ"), "{second}");
    assert!(!second.contains("SECRET"), "{second}");

    // `mounts check` names what an invocation covers.
    let check = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "check", "--main", "~/code"])
        .output()
        .unwrap();
    let value: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(
        value["shadowed"],
        json!([
            ".git/config",
            "node_modules/moved/app/.env",
            "node_modules/x/.env"
        ])
    );
}

/// A folder grown past what is scanned for secrets is left out of the
/// invocation (and said so), instead of stopping every invocation of its
/// group.
#[test]
fn a_folder_too_large_to_scan_is_left_out_and_the_group_goes_on() {
    let install = Installation::new();
    let big = install.user_home().join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..=pincer_core::mounts::SCAN_LIMIT {
        std::fs::File::create(big.join(i.to_string())).unwrap();
    }
    install.allow(r#"{"allowed_roots": [{"path": "~/big"}]}"#);
    groups_cmd(&install, &["mount", "main", "host=~/big"]);
    let model = ScriptedModel::always(bash_then_echo(
        "ls /workspace/extra/big >/dev/null 2>&1 && echo MOUNTED || echo ABSENT",
    ));
    let output = install
        .pincer(&model.url())
        .args(["run-once", "go"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("ABSENT"),
        "{}",
        text(&output)
    );
    assert!(text(&output).contains("left out"), "{}", text(&output));
    let left_out = install
        .audit_of_kind("spawn")
        .into_iter()
        .filter(|e| e["action"] == "leave_out_mount")
        .count();
    assert_eq!(left_out, 1);

    let check = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "check", "--main", "~/big"])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let value: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert!(
        value["reason"].as_str().unwrap().contains("more than"),
        "{value}"
    );
}

/// The container's uid is no host account's: a login with the uid agents
/// used to run as (1000, a real account on many machines) cannot reach a
/// running agent's socket through `/proc/<pid>/root`, and the socket is the
/// container user's alone.
#[test]
fn no_host_account_can_reach_a_running_agents_socket() {
    let install = Installation::new();
    let model = ScriptedModel::always(bash_then_echo(
        "ls -ln /run/pincer/host.sock; id; sleep 600",
    ));
    let mut agent = install
        .pincer(&model.url())
        .args(["run-once", "wait"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let label = format!("pincer.installation={}", install.id);
    assert!(wait_for(Duration::from_secs(60), || !model
        .requests()
        .is_empty()));
    let id = containers_labelled(&label).pop().expect("a running agent");
    let inspected = inspect(&id);
    let user = inspected["Config"]["User"].as_str().unwrap().to_owned();
    let pid = inspected["State"]["Pid"].as_i64().unwrap();
    let (uid, gid) = user.split_once(':').unwrap();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(
        !passwd.lines().any(|l| l.split(':').nth(2) == Some(uid)),
        "uid {uid} is a host account"
    );
    let socket = format!("/proc/{pid}/root/run/pincer/host.sock");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        (meta.uid().to_string(), meta.gid().to_string()),
        (uid.to_owned(), gid.to_owned())
    );

    // A login with uid 1000 tries the way through the agent's root.
    let reach = |as_uid: &str| {
        std::process::Command::new("setpriv")
            .args(["--reuid", as_uid, "--regid", as_uid, "--clear-groups"])
            .args(["/usr/bin/python3", "-c"])
            .arg(format!(
                "import socket; s = socket.socket(socket.AF_UNIX); s.connect('{socket}'); print('CONNECTED')"
            ))
            .output()
            .unwrap()
    };
    let outsider = reach("1000");
    assert!(!outsider.status.success(), "{}", text(&outsider));
    assert!(!String::from_utf8_lossy(&outsider.stdout).contains("CONNECTED"));
    // The same attempt as the container's own uid gets through: the test
    // tests the way, not a broken path.
    let insider = reach(uid);
    assert!(
        String::from_utf8_lossy(&insider.stdout).contains("CONNECTED"),
        "{}",
        text(&insider)
    );

    agent.kill().unwrap();
    let _ = agent.wait();
}

/// Names that differ only in case are one name (`Main` is the main group, not
/// a second one), and a container name of spaces is refused, not mounted at
/// `/workspace/extra/   `.
#[test]
fn names_that_differ_only_in_case_are_one_and_blank_container_names_are_refused() {
    let install = Installation::new();
    let add = |name: &str, chat: &str| {
        install
            .pincer("http://127.0.0.1:1")
            .args(["groups", "add", name, "--chat", chat])
            .output()
            .unwrap()
    };
    for main in ["Main", "MAIN"] {
        let output = add(main, &format!("test:{main}"));
        assert!(!output.status.success(), "{main}: {}", text(&output));
        assert!(
            text(&output).contains("main group exists"),
            "{}",
            text(&output)
        );
    }
    let output = add("Family", "test:family");
    assert!(output.status.success(), "{}", text(&output));
    let output = add("FAMILY", "test:family2");
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("a group named family exists"),
        "{}",
        text(&output)
    );

    let model = ScriptedModel::always(bash_then_echo("pwd"));
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--group", "FaMiLy", "hi"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let groups: Vec<String> = std::fs::read_dir(install.home().join("groups"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(groups, ["family"]);
    let list = install
        .pincer("http://127.0.0.1:1")
        .args(["groups", "list", "--json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"main") && names.contains(&"family"),
        "{names:?}"
    );

    std::fs::create_dir_all(install.user_home().join("docs")).unwrap();
    install.allow(r#"{"allowed_roots": [{"path": "~/docs"}]}"#);
    let check = install
        .pincer("http://127.0.0.1:1")
        .args(["mounts", "check", "--group", "Family", "~/docs", "   "])
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let value: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert!(
        value["reason"].as_str().unwrap().contains("blank"),
        "{value}"
    );
}
