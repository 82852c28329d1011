//! The agent image, built locally: these engines cannot pull from a registry.
//!
//! The default image is `FROM scratch` with a statically linked `pincer-agent`
//! and a static busybox for a shell and core utilities: a few MiB, nothing to
//! download, nothing in it but what the agent uses. `container/Dockerfile`
//! describes a fuller image (Debian with bash, git, curl, python3) for owners
//! whose engine can pull a base image.

use std::io::Read;
use std::path::{Path, PathBuf};

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

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

/// The files that go into the image, each a static executable.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    /// A statically linked `pincer-agent`.
    pub agent: PathBuf,
    /// A static busybox (the minimal image's shell and utilities).
    pub busybox: PathBuf,
}

/// Why the image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
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

    /// Builds (or rebuilds) the agent image `tag` from `files`; `on_step`
    /// hears each build step, for whoever shows progress.
    pub async fn build_image(
        &self,
        kind: ImageKind,
        tag: &str,
        files: &ImageFiles,
        on_step: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<(), SandboxError> {
        let agent = &files.agent;
        check_static_elf(agent)?;
        let mut files_in = vec![(
            "pincer-agent",
            std::fs::read(agent).map_err(bad_file(agent))?,
        )];
        let dockerfile = match kind {
            ImageKind::Minimal => {
                let busybox = &files.busybox;
                check_static_elf(busybox).map_err(|err| match err {
                    ImageError::BadFile { path, problem } => ImageError::BadFile {
                        path,
                        problem: format!(
                            "{problem} (install Debian's busybox-static, or set PINCER_BUSYBOX)"
                        ),
                    },
                    other => other,
                })?;
                files_in.push((
                    "busybox",
                    std::fs::read(busybox).map_err(bad_file(busybox))?,
                ));
                SCRATCH_DOCKERFILE
            }
            ImageKind::Full => FULL_DOCKERFILE,
        };
        let context = build_context(dockerfile, &files_in).map_err(|err| ImageError::Build {
            tag: tag.into(),
            message: format!("cannot pack the build context: {err}"),
        })?;

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
                    on_step(text);
                }
            }
        }
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
