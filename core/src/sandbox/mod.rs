//! The sandbox: the only module that talks to the container engine.
//!
//! One fresh container per invocation: create → attach → start → feed stdin →
//! read stdout and stderr as they come → wait → remove. The container is
//! removed on every path out: success, failure, timeout, and a dropped future
//! or panic (the [`ContainerGuard`]). Containers are labelled with the
//! installation id and their owner's token (see [`owner`]), so a host that
//! was killed leaves nothing behind that the next start does not clean up.
//!
//! If the engine cannot be reached, [`Sandbox::connect`] fails and nothing
//! runs: there is no fallback to the host.
//!
//! The sandbox knows nothing about groups, models or the protocol: it runs a
//! [`ContainerSpec`] and hands back stdout lines.
#![allow(clippy::disallowed_types)] // the owner of bollard::Docker

mod engine;
mod image;
mod lines;
pub(crate) mod owner;
mod running;
mod spec;
mod verify;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as EngineError;
use bollard::query_parameters::{AttachContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

pub use engine::{
    EngineEndpoint, EngineKind, EngineProfile, IdRange, SUBORDINATE_NAME, WeakEngine, parse_id_map,
    socket_candidates,
};
pub use image::{ImageFiles, ImageKind, default_image};
pub use owner::random_hex;
pub use running::RunningContainer;
pub use spec::{CONTAINER_ENV, CONTAINER_HOSTNAME, ContainerSpec, Resources};
pub use verify::MountCheckError;

use crate::paths::Paths;
use lines::{LineSplitter, Tail};

/// Label: the installation (one per `PINCER_HOME`) a container belongs to.
pub const LABEL_INSTALLATION: &str = "pincer.installation";
/// Label: the token of the host process that created the container.
pub const LABEL_OWNER: &str = "pincer.owner";

/// Longest stdout line passed on whole; a longer one is reported as oversized.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// How much of the container's stderr is kept for error messages.
const STDERR_TAIL_BYTES: usize = 8 * 1024;
/// Timeout of each engine request (waiting for a container is not one).
const ENGINE_TIMEOUT_SECS: u64 = 120;

/// What can go wrong in the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No engine answered: Pincer refuses to run agents at all.
    #[error(
        "cannot reach the container engine at {endpoint}: {source}\n\
         hint: start Docker (`sudo systemctl start docker`) or Podman (`sudo systemctl start \
         podman.socket`, or `systemctl --user start podman.socket` for rootless), or set \
         DOCKER_HOST to a running engine; without DOCKER_HOST Pincer looks for \
         /var/run/docker.sock, /run/podman/podman.sock, then $XDG_RUNTIME_DIR/podman/podman.sock \
         and $XDG_RUNTIME_DIR/docker.sock; Pincer never runs an agent outside a container"
    )]
    Unreachable {
        /// Where we looked.
        endpoint: EngineEndpoint,
        /// What the engine client said.
        source: EngineError,
    },
    /// The engine refused or failed a request.
    #[error("container engine failed while {action}: {source}")]
    Engine {
        /// What we were doing.
        action: &'static str,
        /// What the engine said.
        source: EngineError,
    },
    /// An engine request's task ended without an answer (the runtime is
    /// shutting down).
    #[error("the request to the container engine was interrupted while {0}")]
    Interrupted(&'static str),
    /// The invocation ran past its hard limit.
    #[error("timed out after {}s; the container was killed and removed", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The container wrote nothing for too long.
    #[error("no output for {}s; the container was killed and removed", .0.as_secs_f64())]
    Idle(Duration),
    /// Talking to the container's stdin failed.
    #[error("cannot write to the container's stdin: {0}")]
    Stdin(std::io::Error),
    /// The container did not take its input within the deadline.
    #[error("the container did not read its input within {}s; it was killed and removed", .0.as_secs_f64())]
    StdinTimedOut(Duration),
    /// The caller's line handler ended the run (the output broke a limit).
    #[error("{0}; the container was killed and removed")]
    Ended(String),
    /// The ownership files could not be set up.
    #[error(transparent)]
    Owner(#[from] owner::OwnerError),
    /// The agent image could not be built.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// The started container's mounts are not what was checked; it was
    /// removed before the agent was given anything.
    #[error(transparent)]
    Mounts(#[from] MountCheckError),
    /// The engine cannot, or did not, enforce the spec's limits or user
    /// mapping: no agent runs on it.
    #[error(transparent)]
    WeakEngine(#[from] WeakEngine),
}

fn engine(action: &'static str) -> impl FnOnce(EngineError) -> SandboxError {
    move |source| SandboxError::Engine { action, source }
}

/// What `pincer doctor` reports about the engine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineFacts {
    /// The engine's version.
    pub version: String,
    /// The API version in use (negotiated).
    pub api_version: String,
    /// The engine's default OCI runtime.
    pub default_runtime: String,
    /// Registered runtimes: name → (path, arguments).
    pub runtimes: std::collections::BTreeMap<String, (String, Vec<String>)>,
}

/// A line the container wrote on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLine<'a> {
    /// A whole line, without its newline.
    Line(&'a [u8]),
    /// A line longer than [`MAX_LINE_BYTES`], dropped.
    Oversized {
        /// Its length.
        bytes: usize,
    },
}

/// How long a container may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Hard wall-clock limit.
    pub total: Duration,
    /// Longest silence on stdout and stderr.
    pub idle: Option<Duration>,
    /// Longest wait for the container to take its stdin: a runner that
    /// stops reading would otherwise hold the host's write, which no output
    /// deadline covers.
    pub stdin: Duration,
}

impl Deadlines {
    /// Only a hard limit.
    pub fn total(total: Duration) -> Self {
        Self {
            total,
            idle: None,
            stdin: total,
        }
    }
}

/// What a line handler says: go on, or end the run with a reason.
pub type LineFlow = std::ops::ControlFlow<String>;
/// Sees each line the container writes on stdout, as it comes.
pub type LineHandler<'a> = dyn FnMut(OutputLine<'_>) -> LineFlow + Send + 'a;

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunExit {
    /// The container's id (already removed).
    pub container_id: String,
    /// The main process's exit code.
    pub exit_code: i64,
    /// The last few KiB of stderr.
    pub stderr_tail: String,
}

/// A connection to the container engine, tied to one installation.
#[derive(Debug)]
pub struct Sandbox {
    docker: Docker,
    endpoint: EngineEndpoint,
    profile: EngineProfile,
    installation: String,
    owners_dir: PathBuf,
    owner: owner::OwnerLock,
}

impl Sandbox {
    /// Connects to the engine and negotiates the API version; fails closed.
    pub async fn connect(paths: &Paths, endpoint: EngineEndpoint) -> Result<Self, SandboxError> {
        let unreachable = |source| SandboxError::Unreachable {
            endpoint: endpoint.clone(),
            source,
        };
        let docker = if let Some(path) = endpoint.0.strip_prefix("unix://") {
            Docker::connect_with_unix(path, ENGINE_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        } else if endpoint.0.starts_with("tcp://") || endpoint.0.starts_with("http://") {
            Docker::connect_with_http(
                &endpoint.0,
                ENGINE_TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            )
        } else {
            Err(EngineError::UnsupportedURISchemeError {
                uri: endpoint.0.clone(),
            })
        }
        .map_err(unreachable)?;
        // The engines here speak an older API than bollard's default.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        let version = docker
            .version()
            .await
            .map_err(engine("asking the engine its version"))?;
        let info = docker
            .info()
            .await
            .map_err(engine("asking the engine about itself"))?;
        let profile = engine::profile_of(&version, &info)?;
        let installation = owner::installation_id(&paths.home)?;
        let owners_dir = paths.run_dir().join("owners");
        let owner = owner::OwnerLock::acquire(&owners_dir)?;
        tracing::debug!(%endpoint, version = ?docker.client_version(), %installation, engine = %profile.describe(), "connected to the container engine");
        Ok(Self {
            docker,
            endpoint,
            profile,
            installation,
            owners_dir,
            owner,
        })
    }

    /// The engine's version and runtimes.
    pub async fn engine_facts(&self) -> Result<EngineFacts, SandboxError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(engine("asking the engine about itself"))?;
        let runtimes = info
            .runtimes
            .unwrap_or_default()
            .into_iter()
            .map(|(name, runtime)| {
                (
                    name,
                    (
                        runtime.path.unwrap_or_default(),
                        runtime.runtime_args.unwrap_or_default(),
                    ),
                )
            })
            .collect();
        Ok(EngineFacts {
            version: info.server_version.unwrap_or_default(),
            api_version: self.docker.client_version().to_string(),
            default_runtime: info.default_runtime.unwrap_or_default(),
            runtimes,
        })
    }

    /// The installation id this sandbox labels its containers with.
    pub fn installation(&self) -> &str {
        &self.installation
    }

    /// The engine endpoint.
    pub fn endpoint(&self) -> &EngineEndpoint {
        &self.endpoint
    }

    /// Which engine this is and how it maps the container's users.
    pub fn profile(&self) -> &EngineProfile {
        &self.profile
    }

    /// The labels a container of this process carries.
    pub fn ownership_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_INSTALLATION.to_owned(), self.installation.clone()),
            (LABEL_OWNER.to_owned(), self.owner.token().to_owned()),
        ])
    }

    /// Removes this installation's containers whose owner process is gone.
    /// Containers of other installations, and of live owners, are left alone.
    pub async fn remove_orphans(&self) -> Result<usize, SandboxError> {
        let mut removed = 0;
        for container in self.own_containers().await? {
            let labels = container.labels.unwrap_or_default();
            let owner = labels.get(LABEL_OWNER).map(String::as_str).unwrap_or("");
            if owner == self.owner.token() || !owner::owner_is_gone(&self.owners_dir, owner) {
                continue;
            }
            let Some(id) = container.id else { continue };
            tracing::info!(container = %id, owner, "removing an orphaned agent container");
            remove_container(&self.docker, &id, true).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Runs one container to its end (or to `timeout`), writing `stdin` to it
    /// and passing each stdout line to `on_line` as it arrives. The container
    /// is gone when this returns, whatever it returns.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        stdin: &[u8],
        deadlines: Deadlines,
        on_line: &mut LineHandler<'_>,
    ) -> Result<RunExit, SandboxError> {
        self.profile.check_runtime(spec.runtime.as_deref())?;
        let timeout = deadlines.total;
        let mut labels = self.ownership_labels();
        labels.extend(spec.labels.clone());
        let body = spec.to_create_body(labels, self.profile.userns_mode(spec.user));
        // The creation runs on a task of its own, which takes charge of the
        // container the moment it exists: if this invocation is cancelled
        // (dropped) while the engine is still creating it, the task finishes
        // anyway and its guard removes the container. Awaited here directly,
        // a cancellation could land between "created" and "guarded".
        let docker = self.docker.clone();
        let (guard, created) = tokio::spawn(async move {
            let created = docker.create_container(None, body).await?;
            Ok::<_, EngineError>((ContainerGuard::new(docker, created.id.clone()), created))
        })
        .await
        .map_err(|_| SandboxError::Interrupted("creating the container"))?
        .map_err(engine("creating the container"))?;
        tracing::debug!(container = %created.id, image = %spec.image, "created");

        let outcome = tokio::time::timeout(
            timeout,
            self.attach_and_wait(&created.id, spec, stdin, deadlines, on_line),
        )
        .await;
        let removal = guard.remove(!matches!(outcome, Ok(Ok(_)))).await;
        if let (Err(err), Err(_) | Ok(Err(_))) = (&removal, &outcome) {
            // The run's own error is what the caller hears; this one must
            // not vanish with it.
            tracing::error!(container = %created.id, "{err}");
        }
        let (exit_code, stderr_tail) = match outcome {
            Err(_elapsed) => return Err(SandboxError::TimedOut(timeout)),
            Ok(result) => result?,
        };
        removal?;
        Ok(RunExit {
            container_id: created.id,
            exit_code,
            stderr_tail,
        })
    }

    async fn attach_and_wait(
        &self,
        id: &str,
        spec: &ContainerSpec,
        stdin: &[u8],
        deadlines: Deadlines,
        on_line: &mut LineHandler<'_>,
    ) -> Result<(i64, String), SandboxError> {
        let options = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        // Attach before start, so that no output is missed.
        let mut attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(engine("attaching to the container"))?;
        self.docker
            .start_container(id, None)
            .await
            .map_err(engine("starting the container"))?;
        self.check_started(id, spec).await?;

        let feed = async {
            attached.input.write_all(stdin).await?;
            attached.input.flush().await?;
            attached.input.shutdown().await
        };
        let fed = tokio::time::timeout(deadlines.stdin, feed)
            .await
            .map_err(|_| SandboxError::StdinTimedOut(deadlines.stdin))?;
        if let Err(err) = fed {
            // A runner that exits before reading its stdin breaks the pipe; its
            // exit code and stderr tell the real story, so only a failure to
            // write anything at all is an error.
            if err.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(SandboxError::Stdin(err));
            }
        }

        let mut lines = LineSplitter::default();
        let mut stderr = Tail::default();
        loop {
            let next = match deadlines.idle {
                Some(idle) => match tokio::time::timeout(idle, attached.output.next()).await {
                    Ok(next) => next,
                    Err(_) => return Err(SandboxError::Idle(idle)),
                },
                None => attached.output.next().await,
            };
            let Some(frame) = next else { break };
            match frame.map_err(engine("reading the container's output"))? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    if let LineFlow::Break(reason) = lines.push(&message, on_line) {
                        return Err(SandboxError::Ended(reason));
                    }
                }
                LogOutput::StdErr { message } => {
                    tracing::debug!(container = %id, stderr = %String::from_utf8_lossy(&message).trim_end());
                    stderr.push(&message);
                }
                LogOutput::StdIn { .. } => {}
            }
        }
        if let LineFlow::Break(reason) = lines.finish(on_line) {
            return Err(SandboxError::Ended(reason));
        }

        let exit_code = match self.docker.wait_container(id, None).next().await {
            Some(Ok(response)) => response.status_code,
            Some(Err(EngineError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(source)) => {
                return Err(SandboxError::Engine {
                    action: "waiting for the container",
                    source,
                });
            }
            None => -1,
        };
        Ok((exit_code, stderr.into_string()))
    }
}

/// How long a removal the engine calls busy is tried again.
const REMOVAL_RETRY: Duration = Duration::from_secs(10);

impl Sandbox {
    /// What the started container got, checked before the agent gets its
    /// stdin (the runner waits for it: nothing of the agent has run yet):
    /// its limits as the engine reports them, its user mapping and its
    /// mounts as the kernel shows them.
    async fn check_started(&self, id: &str, spec: &ContainerSpec) -> Result<(), SandboxError> {
        let inspected = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(engine("inspecting the started container"))?;
        engine::check_created(spec, inspected.host_config.as_ref(), &self.profile)?;
        let pid = inspected.state.and_then(|state| state.pid).unwrap_or(0);
        engine::check_id_maps(pid, spec.user, &self.profile)?;
        verify::check(pid, &spec.mounts)?;
        Ok(())
    }
}

/// Removes a container; `running` when it may still run (a timeout, a
/// refusal, a dropped run): it is killed first, since a forced removal on
/// Podman stops it with SIGTERM and waits out its stop timeout (10 s).
async fn remove_container(docker: &Docker, id: &str, running: bool) -> Result<(), SandboxError> {
    if running {
        // Not running any more, or already gone: the removal below says so.
        let _ = docker
            .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
            .await;
    }
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    let deadline = tokio::time::Instant::now() + REMOVAL_RETRY;
    loop {
        match docker.remove_container(id, Some(options.clone())).await {
            Ok(()) => return Ok(()),
            // Already gone, or already being removed: either way it will not stay.
            Err(EngineError::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => return Ok(()),
            // Podman's cleanup of a container that just exited can still hold
            // its mounts ("device or resource busy"): it lets go within moments.
            Err(EngineError::DockerResponseServerError {
                status_code: 500,
                ref message,
            }) if message.contains("busy") && tokio::time::Instant::now() < deadline => {
                tracing::debug!(container = %id, "the engine is still busy with the container: {message}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(source) => {
                return Err(SandboxError::Engine {
                    action: "removing the container",
                    source,
                });
            }
        }
    }
}

/// Removes its container when dropped, unless [`ContainerGuard::remove`] did.
/// A dropped future (Ctrl-C, a timeout above us) or a panic still cleans up.
struct ContainerGuard {
    docker: Docker,
    id: Option<String>,
}

impl ContainerGuard {
    fn new(docker: Docker, id: String) -> Self {
        Self {
            docker,
            id: Some(id),
        }
    }

    async fn remove(mut self, running: bool) -> Result<(), SandboxError> {
        match self.id.take() {
            Some(id) => remove_container(&self.docker, &id, running).await,
            None => Ok(()),
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let docker = self.docker.clone();
        // Drop cannot await, and the runtime we were on may be shutting down:
        // remove on a thread of our own, with a runtime of its own, and wait.
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(remove_container(&docker, &id, true)),
                Err(err) => {
                    tracing::error!(container = %id, "cannot remove the container: {err}");
                    Ok(())
                }
            }
        });
        match removal.join() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!("{err}"),
            Err(_) => tracing::error!("the container removal thread panicked"),
        }
    }
}
