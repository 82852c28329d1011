//! An agent asks for more access with `request_access`, from a real
//! container: nothing changes until the owner approves, an approval writes
//! the group's rule, a refusal is remembered, and a non-main group asks
//! only so often.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use serde_json::{Value, json};
use support::*;

/// Runs `steps` (tool calls) in `group`'s container; the answer is their
/// results, parsed (the session's earlier ones left out).
fn run(install: &Installation, group: &str, steps: Vec<Value>) -> Vec<Value> {
    let count = steps.len();
    let mut script: Vec<Step> = steps
        .into_iter()
        .map(|step| tool_use(step["tool"].as_str().unwrap(), step["input"].clone()))
        .collect();
    script.push(answer(|request| {
        serde_json::to_string(&request.all_tool_results()).unwrap()
    }));
    let model = ScriptedModel::start(script);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--group", group, "go"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let results: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    results[results.len() - count..]
        .iter()
        .map(|r| serde_json::from_str(r).unwrap_or_else(|_| panic!("not JSON: {r}")))
        .collect()
}

fn step(tool: &str, input: Value) -> Value {
    json!({"tool": tool, "input": input})
}

fn changes(install: &Installation, args: &[&str]) -> std::process::Output {
    install.owner(&[&["changes"], args].concat())
}

fn told(install: &Installation) -> Vec<String> {
    store(install)
        .outgoing(pincer_store::MAIN_CHAT)
        .unwrap()
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

#[test]
fn an_egress_host_is_refused_until_the_owner_approves_the_agents_request() {
    let install = Installation::new();
    install.add_group("family");
    let destination = Destination::start();
    let rule = format!("127.0.0.1:{}", destination.port);
    let url = format!("http://{rule}/page");
    let results = run(
        &install,
        "family",
        vec![
            step("web_fetch", json!({"url": url})),
            step(
                "request_access",
                json!({"kind": "egress", "what": rule, "reason": "the recipe site"}),
            ),
            step(
                "request_access",
                json!({"kind": "egress", "what": rule, "reason": "please"}),
            ),
            step("web_fetch", json!({"url": url})),
        ],
    );
    assert_eq!(results[0]["ok"], false, "{}", results[0]);
    assert_eq!(results[1]["result"]["status"], "asked", "{}", results[1]);
    let id = results[1]["result"]["request"].as_i64().unwrap();
    assert_eq!(results[2]["result"]["status"], "waiting for the owner");
    assert_eq!(results[3]["ok"], false, "an agent never approves itself");
    assert!(destination.hits().is_empty());
    let notices = told(&install);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains(&format!("Group family asks to reach {rule}"))
            && notices[0].contains("the recipe site")
            && notices[0].contains(&format!("pincer changes approve {id}")),
        "{notices:?}"
    );
    let listed = changes(&install, &["--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["type"], "access_request");
    assert_eq!(listed["what"], rule.as_str());

    let approved = changes(&install, &["approve", &id.to_string()]);
    assert!(approved.status.success(), "{}", text(&approved));
    let results = run(
        &install,
        "family",
        vec![step("web_fetch", json!({"url": url}))],
    );
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[0]["result"]["body"], "egress-ok /page");
    // The same rule `pincer egress allow` writes, audited with the request.
    let rules = install
        .pincer("http://127.0.0.1:1")
        .args(["egress", "list", "family", "--json"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&rules.stdout).contains(&rule),
        "{}",
        text(&rules)
    );
    let audit = install.audit_of_kind("access");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["action"], "approve_access");
    assert_eq!(audit[0]["reason"], "the recipe site");
}

#[test]
fn a_refusal_is_remembered_and_a_group_asks_only_so_often() {
    let install = Installation::new();
    install.add_group("family");
    std::fs::create_dir_all(install.config_dir()).unwrap();
    std::fs::write(
        install.config_dir().join("config.toml"),
        "[limits]\naccess_requests_per_day = 2\n",
    )
    .unwrap();
    let ask = |what: &str| {
        step(
            "request_access",
            json!({"kind": "egress", "what": what, "reason": "just because"}),
        )
    };
    let results = run(&install, "family", vec![ask("example.org")]);
    let id = results[0]["result"]["request"].as_i64().unwrap();
    let refused = changes(&install, &["refuse", &id.to_string()]);
    assert!(refused.status.success(), "{}", text(&refused));
    assert_eq!(
        changes(&install, &["approve", &id.to_string()])
            .status
            .code(),
        Some(2)
    );

    let results = run(
        &install,
        "family",
        vec![
            ask("example.org"),
            step(
                "request_access",
                json!({"kind": "folder", "what": "/home", "reason": "more room", "read_write": true}),
            ),
            ask("example.net"),
            step(
                "request_access",
                json!({"kind": "egress", "what": "x", "reason": "line\nbreak"}),
            ),
            step(
                "request_access",
                json!({"kind": "folder", "what": "//home/.", "reason": "again", "read_write": true}),
            ),
        ],
    );
    let error = |i: usize| results[i]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error(0).contains("the owner refused this"),
        "{}",
        results[0]
    );
    assert_eq!(results[1]["result"]["status"], "asked", "{}", results[1]);
    assert!(error(2).contains("2 times a day"), "{}", results[2]);
    assert!(error(3).contains("one line"), "{}", results[3]);
    assert_eq!(
        results[4]["result"]["status"], "waiting for the owner",
        "one spelling per folder"
    );
    // Two requests, two notices: the refused one was not asked again.
    assert_eq!(told(&install).len(), 2, "{:?}", told(&install));

    // Main's agent asks without a daily limit, and still only the owner decides.
    let results = run(
        &install,
        "main",
        vec![ask("a.example"), ask("b.example"), ask("c.example")],
    );
    assert!(
        results.iter().all(|r| r["result"]["status"] == "asked"),
        "{results:?}"
    );
    let listed = changes(&install, &["--json"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 4);
}
