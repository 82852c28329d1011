//! What the owner looks at to know whether it works: `pincer status`
//! against a running daemon with a working and a queued group, `pincer logs
//! -f`, and `pincer doctor`'s findings (a missing key, a refused one, an
//! endpoint that echoes the key, a broken allowlist, configuration, a stale
//! socket, a stuck daemon). Real engine and daemon; only the model is scripted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// A child process killed when the test lets go of it, panicking or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn status_shows_a_working_group_a_queued_one_its_container_and_logs_follow() {
    let install = Installation::new();
    install.add_group("family");
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        if request.json()["messages"]
            .to_string()
            .contains("tool_result")
        {
            (200, message("finished"))
        } else {
            tool_use(
                "bash",
                json!({"command": "sleep 300", "timeout_ms": 600000}),
            )(request)
        }
    }));
    let status = || {
        let output = install
            .pincer(&model.url())
            .args(["status", "--json"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("not JSON: {}", text(&output)));
        (output.status.code(), report)
    };
    let (code, stopped) = status();
    assert_eq!(code, Some(1), "no daemon: {stopped}");
    assert_eq!(stopped["daemon"]["state"], "stopped");

    // One container at a time: main's agent works, family's message waits.
    let daemon = DaemonProcess::start(&install, &model.url(), &[("PINCER_MAX_CONCURRENT", "1")]);
    let mut follow = KillOnDrop(
        install
            .pincer(&model.url())
            .args(["logs", "--follow", "--group", "main"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let followed = gather(follow.0.stdout.take().unwrap());
    let mut control = daemon.control();
    control.request(json!({"op": "watch"}));
    let main_id = control.send("main", "work for a long time");
    loop {
        if control.next_event()["event"] == "working" {
            break;
        }
    }
    let family_id = control.send("family", "@pincer are you there?");
    assert!(wait_for(Duration::from_secs(30), || !install
        .containers()
        .is_empty()));
    // The log, followed as it is written: main's agent asked the model.
    assert!(
        wait_for(Duration::from_secs(30), || followed
            .lock()
            .unwrap()
            .contains("model request")),
        "logs -f showed: {}",
        followed.lock().unwrap()
    );

    // The usage is recorded once the model's answer is read (after the log
    // line): waited for. Counted per UTC day, so midnight between would reset it.
    let day = pincer_store::time::now()[..10].to_owned();
    let counted = wait_for(Duration::from_secs(30), || {
        status().1["groups"][0]["tokens"].as_u64() > Some(0)
    });
    assert!(
        counted || pincer_store::time::now()[..10] != day,
        "today's tokens: {}",
        status().1
    );

    let (code, report) = status();
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["daemon"]["state"], "running", "{report}");
    assert_eq!(
        report["daemon"]["status"]["pid"],
        json!(daemon.child.id()),
        "{report}"
    );
    assert_eq!(report["daemon"]["status"]["max_concurrent"], 1);
    let group = |name: &str| {
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no group {name}: {report}"))
    };
    let (main, family) = (group("main"), group("family"));
    assert_eq!(main["working"]["messages"], json!([main_id]), "{report}");
    assert_eq!(main["queued"], 0, "{report}");
    assert_eq!(family["working"], serde_json::Value::Null, "{report}");
    assert_eq!(family["queued"], 1, "{report}");
    let containers = report["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "{report}");
    assert_eq!(containers[0]["group"], "main");
    assert_eq!(containers[0]["state"], "running");

    // The human form says the same.
    let human = install.pincer(&model.url()).arg("status").output().unwrap();
    let said = String::from_utf8_lossy(&human.stdout);
    assert!(said.starts_with("daemon      running since"), "{said}");
    assert!(said.contains("\nfamily "), "{said}");

    // Main's lines only.
    drop(follow);
    assert!(
        followed
            .lock()
            .unwrap()
            .lines()
            .all(|line| line.contains("group=main")),
        "{}",
        followed.lock().unwrap()
    );

    let mut canceller = daemon.control();
    canceller.request(json!({"op": "cancel", "group": "main"}));
    let _ = control.reply_to(main_id);
    // Main's turn over, family's agent takes the one place.
    assert!(wait_for(Duration::from_secs(60), || {
        let (_, report) = status();
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "family" && g["working"].is_object() && g["queued"] == 0)
            && report["containers"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["group"] == "family" && c["state"] == "running")
            })
    }));
    canceller.request(json!({"op": "cancel", "group": "family"}));
    let _ = control.reply_to(family_id);
    // A cancelled container is removed in the background.
    assert!(wait_for(Duration::from_secs(30), || install
        .containers()
        .is_empty()));
    assert_eq!(daemon.terminate(), Some(0));
    assert_eq!(install.containers(), Vec::<String>::new());
}

#[test]
fn doctor_names_a_missing_key_a_refused_one_a_broken_allowlist_config_and_socket() {
    let install = Installation::new();
    // The endpoint accepts the installation's key only, as the real API does.
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        if request.header("x-api-key") == Some(TEST_KEY) {
            (200, message("pong"))
        } else {
            // Echoing what it was sent, as a careless proxy might.
            let sent = request.header("x-api-key").unwrap_or_default().to_owned();
            api_error(401, &format!("invalid x-api-key {sent}"))(request)
        }
    }));
    let doctor = |env: &[(&str, &str)], remove: &[&str]| {
        support::doctor(install.pincer(&model.url()), env, remove)
    };
    let find = |checks: &[Value], name: &str| {
        checks
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {checks:?}"))
    };
    let detail = |check: &Value| check["detail"].as_str().unwrap().to_owned();

    let (_, checks) = doctor(&[], &[]);
    let model_check = find(&checks, "model");
    assert_eq!(model_check["ok"], true, "{checks:?}");
    assert!(
        detail(&model_check).contains("accepted the key"),
        "{model_check}"
    );
    for name in ["config", "allowlist", "disk", "daemon"] {
        assert_eq!(find(&checks, name)["ok"], true, "{checks:?}");
    }
    let asked = model.requests().len();
    assert_eq!(asked, 1, "one small request");
    assert_eq!(model.requests()[0].json()["max_tokens"], 1);

    let (code, checks) = doctor(&[], &["ANTHROPIC_API_KEY", "PINCER_MODEL_KEY"]);
    assert_eq!(code, Some(1));
    let missing = find(&checks, "model");
    assert_eq!(missing["ok"], false);
    assert!(
        detail(&missing).contains("no model key: set ANTHROPIC_API_KEY"),
        "{missing}"
    );
    assert_eq!(model.requests().len(), asked, "no key, no request");

    let (code, checks) = doctor(&[("ANTHROPIC_API_KEY", "sk-wrong-0123456789")], &[]);
    assert_eq!(code, Some(1));
    let refused = find(&checks, "model");
    assert_eq!(refused["ok"], false);
    assert!(
        detail(&refused).contains("refused the key (401: invalid x-api-key <the key>)"),
        "{refused}"
    );
    assert!(
        !format!("{checks:?}").contains("sk-wrong-0123456789"),
        "the key is never shown: {checks:?}"
    );

    let (code, checks) = doctor(&[("PINCER_MODEL_URL", "http://127.0.0.1:1")], &[]);
    assert_eq!(code, Some(1));
    assert!(
        detail(&find(&checks, "model")).contains("is unreachable"),
        "{checks:?}"
    );

    install.allow(r#"{"allowed_roots": [{"path": "relative/path"}]}"#);
    let (code, checks) = doctor(&[], &[]);
    assert_eq!(code, Some(1));
    let allowlist = find(&checks, "allowlist");
    assert_eq!(allowlist["ok"], false);
    assert!(
        detail(&allowlist).contains("mount-allowlist.json"),
        "{allowlist}"
    );
    std::fs::remove_file(install.config_dir().join("mount-allowlist.json")).unwrap();

    std::fs::write(
        install.config_dir().join("config.toml"),
        "max_concurrent = \"many\"",
    )
    .unwrap();
    let (code, checks) = doctor(&[], &[]);
    assert_eq!(code, Some(1));
    let config = find(&checks, "config");
    assert_eq!(config["ok"], false);
    assert!(detail(&config).contains("config.toml"), "{config}");
    assert_eq!(
        find(&checks, "model")["ok"],
        false,
        "not checked without a configuration"
    );
    std::fs::remove_file(install.config_dir().join("config.toml")).unwrap();

    // A socket left by a daemon that died.
    std::fs::create_dir_all(install.home()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(install.home().join("pincer.sock")).unwrap());
    let (code, checks) = doctor(&[], &[]);
    assert_eq!(code, Some(1));
    let daemon = find(&checks, "daemon");
    assert_eq!(daemon["ok"], false);
    assert!(
        detail(&daemon).contains("left from one that died"),
        "{daemon}"
    );

    // A process that holds the daemon's lock and answers nothing.
    let lock = std::fs::File::create(install.home().join("run/daemon.lock"))
        .or_else(|_| {
            std::fs::create_dir_all(install.home().join("run"))?;
            std::fs::File::create(install.home().join("run/daemon.lock"))
        })
        .unwrap();
    lock.lock().unwrap();
    let (code, checks) = doctor(&[], &[]);
    assert_eq!(code, Some(1));
    let daemon = find(&checks, "daemon");
    assert!(
        detail(&daemon).contains("but nothing answers on"),
        "{daemon}"
    );
    drop(lock);
}
