//! End-to-end tests of one sandboxed invocation: the real `pincer` binary,
//! the real container engine, the real agent image; only the model is scripted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// Everything the agent's first `bash` call reports about its own box.
const PROBE: &str = "echo uid=$(id -u); echo host=$(hostname); \
    touch /probe 2>/dev/null && echo ROOT_WRITABLE || echo ROOT_READ_ONLY; \
    echo nets=$(ls /sys/class/net | tr '\\n' ' '); \
    grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; \
    echo hi > /workspace/group/note.txt && echo GROUP_WRITABLE; \
    touch \"$HOME/x\" && echo HOME_WRITABLE";

#[test]
fn bash_runs_inside_the_container_and_the_answer_comes_out() {
    let install = Installation::new();
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": PROBE})),
        answer(|request| format!("the box says:\n{}", request.last_tool_result())),
    ]);
    // A proxy in the host's environment must not be used for the model key.
    let trap = Trap::start();
    let proxy = format!("http://{}", trap.addr);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--json", "what is your box like?"])
        .env("HTTP_PROXY", &proxy)
        .env("HTTPS_PROXY", &proxy)
        .env("ALL_PROXY", &proxy)
        .env("http_proxy", &proxy)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["group"], "main");
    assert_eq!(result["turns"], 2);
    assert_eq!(result["tool_calls"], 1);
    let answer = result["text"].as_str().unwrap();
    assert!(answer.starts_with("the box says:"), "{answer}");
    for expected in [
        "uid=65530",
        "HOME_WRITABLE",
        "host=pincer",
        "ROOT_READ_ONLY",
        "\nnets=lo\n",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
        "GROUP_WRITABLE",
        "[exit code: 0]",
    ] {
        assert!(
            answer.contains(expected),
            "missing {expected:?} in:\n{answer}"
        );
    }
    // The file the agent wrote is in the group's folder on the host.
    let note = std::fs::read_to_string(install.home().join("groups/main/note.txt")).unwrap();
    assert_eq!(note, "hi\n");
    // Two model turns, both through the gateway, neither through the proxy.
    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        trap.hits(),
        0,
        "the gateway used the host's proxy variables"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.method == "POST" && r.path == "/v1/messages")
    );
    // The container is gone.
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn the_model_key_is_nowhere_in_the_container() {
    let install = Installation::new();
    // The key is assembled at run time so that the command itself (which the
    // model sees again in the transcript) does not contain it.
    let hunt = "K=sk-test-; K=${K}SECRET-0123456789abcdef; \
        echo '--- env'; env; \
        echo '--- environ'; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; \
        echo '--- cmdline'; cat /proc/*/cmdline 2>/dev/null | tr '\\0' ' '; \
        echo '--- files'; grep -rl \"$K\" /bin /etc /usr /workspace /tmp /run /proc/self/mounts 2>/dev/null; \
        echo HUNT_DONE";
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": hunt, "timeout_ms": 60000})),
        answer(|request| request.last_tool_result()),
    ]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--json", "find the key"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let seen = result["text"].as_str().unwrap();
    assert!(
        seen.contains("HUNT_DONE") && seen.contains("PATH="),
        "{seen}"
    );
    assert!(
        seen.contains("--- files\nHUNT_DONE"),
        "a file holds the key:\n{seen}"
    );
    assert!(!seen.contains(TEST_KEY), "the agent found the key:\n{seen}");
    assert!(!seen.contains("ANTHROPIC"), "{seen}");

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        // The gateway added the key on its way out ...
        assert_eq!(request.header("x-api-key"), Some(TEST_KEY));
        assert_eq!(request.header("authorization"), None);
        // ... and nothing the agent sent contained it.
        assert!(!String::from_utf8_lossy(&request.body).contains(TEST_KEY));
    }
    // Not in what pincer printed either.
    assert!(!String::from_utf8_lossy(&output.stderr).contains(TEST_KEY));
}

#[test]
fn a_created_container_has_every_hardening_item() {
    let install = Installation::new();
    let inspected = Arc::new(Mutex::new(Value::Null));
    let slot = Arc::clone(&inspected);
    let label = format!("pincer.installation={}", install.id);
    // While the agent waits for the model, its container is running: inspect it then.
    let model = ScriptedModel::start(vec![Box::new(move |_| {
        let ids = containers_labelled(&label);
        assert_eq!(ids.len(), 1, "{ids:?}");
        *slot.lock().unwrap() = inspect(&ids[0]);
        (200, message("inspected"))
    })]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "hello"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "inspected");

    let container = inspected.lock().unwrap().clone();
    let host = &container["HostConfig"];
    let config = &container["Config"];
    // Identity and privileges (CIS 5.3, 5.4, 5.12, 5.25).
    assert_eq!(config["User"], "65530:65530");
    hardening_in_the_engines_words(&container);
    assert!(
        host["CapAdd"]
            .as_array()
            .is_none_or(|added| added.is_empty()),
        "{}",
        host["CapAdd"]
    );
    assert_eq!(host["Privileged"], false);
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(host["NetworkMode"], "none");
    assert!(host["Devices"].as_array().is_none_or(|d| d.is_empty()));
    // Limits (CIS 5.10, 5.11, 5.28).
    let memory = host["Memory"].as_i64().unwrap();
    assert!(memory > 0);
    assert_eq!(
        host["MemorySwap"].as_i64().unwrap(),
        memory,
        "no swap beyond the limit"
    );
    assert!(host["NanoCpus"].as_i64().unwrap() > 0);
    assert!(host["PidsLimit"].as_i64().unwrap() > 0);
    let tmp = host["Tmpfs"]["/tmp"].as_str().unwrap();
    for option in ["nosuid", "nodev", "size="] {
        assert!(tmp.contains(option), "{tmp}");
    }
    // rlimits, set rather than inherited (Docker names them `nofile`,
    // Podman `RLIMIT_NOFILE`).
    let mut ulimits: Vec<(String, i64, i64)> = host["Ulimits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let name = u["Name"].as_str().unwrap().trim_start_matches("RLIMIT_");
            (
                name.to_lowercase(),
                u["Soft"].as_i64().unwrap(),
                u["Hard"].as_i64().unwrap(),
            )
        })
        .collect();
    ulimits.sort();
    assert_eq!(
        ulimits,
        [
            ("core".to_owned(), 0, 0),
            ("nofile".to_owned(), 4096, 4096),
            ("nproc".to_owned(), 32_768, 32_768)
        ]
    );
    assert_eq!(host["Init"], true);
    assert_eq!(host["LogConfig"]["Type"], "json-file");
    // Labels, and no secret in the environment.
    assert_eq!(config["Labels"]["pincer.installation"], install.id.as_str());
    assert_eq!(config["Labels"]["pincer.group"], "main");
    let env = config["Env"].to_string();
    assert!(!env.contains(TEST_KEY) && !env.contains("API_KEY"), "{env}");
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn the_container_is_removed_after_an_agent_failure() {
    let install = Installation::new();
    let model = ScriptedModel::start(vec![api_error(400, "prompt is too long")]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--json", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "error");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("the agent failed") && error.contains("prompt is too long"),
        "{error}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("error: the agent failed"), "{stderr}");
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn a_timed_out_invocation_is_killed_and_removed() {
    let install = Installation::new();
    let model = ScriptedModel::start(vec![
        tool_use(
            "bash",
            json!({"command": "sleep 300", "timeout_ms": 600000}),
        ),
        say("never reached"),
    ]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--timeout", "3s", "sleep for a while"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("timed out after 3s"), "{stderr}");
    assert!(stderr.contains("killed and removed"), "{stderr}");
    assert_eq!(install.containers(), Vec::<String>::new());
    assert_eq!(model.requests().len(), 1);
}

#[test]
fn orphans_of_a_killed_host_are_removed_at_the_next_start_and_nothing_else() {
    let install = Installation::new();
    let model = ScriptedModel::start(vec![
        tool_use(
            "bash",
            json!({"command": "sleep 300", "timeout_ms": 600000}),
        ),
        // The killed host never gets its answer: the next request is the second host's.
        say("second host done"),
    ]);
    let mut host = install
        .pincer(&model.url())
        .args(["run-once", "sleep"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || model.requests().len() == 1),
        "the agent never called the model"
    );
    let orphans = install.containers();
    assert_eq!(orphans.len(), 1);
    // kill -9: no drop guard, no cleanup of any kind runs.
    host.kill().unwrap();
    host.wait().unwrap();
    assert_eq!(
        install.containers(),
        orphans,
        "the container outlived its host"
    );

    // Another installation's container must survive our clean-up.
    let other = random_id();
    let decoy = std::process::Command::new("docker")
        .args([
            "create",
            "--label",
            &format!("pincer.installation={other}"),
            "--label",
        ])
        .arg("pincer.owner=0000")
        .arg(format!("pincer-agent:{}", env!("CARGO_PKG_VERSION")))
        .output()
        .unwrap();
    assert!(decoy.status.success(), "{}", text(&decoy));
    let decoy_id = String::from_utf8_lossy(&decoy.stdout).trim().to_owned();

    // The next start of this installation removes the orphan.
    let next = install
        .pincer(&model.url())
        .args(["run-once", "hello again"])
        .output()
        .unwrap();
    let decoy_alive = containers_labelled(&format!("pincer.installation={other}"));
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &decoy_id])
        .output();
    assert!(next.status.success(), "{}", text(&next));
    assert_eq!(
        String::from_utf8_lossy(&next.stdout).trim(),
        "second host done"
    );
    assert!(String::from_utf8_lossy(&next.stderr).contains("removed 1 orphaned"));
    assert_eq!(install.containers(), Vec::<String>::new());
    assert_eq!(
        decoy_alive,
        [decoy_id],
        "another installation's container was touched"
    );
}

#[test]
fn a_live_hosts_containers_survive_another_hosts_start() {
    let install = Installation::new();
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": "sleep 3; echo SLEPT"})),
        answer(|request| request.last_tool_result()),
    ]);
    let first = install
        .pincer(&model.url())
        .args(["run-once", "sleep a little"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(60), || model.requests().len() == 1));
    // A second host of the same installation starts and cleans up orphans.
    let cleanup = install
        .pincer(&model.url())
        .arg("cleanup")
        .output()
        .unwrap();
    assert!(cleanup.status.success(), "{}", text(&cleanup));
    assert_eq!(
        String::from_utf8_lossy(&cleanup.stdout).trim(),
        "removed 0 orphaned container(s)"
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", text(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("SLEPT"));
}

#[test]
fn no_reachable_engine_is_a_clear_error_and_nothing_runs() {
    let install = Installation::new();
    let marker = install.dir.path().join("ran");
    let model = ScriptedModel::start(vec![
        // Were the agent's command run on the host, the marker would appear.
        tool_use(
            "bash",
            json!({"command": format!("touch {}", marker.display())}),
        ),
        say("ran"),
    ]);
    for docker_host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let output = install
            .pincer(&model.url())
            .args(["run-once", &format!("touch {}", marker.display())])
            .env("DOCKER_HOST", docker_host)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot reach the container engine at {docker_host}"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("start Docker"), "{stderr}");
        assert!(
            stderr.contains("never runs an agent outside a container"),
            "{stderr}"
        );
    }
    assert!(
        model.requests().is_empty(),
        "an agent ran without an engine"
    );
    assert!(!marker.exists());
}

#[test]
fn bad_configuration_is_a_usage_error_naming_the_variable() {
    let install = Installation::new();
    let output = install
        .pincer("ftp://nowhere")
        .args(["run-once", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid PINCER_MODEL_URL"));

    let output = install
        .pincer("http://127.0.0.1:1")
        .args(["run-once", "--group", "../etc", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid group name"));

    let output = install
        .pincer("http://127.0.0.1:1")
        .args(["run-once", "hello"])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ANTHROPIC_API_KEY is not set"));
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn groups_run_in_their_own_folders() {
    let install = Installation::new();
    install.add_group("family");
    install.add_group("work");
    let model = ScriptedModel::start(vec![
        tool_use(
            "bash",
            json!({"command": "echo family-secret > mine.txt; ls /workspace/group"}),
        ),
        say("wrote"),
        tool_use(
            "bash",
            json!({"command": "ls /workspace/group; cat /workspace/group/mine.txt"}),
        ),
        answer(|request| request.last_tool_result()),
    ]);
    let first = install
        .pincer(&model.url())
        .args(["run-once", "--group", "family", "write"])
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", text(&first));
    let system = model.requests()[0].json()["system"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("Group: family"), "{system}");
    let second = install
        .pincer(&model.url())
        .args(["run-once", "--group", "work", "read"])
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let seen = String::from_utf8_lossy(&second.stdout);
    assert!(!seen.contains("family-secret"), "{seen}");
    assert!(seen.contains("No such file"), "{seen}");
    assert_eq!(
        std::fs::read_to_string(install.home().join("groups/family/mine.txt")).unwrap(),
        "family-secret\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_cancelled_at_any_point_leaves_no_container() {
    use pincer_core::group::GroupName;

    let install = Installation::new();
    let model = ScriptedModel::always(tool_use(
        "bash",
        json!({"command": "sleep 300", "timeout_ms": 600000}),
    ));
    let (host, _) = install.start_host(&model.url(), &[]).await;
    // Dropped while the engine creates, starts, attaches, or runs it: in
    // every case the container goes.
    let main = GroupName::main();
    for delay in (0..=300).step_by(15) {
        let mut ignore = |_: &pincer_protocol::Event| {};
        let invocation = host.invoke(&main, "wait", &[], &mut ignore);
        let _ = tokio::time::timeout(Duration::from_millis(delay), invocation).await;
        assert!(
            wait_for(Duration::from_secs(20), || install.containers().is_empty()),
            "an invocation dropped after {delay} ms left {:?}",
            install.containers()
        );
    }
}

#[test]
fn the_runtime_setting_reaches_the_engine_and_a_missing_runtime_is_a_clear_error() {
    let install = Installation::new();
    let runtime = Arc::new(Mutex::new(Value::Null));
    let slot = Arc::clone(&runtime);
    let label = format!("pincer.installation={}", install.id);
    let model = ScriptedModel::start(vec![Box::new(move |_| {
        let ids = containers_labelled(&label);
        *slot.lock().unwrap() = Value::from(runtime_of(&ids[0]));
        (200, message("ran"))
    })]);
    // runc is every Docker engine's own runtime, named explicitly here.
    let output = install
        .pincer(&model.url())
        .env("PINCER_RUNTIME", "runc")
        .args(["run-once", "hello"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(*runtime.lock().unwrap(), "runc");

    // A runtime the engine does not know: no container, and the engine's word.
    let output = install
        .pincer(&model.url())
        .env("PINCER_RUNTIME", "no-such-runtime")
        .args(["run-once", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no-such-runtime"),
        "{}",
        text(&output)
    );
    if on_podman() {
        // Podman's API would run a registered runtime's container under
        // its default one: refused by name, before anything is created.
        let output = install
            .pincer(&model.url())
            .env("PINCER_RUNTIME", "runsc")
            .args(["run-once", "hello"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("`runsc` was asked, and the container would run under `runc`"),
            "{said}"
        );
    }
    assert_eq!(install.containers(), Vec::<String>::new());
    assert_eq!(model.requests().len(), 1, "the second run reached no model");
}

#[test]
fn doctor_reports_the_engine_the_runtime_and_the_image() {
    let install = Installation::new();
    let doctor =
        |env: &[(&str, &str)]| support::doctor(install.pincer("http://127.0.0.1:1"), env, &[]);
    let (code, checks) = doctor(&[]);
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    // The core's checks come first; skills may add theirs after them.
    assert_eq!(names[..3], ["engine", "runtime", "image"], "{checks:?}");
    assert!(checks[..3].iter().all(|c| c["ok"] == true), "{checks:?}");
    let all_ok = checks.iter().all(|c| c["ok"] == true);
    assert_eq!(code, Some(if all_ok { 0 } else { 1 }), "{checks:?}");

    // Each failure is named, with what to do, and the exit code says so.
    let (code, checks) = doctor(&[
        ("PINCER_RUNTIME", "no-such-runtime"),
        ("PINCER_IMAGE", "pincer-agent:never-built"),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(checks[1]["ok"], false);
    assert!(
        checks[1]["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-runtime is not registered")
    );
    assert_eq!(checks[2]["ok"], false);
    assert!(
        checks[2]["detail"]
            .as_str()
            .unwrap()
            .contains("pincer image build")
    );
    let (code, checks) = doctor(&[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    assert_eq!(code, Some(1));
    // Without an engine its later checks cannot run; the others still do.
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["engine", "config", "model", "allowlist", "disk", "daemon"]
    );
    assert_eq!(checks[0]["ok"], false);
    assert!(
        checks[0]["detail"]
            .as_str()
            .unwrap()
            .contains("start Docker")
    );
}
