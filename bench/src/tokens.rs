//! `cargo xtask bench tokens`: how much of the model input Anthropic's
//! prompt caching would serve from cache, for the requests Pincer really
//! sends.
//!
//! A scripted model (a loopback server speaking the Messages API) drives one
//! group through a 20-turn invocation (19 tool calls, then an answer) and
//! then a second invocation of the same, resumed session; it records every
//! request as the gateway forwarded it. The figure is computed from those
//! requests by the caching rule: a request reads from cache the longest
//! prefix it starts with that ends at a breakpoint (`cache_control`) an
//! earlier request wrote; everything else is input at full price. Sizes are
//! bytes of the serialised blocks, standing in for tokens. The baseline is
//! the same requests without their breakpoints, which is what Pincer sent
//! before it marked any: nothing is ever read from cache.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use pincer_assistant::config::Paths;
use pincer_assistant::image::{ImageSources, build_image};
use pincer_core::group::GroupName;
use pincer_core::sandbox::ImageKind;
use serde_json::{Value, json};

/// Tool calls of the first invocation (its turns are one more).
const TOOL_TURNS: usize = 19;

pub(crate) async fn run() -> anyhow::Result<()> {
    let recorded = Arc::new(Mutex::new(Vec::<Value>::new()));
    let model_url = scripted_model(Arc::clone(&recorded))?;
    let dir = std::env::temp_dir().join(format!("pincer-bench-tokens-{}", std::process::id()));
    let paths = Paths::under(&dir);
    let (host, settings) = crate::bench_host(&paths, &model_url, &[]).await?;
    let image = settings.image;
    // The runner from this source tree, not whatever image is lying around.
    build_image(
        host.sandbox(),
        ImageKind::Minimal,
        &image,
        &ImageSources::default(),
        &|_| {},
    )
    .await?;
    host.store()
        .add_group(&GroupName::new("bench")?, "bench:tokens", None)?;
    let group = GroupName::new("bench")?;
    let mut ignore = |_: &pincer_protocol::Event| {};
    host.invoke(&group, "look around, one step at a time", &[], &mut ignore)
        .await
        .context("the first invocation")?;
    let first = recorded.lock().map(|r| r.len()).unwrap_or(0);
    host.invoke(&group, "and now, what did you find?", &[], &mut ignore)
        .await
        .context("the second invocation")?;
    let _ = std::fs::remove_dir_all(&dir);

    let requests = recorded
        .lock()
        .map_err(|_| anyhow::anyhow!("the recorder panicked"))?
        .clone();
    let with = cached_share(&requests);
    let without = cached_share(&requests.iter().map(strip_breakpoints).collect::<Vec<_>>());
    println!(
        "bench tokens: {} requests ({first} in a {}-turn invocation, {} in a resumed one)",
        requests.len(),
        TOOL_TURNS + 1,
        requests.len() - first
    );
    println!("input served from cache, requests after the first:");
    println!("  without breakpoints (before): {:>5.1} %", without * 100.0);
    println!("  with Pincer's breakpoints:    {:>5.1} %", with * 100.0);
    Ok(())
}

/// The share of input bytes of every request after the first that the
/// caching rule serves from cache.
fn cached_share(requests: &[Value]) -> f64 {
    let flat: Vec<Vec<(String, bool)>> = requests.iter().map(blocks).collect();
    let (mut cached, mut total) = (0usize, 0usize);
    for (index, request) in flat.iter().enumerate().skip(1) {
        total += request.iter().map(|(b, _)| b.len()).sum::<usize>();
        // Prefixes written by earlier requests: up to each of their breakpoints.
        let hit = flat[..index]
            .iter()
            .flat_map(|earlier| {
                earlier
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, marked))| *marked)
                    .map(move |(at, _)| &earlier[..=at])
            })
            .filter(|prefix| {
                prefix.len() <= request.len() && prefix.iter().zip(request).all(|(a, b)| a.0 == b.0)
            })
            .map(|prefix| prefix.iter().map(|(b, _)| b.len()).sum::<usize>())
            .max()
            .unwrap_or(0);
        cached += hit;
    }
    if total == 0 {
        0.0
    } else {
        cached as f64 / total as f64
    }
}

/// A request as the cache sees it: tools, system, then every message's
/// blocks, in order, each serialised without its mark, and whether it
/// carries a breakpoint.
fn blocks(request: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut push = |prefix: &str, block: &Value| {
        let marked = block.get("cache_control").is_some();
        let mut bare = block.clone();
        if let Some(map) = bare.as_object_mut() {
            map.remove("cache_control");
        }
        out.push((format!("{prefix}{bare}"), marked));
    };
    for tool in request["tools"].as_array().into_iter().flatten() {
        push("tool:", tool);
    }
    match &request["system"] {
        Value::String(text) => push("system:", &json!(text)),
        Value::Array(system) => system.iter().for_each(|b| push("system:", b)),
        _ => {}
    }
    for message in request["messages"].as_array().into_iter().flatten() {
        let role = message["role"].as_str().unwrap_or("?");
        match &message["content"] {
            Value::Array(content) => content.iter().for_each(|b| push(role, b)),
            other => push(role, other),
        }
    }
    out
}

fn strip_breakpoints(request: &Value) -> Value {
    match request {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "cache_control")
                .map(|(k, v)| (k.clone(), strip_breakpoints(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_breakpoints).collect()),
        other => other.clone(),
    }
}

/// A loopback Messages API that asks for `bash` until the conversation holds
/// [`TOOL_TURNS`] tool results since its first prompt (one since a later
/// prompt), then answers; every request body is kept in `recorded`.
fn scripted_model(recorded: Arc<Mutex<Vec<Value>>>) -> anyhow::Result<String> {
    crate::model_server::start(Arc::new(move |body: &[u8]| {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let reply = answer(&request);
        if let Ok(mut all) = recorded.lock() {
            all.push(request);
        }
        reply.to_string()
    }))
}

fn answer(request: &Value) -> Value {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let since_prompt = messages
        .iter()
        .rev()
        .take_while(|m| !m["content"].is_string())
        .filter(|m| m["role"] == "user")
        .count();
    let prompts = messages
        .iter()
        .filter(|m| m["role"] == "user" && m["content"].is_string())
        .count();
    // The first invocation works in many steps; the resumed one in one.
    let wanted = if prompts <= 1 { TOOL_TURNS } else { 1 };
    let usage = json!({"input_tokens": 100, "output_tokens": 20});
    if since_prompt < wanted {
        let n = since_prompt + 1;
        json!({"id": format!("msg_{n}"), "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "text", "text": format!("Step {n}.")},
                {"type": "tool_use", "id": format!("toolu_{n}"), "name": "bash",
                 "input": {"command": format!("echo step {n}; ls /workspace")}}],
            "stop_reason": "tool_use", "usage": usage})
    } else {
        json!({"id": "msg_done", "type": "message", "role": "assistant", "model": "bench",
            "content": [{"type": "text", "text": "Here is what I found."}],
            "stop_reason": "end_turn", "usage": usage})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_the_longest_prefix_an_earlier_one_marked() {
        let request = |n: usize, mark: bool| {
            let mut messages: Vec<Value> = (0..n)
                .map(|i| json!({"role": "user", "content": [{"type": "text", "text": format!("m{i}")}]}))
                .collect();
            if mark && let Some(last) = messages.last_mut() {
                last["content"][0]["cache_control"] = json!({"type": "ephemeral"});
            }
            json!({"system": "s", "messages": messages})
        };
        // The second starts with all of the first (marked at its end): 3 of its 4 blocks.
        let share = cached_share(&[request(2, true), request(3, true)]);
        let block =
            |i: usize| format!("user{}", json!({"type": "text", "text": format!("m{i}")})).len();
        let system = format!("system:{}", json!("s")).len();
        let expected = (system + block(0) + block(1)) as f64
            / (system + block(0) + block(1) + block(2)) as f64;
        assert!((share - expected).abs() < 1e-9, "{share} {expected}");
        assert_eq!(cached_share(&[request(2, false), request(3, false)]), 0.0);
        // A request that does not start with the marked prefix reads nothing.
        let mut other = request(3, true);
        other["messages"][0]["content"][0]["text"] = json!("changed");
        assert_eq!(cached_share(&[request(2, true), other]), 0.0);
    }
}
