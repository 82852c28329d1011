//! Unit tests of the model-request check: a request and a policy in, the checked bytes or a refusal out.

use super::*;
use serde_json::json;

fn policy() -> ModelPolicy {
    ModelPolicy {
        model: "claude-sonnet-4-5".into(),
        models: vec!["claude-haiku-4-5".into()],
        group_models: [("work".to_owned(), vec!["claude-opus-4-1".to_owned()])].into(),
        max_tokens: 8192,
        max_requests: 31,
        thinking_budget: 0,
        betas: vec!["allowed-beta".into()],
    }
}

fn runner_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5", "max_tokens": 8192,
        "system": [{"type": "text", "text": "You are Pincer.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "bash", "description": "run", "input_schema": {"type": "object"}}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "a b",
                 "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}}]}
        ]
    })
}

fn refused(request: &Value, betas: &[&str]) -> String {
    check(
        &serde_json::to_vec(request).unwrap(),
        betas,
        "family",
        &policy(),
    )
    .unwrap_err()
    .to_string()
}

#[test]
fn what_the_runner_sends_passes_as_it_is() {
    let body = serde_json::to_vec(&runner_request()).unwrap();
    let checked = check(&body, &["allowed-beta"], "family", &policy()).unwrap();
    let round: Value = serde_json::from_slice(&checked.body).unwrap();
    assert_eq!(round, runner_request());
    assert_eq!(checked.model, "claude-sonnet-4-5");
}

#[test]
fn ways_out_and_open_wallets_are_refused_with_where_and_why() {
    let with = |pointer: &str, value: Value| {
        let mut request = runner_request();
        *request.pointer_mut(pointer).unwrap() = value;
        request
    };
    let add = |key: &str, value: Value| {
        let mut request = runner_request();
        request[key] = value;
        request
    };
    for (request, expected) in [
        (
            add(
                "mcp_servers",
                json!([{"type": "url", "url": "https://evil"}]),
            ),
            "\"mcp_servers\" is not forwarded",
        ),
        (
            add("container", json!("c")),
            "\"container\" is not forwarded",
        ),
        (add("stream", json!(true)), "stream"),
        (
            with("/model", json!("claude-opus-4-1")),
            "model: \"claude-opus-4-1\" is not allowed",
        ),
        (
            with("/max_tokens", json!(64000)),
            "max_tokens: must be 1 to 8192",
        ),
        (
            with(
                "/messages/2/content/1/source",
                json!({"type": "url", "url": "https://evil/?d=secret"}),
            ),
            "messages[2].content[1].source.type: \"url\" sources are refused",
        ),
        (
            with(
                "/messages/2/content/1",
                json!({"type": "document", "source": {"type": "file", "file_id": "file_1"}}),
            ),
            "\"file\" sources are refused",
        ),
        (
            with(
                "/tools/0",
                json!({"type": "web_search_20250305", "name": "web_search"}),
            ),
            "tools[0].type: \"web_search_20250305\" is a server tool",
        ),
        (
            with(
                "/messages/0/content",
                json!([{"type": "server_tool_use", "id": "s", "name": "web_fetch", "input": {}}]),
            ),
            "\"server_tool_use\" blocks are not forwarded",
        ),
        (
            with("/messages/0/role", json!("system")),
            "messages[0].role",
        ),
        (
            add(
                "thinking",
                json!({"type": "enabled", "budget_tokens": 10000}),
            ),
            "thinking budget",
        ),
        (
            with(
                "/messages/0/content",
                json!([{"type": "text", "text": "x", "citations": []}]),
            ),
            "\"citations\"",
        ),
    ] {
        let err = refused(&request, &[]);
        assert!(err.contains(expected), "{expected:?} not in {err:?}");
    }
    let err = refused(&runner_request(), &["allowed-beta,mcp-client-2025-04-04"]);
    assert!(
        err.contains("\"mcp-client-2025-04-04\" is not allowed"),
        "{err}"
    );
    // Another model the owner listed is fine.
    let other = serde_json::to_vec(&json!({"model": "claude-haiku-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert!(check(&other, &[], "family", &policy()).is_ok());
    // A model the owner allows one group only.
    let work = serde_json::to_vec(&json!({"model": "claude-opus-4-1", "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}]}))
    .unwrap();
    assert!(check(&work, &[], "work", &policy()).is_ok());
    let err = check(&work, &[], "family", &policy())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not allowed"), "{err}");
}

#[test]
fn more_than_four_breakpoints_are_refused() {
    let mut request = runner_request();
    let marked = json!({"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}});
    request["messages"][0]["content"] = json!([marked, marked, marked]);
    assert!(refused(&request, &[]).contains("5 breakpoints"));
}
