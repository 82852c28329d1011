//! `pincer image build`: the agent image, with a spinner while a person waits.

use anyhow::Context as _;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use pincer_assistant::config::{Paths, Settings};
use pincer_assistant::image::ImageSources;
use pincer_core::sandbox::{EngineEndpoint, ImageKind, Sandbox};

#[derive(Subcommand)]
pub(crate) enum ImageCommand {
    /// Build (or rebuild) the agent image.
    Build {
        /// Build the fuller Debian image from container/Dockerfile (needs a registry).
        #[arg(long)]
        full: bool,
        /// The tag; default PINCER_IMAGE or pincer-agent:<version>.
        #[arg(long)]
        tag: Option<String>,
    },
}

pub(crate) async fn build_image(
    paths: &Paths,
    settings: &Settings,
    engine: EngineEndpoint,
    full: bool,
    tag: Option<String>,
) -> anyhow::Result<()> {
    let sandbox = Sandbox::connect(paths, engine).await?;
    // The full image gets a name of its own: building it must not silently
    // replace the image every invocation uses.
    let tag = tag.unwrap_or_else(|| {
        if full {
            format!("pincer-agent-full:{}", env!("CARGO_PKG_VERSION"))
        } else {
            settings.image.clone()
        }
    });
    let kind = if full {
        ImageKind::Full
    } else {
        ImageKind::Minimal
    };
    let sources = ImageSources {
        agent_bin: settings.agent_bin.clone(),
        busybox: settings.busybox.clone(),
    };
    let progress = spinner(format!("building image {tag}"));
    let result = pincer_assistant::image::build_image(&sandbox, kind, &tag, &sources, &|step| {
        progress.set_message(format!("building image {tag}: {step}"));
    })
    .await;
    progress.finish_and_clear();
    result.with_context(|| format!("cannot build the agent image {tag}"))?;
    println!("built {tag}");
    if tag != settings.image {
        println!(
            "agents use {}; set PINCER_IMAGE={tag} to use this one",
            settings.image
        );
    }
    Ok(())
}

/// The agent image before the first invocation (built on first use), with
/// a spinner while it builds: the static agent's cargo build takes minutes.
pub(crate) async fn prepare(
    host: &pincer_assistant::invoke::Host,
) -> Result<(), pincer_assistant::invoke::InvokeError> {
    let bar = std::sync::OnceLock::new();
    let result = host
        .ensure_image(&|step| {
            bar.get_or_init(|| spinner("building the agent image (first use)".into()))
                .set_message(format!("building the agent image (first use): {step}"));
        })
        .await;
    if let Some(bar) = bar.get() {
        bar.finish_and_clear();
    }
    result
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
