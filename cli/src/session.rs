//! `pincer session reset`: a group's conversation started afresh.

use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_core::group::GroupName;

#[derive(Subcommand)]
pub(crate) enum SessionCommand {
    /// Start the group's conversation afresh (the old one is archived).
    Reset {
        /// The group.
        group: GroupName,
    },
}

pub(crate) fn session_reset(paths: &Paths, group: &GroupName) -> anyhow::Result<()> {
    match pincer_assistant::folders::reset_session(paths, group)? {
        None => println!("{group} has no session to reset"),
        Some(moved) => println!(
            "{group}'s session starts afresh (the old one is in {})",
            moved.display()
        ),
    }
    Ok(())
}
