//! One hostile agent against the host: floods from inside a real container,
//! in a non-main group, while the owner's main group keeps working. Each
//! test names the limit that contains its flood and states the bound it
//! holds the host to (memory and descriptors from `/proc`, the database's
//! and the log's growth from the files), and that `main` is still answered.
// Each flood's figure goes to stderr (`--nocapture` shows it) for the record.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use pincer_test_support as support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// A model for two groups: the hostile agent's `@pincer go` runs `script`
/// in bash and answers with its output; `ping` is answered `pong`; anything
/// else (the messages of tasks) `batch ok`.
fn model_running(script: &str) -> ScriptedModel {
    let hostile = bash_then_echo(script);
    ScriptedModel::always(Box::new(move |request| {
        let prompt = latest_prompt(request);
        if prompt.contains("@pincer go") {
            hostile(request)
        } else if prompt.contains("ping") {
            (200, message("pong"))
        } else {
            (200, message("batch ok"))
        }
    }))
}

/// The newest prompt of a request: its last user message that is not a
/// tool's result (a group's session holds every earlier one).
fn latest_prompt(request: &Recorded) -> String {
    let json = request.json();
    json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|m| m["role"] == "user")
        .find(|m| {
            m["content"].is_string()
                || m["content"]
                    .as_array()
                    .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "text"))
        })
        .map(|m| m["content"].to_string())
        .unwrap_or_default()
}

/// `pincer run-once` of the hostile agent in `family`.
fn run_family(install: &Installation, model: &ScriptedModel) -> std::process::Output {
    install
        .pincer(&model.url())
        .args(["run-once", "--group", "family", "@pincer go"])
        .output()
        .unwrap()
}

fn write_config(install: &Installation, toml: &str) {
    std::fs::create_dir_all(install.config_dir()).unwrap();
    std::fs::write(install.config_dir().join("config.toml"), toml).unwrap();
}

/// A field of `/proc/<pid>/status`, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// The database's bytes on disk, its write-ahead log included.
fn database_bytes(install: &Installation) -> u64 {
    ["pincer.db", "pincer.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(install.home().join(name)).ok())
        .map(|meta| meta.len())
        .sum()
}

/// Asks `family` to run its hostile script and, while it runs, `main` to
/// answer a ping; calls `watch` every 100 ms until the hostile reply is in.
/// Returns the hostile reply's event.
fn flood_while_main_works(daemon: &DaemonProcess, mut watch: impl FnMut()) -> (Value, Value) {
    let mut hostile = daemon.control();
    hostile.request(json!({"op": "watch"}));
    let id = hostile.send("family", "@pincer go");
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let reply = hostile.reply_to(id);
        done.send(()).unwrap();
        reply
    });
    // Main is asked once the flood is under way.
    std::thread::sleep(Duration::from_secs(2));
    let main = std::thread::spawn({
        let mut control = daemon.control();
        move || control.ask("main", "ping")
    });
    while finished.recv_timeout(Duration::from_millis(100)).is_err() {
        watch();
    }
    (waiter.join().unwrap(), main.join().unwrap())
}

fn assert_pong(main: &Value) {
    assert_eq!(main["text"], "pong", "main was not answered: {main}");
    assert_eq!(main["failed"], false, "{main}");
}

/// Before: 40 parallel 32 MiB model requests took the host to ~1.3 GiB, and
/// 8 MiB plain-HTTP bodies to a destination no rule allows were each read
/// whole before the refusal. Contained by: model bodies read one at a time
/// per invocation (`model_request_bytes`), egress decided on the head.
#[test]
fn large_bodies_in_parallel_cost_the_host_one_body_at_a_time() {
    let install = Installation::new();
    install.add_group("family");
    // nc leaves when its input ends: each request holds it open (sleep)
    // until the host has answered.
    let script = "cd /tmp; i=0
while [ $i -lt 16 ]; do
  { printf 'POST /v1/messages HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: 33554000\\r\\nConnection: close\\r\\n\\r\\n'; head -c 33554000 /dev/zero; sleep 20; } | nc 127.0.0.1 3128 > m$i 2>&1 &
  { printf 'POST http://192.0.2.1/upload HTTP/1.1\\r\\nHost: 192.0.2.1\\r\\nContent-Length: 8000000\\r\\nConnection: close\\r\\n\\r\\n'; head -c 8000000 /dev/zero; } | nc 127.0.0.1 3128 > e$i 2>&1 &
  i=$((i+1))
done
wait
grep -h '^HTTP' m* | sort | uniq -c";
    let model = model_running(script);
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let pid = daemon.child.id();
    assert_pong(&daemon.control().ask("main", "ping"));
    let before = status_kb(pid, "VmHWM:");

    let (hostile, main) = flood_while_main_works(&daemon, || {});
    assert_pong(&main);
    let text = hostile["text"].as_str().unwrap();
    assert!(text.contains("16 HTTP/1.1 400"), "{text}");
    // Refused on its head, each plain-HTTP request: how many the host saw
    // is in the audit (a client that is still writing may miss the answer).
    let refused = |kind: &str| {
        events(
            install
                .audit_of_kind(kind)
                .iter()
                .filter(|e| e["group"] == "family" && e["allowed"] == false),
        )
    };
    assert_eq!(refused("model"), 16);
    assert_eq!(refused("egress"), 16);
    let grown_mib = (status_kb(pid, "VmHWM:") - before) / 1024;
    eprintln!("the host's peak memory grew by {grown_mib} MiB");
    // 16 × 32 MiB + 16 × 8 MiB = 640 MiB if they were all held at once.
    assert!(
        grown_mib < 200,
        "the host's peak memory grew by {grown_mib} MiB"
    );
}

/// Before: every connection to the socket was accepted (1,100 pinned a daemon
/// at 1024 descriptors). Contained by `[limits] connections`: the rest wait
/// in the kernel's queue, holding no descriptor of the host's.
#[test]
fn idle_connections_beyond_the_cap_hold_no_host_descriptor() {
    let install = Installation::new();
    install.add_group("family");
    write_config(&install, "[limits]\nconnections = 4\n");
    let script = "i=0
while [ $i -lt 40 ]; do sleep 30 | nc 127.0.0.1 3128 > /dev/null 2>&1 & i=$((i+1)); done
sleep 8
killall nc sleep 2>/dev/null; wait; echo held 40";
    let model = model_running(script);
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let pid = daemon.child.id();
    assert_pong(&daemon.control().ask("main", "ping"));
    let before = open_descriptors(pid);
    let mut most = before;
    let (hostile, main) = flood_while_main_works(&daemon, || {
        most = most.max(open_descriptors(pid));
    });
    assert_pong(&main);
    assert!(
        hostile["text"].as_str().unwrap().starts_with("held 40"),
        "{hostile}"
    );
    // Four connections, plus what two invocations use anyway (engine
    // connections, attach streams, sockets): far from forty.
    eprintln!("the host's descriptors went from {before} to {most}");
    assert!(
        most - before < 4 + 20,
        "the host's descriptors went from {before} to {most}"
    );
}

/// Before: each refused host-API call wrote the agent's own path (≈60 KiB)
/// into the audit: 3,000 calls added 175 MiB. Contained by
/// `audit_field_bytes` and `audit_rows_per_minute`: the flood is one row
/// with a count.
#[test]
fn a_flood_of_refused_calls_is_counted_not_written() {
    let install = Installation::new();
    install.add_group("family");
    let script = "long=$(head -c 61440 /dev/zero | tr '\\0' a)
i=0
{ while [ $i -lt 2000 ]; do
    printf 'POST /host/v1/%s%s HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\n\\r\\n{}' $long $i
    i=$((i+1))
  done
  printf 'POST /host/v1/last HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}'
  sleep 5
} | nc 127.0.0.1 3128 | grep -o 'HTTP/1.1 404' | wc -l";
    let model = model_running(script);
    // Measured with no daemon running: its write-ahead log checkpointed
    // into the file (while it runs, the log alone can hold ~4 MiB).
    let before = database_bytes(&install);
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    assert_pong(&daemon.control().ask("main", "ping"));
    let (hostile, main) = flood_while_main_works(&daemon, || {});
    assert_pong(&main);
    assert!(
        hostile["text"].as_str().unwrap().starts_with("2001\n"),
        "{hostile}"
    );
    assert_eq!(daemon.terminate(), Some(0));
    let grown = database_bytes(&install) - before;
    eprintln!("the database grew by {grown} bytes");
    assert!(grown < 1024 * 1024, "the database grew by {grown} bytes");

    let refused: Vec<Value> = install
        .audit_of_kind("host_api")
        .into_iter()
        .filter(|e| e["group"] == "family")
        .collect();
    let floods = install.audit_of_kind("flood");
    let counted = events(refused.iter().chain(&floods));
    assert_eq!(counted, 2001, "every refusal is counted");
    assert!(refused.len() <= 2 * 60, "{} rows", refused.len());
    assert!(
        refused
            .iter()
            .all(|e| e["action"].as_str().unwrap().len() < 1100),
        "fields are cut"
    );
}

/// Before: 300 tasks with 16 KB prompts each fired every minute, and their
/// batch, longer than an invocation takes, wedged the group in
/// `processing`. Contained by `tasks_per_group` and `task_prompt_bytes`,
/// and by `prompt_bytes`: the batch loses its oldest messages and runs.
#[test]
fn a_flood_of_tasks_is_capped_and_their_batch_still_runs() {
    let install = Installation::new();
    install.add_group("family");
    write_config(
        &install,
        "[limits]\ntasks_per_group = 10\nprompt_bytes = \"16KiB\"\n",
    );
    // Every task runs once, a few seconds from now: together.
    let script = "at=$(date -u -d @$(( $(date +%s) + 8 )) +%Y-%m-%dT%H:%M:%SZ)
task() { printf '{\"prompt\":\"%s\",\"schedule\":\"once\",\"value\":\"%s\"}' $(head -c $1 /dev/zero | tr '\\0' t) $at; }
ask() { printf 'POST /host/v1/schedule_task HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %s\\r\\n\\r\\n%s' ${#1} $1; }
big=$(task 16000); small=$(task 4000)
i=0
{ ask $big
  while [ $i -lt 300 ]; do ask $small; i=$((i+1)); done
  printf 'POST /host/v1/list_tasks HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}'
  sleep 3
} | nc 127.0.0.1 3128 | grep -o 'HTTP/1.1 [0-9]*' | sort | uniq -c";
    let model = model_running(script);
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let mut watcher = daemon.control();
    watcher.request(json!({"op": "watch"}));
    let (hostile, main) = flood_while_main_works(&daemon, || {});
    assert_pong(&main);
    let text = hostile["text"].as_str().unwrap();
    assert!(text.contains(" 11 HTTP/1.1 200\n"), "{text}");
    assert!(text.contains(" 1 HTTP/1.1 400\n"), "{text}");
    assert!(text.contains(" 290 HTTP/1.1 429\n"), "{text}");

    // The ten tasks fire together; their batch (40 KB, more than the
    // 16 KiB an invocation takes here) is answered, not stuck.
    let mut answered = 0;
    while answered < 10 {
        let event = watcher.next_event();
        if event["event"] == "reply" && event["group"] == "family" && event["text"] == "batch ok" {
            assert_eq!(event["failed"], false, "{event}");
            answered += event["answers"].as_array().unwrap().len();
        }
    }
    let batch = model
        .requests()
        .into_iter()
        .map(|r| latest_prompt(&r))
        .find(|prompt| prompt.contains("Messages since"))
        .expect("the tasks ran as one batch");
    assert!(
        batch.contains("older message(s) left out"),
        "the batch says what it left out: {}",
        &batch[..200]
    );
}

/// Before: 200,000 empty lines on the runner's stdout became 200,000 WARN
/// lines of the host's log. Contained by `junk_lines`: a few are logged,
/// and past the cap the invocation is ended, with why in the audit.
#[test]
fn a_runner_writing_junk_is_ended_and_the_log_stays_small() {
    let install = Installation::new();
    install.add_group("family");
    let script = "head -c 200000 /dev/zero | tr '\\0' '\\n' > /proc/$PPID/fd/1; echo wrote";
    let model = model_running(script);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--group", "family", "@pincer go"])
        .env("RUST_LOG", "pincer=info")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("junk_lines"), "{stderr}");
    let lines = stderr.lines().count();
    eprintln!("{lines} lines ({} bytes) of log", stderr.len());
    assert!(lines < 50, "{lines} lines of log");
    let ended: Vec<Value> = install
        .audit_of_kind("spawn")
        .into_iter()
        .filter(|e| e["action"] == "end_container")
        .collect();
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert!(ended[0]["reason"].as_str().unwrap().contains("junk_lines"));
}

/// Before: a group's folder had no size limit. Contained by
/// `group_folder_bytes`: past it, the owner is told and the group's next
/// message is refused until there is room.
#[test]
fn a_group_over_its_folder_quota_is_refused_until_there_is_room() {
    let install = Installation::new();
    install.add_group("family");
    write_config(&install, "[limits]\ngroup_folder_bytes = \"4MiB\"\n");
    let model = model_running("head -c 10000000 /dev/zero > /workspace/group/big; echo filled");
    let run = || run_family(&install, &model);
    let first = run();
    assert!(first.status.success(), "{}", text(&first));
    let over = install.audit_of_kind("quota");
    assert_eq!(over.len(), 1, "{over:?}");
    assert!(
        over[0]["reason"]
            .as_str()
            .unwrap()
            .contains("over their quota")
    );

    let second = run();
    assert!(!second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains("group_folder_bytes"),
        "{}",
        text(&second)
    );
    let started = install
        .audit_of_kind("spawn")
        .into_iter()
        .filter(|e| e["action"] == "create_container")
        .count();
    assert_eq!(started, 1, "no container starts for a group over its quota");

    // Room made, the group works again.
    std::fs::remove_file(install.home().join("groups/family/big")).unwrap();
    let third = run();
    assert!(third.status.success(), "{}", text(&third));
}

/// Before: `pincer audit`, `pincer tasks list` and a reply printed an
/// agent's control characters raw (a fake audit row, the owner's clipboard
/// written by OSC 52). Now every one is shown escaped; `--json` is exact.
#[test]
fn what_an_agent_wrote_reaches_the_terminal_escaped() {
    let install = Installation::new();
    install.add_group("family");
    let send = r#"{"chat":"\u001b[2K\rtest:family allowed","text":"x"}"#;
    let task = r#"{"prompt":"\u001b]52;c;aGk=\u0007 hi","schedule":"once","value":"2099-01-01T00:00:00Z"}"#;
    let script = format!(
        "for b in '{send}' '{task}'; do p=send_message; case $b in *prompt*) p=schedule_task;; esac
  {{ printf 'POST /host/v1/%s HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s' $p ${{#b}} \"$b\"; sleep 1; }} | nc 127.0.0.1 3128 | head -n 1
done"
    );
    let hostile = bash_then_echo(&script);
    let model = ScriptedModel::always(Box::new(move |request| {
        let (status, mut body) = hostile(request);
        if body["stop_reason"] == "end_turn" {
            body["content"][0]["text"] = "done \u{1b}[31mred\u{1b}]0;title\u{7}".into();
        }
        (status, body)
    }));
    let reply = run_family(&install, &model);
    assert!(reply.status.success(), "{}", text(&reply));
    let shown = |args: &[&str]| {
        let output = install.pincer(&model.url()).args(args).output().unwrap();
        assert!(output.status.success(), "{}", text(&output));
        output.stdout
    };
    let audit = shown(&["audit"]);
    let tasks = shown(&["tasks", "list"]);
    for (what, bytes) in [
        ("reply", &reply.stdout),
        ("audit", &audit),
        ("tasks", &tasks),
    ] {
        assert!(
            !bytes
                .iter()
                .any(|b| *b == 0x1b || *b == 0x07 || *b == b'\r'),
            "{what} printed a control character: {:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert!(String::from_utf8_lossy(&reply.stdout).contains("\\x1b[31mred"));
    assert!(String::from_utf8_lossy(&audit).contains("\\x1b[2K\\x0dtest:family"));
    assert!(String::from_utf8_lossy(&tasks).contains("\\x1b]52;c;aGk=\\x07"));
    // Scripts get the exact text.
    let json = String::from_utf8(shown(&["tasks", "list", "--json"])).unwrap();
    let listed: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed[0]["prompt"], "\u{1b}]52;c;aGk=\u{7} hi");
}

/// Before: a key written with JSON escapes inside a `send_message` body was
/// decoded and stored for delivery. Now the guard decodes before matching
/// (JSON escapes, percent-encoding, hex, base64).
#[test]
fn the_key_in_disguise_does_not_leave_in_a_message() {
    let install = Installation::new();
    install.add_group("family");
    let escaped = TEST_KEY.replace('-', "\\u002d");
    let hex: String = TEST_KEY.bytes().map(|b| format!("{b:02x}")).collect();
    let base64 = {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in TEST_KEY.as_bytes().chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    };
    let mut script = String::new();
    for text in [escaped, hex, base64] {
        let body = format!(r#"{{"chat":"test:family","text":"look: {text}"}}"#);
        script.push_str(&format!(
            "b='{body}'; {{ printf 'POST /host/v1/send_message HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s' ${{#b}} \"$b\"; sleep 1; }} | nc 127.0.0.1 3128 | head -n 1\n"
        ));
    }
    let model = ScriptedModel::always(bash_then_echo(&script));
    let output = run_family(&install, &model);
    assert!(output.status.success(), "{}", text(&output));
    let answer = String::from_utf8_lossy(&output.stdout);
    assert_eq!(answer.matches("HTTP/1.1 403").count(), 3, "{answer}");
    let refused = install.audit_of_kind("host_api");
    assert!(refused.iter().all(|e| e["allowed"] == false), "{refused:?}");
    let counted = events(&refused);
    assert_eq!(counted, 3, "{refused:?}");
}

/// Before: out of descriptors, the control socket's accept loop spun a core
/// while a client waited. Now a failed accept backs off.
#[test]
fn the_control_socket_out_of_descriptors_does_not_spin() {
    let install = Installation::new();
    let model = ScriptedModel::always(say("pong"));
    // A daemon whose hard limit on open files is low, as on many hosts.
    let mut command = install.pincer(&model.url());
    command.env("RUST_LOG", "pincer=warn");
    let mut limited = std::process::Command::new("sh");
    limited
        .arg("-c")
        .arg("ulimit -n 48 && exec \"$0\" serve")
        .arg(command.get_program())
        .envs(command.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stderr(std::process::Stdio::null());
    let mut daemon = limited.spawn().unwrap();
    let socket = install.home().join("pincer.sock");
    assert!(wait_for(Duration::from_secs(60), || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    }));
    let held: Vec<_> = (0..80)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&socket).ok())
        .collect();
    let cpu = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", daemon.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let before = cpu();
    std::thread::sleep(Duration::from_secs(3));
    let ticks = cpu() - before;
    eprintln!("the daemon used {ticks} ticks of CPU in 3 s");
    drop(held);
    let _ = daemon.kill();
    let _ = daemon.wait();
    // A spinning loop takes ~300 ticks (100 a second); backing off, a few.
    assert!(ticks < 100, "the daemon used {ticks} ticks of CPU in 3 s");
}

/// Docker's API has no `nosuid`/`nodev`/`noexec` for bind mounts, so the
/// group folder keeps the flags of the host file system it is on. What a
/// device node in it gives an agent (one the owner left there, or any the
/// host made): nothing, because the container's device cgroup admits only
/// the engine's few standard devices, and the agent has no capability to
/// make one of its own.
#[test]
fn a_device_node_in_the_group_folder_cannot_be_opened() {
    let install = Installation::new();
    install.add_group("family");
    let folder = install.home().join("groups/family");
    std::fs::create_dir_all(&folder).unwrap();
    // The kernel's log (1:11) and memory (1:1), readable by anyone here.
    for (name, minor) in [("kmsg", "11"), ("mem", "1")] {
        let made = std::process::Command::new("mknod")
            .args(["-m", "0666"])
            .arg(folder.join(name))
            .args(["c", "1", minor])
            .status()
            .unwrap();
        assert!(made.success());
    }
    let model = ScriptedModel::always(bash_then_echo(
        "for d in kmsg mem; do head -c 16 /workspace/group/$d > /dev/null 2>&1 && echo \"$d opened\" || echo \"$d refused\"; done
mknod /workspace/group/made c 1 3 2>/dev/null && echo made || echo \"mknod refused\"",
    ));
    let output = run_family(&install, &model);
    assert!(output.status.success(), "{}", text(&output));
    let answer = String::from_utf8_lossy(&output.stdout);
    for expected in ["kmsg refused", "mem refused", "mknod refused"] {
        assert!(answer.contains(expected), "{expected}: {answer}");
    }
}

/// A container that never reads its stdin held the host's write forever
/// (no output deadline covers it). Contained by `stdin_timeout`: past it,
/// the container is killed and removed.
#[tokio::test]
async fn a_container_that_never_reads_its_input_is_killed_at_the_stdin_deadline() {
    use pincer_core::sandbox::{ContainerSpec, Deadlines, Resources, Sandbox, SandboxError};
    let install = Installation::new();
    let paths = pincer_assistant::config::Paths::under(install.dir.path());
    let engine =
        pincer_core::sandbox::EngineEndpoint::from_docker_host(std::env::var("DOCKER_HOST").ok());
    let sandbox = Sandbox::connect(&paths, engine).await.unwrap();
    let spec = ContainerSpec {
        image: pincer_core::sandbox::default_image(),
        command: Some(vec!["sleep".into(), "120".into()]),
        user: pincer_core::mounts::ContainerUser::for_this_host(),
        mounts: Vec::new(),
        resources: Resources::default(),
        labels: Default::default(),
        working_dir: "/".into(),
        runtime: None,
    };
    // Far more than the pipes and the engine's buffers between us hold.
    let input = vec![b'x'; 64 * 1024 * 1024];
    let deadlines = Deadlines {
        total: Duration::from_secs(300),
        idle: None,
        stdin: Duration::from_secs(3),
    };
    let result = sandbox
        .run(&spec, &input, deadlines, &mut |_| {
            std::ops::ControlFlow::Continue(())
        })
        .await;
    assert!(
        matches!(result, Err(SandboxError::StdinTimedOut(_))),
        "{result:?}"
    );
    assert!(
        containers_labelled(&format!("pincer.installation={}", sandbox.installation())).is_empty(),
        "the container is removed"
    );
}

/// Before: an agent could send its chat as many messages as it liked (each
/// up to 16 KiB), flooding the owner. Contained by
/// `messages_per_invocation`: the rest are refused, and counted in the audit.
#[test]
fn a_flood_of_messages_stops_at_the_invocations_cap() {
    let install = Installation::new();
    install.add_group("family");
    let script = "b='{\"chat\":\"test:family\",\"text\":\"buy now\"}'
i=0
{ while [ $i -lt 100 ]; do
    printf 'POST /host/v1/send_message HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: %s\\r\\n\\r\\n%s' ${#b} \"$b\"
    i=$((i+1))
  done
  printf 'POST /host/v1/list_tasks HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}'
  sleep 3
} | nc 127.0.0.1 3128 | grep -o 'HTTP/1.1 [0-9]*' | sort | uniq -c";
    let model = model_running(script);
    let output = run_family(&install, &model);
    assert!(output.status.success(), "{}", text(&output));
    let answer = String::from_utf8_lossy(&output.stdout);
    assert!(answer.contains(" 21 HTTP/1.1 200\n"), "{answer}");
    assert!(answer.contains(" 80 HTTP/1.1 429\n"), "{answer}");
    let store = pincer_store::Store::open(&install.home().join("pincer.db")).unwrap();
    assert_eq!(store.outgoing("test:family").unwrap().len(), 20);
    let refused = events(
        install
            .audit_of_kind("host_api")
            .iter()
            .filter(|e| e["allowed"] == false),
    );
    assert_eq!(refused, 80);
}
