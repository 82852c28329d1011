//! OpenAI-compatible chat completions as a model provider (skill
//! `openai-compatible`): Ollama, vLLM, LM Studio, or any endpoint that speaks
//! `POST /v1/chat/completions`.
//!
//! The agent keeps speaking the Messages API to the host; this module
//! translates each request to chat completions (system prompt, tools as
//! functions, tool calls and their results) and each answer back, so the
//! runner's tool loop works unchanged, and the key stays on the host
//! (`Authorization: Bearer`).

use std::sync::Arc;

use hyper::header::{AUTHORIZATION, HeaderName};
use pincer_assistant::Registry;
use pincer_assistant::registry::Provider;
use serde_json::{Value, json};

/// Links the provider as `openai`: with `model_provider = "openai"`, the
/// gateway sends each model request through it (the binary's registry file
/// calls this, one line).
pub fn register(registry: &mut Registry) {
    registry.add_provider("openai", Arc::new(OpenAiCompatible));
}

/// The provider.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAiCompatible;

impl Provider for OpenAiCompatible {
    fn path(&self) -> &'static str {
        "/v1/chat/completions"
    }

    fn credential(&self, key: &str) -> (HeaderName, String) {
        (AUTHORIZATION, format!("Bearer {key}"))
    }

    fn request(&self, messages_request: &[u8]) -> Result<Vec<u8>, String> {
        let request: Value =
            serde_json::from_slice(messages_request).map_err(|err| err.to_string())?;
        serde_json::to_vec(&to_chat(&request)?).map_err(|err| err.to_string())
    }

    fn response(&self, status: u16, body: &[u8]) -> (u16, Vec<u8>) {
        let parsed: Result<Value, _> = serde_json::from_slice(body);
        let translated = match (status, parsed) {
            (200, Ok(answer)) => from_chat(&answer),
            (_, parsed) => {
                let message = parsed
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| {
                        String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned()
                    });
                Err(format!("the model provider answered {status}: {message}"))
            }
        };
        match translated {
            Ok(answer) => (200, answer.to_string().into_bytes()),
            Err(message) => {
                let status = if status == 200 { 502 } else { status };
                (
                    status,
                    json!({"type": "error", "error": {"type": "api_error", "message": message}})
                        .to_string()
                        .into_bytes(),
                )
            }
        }
    }
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Messages API request → chat completions request.
pub fn to_chat(request: &Value) -> Result<Value, String> {
    let mut messages = Vec::new();
    let system = text_of(&request["system"]);
    if !system.is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for message in request["messages"].as_array().ok_or("no `messages`")? {
        let role = message["role"].as_str().ok_or("a message without a role")?;
        let blocks = match &message["content"] {
            Value::String(text) => {
                messages.push(json!({"role": role, "content": text}));
                continue;
            }
            Value::Array(blocks) => blocks,
            _ => return Err("a message's content is neither text nor blocks".into()),
        };
        if role == "assistant" {
            let calls: Vec<Value> = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| {
                    json!({"id": b["id"], "type": "function",
                           "function": {"name": b["name"], "arguments": b["input"].to_string()}})
                })
                .collect();
            let text = text_of(&message["content"]);
            let mut out = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { text.into() }});
            if !calls.is_empty() {
                out["tool_calls"] = calls.into();
            }
            messages.push(out);
        } else {
            for block in blocks.iter().filter(|b| b["type"] == "tool_result") {
                messages.push(json!({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text_of(&block["content"])}));
            }
            let text = text_of(&message["content"]);
            if !text.is_empty() {
                messages.push(json!({"role": "user", "content": text}));
            }
        }
    }
    let mut chat = json!({"model": request["model"], "messages": messages});
    if let Some(max) = request["max_tokens"].as_u64() {
        chat["max_tokens"] = max.into();
    }
    if let Some(tools) = request["tools"].as_array().filter(|t| !t.is_empty()) {
        chat["tools"] = tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]}}))
            .collect::<Vec<_>>()
            .into();
    }
    Ok(chat)
}

/// Chat completions answer → Messages API answer.
pub fn from_chat(answer: &Value) -> Result<Value, String> {
    let choice = &answer["choices"][0];
    let message = &choice["message"];
    if message.is_null() {
        return Err("the answer has no choices[0].message".into());
    }
    let mut content = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
        let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}));
    }
    let stop_reason = match choice["finish_reason"].as_str() {
        Some("tool_calls") => "tool_use",
        Some("length") => "max_tokens",
        _ if content.iter().any(|b| b["type"] == "tool_use") => "tool_use",
        _ => "end_turn",
    };
    Ok(json!({
        "id": answer["id"], "type": "message", "role": "assistant", "model": answer["model"],
        "content": content, "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
                  "output_tokens": answer["usage"]["completion_tokens"].as_u64().unwrap_or(0)}
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_round_trip_translates_both_ways() {
        let request = json!({
            "model": "llama3.1", "max_tokens": 100, "system": "be brief",
            "tools": [{"name": "bash", "description": "run", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": "list files"},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"},
                    {"type": "tool_use", "id": "call_1", "name": "bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "a.txt"}]}
            ]
        });
        let chat = to_chat(&request).unwrap();
        assert_eq!(
            chat["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(
            chat["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"command\":\"ls\"}"
        );
        assert_eq!(
            chat["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "a.txt"})
        );
        assert_eq!(
            chat["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        let answer = from_chat(&json!({"id": "x", "model": "m", "choices": [{"finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_2", "type": "function",
            "function": {"name": "bash", "arguments": "{\"command\":\"pwd\"}"}}]}}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}))
        .unwrap();
        assert_eq!(answer["stop_reason"], "tool_use");
        assert_eq!(answer["content"][0]["input"], json!({"command": "pwd"}));
        assert_eq!(answer["usage"]["output_tokens"], 4);
    }

    #[test]
    fn register_links_the_provider_as_openai() {
        let registry = Registry::with(register);
        let provider = registry.provider("openai").unwrap().unwrap();
        assert_eq!(provider.path(), "/v1/chat/completions");
    }
}
