//! The scripted model: a Messages API server on loopback that answers from a script and records every request.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};

/// One request the model server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The text of every `tool_result` block in the request, in order.
    pub fn all_tool_results(&self) -> Vec<String> {
        let json = self.json();
        json["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .filter(|block| block["type"] == "tool_result")
            .filter_map(|block| block["content"].as_str().map(str::to_owned))
            .collect()
    }

    /// The text of the last `tool_result` block in the request.
    pub fn last_tool_result(&self) -> String {
        let json = self.json();
        let messages = json["messages"].as_array().cloned().unwrap_or_default();
        messages
            .iter()
            .rev()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .find(|block| block["type"] == "tool_result")
            .and_then(|block| block["content"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A scripted answer: given the request, the status and JSON body to send.
pub type Step = Box<dyn Fn(&Recorded) -> (u16, Value) + Send + Sync>;

/// A Messages API response asking for one tool.
pub fn tool_use(name: &str, input: Value) -> Step {
    let name = name.to_owned();
    Box::new(move |_| {
        (
            200,
            json!({
                "id": "msg_tool", "type": "message", "role": "assistant", "model": "scripted",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": name, "input": input}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 5}
            }),
        )
    })
}

/// A final answer computed from the request (e.g. echoing the tool result).
pub fn answer(text: impl Fn(&Recorded) -> String + Send + Sync + 'static) -> Step {
    Box::new(move |request| (200, message(&text(request))))
}

/// For a model asked again and again (one group, many invocations): runs
/// `command` in bash, then answers with its output.
pub fn bash_then_echo(command: &str) -> Step {
    let tool = tool_use("bash", json!({"command": command}));
    Box::new(move |request| {
        let json = request.json();
        let last_is_result = json["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_array())
            .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"));
        if last_is_result {
            (200, message(&request.last_tool_result()))
        } else {
            tool(request)
        }
    })
}

/// A final answer: a fixed text.
pub fn say(text: &str) -> Step {
    let text = text.to_owned();
    answer(move |_| text.clone())
}

pub fn message(text: &str) -> Value {
    json!({
        "id": "msg_final", "type": "message", "role": "assistant", "model": "scripted",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 20, "output_tokens": 7}
    })
}

/// An API error response.
pub fn api_error(status: u16, message: &str) -> Step {
    let message = message.to_owned();
    Box::new(move |_| {
        (
            status,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        )
    })
}

/// How the server answers the request with this index (`None`: script exhausted).
type Answerer = dyn Fn(usize, &Recorded) -> Option<(u16, Value)> + Send + Sync;

/// A loopback HTTP server that answers each request with the next step.
pub struct ScriptedModel {
    addr: std::net::SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl ScriptedModel {
    /// A model that answers every request with `step`.
    pub fn always(step: Step) -> Self {
        Self::serve(Arc::new(move |_: usize, request: &Recorded| {
            Some(step(request))
        }))
    }

    pub fn start(steps: Vec<Step>) -> Self {
        Self::serve(Arc::new(move |index: usize, request: &Recorded| {
            steps.get(index).map(|step| step(request))
        }))
    }

    fn serve(answer: Arc<Answerer>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&recorded);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let answer = Arc::clone(&answer);
                let recorded = Arc::clone(&shared);
                thread::spawn(move || serve_connection(stream, &*answer, &recorded));
            }
        });
        Self { addr, recorded }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

fn serve_connection(stream: TcpStream, answer: &Answerer, recorded: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let index = {
            let mut all = recorded.lock().unwrap();
            all.push(request.clone());
            all.len() - 1
        };
        let (status, body) = answer(index, &request).unwrap_or_else(|| {
            (500, json!({"type": "error", "error": {"type": "api_error", "message": "script exhausted"}}))
        });
        let body = body.to_string();
        let response = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nrequest-id: req_{index}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_request(reader: &mut impl BufRead) -> Option<Recorded> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

/// The text of the last user message of a request.
pub fn last_prompt(request: &Recorded) -> String {
    let json = request.json();
    let messages = json["messages"].as_array().cloned().unwrap_or_default();
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user" && m["content"].is_string())
        .and_then(|m| m["content"].as_str().map(str::to_owned))
        .unwrap_or_default()
}
