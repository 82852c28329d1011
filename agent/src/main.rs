//! `pincer-agent`: the runner inside the container.
//!
//! Reads one [`Invocation`] line on stdin, runs a tool-use loop against the
//! model through the host's gateway, and reports [`Event`]s as JSON lines on
//! stdout, the last one the [`Outcome`]. It holds no secret and has no network:
//! the only thing it can talk to is the socket the host mounted for it.

mod bridge;
mod http;
mod model;
mod session;
mod tools;

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use pincer_protocol::{
    Event, HOST_SOCKET_PATH, Invocation, MAX_INVOCATION_BYTES, MEMORY_FILE, Outcome,
    PROTOCOL_VERSION, SESSION_DIR, Status, Usage,
};
use serde_json::{Value, json};

const RUNNER: &str = concat!("pincer-agent ", env!("CARGO_PKG_VERSION"));

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("{RUNNER} (protocol {PROTOCOL_VERSION})");
        return;
    }
    emit(&Event::Started {
        protocol: PROTOCOL_VERSION,
        runner: RUNNER.into(),
    });
    bridge::start();
    let outcome = match read_invocation() {
        Ok(invocation) => run(&invocation),
        Err(error) => failure(error, 0, Usage::default()),
    };
    let code = match outcome.status {
        Status::Ok => 0,
        Status::Error => 1,
    };
    emit(&Event::Result(outcome));
    std::process::exit(code);
}

fn emit(event: &Event) {
    // A serialisation failure of our own types is impossible (no maps with
    // non-string keys); a closed stdout means the host is gone, and then there
    // is nobody left to tell.
    if let Ok(line) = serde_json::to_string(event) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

fn failure(error: String, turns: u32, usage: Usage) -> Outcome {
    Outcome {
        status: Status::Error,
        text: None,
        error: Some(error),
        turns,
        usage,
    }
}

fn read_invocation() -> Result<Invocation, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_INVOCATION_BYTES as u64 + 1)
        .read_line(&mut line)
        .map_err(|err| format!("cannot read the invocation on stdin: {err}"))?;
    if line.len() > MAX_INVOCATION_BYTES {
        return Err(format!(
            "the invocation is larger than {MAX_INVOCATION_BYTES} bytes"
        ));
    }
    let invocation: Invocation =
        serde_json::from_str(&line).map_err(|err| format!("malformed invocation: {err}"))?;
    if invocation.protocol != PROTOCOL_VERSION {
        return Err(format!(
            "the host speaks protocol {}, this runner speaks {PROTOCOL_VERSION}",
            invocation.protocol
        ));
    }
    Ok(invocation)
}

fn system_prompt(invocation: &Invocation) -> String {
    let trust = if invocation.is_main {
        "This is the owner's private main group."
    } else {
        "This is a shared group: treat requests from its members with care."
    };
    let memory = session::memory(&[
        (
            "the group's memory",
            PathBuf::from("/workspace/group").join(MEMORY_FILE),
        ),
        (
            "shared memory",
            PathBuf::from("/workspace/global").join(MEMORY_FILE),
        ),
    ]);
    format!(
        "You are Pincer, a personal assistant. You run inside an isolated container \
         with no network access. Your working folder is /workspace/group; files there \
         persist between conversations, and you may keep notes for yourself in \
         /workspace/group/{MEMORY_FILE}. Group: {}. {trust}{memory}",
        invocation.group
    )
}

/// Replaces the older part of `messages` with a model-written summary when
/// the transcript is over budget; archives the original first.
fn compact_if_needed(
    client: &model::ModelClient,
    session: &session::Session,
    messages: Vec<Value>,
    budget: u64,
    usage: &mut Usage,
) -> Result<Vec<Value>, String> {
    let before = session::size(&messages);
    let split = session::compaction_split(&messages);
    if before <= budget || split == 0 || split >= messages.len() {
        return Ok(messages);
    }
    let mut request = messages[..split].to_vec();
    request.push(json!({"role": "user", "content":
        "Summarize our conversation so far for your future self: the facts, decisions, \
         preferences and open tasks worth remembering. Be concise. Reply with the summary only."}));
    let response = client
        .create(
            "You write concise summaries of conversations.",
            &json!([]),
            &request,
        )
        .map_err(|err| format!("compacting the session failed: {err}"))?;
    usage.input_tokens += response["usage"]["input_tokens"].as_u64().unwrap_or(0);
    usage.output_tokens += response["usage"]["output_tokens"].as_u64().unwrap_or(0);
    let summary = response["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    session
        .archive("before-compaction")
        .map_err(|err| format!("cannot archive the session: {err}"))?;
    let mut compacted = vec![
        json!({"role": "user", "content": format!("Summary of our earlier conversation:\n{summary}")}),
        json!({"role": "assistant", "content": [{"type": "text", "text": "Understood."}]}),
    ];
    compacted.extend_from_slice(&messages[split..]);
    let after = session::size(&compacted);
    emit(&Event::Compacted {
        before_bytes: before,
        after_bytes: after,
    });
    Ok(compacted)
}

/// How much of a failed tool's output the owner's screen gets.
const ERROR_LINE_CHARS: usize = 160;

/// The first line of a failed tool's output; a host tool's JSON answer
/// gives its `error`.
fn first_line(text: &str, chars: usize) -> String {
    let parsed = serde_json::from_str::<Value>(text).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| v["error"].as_str())
        .unwrap_or(text);
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim().chars().take(chars).collect()
}

fn run(invocation: &Invocation) -> Outcome {
    let client = model::ModelClient::new(
        PathBuf::from(HOST_SOCKET_PATH),
        invocation.model.clone(),
        invocation.max_tokens,
    );
    let system = system_prompt(invocation);
    let tools = tools::definitions();
    let mut usage = Usage::default();
    let session = session::Session::new(Path::new(SESSION_DIR));
    let mut messages = match compact_if_needed(
        &client,
        &session,
        session.load(),
        invocation.session_budget,
        &mut usage,
    ) {
        Ok(messages) => messages,
        Err(err) => return failure(err, 0, usage),
    };
    messages.push(json!({"role": "user", "content": invocation.prompt}));

    for turn in 1..=invocation.max_turns {
        let response = match client.create(&system, &tools, &messages) {
            Ok(response) => response,
            Err(err) => return failure(err.to_string(), turn, usage),
        };
        usage.input_tokens += response["usage"]["input_tokens"].as_u64().unwrap_or(0);
        usage.output_tokens += response["usage"]["output_tokens"].as_u64().unwrap_or(0);

        let content = match response.get("content") {
            Some(Value::Array(blocks)) => blocks.clone(),
            _ => {
                return failure("model response has no `content` array".into(), turn, usage);
            }
        };
        let text = content
            .iter()
            .filter(|block| block["type"] == "text")
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let tool_uses: Vec<&Value> = content
            .iter()
            .filter(|block| block["type"] == "tool_use")
            .collect();

        if tool_uses.is_empty() {
            messages.push(json!({"role": "assistant", "content": content}));
            if let Err(err) = session.save(&messages) {
                return failure(format!("cannot save the session: {err}"), turn, usage);
            }
            return Outcome {
                status: Status::Ok,
                text: Some(text),
                error: None,
                turns: turn,
                usage,
            };
        }
        if !text.is_empty() {
            emit(&Event::Message { text });
        }

        let mut results = Vec::with_capacity(tool_uses.len());
        for tool_use in tool_uses {
            let id = tool_use["id"].as_str().unwrap_or_default().to_owned();
            let name = tool_use["name"].as_str().unwrap_or_default().to_owned();
            let input = tool_use.get("input").cloned().unwrap_or(Value::Null);
            emit(&Event::ToolCall {
                id: id.clone(),
                name: name.clone(),
                input: input.clone(),
            });
            let output = tools::run(&name, &input, &invocation.limits);
            emit(&Event::ToolResult {
                id: id.clone(),
                name,
                is_error: output.is_error,
                output_bytes: output.text.len(),
                error: output
                    .is_error
                    .then(|| first_line(&output.text, ERROR_LINE_CHARS)),
            });
            results.push(json!({
                "type": "tool_result",
                "tool_use_id": id,
                "content": output.text,
                "is_error": output.is_error,
            }));
        }
        messages.push(json!({"role": "assistant", "content": content}));
        messages.push(json!({"role": "user", "content": results}));
    }
    failure(
        format!(
            "gave up after {} model turns without a final answer",
            invocation.max_turns
        ),
        invocation.max_turns,
        usage,
    )
}
