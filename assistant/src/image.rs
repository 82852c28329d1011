//! The agent image as the assistant needs it: built on first use, from a
//! given static `pincer-agent` or one built from this source tree with cargo
//! (the sandbox only packs files it is handed and talks to the engine).

use std::path::{Path, PathBuf};
use std::process::Command;

use pincer_core::sandbox::{ImageFiles, ImageKind, Sandbox, SandboxError};

/// Where the files that go into the image come from.
#[derive(Debug, Clone, Default)]
pub struct ImageSources {
    /// A statically linked `pincer-agent`; default: built from this source tree.
    pub agent_bin: Option<PathBuf>,
    /// A static busybox; default: `/bin/busybox` (Debian's `busybox-static`).
    pub busybox: Option<PathBuf>,
}

/// Why the image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No agent binary given and no source tree to build one from.
    #[error(
        "no pincer-agent binary: set PINCER_AGENT_BIN to a statically linked pincer-agent, \
         or run pincer from its source tree ({0} is missing)"
    )]
    NoAgentSource(PathBuf),
    /// Building the agent failed.
    #[error("building pincer-agent failed ({command}):\n{output}")]
    AgentBuild {
        /// The command line.
        command: String,
        /// The end of its output.
        output: String,
    },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// Builds the minimal image if the engine does not have it; `on_step`
/// hears the build, if there is one.
pub async fn ensure_image(
    sandbox: &Sandbox,
    tag: &str,
    sources: &ImageSources,
    on_step: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    if sandbox.image_exists(tag).await? {
        return Ok(());
    }
    tracing::info!("the agent image {tag} is missing: building it (first use)");
    build_image(sandbox, ImageKind::Minimal, tag, sources, on_step).await
}

/// Builds (or rebuilds) the agent image `tag`; `on_step` hears what is
/// going on (the agent's cargo build, then each engine build step).
pub async fn build_image(
    sandbox: &Sandbox,
    kind: ImageKind,
    tag: &str,
    sources: &ImageSources,
    on_step: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), ImageError> {
    let agent = match &sources.agent_bin {
        Some(path) => path.clone(),
        None => {
            on_step("building pincer-agent (static)");
            tokio::task::spawn_blocking(build_agent_from_source)
                .await
                .map_err(|err| ImageError::AgentBuild {
                    command: "cargo build".into(),
                    output: err.to_string(),
                })??
        }
    };
    let files = ImageFiles {
        agent,
        busybox: sources
            .busybox
            .clone()
            .unwrap_or_else(|| PathBuf::from("/bin/busybox")),
    };
    sandbox.build_image(kind, tag, &files, on_step).await?;
    Ok(())
}

/// Builds a static `pincer-agent` from the source tree this `pincer` was built
/// from, into its own target folder (so it never waits on an outer cargo).
pub(crate) fn build_agent_from_source() -> Result<PathBuf, ImageError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default();
    let manifest = root.join("agent/Cargo.toml");
    if !manifest.exists() {
        return Err(ImageError::NoAgentSource(manifest));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let triple = host_triple()?;
    let target_dir = root.join("target/agent-static");
    let mut command = Command::new(&cargo);
    command
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--package",
            "pincer-agent",
            "--target",
        ])
        .arg(&triple)
        .arg("--target-dir")
        .arg(&target_dir)
        // Only the target is linked statically: with an explicit --target,
        // RUSTFLAGS do not reach build scripts and proc macros.
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    let description = format!(
        "RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p pincer-agent --target {triple}"
    );
    let output = command.output();
    let output = output.map_err(|err| ImageError::AgentBuild {
        command: description.clone(),
        output: err.to_string(),
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        return Err(ImageError::AgentBuild {
            command: description,
            output: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(target_dir.join(triple).join("release/pincer-agent"))
}

fn host_triple() -> Result<String, ImageError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|err| ImageError::AgentBuild {
            command: "rustc -vV".into(),
            output: err.to_string(),
        })?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| ImageError::AgentBuild {
            command: "rustc -vV".into(),
            output: "no `host:` line".into(),
        })
}
