//! A test installation: its own PINCER_HOME and config, groups, allowlists, the real `pincer` binary, its containers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::*;

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

    /// `pincer ARGS` run to its end, for a command that asks no model
    /// (the owner's `changes`, `groups`, `egress`, …).
    pub fn owner(&self, args: &[&str]) -> std::process::Output {
        self.pincer("http://127.0.0.1:1")
            .args(args)
            .output()
            .unwrap()
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

/// The installation's store, opened beside the host (WAL: both may write).
pub fn store(install: &Installation) -> pincer_store::Store {
    pincer_store::Store::open(&install.home().join("pincer.db")).unwrap()
}

/// Whether the engine the tests reach (`DOCKER_HOST`) is Podman: where its
/// inspection reports the same container in its own words.
pub fn on_podman() -> bool {
    static PODMAN: OnceLock<bool> = OnceLock::new();
    *PODMAN.get_or_init(|| {
        let output = Command::new("docker")
            .args([
                "version",
                "--format",
                "{{range .Server.Components}}{{.Name}} {{end}}",
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "docker version failed: {output:?}");
        String::from_utf8_lossy(&output.stdout).contains("Podman")
    })
}

/// The OCI runtime a container was created with. Docker's inspection names
/// it; Podman's Docker-compatible one says `oci`, so ask Podman's own.
pub fn runtime_of(id: &str) -> String {
    if !on_podman() {
        return inspect(id)["HostConfig"]["Runtime"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    let url = std::env::var("DOCKER_HOST").unwrap();
    let output = Command::new("podman")
        .args(["--url", &url, "inspect", "--format", "{{.OCIRuntime}}", id])
        .output()
        .unwrap();
    assert!(output.status.success(), "podman inspect failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}
