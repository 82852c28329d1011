//! Test support: a scripted model server that speaks the Messages API on
//! loopback, and helpers to run the real `pincer` binary against the real
//! engine. The model is the one thing simulated (it is a paid remote service);
//! everything on our side of it is the production code path.
//!
//! A crate of its own (`pincer-test-support`, a dev-dependency) so that the
//! workspace's tests and every skill crate's tests share it. Which `pincer`
//! binary it runs: the workspace's (beside the test executable, built by
//! cargo before the tests of the `pincer` package), or the one a skill's test
//! names with [`use_host`] (its test host, with the skill linked).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default,
    unreachable_pub
)]

mod daemon;
mod inspect;
mod install;
mod model;
mod servers;

pub use daemon::*;
pub use inspect::*;
pub use install::*;
pub use model::*;
pub use servers::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Runs `binary` as `pincer` in every helper of this process (a skill's
/// test host); call it at the start of each test that needs it.
pub fn use_host(binary: &str) {
    let _ = HOST.set(PathBuf::from(binary));
    assert_eq!(
        HOST.get().map(PathBuf::as_path),
        Some(Path::new(binary)),
        "one test process runs one host binary"
    );
}

static HOST: OnceLock<PathBuf> = OnceLock::new();

/// The `pincer` binary the helpers run.
pub fn host_binary() -> PathBuf {
    HOST.get_or_init(|| {
        // target/<profile>/deps/<test>-<hash> → target/<profile>/pincer
        let exe = std::env::current_exe().unwrap();
        let profile = exe.parent().and_then(Path::parent).unwrap();
        let binary = profile.join("pincer");
        assert!(
            binary.exists(),
            "no pincer binary at {} (run the tests through cargo)",
            binary.display()
        );
        binary
    })
    .clone()
}

pub const TEST_KEY: &str = "sk-test-SECRET-0123456789abcdef";

/// What the gateway tests' owner allows: model `m` (and `untranslatable`,
/// for a provider that refuses it), and the beta `tools-2024`.
pub fn test_policy() -> pincer_socket::gateway_check::ModelPolicy {
    pincer_socket::gateway_check::ModelPolicy {
        model: "m".into(),
        models: vec!["untranslatable".into()],
        group_models: Default::default(),
        max_tokens: 8192,
        max_requests: 31,
        thinking_budget: 0,
        betas: vec!["tools-2024".into()],
    }
}

/// The smallest Messages request the gateway forwards, for `model`.
pub fn minimal_request(model: &str) -> String {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

/// The host's services over a store at `db`, with the model at `model_url`.
pub fn services(db: &Path, model_url: &str) -> Arc<pincer_socket::gateway::Services> {
    use pincer_socket::gateway::{ApiKey, Services, Upstream};
    let store = Arc::new(pincer_store::Store::open(db).unwrap());
    let key = ApiKey::new(TEST_KEY.into()).unwrap();
    let guard = pincer_socket::egress::LeakGuard::new([TEST_KEY.to_owned()]);
    Arc::new(Services {
        upstream: Arc::new(
            Upstream::new(model_url, key)
                .unwrap()
                .with_policy(test_policy()),
        ),
        egress: Arc::new(pincer_socket::egress::Egress::new(Arc::clone(&store), guard).unwrap()),
        store,
        limits: Default::default(),
    })
}

/// How many times audit entries happened: a repeat within a minute, or a
/// flood past the per-minute cap, is one row with a count.
pub fn events<'a>(entries: impl IntoIterator<Item = &'a Value>) -> u64 {
    entries
        .into_iter()
        .map(|e| e["count"].as_u64().unwrap())
        .sum()
}

pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What `reader` (a child's stdout) writes, gathered by a thread as it comes.
pub fn gather(mut reader: impl Read + Send + 'static) -> Arc<std::sync::Mutex<String>> {
    let gathered = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = Arc::clone(&gathered);
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    gathered
}

/// `pincer doctor --json` with `env` set and `remove` unset: its exit code
/// and its checks.
pub fn doctor(
    mut command: std::process::Command,
    env: &[(&str, &str)],
    remove: &[&str],
) -> (Option<i32>, Vec<Value>) {
    command.args(["doctor", "--json"]);
    for (key, value) in env {
        command.env(key, value);
    }
    for key in remove {
        command.env_remove(key);
    }
    let output = command.output().unwrap();
    let checks = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (output.status.code(), checks)
}

/// Polls `condition` every 50 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// Reads a HTTP/1.1 response off a raw stream: status and body (content-length only).
pub fn read_response(stream: impl Read) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut reader = BufReader::new(stream);
    let request = {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line
    };
    let status = request.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':').unwrap();
        headers.insert(n.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, headers, body)
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
