//! Agents under gVisor: a real container started with runsc, where the
//! engine has it registered (Debian's `runsc`); otherwise the test says it
//! is skipped, and why.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::sync::{Arc, Mutex};

use pincer_test_support as support;
use serde_json::{Value, json};
use support::*;

fn runsc_registered() -> bool {
    let output = std::process::Command::new("docker")
        .args(["info", "--format", "{{json .Runtimes}}"])
        .output()
        .unwrap();
    let runtimes: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    runtimes.get("runsc").is_some()
}

#[test]
fn doctor_reports_whether_runsc_is_registered() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-gvisor-host"));
    let install = Installation::new();
    // The doctor also asks the model endpoint whether it takes the key.
    let model = ScriptedModel::always(say("pong"));
    let output = install
        .pincer(&model.url())
        .env("PINCER_RUNTIME", "runsc")
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let checks: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let gvisor = checks
        .iter()
        .find(|c| c["check"] == "gvisor")
        .expect("the gvisor check is there");
    if runsc_registered() {
        assert_eq!(gvisor["ok"], true, "{gvisor}");
        assert_eq!(output.status.code(), Some(0), "{checks:?}");
    } else {
        assert_eq!(gvisor["ok"], false);
        assert!(
            gvisor["detail"].as_str().unwrap().contains("daemon.json"),
            "{gvisor}"
        );
        assert_eq!(output.status.code(), Some(1));
    }
}

#[test]
fn agents_run_under_gvisor() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-gvisor-host"));
    if !runsc_registered() {
        eprintln!(
            "SKIPPED agents_run_under_gvisor: runsc is not registered with this engine \
             (install Debian's runsc and register it as SKILL.md says; .ci/run does)"
        );
        return;
    }
    let install = Installation::new();
    let runtime = Arc::new(Mutex::new(Value::Null));
    let seen = Arc::clone(&runtime);
    let label = format!("pincer.installation={}", install.id);
    let model = ScriptedModel::start(vec![
        Box::new(move |request: &Recorded| {
            let ids = containers_labelled(&label);
            *seen.lock().unwrap() = inspect(&ids[0])["HostConfig"]["Runtime"].clone();
            tool_use(
                "bash",
                json!({"command": "dmesg | head -1; id -u; echo \"net: $(ls /sys/class/net | tr '\\n' ' ')\""}),
            )(request)
        }),
        answer(|request| request.last_tool_result()),
    ]);
    let output = install
        .pincer(&model.url())
        .env("PINCER_RUNTIME", "runsc")
        .args(["run-once", "where am I?"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let seen = String::from_utf8_lossy(&output.stdout);
    assert!(seen.contains("Starting gVisor"), "not under gVisor: {seen}");
    // The agents' uid, which no host account has.
    assert!(seen.contains("65530"), "{seen}");
    // No network under gVisor either: loopback is the only interface.
    assert!(seen.contains("net: lo "), "{seen}");
    assert!(!seen.contains("eth"), "{seen}");
    assert_eq!(*runtime.lock().unwrap(), "runsc");
    assert_eq!(install.containers(), Vec::<String>::new());
}
