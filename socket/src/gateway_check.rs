//! What the gateway forwards to the model: a Messages API request it has
//! checked, not the bytes an agent handed it.
//!
//! The model is reached with the owner's key, and the provider acts on what
//! the request says: an image or document by URL, an MCP server, a server
//! tool (web search, web fetch, code execution) make the *provider* fetch or
//! run things — a way out that the egress allowlist and the leak guard never
//! see — and `model`, `max_tokens` and thinking decide what it costs. So the
//! request is parsed into the shape Pincer's own runner sends, every key of
//! every object checked against what that shape allows (an unknown one is
//! refused, never dropped), the owner's limits applied, and the checked value
//! re-serialised. Each refusal says which part of the request and why.
//!
//! Allowed: `model` (the owner's, or one the owner lists), `max_tokens` (up
//! to the owner's cap), `system`, `messages` of text, base64 images and
//! documents (and plain-text documents), tool use and tool results, thinking
//! blocks handed back; client tools (name, description, input schema);
//! `tool_choice`, sampling parameters, `stop_sequences`, `metadata.user_id`;
//! `thinking` within the owner's budget; `cache_control` breakpoints (four at
//! most). Refused: URL and file-id sources, server tools, `mcp_servers`,
//! `container`, `stream` (the host reads each answer's usage whole), and
//! `anthropic-beta` values the owner has not allowed.

use serde_json::{Map, Value};

/// What the owner allows a model request to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPolicy {
    /// The owner's model; the only one allowed unless `models` names others.
    pub model: String,
    /// Other models the owner allows every group.
    pub models: Vec<String>,
    /// Other models the owner allows one group (`[group_models]`).
    pub group_models: std::collections::BTreeMap<String, Vec<String>>,
    /// The largest `max_tokens`.
    pub max_tokens: u32,
    /// Model requests one invocation may make: `max_turns`, and one more
    /// for a compaction. Counted by the gateway, not the runner.
    pub max_requests: u32,
    /// The largest thinking budget (0: no extended thinking).
    pub thinking_budget: u32,
    /// `anthropic-beta` values the owner allows (none by default).
    pub betas: Vec<String>,
}

/// Breakpoints the Messages API accepts in one request.
/// The default model.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// The default `max_tokens` of a model request (and the gateway's cap).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// The default model turns of one invocation.
pub const DEFAULT_MAX_TURNS: u32 = 30;
pub const MAX_BREAKPOINTS: usize = 4;

/// Why a request was refused: which part, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

fn refuse<T>(at: &str, why: impl std::fmt::Display) -> Result<T, Refusal> {
    Err(Refusal(format!("{at}: {why}")))
}

/// A request that passed: what to forward, and the model it names (for the
/// usage record, without parsing the body again).
#[derive(Debug)]
pub struct Checked {
    /// The re-serialised request.
    pub body: Vec<u8>,
    /// Its `model`.
    pub model: String,
}

/// Checks the request `body` of `group` and its `anthropic-beta` header
/// values against `policy`; returns the body to forward.
pub fn check(
    body: &[u8],
    betas: &[&str],
    group: &str,
    policy: &ModelPolicy,
) -> Result<Checked, Refusal> {
    for beta in betas.iter().flat_map(|b| b.split(',')).map(str::trim) {
        if !beta.is_empty() && !policy.betas.iter().any(|allowed| allowed == beta) {
            return refuse(
                "anthropic-beta",
                format!(
                    "{beta:?} is not allowed (the owner allows: {})",
                    listed(&policy.betas)
                ),
            );
        }
    }
    let value: Value = serde_json::from_slice(body)
        .or_else(|err| refuse("the request", format!("not JSON: {err}")))?;
    let top = object(&value, "the request")?;
    keys(
        top,
        "the request",
        &[
            "model",
            "max_tokens",
            "messages",
            "system",
            "tools",
            "tool_choice",
            "stream",
            "temperature",
            "top_p",
            "top_k",
            "stop_sequences",
            "thinking",
            "metadata",
        ],
    )?;
    let model = string(top.get("model"), "model")?;
    let mut allowed = vec![policy.model.clone()];
    allowed.extend(policy.models.iter().cloned());
    allowed.extend(
        policy
            .group_models
            .get(group)
            .into_iter()
            .flatten()
            .cloned(),
    );
    if !allowed.iter().any(|m| m == model) {
        return refuse(
            "model",
            format!(
                "{model:?} is not allowed (the owner allows: {})",
                listed(&allowed)
            ),
        );
    }
    let max_tokens = top.get("max_tokens").and_then(Value::as_u64).unwrap_or(0);
    if max_tokens == 0 || max_tokens > u64::from(policy.max_tokens) {
        return refuse(
            "max_tokens",
            format!("must be 1 to {} (the owner's cap)", policy.max_tokens),
        );
    }
    if top.get("stream").is_some_and(|s| s != &Value::Bool(false)) {
        return refuse("stream", "the host does not forward streamed requests");
    }
    let mut breakpoints = 0;
    if let Some(system) = top.get("system") {
        breakpoints += content(system, "system", &["text"])?;
    }
    let messages = top
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .map_or_else(|| refuse("messages", "must be a non-empty array"), Ok)?;
    for (i, message) in messages.iter().enumerate() {
        breakpoints += self::message(message, &format!("messages[{i}]"))?;
    }
    if let Some(tools) = top.get("tools") {
        breakpoints += self::tools(tools)?;
    }
    if let Some(choice) = top.get("tool_choice") {
        let choice = object(choice, "tool_choice")?;
        keys(
            choice,
            "tool_choice",
            &["type", "name", "disable_parallel_tool_use"],
        )?;
        one_of(
            choice.get("type"),
            "tool_choice.type",
            &["auto", "any", "tool", "none"],
        )?;
    }
    for number in ["temperature", "top_p", "top_k"] {
        if top.get(number).is_some_and(|v| !v.is_number()) {
            return refuse(number, "must be a number");
        }
    }
    if let Some(stops) = top.get("stop_sequences")
        && !stops
            .as_array()
            .is_some_and(|s| s.iter().all(Value::is_string))
    {
        return refuse("stop_sequences", "must be an array of strings");
    }
    if let Some(metadata) = top.get("metadata") {
        keys(object(metadata, "metadata")?, "metadata", &["user_id"])?;
    }
    if let Some(thinking) = top.get("thinking") {
        self::thinking(thinking, policy)?;
    }
    if breakpoints > MAX_BREAKPOINTS {
        return refuse(
            "cache_control",
            format!("{breakpoints} breakpoints, {MAX_BREAKPOINTS} at most"),
        );
    }
    let model = model.to_owned();
    let body = serde_json::to_vec(&value).or_else(|err| refuse("the request", err))?;
    Ok(Checked { body, model })
}

fn listed(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, Refusal> {
    value
        .as_object()
        .map_or_else(|| refuse(at, "must be an object"), Ok)
}

fn string<'a>(value: Option<&'a Value>, at: &str) -> Result<&'a str, Refusal> {
    value
        .and_then(Value::as_str)
        .map_or_else(|| refuse(at, "must be a string"), Ok)
}

fn one_of(value: Option<&Value>, at: &str, allowed: &[&str]) -> Result<(), Refusal> {
    let found = string(value, at)?;
    if allowed.contains(&found) {
        Ok(())
    } else {
        refuse(
            at,
            format!("{found:?} is refused (allowed: {})", allowed.join(", ")),
        )
    }
}

/// Every key of `object` is one of `allowed`.
fn keys(object: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), Refusal> {
    match object.keys().find(|key| !allowed.contains(&key.as_str())) {
        None => Ok(()),
        Some(key) => refuse(
            at,
            format!(
                "{key:?} is not forwarded by the host{}",
                match key.as_str() {
                    "mcp_servers" => " (MCP servers would be reached by the provider, past egress)",
                    "container" => " (server-side code execution is not offered)",
                    _ => "",
                }
            ),
        ),
    }
}

/// A `cache_control` (counted as a breakpoint) or none.
fn breakpoint(block: &Map<String, Value>, at: &str) -> Result<usize, Refusal> {
    let Some(control) = block.get("cache_control") else {
        return Ok(0);
    };
    let at = format!("{at}.cache_control");
    let control = object(control, &at)?;
    keys(control, &at, &["type", "ttl"])?;
    one_of(control.get("type"), &format!("{at}.type"), &["ephemeral"])?;
    if let Some(ttl) = control.get("ttl") {
        one_of(Some(ttl), &format!("{at}.ttl"), &["5m", "1h"])?;
    }
    Ok(1)
}

fn message(message: &Value, at: &str) -> Result<usize, Refusal> {
    let fields = object(message, at)?;
    keys(fields, at, &["role", "content"])?;
    one_of(
        fields.get("role"),
        &format!("{at}.role"),
        &["user", "assistant"],
    )?;
    let blocks = [
        "text",
        "image",
        "document",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
    ];
    match fields.get("content") {
        Some(content) => self::content(content, &format!("{at}.content"), &blocks),
        None => refuse(at, "has no content"),
    }
}

/// A string, or an array of blocks of the `allowed` types; the breakpoints.
fn content(content: &Value, at: &str, allowed: &[&str]) -> Result<usize, Refusal> {
    if content.is_string() {
        return Ok(0);
    }
    let Some(blocks) = content.as_array() else {
        return refuse(at, "must be a string or an array of blocks");
    };
    let mut breakpoints = 0;
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let fields = object(block, &at)?;
        let kind = string(fields.get("type"), &format!("{at}.type"))?;
        if !allowed.contains(&kind) {
            return refuse(
                &format!("{at}.type"),
                format!(
                    "{kind:?} blocks are not forwarded (allowed here: {})",
                    allowed.join(", ")
                ),
            );
        }
        self::block(kind, fields, &at)?;
        breakpoints += breakpoint(fields, &at)?;
    }
    Ok(breakpoints)
}

fn block(kind: &str, fields: &Map<String, Value>, at: &str) -> Result<(), Refusal> {
    match kind {
        "text" => {
            keys(fields, at, &["type", "text", "cache_control"])?;
            string(fields.get("text"), &format!("{at}.text")).map(|_| ())
        }
        "image" => {
            keys(fields, at, &["type", "source", "cache_control"])?;
            source(fields.get("source"), &format!("{at}.source"), &["base64"])
        }
        "document" => {
            keys(
                fields,
                at,
                &["type", "source", "title", "context", "cache_control"],
            )?;
            source(
                fields.get("source"),
                &format!("{at}.source"),
                &["base64", "text"],
            )
        }
        "tool_use" => {
            keys(
                fields,
                at,
                &["type", "id", "name", "input", "cache_control"],
            )?;
            string(fields.get("id"), &format!("{at}.id"))?;
            string(fields.get("name"), &format!("{at}.name"))?;
            object(
                fields.get("input").unwrap_or(&Value::Null),
                &format!("{at}.input"),
            )
            .map(|_| ())
        }
        "tool_result" => {
            keys(
                fields,
                at,
                &[
                    "type",
                    "tool_use_id",
                    "content",
                    "is_error",
                    "cache_control",
                ],
            )?;
            string(fields.get("tool_use_id"), &format!("{at}.tool_use_id"))?;
            if let Some(inner) = fields.get("content") {
                let inner_at = format!("{at}.content");
                if content(inner, &inner_at, &["text", "image", "document"])? > 0 {
                    return refuse(
                        &inner_at,
                        "breakpoints go on the tool result, not inside it",
                    );
                }
            }
            Ok(())
        }
        "thinking" => keys(fields, at, &["type", "thinking", "signature"]),
        _ => keys(fields, at, &["type", "data"]),
    }
}

fn source(source: Option<&Value>, at: &str, allowed: &[&str]) -> Result<(), Refusal> {
    let fields = object(source.unwrap_or(&Value::Null), at)?;
    let kind = string(fields.get("type"), &format!("{at}.type"))?;
    if !allowed.contains(&kind) {
        return refuse(
            &format!("{at}.type"),
            format!(
                "{kind:?} sources are refused: the provider would fetch or read them on the \
                 owner's account (send the content itself: {})",
                allowed.join(", ")
            ),
        );
    }
    keys(fields, at, &["type", "media_type", "data"])?;
    string(fields.get("media_type"), &format!("{at}.media_type"))?;
    string(fields.get("data"), &format!("{at}.data")).map(|_| ())
}

fn tools(tools: &Value) -> Result<usize, Refusal> {
    let Some(tools) = tools.as_array() else {
        return refuse("tools", "must be an array");
    };
    let mut breakpoints = 0;
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let fields = object(tool, &at)?;
        if let Some(kind) = fields.get("type")
            && kind != "custom"
        {
            return refuse(
                &format!("{at}.type"),
                format!(
                    "{kind} is a server tool: the provider would run it on the owner's account, \
                     past the host's egress (client tools only)"
                ),
            );
        }
        keys(
            fields,
            &at,
            &[
                "type",
                "name",
                "description",
                "input_schema",
                "cache_control",
            ],
        )?;
        string(fields.get("name"), &format!("{at}.name"))?;
        if let Some(description) = fields.get("description") {
            string(Some(description), &format!("{at}.description"))?;
        }
        object(
            fields.get("input_schema").unwrap_or(&Value::Null),
            &format!("{at}.input_schema"),
        )?;
        breakpoints += breakpoint(fields, &at)?;
    }
    Ok(breakpoints)
}

fn thinking(thinking: &Value, policy: &ModelPolicy) -> Result<(), Refusal> {
    let fields = object(thinking, "thinking")?;
    keys(fields, "thinking", &["type", "budget_tokens"])?;
    one_of(
        fields.get("type"),
        "thinking.type",
        &["enabled", "disabled"],
    )?;
    if fields.get("type").is_some_and(|t| t == "enabled") {
        let budget = fields
            .get("budget_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if budget == 0 || budget > u64::from(policy.thinking_budget) {
            return refuse(
                "thinking.budget_tokens",
                format!(
                    "{budget} is over the owner's thinking budget ({})",
                    policy.thinking_budget
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
