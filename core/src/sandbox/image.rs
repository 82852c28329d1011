//! The agent image, built locally: these engines cannot pull from a registry.
//!
//! The default image is `FROM scratch` with a statically linked `pincer-agent`
//! and a static busybox for a shell and core utilities: a few MiB, nothing to
//! download, nothing in it but what the agent uses. `container/Dockerfile`
//! describes a fuller image (Debian with bash, git, curl, python3) for owners
//! whose engine can pull a base image.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Sandbox, SandboxError};

const SCRATCH_DOCKERFILE: &str = include_str!("../../../container/Dockerfile.scratch");
const FULL_DOCKERFILE: &str = include_str!("../../../container/Dockerfile");

/// The image `pincer` uses unless `PINCER_IMAGE` says otherwise.
pub fn default_image() -> String {
    format!("pincer-agent:{}", env!("CARGO_PKG_VERSION"))
}

/// Which image to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `FROM scratch`: the agent and busybox. Needs no registry.
    Minimal,
    /// `container/Dockerfile`: Debian with bash, git, curl, python3. Needs a registry.
    Full,
}

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
    /// A file for the image is missing or unusable.
    #[error("{path}: {problem}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The engine's build failed.
    #[error("building image {tag} failed: {message}")]
    Build {
        /// The image tag.
        tag: String,
        /// The engine's message.
        message: String,
    },
}

impl Sandbox {
    /// Whether the image is present in the engine.
    pub async fn image_exists(&self, tag: &str) -> Result<bool, SandboxError> {
        match self.docker.inspect_image(tag).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(source) => Err(SandboxError::Engine {
                action: "looking up the agent image",
                source,
            }),
        }
    }

    /// Builds the image if the engine does not have it.
    pub async fn ensure_image(
        &self,
        tag: &str,
        sources: &ImageSources,
    ) -> Result<(), SandboxError> {
        if self.image_exists(tag).await? {
            return Ok(());
        }
        tracing::info!("the agent image {tag} is missing: building it (first use)");
        self.build_image(ImageKind::Minimal, tag, sources).await
    }

    /// Builds (or rebuilds) the agent image `tag`, with a progress display on a terminal.
    pub async fn build_image(
        &self,
        kind: ImageKind,
        tag: &str,
        sources: &ImageSources,
    ) -> Result<(), SandboxError> {
        let agent = match &sources.agent_bin {
            Some(path) => path.clone(),
            None => tokio::task::spawn_blocking(build_agent_from_source)
                .await
                .map_err(|err| ImageError::AgentBuild {
                    command: "cargo build".into(),
                    output: err.to_string(),
                })??,
        };
        check_static_elf(&agent)?;
        let mut files = vec![(
            "pincer-agent",
            std::fs::read(&agent).map_err(bad_file(&agent))?,
        )];
        let dockerfile = match kind {
            ImageKind::Minimal => {
                let busybox = sources
                    .busybox
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
                check_static_elf(&busybox).map_err(|err| match err {
                    ImageError::BadFile { path, problem } => ImageError::BadFile {
                        path,
                        problem: format!(
                            "{problem} (install Debian's busybox-static, or set PINCER_BUSYBOX)"
                        ),
                    },
                    other => other,
                })?;
                files.push((
                    "busybox",
                    std::fs::read(&busybox).map_err(bad_file(&busybox))?,
                ));
                SCRATCH_DOCKERFILE
            }
            ImageKind::Full => FULL_DOCKERFILE,
        };
        let context = build_context(dockerfile, &files).map_err(|err| ImageError::Build {
            tag: tag.into(),
            message: format!("cannot pack the build context: {err}"),
        })?;

        let progress = spinner(format!("building image {tag}"));
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(tag)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(context.into())));
        let mut log = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|err| ImageError::Build {
                tag: tag.into(),
                message: format!("{err}\n{log}"),
            })?;
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                progress.finish_and_clear();
                return Err(ImageError::Build {
                    tag: tag.into(),
                    message: format!("{detail}\n{log}"),
                }
                .into());
            }
            if let Some(text) = info.stream {
                log.push_str(&text);
                let text = text.trim();
                if text.starts_with("Step ") {
                    progress.set_message(format!("building image {tag}: {text}"));
                }
            }
        }
        progress.finish_and_clear();
        tracing::info!("built image {tag}");
        Ok(())
    }
}

fn bad_file(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |err| ImageError::BadFile {
        path: path.to_owned(),
        problem: err.to_string(),
    }
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The image's build context: a tar with the Dockerfile and the files.
fn build_context(dockerfile: &str, files: &[(&str, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut append = |name: &str, data: &[u8], mode: u32| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, data)
    };
    append("Dockerfile", dockerfile.as_bytes(), 0o644)?;
    for (name, data) in files {
        append(name, data, 0o755)?;
    }
    tar.into_inner()
}

/// Fails unless `path` is an ELF executable without an interpreter (static):
/// a `FROM scratch` image has no dynamic loader and no libc.
fn check_static_elf(path: &Path) -> Result<(), ImageError> {
    let bad = |problem: &str| ImageError::BadFile {
        path: path.to_owned(),
        problem: problem.to_owned(),
    };
    let mut head = Vec::new();
    std::fs::File::open(path)
        .map_err(bad_file(path))?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(bad_file(path))?;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF executable"));
    }
    let u16_at = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]) as usize;
    let u64_at = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&head[at..at + 8]);
        u64::from_le_bytes(bytes) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    for index in 0..phnum {
        let at = phoff + index * phentsize;
        if at + 4 > head.len() {
            return Err(bad("program headers out of reach"));
        }
        // PT_INTERP: the binary wants a dynamic loader.
        if u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]) == 3 {
            return Err(bad(
                "dynamically linked; the agent image needs a static binary",
            ));
        }
    }
    Ok(())
}

/// Builds a static `pincer-agent` from the source tree this `pincer` was built
/// from, into its own target folder (so it never waits on an outer cargo).
fn build_agent_from_source() -> Result<PathBuf, ImageError> {
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
    let progress = spinner("building pincer-agent (static)".into());
    let output = command.output();
    progress.finish_and_clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_check_tells_static_from_dynamic() {
        // The system's own `ls` is dynamically linked on every distribution we target.
        let err = check_static_elf(Path::new("/bin/ls")).unwrap_err();
        assert!(err.to_string().contains("dynamically linked"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("script");
        std::fs::write(&text, "#!/bin/sh\n").unwrap();
        let err = check_static_elf(&text).unwrap_err();
        assert!(err.to_string().contains("not a 64-bit"), "{err}");
        if Path::new("/bin/busybox").exists() {
            check_static_elf(Path::new("/bin/busybox")).unwrap();
        }
    }

    #[test]
    fn context_holds_the_dockerfile_and_files() {
        let tar_bytes = build_context("FROM scratch\n", &[("busybox", vec![1, 2, 3])]).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["Dockerfile", "busybox"]);
    }
}
