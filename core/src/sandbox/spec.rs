//! The hardened container spec: what every agent container is created with.
//!
//! One function, [`ContainerSpec::to_create_body`], turns Pincer's spec into
//! the engine's, and nothing else can loosen it: there is no field for
//! privileged mode, capabilities, host namespaces or a network. The rules
//! follow the CIS Docker Benchmark's runtime checks (section 5); SECURITY.md
//! lists each with the test that inspects a real container for it.
#![allow(clippy::disallowed_types)] // the owner of bollard::models::HostConfig

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigCgroupnsModeEnum, HostConfigLogConfig,
};
use serde::Serialize;

use crate::mounts::{ContainerUser, ValidatedMount};

/// Resource limits of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// Memory limit; swap is not allowed on top of it.
    pub memory_bytes: i64,
    /// CPU limit in billionths of a CPU.
    pub nano_cpus: i64,
    /// Most processes and threads at once.
    pub pids: i64,
    /// Size of the `/tmp` tmpfs.
    pub tmp_bytes: u64,
    /// Most bytes of container log the engine keeps.
    pub log_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub nofile: u64,
    /// `RLIMIT_NPROC`. The kernel counts a uid's tasks (threads too), not
    /// a container's: every agent on Docker shares uid 65530, and an agent
    /// that runs as the owner (a non-root host, rootless `keep-id`) shares
    /// the count with the owner's whole session. So it is a ceiling, high
    /// enough that no group uses it up for another or for the owner's
    /// desktop; `pids` (the cgroup's) is the per-container limit.
    pub nproc: u64,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            memory_bytes: 1024 * 1024 * 1024,
            nano_cpus: 1_000_000_000,
            pids: 256,
            tmp_bytes: 64 * 1024 * 1024,
            log_bytes: 1024 * 1024,
            nofile: 4096,
            nproc: 32_768,
        }
    }
}

/// Everything about one container that may vary; the rest is fixed hardening.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// The image (built locally, never pulled).
    pub image: String,
    /// Command to run instead of the image's entrypoint (benchmarks, tests).
    pub command: Option<Vec<String>>,
    /// The user the processes run as; never root.
    pub user: ContainerUser,
    /// Bind mounts, each checked by [`crate::mounts`].
    pub mounts: Vec<ValidatedMount>,
    /// Limits.
    pub resources: Resources,
    /// Extra labels (the sandbox adds its own ownership labels).
    pub labels: BTreeMap<String, String>,
    /// Working directory.
    pub working_dir: String,
    /// The engine's OCI runtime (`None`: the engine's default).
    pub runtime: Option<String>,
}

/// The environment every container gets. Never a secret: the model key stays
/// on the host and is added by the gateway. The proxy variables point at the
/// runner's bridge to the host's egress proxy (the port is
/// [`pincer_protocol::EGRESS_PROXY_PORT`]); a process that ignores them has no
/// route at all.
pub const CONTAINER_ENV: &[&str] = &[
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "HOME=/tmp",
    "LANG=C.UTF-8",
    "HTTP_PROXY=http://127.0.0.1:3128",
    "HTTPS_PROXY=http://127.0.0.1:3128",
    "http_proxy=http://127.0.0.1:3128",
    "https_proxy=http://127.0.0.1:3128",
    "NO_PROXY=localhost,127.0.0.1,::1",
    "no_proxy=localhost,127.0.0.1,::1",
];

/// The hostname inside every container (the host's own is never shown).
pub const CONTAINER_HOSTNAME: &str = "pincer";

impl ContainerSpec {
    /// The tmpfs options of `/tmp`.
    pub fn tmp_options(&self) -> String {
        format!(
            "rw,nosuid,nodev,size={},mode=1777",
            self.resources.tmp_bytes
        )
    }

    /// The engine's create body: the hardened spec plus this container's
    /// parts, and the user namespace the engine gives it (see
    /// [`super::EngineProfile::userns_mode`]).
    pub fn to_create_body(
        &self,
        labels: HashMap<String, String>,
        userns_mode: Option<String>,
    ) -> ContainerCreateBody {
        let host_config = HostConfig {
            // Identity and privileges.
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            privileged: Some(false),
            readonly_rootfs: Some(true),
            // Namespaces: nothing shared with the host.
            network_mode: Some("none".into()),
            ipc_mode: Some("private".into()),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            // Limits.
            memory: Some(self.resources.memory_bytes),
            memory_swap: Some(self.resources.memory_bytes),
            nano_cpus: Some(self.resources.nano_cpus),
            pids_limit: Some(self.resources.pids),
            // Set, not inherited: an engine's defaults may exceed the host's
            // hard limits (Podman's are refused on some hosts), and a core
            // dump would land in the group's folder.
            ulimits: Some(super::engine::ulimits(self)),
            userns_mode,
            tmpfs: Some(HashMap::from([("/tmp".to_owned(), self.tmp_options())])),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".to_owned(), self.resources.log_bytes.to_string()),
                    ("max-file".to_owned(), "1".to_owned()),
                ])),
            }),
            // An init process reaps the agent's zombies.
            init: Some(true),
            runtime: self.runtime.clone(),
            mounts: Some(
                self.mounts
                    .iter()
                    .map(ValidatedMount::to_engine_mount)
                    .collect(),
            ),
            // Removed explicitly after the exit code is read (auto-remove races with wait).
            auto_remove: Some(false),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            // An overriding command replaces the entrypoint too: its first word
            // becomes the entrypoint, the rest its arguments.
            entrypoint: self
                .command
                .as_ref()
                .and_then(|c| c.first())
                .map(|e| vec![e.clone()]),
            cmd: self
                .command
                .as_ref()
                .map(|c| c.iter().skip(1).cloned().collect()),
            user: Some(self.user.spec()),
            hostname: Some(CONTAINER_HOSTNAME.into()),
            env: Some(CONTAINER_ENV.iter().map(|s| (*s).to_owned()).collect()),
            working_dir: Some(self.working_dir.clone()),
            labels: Some(labels),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            open_stdin: Some(true),
            stdin_once: Some(true),
            tty: Some(false),
            network_disabled: Some(true),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// The full effective spec, for the audit table: everything that decides
    /// what the container may see and do. Holds no secret (there is none in it).
    pub fn audit_detail(&self) -> serde_json::Value {
        serde_json::json!({
            "image": self.image,
            "command": self.command,
            "user": self.user.spec(),
            "mounts": self.mounts,
            "resources": self.resources,
            "tmpfs": {"/tmp": self.tmp_options()},
            "network": "none",
            "read_only_rootfs": true,
            "cap_drop": ["ALL"],
            "no_new_privileges": true,
            "privileged": false,
            "init": true,
            "ulimits": {"nofile": self.resources.nofile, "nproc": self.resources.nproc, "core": 0},
            "runtime": self.runtime,
            "env": CONTAINER_ENV,
            "labels": self.labels,
        })
    }

    /// The same container as `docker run` (or `podman run`) flags: the
    /// benchmark's baseline runs exactly this through the CLI.
    pub fn docker_run_args(
        &self,
        labels: &HashMap<String, String>,
        userns_mode: Option<&str>,
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            "run",
            "--rm",
            "-i",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges:true",
            "--read-only",
            "--network",
            "none",
            "--ipc",
            "private",
            "--cgroupns",
            "private",
            "--init",
            "--log-driver",
            "json-file",
            "--log-opt",
            "max-file=1",
            "--hostname",
            CONTAINER_HOSTNAME,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut push = |flag: &str, value: String| {
            args.push(flag.to_owned());
            args.push(value);
        };
        push("--user", self.user.spec());
        push("--memory", self.resources.memory_bytes.to_string());
        push("--memory-swap", self.resources.memory_bytes.to_string());
        push(
            "--cpus",
            format!("{}", self.resources.nano_cpus as f64 / 1e9),
        );
        push("--pids-limit", self.resources.pids.to_string());
        push("--tmpfs", format!("/tmp:{}", self.tmp_options()));
        push(
            "--log-opt",
            format!("max-size={}", self.resources.log_bytes),
        );
        push("--workdir", self.working_dir.clone());
        for limit in super::engine::ulimits(self) {
            let (name, value) = (limit.name.unwrap_or_default(), limit.hard.unwrap_or(0));
            push("--ulimit", format!("{name}={value}:{value}"));
        }
        if let Some(mode) = userns_mode {
            push("--userns", mode.to_owned());
        }
        for env in CONTAINER_ENV {
            push("--env", (*env).to_owned());
        }
        for (key, value) in labels {
            push("--label", format!("{key}={value}"));
        }
        for mount in &self.mounts {
            let mut value = format!(
                "type=bind,source={},target={}",
                mount.source().display(),
                mount.target()
            );
            if mount.read_only() {
                value.push_str(",readonly,bind-nonrecursive");
            }
            push("--mount", value);
        }
        if let Some(runtime) = &self.runtime {
            push("--runtime", runtime.clone());
        }
        if let Some(entrypoint) = self.command.as_ref().and_then(|c| c.first()) {
            push("--entrypoint", entrypoint.clone());
        }
        args.push(self.image.clone());
        args.extend(self.command.iter().flatten().skip(1).cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_variables_point_at_the_runners_bridge() {
        let bridge = format!("http://127.0.0.1:{}", pincer_protocol::EGRESS_PROXY_PORT);
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            assert!(
                CONTAINER_ENV.contains(&format!("{var}={bridge}").as_str()),
                "{var}"
            );
        }
        assert!(
            !CONTAINER_ENV
                .iter()
                .any(|e| e.contains("KEY") || e.contains("TOKEN"))
        );
    }
}
