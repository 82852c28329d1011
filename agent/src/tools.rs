//! The runner's tools: what the model may do inside the container.
//!
//! The container is the security boundary, not this module: the tools do not
//! try to confine paths, because everything they can reach is already what the
//! host chose to mount. What this module does guarantee is that no tool can
//! hang the runner (timeouts) or flood the model's context (output caps).
//!
//! The host tools (send a message, schedule a task, …) are forwarded as they
//! are to the host API on the socket; the runner decides nothing about them,
//! the host authorizes every call.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pincer_protocol::ToolLimits;
use serde_json::{Value, json};

/// What a tool gives back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolOutput {
    pub(crate) text: String,
    pub(crate) is_error: bool,
}

impl ToolOutput {
    fn ok(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: false,
        }
    }

    fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
        }
    }
}

/// Most entries `list_files` returns.
const MAX_LIST_ENTRIES: usize = 1000;
/// How much of a command's output is buffered before the rest is discarded.
const BASH_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// How long to wait for a killed command's pipes to close.
const PIPE_DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How long one host-API call may take.
const HOST_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The host tools: name, description, input schema properties, required.
const HOST_TOOLS: &[(&str, &str, &str, &[&str])] = &[
    (
        "send_message",
        "Send a message to a chat (a group may only message its own chat).",
        r#"{"chat": {"type": "string"}, "text": {"type": "string"}}"#,
        &["chat", "text"],
    ),
    (
        "schedule_task",
        "Schedule a prompt to run later: schedule is cron (5 fields), interval (e.g. 30m) or once (YYYY-MM-DDTHH:MM:SSZ).",
        r#"{"prompt": {"type": "string"}, "schedule": {"type": "string", "enum": ["cron", "interval", "once"]},
            "value": {"type": "string"}, "chat": {"type": "string"}}"#,
        &["prompt", "schedule", "value"],
    ),
    ("list_tasks", "List scheduled tasks.", "{}", &[]),
    (
        "pause_task",
        "Pause a scheduled task.",
        r#"{"id": {"type": "integer"}}"#,
        &["id"],
    ),
    (
        "resume_task",
        "Resume a paused task.",
        r#"{"id": {"type": "integer"}}"#,
        &["id"],
    ),
    (
        "cancel_task",
        "Cancel a scheduled task.",
        r#"{"id": {"type": "integer"}}"#,
        &["id"],
    ),
    (
        "update_task",
        "Change a task's prompt and/or schedule.",
        r#"{"id": {"type": "integer"}, "prompt": {"type": "string"}, "schedule": {"type": "string"}, "value": {"type": "string"}}"#,
        &["id"],
    ),
    (
        "register_group",
        "Register a new group for a chat (main group only).",
        r#"{"name": {"type": "string"}, "chat": {"type": "string"}, "trigger": {"type": "string"}}"#,
        &["name", "chat"],
    ),
    (
        "list_groups",
        "List the registered groups (main group only).",
        "{}",
        &[],
    ),
    (
        "request_access",
        "Ask the owner for more access, with your reason: an egress host (kind \"egress\", what \
         e.g. \"api.github.com\") or a host folder (kind \"folder\", what an absolute path, \
         read_write if you must write). The owner decides later; nothing changes until then, \
         and a refused request stays refused.",
        r#"{"kind": {"type": "string", "enum": ["egress", "folder"]}, "what": {"type": "string"},
            "reason": {"type": "string"}, "read_write": {"type": "boolean"}}"#,
        &["kind", "what", "reason"],
    ),
    (
        "web_fetch",
        "Fetch a web page (http or https) through the host; only hosts in this group's \
         egress allowlist can be reached.",
        r#"{"url": {"type": "string"}}"#,
        &["url"],
    ),
];

/// The tool definitions, in the Messages API's `tools` format.
pub(crate) fn definitions() -> Value {
    let mut tools = local_definitions();
    if let Value::Array(list) = &mut tools {
        for (name, description, properties, required) in HOST_TOOLS {
            let properties: Value = serde_json::from_str(properties).unwrap_or_else(|_| json!({}));
            list.push(json!({
                "name": name,
                "description": description,
                "input_schema": {"type": "object", "properties": properties, "required": required},
            }));
        }
    }
    tools
}

fn local_definitions() -> Value {
    json!([
        {
            "name": "bash",
            "description": "Run a shell command in the working folder (/workspace/group). \
                            Output (stdout and stderr) is capped; long commands time out.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line"},
                    "timeout_ms": {"type": "integer", "description": "Timeout in milliseconds"}
                },
                "required": ["command"]
            }
        },
        {
            "name": "read_file",
            "description": "Read a text file.",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"]
            }
        },
        {
            "name": "write_file",
            "description": "Create or overwrite a file (parent folders are created).",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["path", "content"]
            }
        },
        {
            "name": "edit_file",
            "description": "Replace the exact text `old` with `new` in a file; `old` must occur exactly once.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "old": {"type": "string"},
                    "new": {"type": "string"}
                },
                "required": ["path", "old", "new"]
            }
        },
        {
            "name": "list_files",
            "description": "List a folder's entries (folders end with /).",
            "input_schema": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"]
            }
        }
    ])
}

/// Runs the tool `name` with the model's `input`.
pub(crate) fn run(name: &str, input: &Value, limits: &ToolLimits) -> ToolOutput {
    let result = match name {
        "bash" => bash(input, limits),
        "read_file" => read_file(input, limits),
        "write_file" => write_file(input),
        "edit_file" => edit_file(input),
        "list_files" => list_files(input),
        host if HOST_TOOLS.iter().any(|(name, ..)| *name == host) => host_call(host, input),
        other => Err(format!("unknown tool {other:?}")),
    };
    result.unwrap_or_else(ToolOutput::error)
}

/// Forwards a host tool to the host API; the host's answer goes back to the model.
fn host_call(name: &str, input: &Value) -> Result<ToolOutput, String> {
    let body = serde_json::to_vec(input).map_err(|err| err.to_string())?;
    let response = crate::http::post_json(
        Path::new(pincer_protocol::HOST_SOCKET_PATH),
        &format!("/host/v1/{name}"),
        &[],
        &body,
        HOST_CALL_TIMEOUT,
    )
    .map_err(|err| err.to_string())?;
    Ok(ToolOutput {
        text: String::from_utf8_lossy(&response.body).into_owned(),
        is_error: response.status != 200,
    })
}

fn string_arg<'a>(input: &'a Value, key: &str) -> Result<&'a str, String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string argument `{key}`"))
}

fn bash(input: &Value, limits: &ToolLimits) -> Result<ToolOutput, String> {
    let command = string_arg(input, "command")?;
    let timeout_ms = match input.get("timeout_ms") {
        None | Some(Value::Null) => limits.bash_timeout_ms,
        Some(value) => value
            .as_u64()
            .ok_or("`timeout_ms` must be a non-negative integer")?
            .min(limits.bash_max_timeout_ms),
    };
    let shell = if Path::new("/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };

    let mut child = Command::new(shell)
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills the command's children too.
        .process_group(0)
        .spawn()
        .map_err(|err| format!("cannot start {shell}: {err}"))?;

    let buffer = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let mut readers = 0;
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        readers += 1;
        let buffer = Arc::clone(&buffer);
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            drain_into(pipe, &buffer);
            let _ = done_tx.send(());
        });
    }

    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                kill_process_group(child.id());
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(err) => return Err(format!("waiting for the command failed: {err}")),
        }
    };
    // A daemonised grandchild may hold the pipes open for ever: wait a little, not for ever.
    let drain_deadline = Instant::now() + PIPE_DRAIN_GRACE;
    for _ in 0..readers {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }

    let output = buffer.lock().map(|b| b.clone()).unwrap_or_default();
    let mut text = cap_output(&output, limits.output_cap_bytes);
    match status {
        Some(status) => {
            let code = status.code().unwrap_or(-1);
            text.push_str(&format!("\n[exit code: {code}]"));
            Ok(ToolOutput {
                text,
                is_error: !status.success(),
            })
        }
        None => {
            text.push_str(&format!("\n[timed out after {timeout_ms} ms; killed]"));
            Ok(ToolOutput::error(text))
        }
    }
}

fn drain_into(mut pipe: impl Read, buffer: &Mutex<Vec<u8>>) {
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if let Ok(mut buffer) = buffer.lock() {
                    let room = BASH_BUFFER_BYTES.saturating_sub(buffer.len());
                    // Past the buffer's size keep reading (so the command never blocks
                    // on a full pipe) but keep nothing.
                    buffer.extend_from_slice(&chunk[..read.min(room)]);
                }
            }
        }
    }
}

#[allow(unsafe_code)]
fn kill_process_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with a negative pid signals that process group; it has no
    // memory-safety preconditions. The group is the child's own (process_group(0)).
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Keeps the head and the tail of `output` within `cap` bytes.
pub(crate) fn cap_output(output: &[u8], cap: usize) -> String {
    if output.len() <= cap {
        return String::from_utf8_lossy(output).into_owned();
    }
    let half = cap / 2;
    let head = String::from_utf8_lossy(&output[..half]);
    let tail = String::from_utf8_lossy(&output[output.len() - half..]);
    format!(
        "{head}\n[... {} bytes cut ...]\n{tail}",
        output.len() - 2 * half
    )
}

fn read_file(input: &Value, limits: &ToolLimits) -> Result<ToolOutput, String> {
    let path = string_arg(input, "path")?;
    let file = std::fs::File::open(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut content = Vec::new();
    file.take(limits.output_cap_bytes as u64)
        .read_to_end(&mut content)
        .map_err(|err| format!("cannot read {path}: {err}"))?;
    let mut text = String::from_utf8_lossy(&content).into_owned();
    if size > content.len() as u64 {
        text.push_str(&format!(
            "\n[... file is {size} bytes; showing the first {}]",
            content.len()
        ));
    }
    Ok(ToolOutput::ok(text))
}

fn write_file(input: &Value) -> Result<ToolOutput, String> {
    let path = string_arg(input, "path")?;
    let content = string_arg(input, "content")?;
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|err| format!("cannot create {}: {err}", parent.display()))?;
    }
    std::fs::write(path, content).map_err(|err| format!("cannot write {path}: {err}"))?;
    Ok(ToolOutput::ok(format!(
        "wrote {} bytes to {path}",
        content.len()
    )))
}

fn edit_file(input: &Value) -> Result<ToolOutput, String> {
    let path = string_arg(input, "path")?;
    let old = string_arg(input, "old")?;
    let new = string_arg(input, "new")?;
    if old.is_empty() {
        return Err("`old` must not be empty".into());
    }
    let content =
        std::fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    match content.matches(old).count() {
        0 => Err(format!("`old` does not occur in {path}")),
        1 => {
            std::fs::write(path, content.replacen(old, new, 1))
                .map_err(|err| format!("cannot write {path}: {err}"))?;
            Ok(ToolOutput::ok(format!("edited {path}")))
        }
        n => Err(format!(
            "`old` occurs {n} times in {path}; include more context so it occurs once"
        )),
    }
}

fn list_files(input: &Value) -> Result<ToolOutput, String> {
    let path = string_arg(input, "path")?;
    let entries = std::fs::read_dir(path).map_err(|err| format!("cannot list {path}: {err}"))?;
    let mut lines = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => lines.push(format!("{name}/")),
            Ok(meta) => lines.push(format!("{name} ({} bytes)", meta.len())),
            Err(_) => lines.push(name),
        }
    }
    lines.sort();
    let total = lines.len();
    lines.truncate(MAX_LIST_ENTRIES);
    let mut text = lines.join("\n");
    if total > MAX_LIST_ENTRIES {
        text.push_str(&format!(
            "\n[... {} more entries]",
            total - MAX_LIST_ENTRIES
        ));
    }
    Ok(ToolOutput::ok(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ToolLimits {
        ToolLimits {
            bash_timeout_ms: 5_000,
            bash_max_timeout_ms: 10_000,
            output_cap_bytes: 100,
        }
    }

    #[test]
    fn bash_reports_output_and_exit_code() {
        let out = run(
            "bash",
            &json!({"command": "echo hi; echo err >&2; exit 3"}),
            &limits(),
        );
        assert!(out.is_error);
        assert!(
            out.text.contains("hi") && out.text.contains("err"),
            "{}",
            out.text
        );
        assert!(out.text.ends_with("[exit code: 3]"), "{}", out.text);
    }

    #[test]
    fn bash_timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("pincer-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("survived");
        let command = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let started = Instant::now();
        let out = run(
            "bash",
            &json!({"command": command, "timeout_ms": 200}),
            &limits(),
        );
        assert!(out.is_error);
        assert!(out.text.contains("timed out after 200 ms"), "{}", out.text);
        assert!(started.elapsed() < Duration::from_secs(30));
        thread::sleep(Duration::from_millis(1500));
        assert!(
            !marker.exists(),
            "a child of the timed-out command kept running"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn output_is_capped_head_and_tail() {
        let out = run("bash", &json!({"command": "seq 1 10000"}), &limits());
        assert!(out.text.starts_with("1\n2\n"), "{}", out.text);
        assert!(out.text.contains("bytes cut"), "{}", out.text);
        assert!(out.text.contains("10000"), "{}", out.text);
        assert!(out.text.len() < 200, "{}", out.text.len());
    }

    #[test]
    fn file_tools_round_trip() {
        let dir = std::env::temp_dir().join(format!("pincer-agent-files-{}", std::process::id()));
        let path = dir.join("a/b.txt");
        let path_str = path.to_str().unwrap();
        let w = run(
            "write_file",
            &json!({"path": path_str, "content": "one two two"}),
            &limits(),
        );
        assert!(!w.is_error, "{}", w.text);
        let twice = run(
            "edit_file",
            &json!({"path": path_str, "old": "two", "new": "3"}),
            &limits(),
        );
        assert!(
            twice.is_error && twice.text.contains("2 times"),
            "{}",
            twice.text
        );
        let once = run(
            "edit_file",
            &json!({"path": path_str, "old": "one", "new": "1"}),
            &limits(),
        );
        assert!(!once.is_error, "{}", once.text);
        let r = run("read_file", &json!({"path": path_str}), &limits());
        assert_eq!(r.text, "1 two two");
        let l = run(
            "list_files",
            &json!({"path": dir.to_str().unwrap()}),
            &limits(),
        );
        assert_eq!(l.text, "a/");
        let missing = run("read_file", &json!({"path": "/nonexistent/x"}), &limits());
        assert!(missing.is_error);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn every_host_tool_has_a_valid_schema() {
        let tools = definitions();
        let names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), 5 + HOST_TOOLS.len());
        for (name, _, properties, required) in HOST_TOOLS {
            let properties: Value = serde_json::from_str(properties).unwrap();
            for field in *required {
                assert!(properties.get(field).is_some(), "{name}: {field}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_tool_errors() {
        assert!(run("bash", &json!({}), &limits()).is_error);
        assert!(
            run(
                "bash",
                &json!({"command": "true", "timeout_ms": "soon"}),
                &limits()
            )
            .is_error
        );
        assert!(run("launch_missiles", &json!({}), &limits()).is_error);
    }
}
