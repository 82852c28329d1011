//! One agent invocation, end to end: the path of one message.
//!
//! prompt → folders and socket prepared → gateway serving the socket →
//! hardened container with the group's mounts → invocation on stdin → events
//! from stdout → the runner's result → everything torn down.
//!
//! This module decides *what* runs (which group, which mounts, which limits);
//! how a container is run is the sandbox's business, what a mount may be is
//! the mounts module's, and how the model is reached is the gateway's.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::image::ImageSources;
use pincer_protocol::{Event, Invocation, Outcome, PROTOCOL_VERSION, Status, Usage};
use serde::Serialize;

use crate::config::{Paths, Settings};
use pincer_core::group::GroupName;
use pincer_core::mounts::{
    self, ContainerUser, HostFacts, MountError, MountPlan, MountPolicy, MountRequest,
};
use pincer_core::sandbox::{
    ContainerSpec, EngineEndpoint, OutputLine, Resources, Sandbox, SandboxError,
};
use pincer_core::staging::StageLimits;
use pincer_socket::egress::{Egress, EgressError, LeakGuard};
use pincer_socket::gateway::{ApiKey, Caller, Gateway, GatewayError, Services, Upstream};
use pincer_store::{AuditRecord, Store, StoreError};

pub mod branch;
pub mod output;
mod quota;
pub mod staged;

use output::RunnerOutput;

/// Longest a Unix socket path may be (`sun_path` is 108 bytes on Linux, 104 on macOS).
const MAX_SOCKET_PATH: usize = 100;

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The sandbox failed (engine gone, timeout, image).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The agent image could not be built.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// The gateway could not be set up.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The egress proxy could not be set up.
    #[error(transparent)]
    Egress(#[from] EgressError),
    /// The group's folders could not be prepared.
    #[error(transparent)]
    Mounts(#[from] MountError),
    /// Run-time files could not be created.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `PINCER_HOME` is so deep that a socket inside it cannot be named.
    #[error(
        "the socket path {0} is too long for a Unix socket ({MAX_SOCKET_PATH} bytes at most): \
         choose a shorter PINCER_HOME"
    )]
    SocketPathTooLong(PathBuf),
    /// A host account has the uid or gid agents run as.
    #[error(
        "agents run as uid:gid {uid}, but the host has that {account}: a login there would share \
         the agents' identity; Pincer does not start"
    )]
    SharedIdentity {
        /// The container's `uid:gid`.
        uid: String,
        /// Which account.
        account: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A model budget is used up: nothing starts.
    #[error(transparent)]
    Budget(#[from] pincer_socket::budget::BudgetError),
    /// The group is not registered.
    #[error(
        "group {0} is not registered (register it with `pincer groups add {0} --chat CHAT_ID`)"
    )]
    UnknownGroup(String),
    /// The prompt is longer than an invocation takes.
    #[error(
        "the prompt is {bytes} bytes, more than an invocation takes ({limit}: [limits] prompt_bytes)"
    )]
    PromptTooLarge {
        /// Its length (as sent to the runner).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The group's folders are over their quota: nothing starts.
    #[error(
        "group {group}'s folders take {used} bytes, over their quota of {quota} ([limits] \
         group_folder_bytes): the owner makes room in them, or raises the quota"
    )]
    OverQuota {
        /// The group.
        group: String,
        /// What its folders take (counted up to just past the quota).
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// The group's folders could not be measured.
    #[error(transparent)]
    Folders(#[from] crate::folders::FolderError),
    /// The agent reported failure.
    #[error("the agent failed: {0}")]
    Agent(String),
    /// The runner ended without a result.
    #[error("the agent runner exited with code {exit_code} without a result{}", stderr_suffix(.stderr))]
    NoResult {
        /// Its exit code.
        exit_code: i64,
        /// The end of its stderr.
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; its stderr ends with:\n{stderr}")
    }
}

/// The answer of a successful invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The invocation's id.
    pub invocation_id: String,
    /// The group it ran in.
    pub group: String,
    /// The agent's final answer.
    pub text: String,
    /// Model turns taken.
    pub turns: u32,
    /// Tokens used.
    pub usage: Usage,
    /// Tool calls made.
    pub tool_calls: u32,
}

/// The label naming an agent container's group (`pincer status` reads it back).
pub const GROUP_LABEL: &str = "pincer.group";
/// The label naming the invocation a container runs.
pub const INVOCATION_LABEL: &str = "pincer.invocation";

/// The host: a sandbox and an upstream, ready to run invocations.
#[derive(Debug)]
pub struct Host {
    paths: Paths,
    settings: Settings,
    sandbox: Sandbox,
    services: Arc<Services>,
    /// The agent's uid and gid in the container.
    user: ContainerUser,
    /// The same on the host: the owner of its folders and socket.
    host_user: ContainerUser,
    facts: HostFacts,
}

impl Host {
    /// Builds the agent image if the engine does not have it (first use);
    /// `on_step` hears the build (the CLI draws a spinner with it).
    pub async fn ensure_image(
        &self,
        on_step: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), InvokeError> {
        let sources = ImageSources {
            agent_bin: self.settings.agent_bin.clone(),
            busybox: self.settings.busybox.clone(),
        };
        crate::image::ensure_image(&self.sandbox, &self.settings.image, &sources, on_step)
            .await
            .map_err(|err| match err {
                // The engine went away: a failure the daemon retries.
                crate::image::ImageError::Sandbox(err) => InvokeError::Sandbox(err),
                other => InvokeError::Image(other),
            })
    }

    /// Connects to the engine (failing closed), removes orphans of earlier
    /// runs, and prepares the model upstream.
    pub async fn start(
        paths: Paths,
        settings: Settings,
        engine: EngineEndpoint,
        api_key: Option<String>,
        other_secrets: Vec<String>,
        registry: &crate::Registry,
    ) -> Result<Self, InvokeError> {
        let user = ContainerUser::for_this_host();
        if user == ContainerUser::UNPRIVILEGED
            && let Some(account) = user.host_account()
        {
            return Err(InvokeError::SharedIdentity {
                uid: user.spec(),
                account,
            });
        }
        // Who the agent is on the host: its own uid, or (in a user namespace
        // of Pincer's range) the uid that one maps to, whose accounts the
        // sandbox refused at connect.
        let sandbox = Sandbox::connect(&paths, engine).await?;
        let host_user = sandbox.profile().host_user(user);
        match crate::folders::fold_names(&paths) {
            Ok(renamed) => {
                for folder in renamed {
                    tracing::info!("renamed a group's folder to its folded name: {folder}");
                }
            }
            Err(err) => tracing::warn!("cannot fold the names of group folders: {err}"),
        }
        let store = Arc::new(Store::open(&paths.database())?.with_audit_limits(
            pincer_store::AuditLimits {
                field_bytes: settings.limits.audit_field_bytes,
                rows_per_minute: settings.limits.audit_rows_per_minute,
            },
        ));
        let removed = sandbox.remove_orphans().await?;
        if removed > 0 {
            tracing::info!("removed {removed} orphaned agent container(s) of an earlier run");
        }
        let key = ApiKey::new(api_key.unwrap_or_default())?;
        // The leak guard knows the model key and the owner's other secrets.
        let guard = LeakGuard::new(std::iter::once(key.expose().to_owned()).chain(other_secrets));
        let provider = registry.provider(&settings.model_provider)?;
        let upstream = Arc::new(
            Upstream::with_provider(&settings.model_url, key, provider)?
                .with_policy(settings.model_policy())
                .with_budget(settings.budget),
        );
        let egress = Arc::new(Egress::new(Arc::clone(&store), guard)?);
        let facts = host_facts(&paths, sandbox.endpoint());
        let limits = settings.limits;
        Ok(Self {
            paths,
            settings,
            sandbox,
            services: Arc::new(Services {
                upstream,
                store,
                egress,
                limits,
            }),
            user,
            host_user,
            facts,
        })
    }

    /// The sandbox (image management, benchmarks).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.services.store
    }

    /// The folders.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs one invocation of `group` with `prompt` and the group's extra
    /// mount requests; `on_event` sees each event as the runner reports it.
    pub async fn invoke(
        &self,
        group: &GroupName,
        prompt: &str,
        extra_mounts: &[MountRequest],
        on_event: &mut (dyn FnMut(&Event) + Send),
    ) -> Result<Reply, InvokeError> {
        if self.services.store.group(group.as_str())?.is_none() {
            return Err(InvokeError::UnknownGroup(group.to_string()));
        }
        // Over budget, the message gets that answer, and no container starts
        // for a model request the gateway would refuse.
        self.settings
            .budget
            .check(&self.services.store, group.as_str())?;
        let limits = self.settings.limits;
        if prompt.len() > limits.prompt_bytes {
            return Err(InvokeError::PromptTooLarge {
                bytes: prompt.len(),
                limit: limits.prompt_bytes,
            });
        }
        self.check_quota(group)?;
        let image = &self.settings.image;
        self.ensure_image(&|step| tracing::info!("building image {image}: {step}"))
            .await?;

        let invocation_id =
            pincer_core::sandbox::random_hex(8).map_err(|source| InvokeError::Io {
                path: "/dev/urandom".into(),
                source,
            })?;
        let run_dir = RunDir::create(&self.paths.run_dir().join("inv").join(&invocation_id))?;
        let socket_path = run_dir.path.join("host.sock");
        if socket_path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(InvokeError::SocketPathTooLong(socket_path));
        }
        let _gateway = Gateway::serve(
            &socket_path,
            Arc::clone(&self.services),
            Caller {
                group: group.clone(),
                invocation_id: invocation_id.clone(),
            },
        )?;
        // The policy is read afresh right before the container is created, so
        // an edit applies to the next invocation, and a broken file stops it.
        let policy = MountPolicy::load(&self.facts).map_err(MountError::from)?;
        // The group's stored requests, then this invocation's own.
        let mut requested: Vec<MountRequest> = self
            .services
            .store
            .group_mounts(group.as_str())?
            .into_iter()
            .map(|(host_path, container_name, read_write)| MountRequest {
                host_path,
                container_name,
                read_write,
            })
            .collect();
        requested.extend_from_slice(extra_mounts);
        let staging = self.paths.staging_dir(group).join(&invocation_id);
        let mounts::InvocationMounts {
            mounts,
            left_out,
            staged,
        } = mounts::invocation_mounts(
            &self.paths,
            &MountPlan {
                group,
                user: self.host_user,
                host_socket: &socket_path,
                project: self.settings.project_dir.as_deref(),
                extra: &requested,
                policy: &policy,
                home: self.paths.user_home.as_deref(),
                staging: &staging,
                stage_limits: StageLimits::with_bytes(limits.staged_copy_bytes),
            },
        )
        .inspect_err(|_| {
            // Copies made before the refusal; the folder is this invocation's alone.
            let _ = pincer_core::staging::discard(&staging);
        })?;
        let mut staged = staged::StagedCopies::new(staged, staging);
        self.tell_left_out(group, &left_out);
        let spec = ContainerSpec {
            image: self.settings.image.clone(),
            command: None,
            user: self.user,
            mounts,
            resources: Resources::default(),
            labels: BTreeMap::from([
                (GROUP_LABEL.to_owned(), group.to_string()),
                (INVOCATION_LABEL.to_owned(), invocation_id.clone()),
            ]),
            working_dir: mounts::GROUP_TARGET.into(),
            runtime: self.settings.runtime.clone(),
        };
        let invocation = Invocation {
            protocol: PROTOCOL_VERSION,
            invocation_id: invocation_id.clone(),
            group: group.to_string(),
            is_main: group.is_main(),
            prompt: prompt.to_owned(),
            model: self.settings.model.clone(),
            max_tokens: self.settings.max_tokens,
            max_turns: self.settings.max_turns,
            limits: self.settings.tool_limits,
            session_budget: self.settings.session_budget,
        };
        let mut stdin = serde_json::to_vec(&invocation).map_err(|err| InvokeError::Io {
            path: "<invocation>".into(),
            source: err.into(),
        })?;
        stdin.push(b'\n');
        if stdin.len() > pincer_protocol::MAX_INVOCATION_BYTES {
            // Escaping can make a prompt longer on the wire than in hand.
            return Err(InvokeError::PromptTooLarge {
                bytes: stdin.len(),
                limit: pincer_protocol::MAX_INVOCATION_BYTES,
            });
        }

        self.services.store.audit(AuditRecord {
            group: Some(group.as_str()),
            kind: "spawn",
            action: "create_container",
            target: Some(&invocation_id),
            allowed: Some(true),
            detail: Some(spec.audit_detail().to_string()),
            ..Default::default()
        })?;

        let mut output = RunnerOutput::new(&invocation_id, limits.junk_lines);
        let mut on_line = |line: OutputLine<'_>| output.line(line, on_event);
        let exit = self
            .sandbox
            .run(
                &spec,
                &stdin,
                pincer_core::sandbox::Deadlines {
                    total: self.settings.timeout,
                    idle: Some(self.settings.idle_timeout),
                    stdin: limits.stdin_timeout,
                },
                &mut on_line,
            )
            .await;
        if output.junk > 0 {
            tracing::warn!(invocation = %invocation_id, "the runner wrote {} lines that were not events", output.junk);
        }
        self.record_changes(group, &invocation_id, &mut staged, &policy);
        self.after(group, &invocation_id);
        let exit = match exit {
            Err(err @ (SandboxError::Mounts(_) | SandboxError::WeakEngine(_))) => {
                // The spawn above named what was asked; this says the engine
                // gave something else (mounts, limits, user mapping, runtime),
                // and that nothing ran.
                self.services.store.audit_or_log(AuditRecord {
                    group: Some(group.as_str()),
                    kind: "spawn",
                    action: "refuse_container",
                    target: Some(&invocation_id),
                    allowed: Some(false),
                    reason: Some(&err.to_string()),
                    ..Default::default()
                });
                return Err(err.into());
            }
            Err(err) => {
                // Why the container was ended (a deadline, a limit, the
                // engine) stays on record with the invocation it ended.
                self.services.store.audit_or_log(AuditRecord {
                    group: Some(group.as_str()),
                    kind: "spawn",
                    action: "end_container",
                    target: Some(&invocation_id),
                    allowed: None,
                    reason: Some(&err.to_string()),
                    ..Default::default()
                });
                return Err(err.into());
            }
            Ok(exit) => exit,
        };
        tracing::debug!(invocation = %invocation_id, container = %exit.container_id, code = exit.exit_code, "container ended");

        let tool_calls = output.tool_calls;
        match output.outcome {
            Some(Outcome {
                status: Status::Ok,
                text,
                turns,
                usage,
                ..
            }) => Ok(Reply {
                invocation_id,
                group: group.to_string(),
                text: text.unwrap_or_default(),
                turns,
                usage,
                tool_calls,
            }),
            Some(Outcome { error, .. }) => Err(InvokeError::Agent(
                error.unwrap_or_else(|| "no reason given".into()),
            )),
            None => Err(InvokeError::NoResult {
                exit_code: exit.exit_code,
                stderr: exit.stderr_tail,
            }),
        }
    }

    /// Folders left out of an invocation (too large or deep to scan): logged,
    /// audited, and said in the main chat once a day each.
    fn tell_left_out(&self, group: &GroupName, left_out: &[String]) {
        let store = &self.services.store;
        for note in left_out {
            tracing::warn!(group = %group, "{note}");
            let day = &pincer_store::time::now()[..10];
            store.tell_main_once(
                &format!("left_out:{group}:{note}"),
                day,
                &format!("Group {group}: {note}"),
            );
            store.audit_or_log(AuditRecord {
                group: Some(group.as_str()),
                kind: "spawn",
                action: "leave_out_mount",
                allowed: Some(false),
                reason: Some(note),
                ..Default::default()
            });
        }
    }
}

/// What the mount policy must know about this host: where `~` is, and the
/// paths no group may ever see (Pincer's own folders, the engine's sockets).
pub fn host_facts(paths: &Paths, engine: &EngineEndpoint) -> HostFacts {
    let mut engine_sockets: Vec<PathBuf> = [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/podman/podman.sock",
        "/run/containerd/containerd.sock",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    engine_sockets.extend(engine.unix_socket());
    HostFacts {
        home: paths.user_home.clone(),
        config_dir: paths.config_dir.clone(),
        data_dir: paths.home.clone(),
        engine_sockets,
    }
}

/// An invocation's run-time folder (mode 0700, holds its socket); removed when dropped.
struct RunDir {
    path: PathBuf,
}

impl RunDir {
    fn create(path: &Path) -> Result<Self, InvokeError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|source| InvokeError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
