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

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
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

/// A listener that counts connections and never answers: a trap for traffic
/// that must not happen (a proxy the gateway must not use).
pub struct Trap {
    pub addr: std::net::SocketAddr,
    pub hits: Arc<Mutex<usize>>,
}

impl Trap {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(0));
        let counter = Arc::clone(&hits);
        thread::spawn(move || {
            for stream in listener.incoming() {
                *counter.lock().unwrap() += 1;
                drop(stream);
            }
        });
        Self { addr, hits }
    }

    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

/// A plain HTTP server on loopback that answers `egress-ok <path>` and
/// counts what reached it: the destination of egress tests.
pub struct Destination {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Destination {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = Arc::clone(&seen);
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    if reader.read_line(&mut first).is_err() {
                        return;
                    }
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) if line.trim().is_empty() => break,
                            Ok(_) => {}
                        }
                    }
                    let path = first.split_whitespace().nth(1).unwrap_or("?").to_owned();
                    seen.lock().unwrap().push(first.trim().to_owned());
                    let body = format!("egress-ok {path}");
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        Self { port, requests }
    }

    pub fn hits(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A private Pincer installation in a temp folder.
pub struct Installation {
    pub dir: tempfile::TempDir,
    pub id: String,
}

impl Installation {
    pub fn new() -> Self {
        ensure_image();
        // Short paths: the per-invocation socket must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("pt")
            .tempdir_in("/tmp")
            .unwrap();
        let id = random_id();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::write(dir.path().join("home/installation-id"), &id).unwrap();
        Self { dir, id }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// The owner's home in this installation's world (`HOME` for `~`).
    pub fn user_home(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    /// Registers a non-main group for the chat `test:<name>`.
    pub fn add_group(&self, name: &str) {
        let output = self
            .pincer("http://127.0.0.1:1")
            .args(["groups", "add", name, "--chat", &format!("test:{name}")])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }

    /// Allows `rule` for `group`'s egress.
    pub fn allow_egress(&self, group: &str, rule: &str) {
        let output = self
            .pincer("http://127.0.0.1:1")
            .args(["egress", "allow", group, rule])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }

    /// The audit entries of a kind, as JSON.
    pub fn audit_of_kind(&self, kind: &str) -> Vec<Value> {
        let output = self
            .pincer("http://127.0.0.1:1")
            .args(["audit", "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|entry| entry["kind"] == kind)
            .collect()
    }

    /// Writes the mount allowlist.
    pub fn allow(&self, json: &str) {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("mount-allowlist.json"), json).unwrap();
    }

    /// `pincer` with this installation's environment and the model at `model_url`.
    pub fn pincer(&self, model_url: &str) -> Command {
        let mut command = Command::new(host_binary());
        command
            .env("PINCER_HOME", self.home())
            .env("PINCER_CONFIG_DIR", self.config_dir())
            .env("HOME", self.user_home())
            .env("PINCER_MODEL_URL", model_url)
            .env("ANTHROPIC_API_KEY", TEST_KEY)
            .env("RUST_LOG", "pincer=debug")
            // No project mount unless a test asks for one.
            .env("PINCER_PROJECT_DIR", "none")
            .env_remove("PINCER_TIMEOUT")
            .env_remove("PINCER_IMAGE");
        command
    }

    /// This installation's host in the test's own process (as `pincer serve`
    /// starts it), with the model at `model_url` and `extra` settings
    /// (`("TZ", "…")`, say); also the settings it runs with.
    pub async fn start_host(
        &self,
        model_url: &str,
        extra: &[(&str, &str)],
    ) -> (
        pincer_assistant::invoke::Host,
        pincer_assistant::config::Settings,
    ) {
        let mut vars = vec![
            ("PINCER_HOME".to_owned(), self.home().display().to_string()),
            (
                "PINCER_CONFIG_DIR".to_owned(),
                self.config_dir().display().to_string(),
            ),
            ("HOME".to_owned(), self.user_home().display().to_string()),
            ("PINCER_MODEL_URL".to_owned(), model_url.to_owned()),
            ("PINCER_PROJECT_DIR".to_owned(), "none".to_owned()),
        ];
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let env = |name: &str| {
            vars.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let settings = pincer_assistant::config::Settings::from_env(env).unwrap();
        let host = pincer_assistant::invoke::Host::start(
            pincer_assistant::config::Paths::from_env(env).unwrap(),
            settings.clone(),
            pincer_core::sandbox::EngineEndpoint::from_docker_host(
                std::env::var("DOCKER_HOST").ok(),
            ),
            Some(TEST_KEY.to_owned()),
            Vec::new(),
            &pincer_assistant::Registry::default(),
        )
        .await
        .unwrap();
        (host, settings)
    }

    /// Ids of this installation's containers, running or not.
    pub fn containers(&self) -> Vec<String> {
        containers_labelled(&format!("pincer.installation={}", self.id))
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        // Never leave a test's containers behind, whatever the test did.
        for id in self.containers() {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
    }
}

pub fn containers_labelled(label: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label={label}"),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "docker ps failed: {output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `docker inspect` of one container, as JSON.
pub fn inspect(id: &str) -> Value {
    let output = Command::new("docker")
        .args(["inspect", id])
        .output()
        .unwrap();
    assert!(output.status.success(), "docker inspect failed: {output:?}");
    let all: Value = serde_json::from_slice(&output.stdout).unwrap();
    all[0].clone()
}

/// Builds the agent image once per test process, from the current source, so
/// that the tests never run a stale runner.
pub fn ensure_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(host_binary())
            .args(["image", "build"])
            .env("PINCER_HOME", dir.path().join("home"))
            .env("PINCER_CONFIG_DIR", dir.path().join("config"))
            .env_remove("PINCER_IMAGE")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pincer image build failed: {}",
            text(&output)
        );
    });
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

/// A `pincer serve` process of an installation; killed when dropped.
pub struct DaemonProcess {
    pub child: std::process::Child,
    home: PathBuf,
}

impl DaemonProcess {
    pub fn start(install: &Installation, model_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = install.pincer(model_url);
        command.arg("serve").env("RUST_LOG", "pincer=info");
        for (key, value) in env {
            command.env(key, value);
        }
        let log = std::fs::File::create(
            install
                .dir
                .path()
                .join(format!("serve-{}.log", random_id())),
        )
        .unwrap();
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let socket = install.home().join("pincer.sock");
        assert!(
            wait_for(Duration::from_secs(60), || {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }),
            "the daemon's control socket never came up"
        );
        Self {
            child,
            home: install.home(),
        }
    }

    pub fn control(&self) -> Control {
        Control::connect(&self.home)
    }

    /// SIGTERM, then wait; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap().code()
    }

    /// SIGKILL: no clean-up of any kind.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client of the control socket (JSON lines).
pub struct Control {
    reader: BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Control {
    pub fn connect(home: &Path) -> Self {
        let stream = std::os::unix::net::UnixStream::connect(home.join("pincer.sock")).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(240)))
            .unwrap();
        Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    pub fn request(&mut self, request: Value) {
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).unwrap();
    }

    pub fn next_event(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON from the daemon: {line:?}"))
    }

    /// Sends and returns the accepted message's id.
    pub fn send(&mut self, group: &str, text: &str) -> i64 {
        self.request(json!({"op": "send", "group": group, "text": text}));
        loop {
            let event = self.next_event();
            match event["event"].as_str() {
                Some("accepted") => return event["id"].as_i64().unwrap(),
                Some("error") => panic!("send refused: {event}"),
                _ => {}
            }
        }
    }

    /// Watches, sends, and waits for the reply answering the message.
    pub fn ask(&mut self, group: &str, text: &str) -> Value {
        self.request(json!({"op": "watch"}));
        let id = self.send(group, text);
        self.reply_to(id)
    }

    /// Waits (watching) for the reply answering message `id`.
    pub fn reply_to(&mut self, id: i64) -> Value {
        loop {
            let event = self.next_event();
            if event["event"] == "reply"
                && event["answers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a.as_i64() == Some(id))
            {
                return event;
            }
        }
    }
}
