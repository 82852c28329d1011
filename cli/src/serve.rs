//! `pincer serve`: the assistant as a service, until SIGTERM or Ctrl-C.

use pincer_assistant::Registry;
use pincer_assistant::config::{Paths, Settings};
use pincer_assistant::daemon::Daemon;
use pincer_assistant::invoke::Host;
use pincer_core::sandbox::EngineEndpoint;

use crate::model_key;

pub(crate) async fn start_daemon(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    secrets: Vec<String>,
    registry: &Registry,
) -> anyhow::Result<std::sync::Arc<Daemon>> {
    let host = Host::start(
        paths,
        settings.clone(),
        engine,
        model_key(),
        secrets,
        registry,
    )
    .await?;
    // Built now rather than at the first message, with a spinner when a
    // person is watching; a failure here is the first message's to report.
    if let Err(err) = crate::image::prepare(&host).await {
        tracing::warn!("the agent image is not ready: {err}");
    }
    Ok(Daemon::new(
        host,
        settings,
        registry.channels(&crate::skill_env),
    ))
}

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

pub(crate) async fn serve_command(
    paths: Paths,
    settings: Settings,
    engine: EngineEndpoint,
    secrets: Vec<String>,
    registry: &Registry,
) -> anyhow::Result<()> {
    let daemon = start_daemon(paths, settings, engine, secrets, registry).await?;
    daemon.run(shutdown_signal()).await?;
    Ok(())
}
