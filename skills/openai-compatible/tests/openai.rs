//! The OpenAI-compatible provider end to end: a real container, the real
//! agent, and a scripted server that speaks chat completions (tool calls
//! included) on loopback, as Ollama or vLLM would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;
use serde_json::{Value, json};
use support::*;

fn chat_answer(message: Value, finish: &str) -> (u16, Value) {
    (
        200,
        json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "llama3.1",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}),
    )
}

#[test]
fn the_tool_loop_runs_over_chat_completions_with_the_key_on_the_host() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-openai-compatible-host"));
    let install = Installation::new();
    let model = ScriptedModel::start(vec![
        Box::new(|_: &Recorded| {
            chat_answer(
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "bash", "arguments": "{\"command\":\"echo from-the-container; id -u\"}"}}]}),
                "tool_calls",
            )
        }),
        Box::new(|request: &Recorded| {
            let tool = request.json()["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["role"] == "tool")
                .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            chat_answer(
                json!({"role": "assistant", "content": format!("done: {tool}")}),
                "stop",
            )
        }),
    ]);
    let output = install
        .pincer(&model.url())
        .env("PINCER_MODEL_PROVIDER", "openai")
        .env("PINCER_MODEL", "llama3.1")
        .env("PINCER_MODEL_KEY", "ollama-key-123456")
        .args(["run-once", "--json", "say something from the box"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let answer = result["text"].as_str().unwrap();
    assert!(
        answer.starts_with("done: from-the-container\n65530"),
        "{answer}"
    );

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(
            request.header("authorization"),
            Some("Bearer ollama-key-123456")
        );
        assert_eq!(request.header("x-api-key"), None);
        assert_eq!(request.json()["model"], "llama3.1");
    }
    let first = requests[0].json();
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(
        first["messages"][1],
        json!({"role": "user", "content": "say something from the box"})
    );
    assert!(
        first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["function"]["name"] == "bash")
    );
    let second = requests[1].json();
    assert_eq!(second["messages"][2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(second["messages"][3]["role"], "tool");
    assert_eq!(second["messages"][3]["tool_call_id"], "call_1");
}

#[test]
fn a_provider_error_comes_back_as_an_agent_failure() {
    support::use_host(env!("CARGO_BIN_EXE_pincer-skill-openai-compatible-host"));
    let install = Installation::new();
    let model = ScriptedModel::start(vec![Box::new(|_: &Recorded| {
        (
            404,
            json!({"error": {"message": "model 'llama9' not found", "type": "not_found"}}),
        )
    })]);
    let output = install
        .pincer(&model.url())
        .env("PINCER_MODEL_PROVIDER", "openai")
        .env("PINCER_MODEL_KEY", "k-123456789")
        .args(["run-once", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("model 'llama9' not found"),
        "{}",
        text(&output)
    );
}
