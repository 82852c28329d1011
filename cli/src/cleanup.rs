//! `pincer cleanup`: this installation's containers whose host is gone.

use pincer_assistant::config::Paths;
use pincer_core::sandbox::{EngineEndpoint, Sandbox};

pub(crate) async fn cleanup(paths: &Paths, engine: EngineEndpoint) -> anyhow::Result<()> {
    let sandbox = Sandbox::connect(paths, engine).await?;
    let removed = sandbox.remove_orphans().await?;
    println!("removed {removed} orphaned container(s)");
    Ok(())
}
