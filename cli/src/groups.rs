//! `pincer groups`: registered groups, their chats, triggers and extra mounts.

use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_assistant::escape;
use pincer_core::group::GroupName;
use pincer_core::mounts::MountRequest;

use crate::mounts::parse_mount_request;
use crate::open_store;

#[derive(Subcommand)]
pub(crate) enum GroupsCommand {
    /// List the groups.
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register a (non-main) group for a chat.
    Add {
        /// The group's name (also its folder's name).
        name: GroupName,
        /// The chat it answers in (e.g. telegram:-1001234).
        #[arg(long)]
        chat: String,
        /// What a message must start with to wake the agent (default @pincer).
        #[arg(long)]
        trigger: Option<String>,
    },
    /// Unregister a group; its folders are archived under `removed/` in
    /// Pincer's data folder (or deleted with --purge), so a new group of the
    /// same name starts empty.
    Remove {
        /// The group's name.
        name: GroupName,
        /// Delete the group's folder and session instead of archiving them.
        #[arg(long)]
        purge: bool,
    },
    /// Ask for an extra folder for a group, at every invocation; the mount
    /// allowlist decides each time (`pincer mounts check` shows how).
    Mount {
        /// The group.
        group: GroupName,
        /// `host=PATH[,name=NAME][,rw]` (or just PATH).
        #[arg(value_parser = parse_mount_request)]
        spec: MountRequest,
    },
    /// Withdraw a group's request for an extra folder.
    Unmount {
        /// The group.
        group: GroupName,
        /// The host path, as it was asked for.
        host_path: String,
    },
    /// The extra folders a group asks for.
    Mounts {
        /// The group.
        group: GroupName,
    },
}

pub(crate) fn groups_command(paths: &Paths, command: GroupsCommand) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    match command {
        GroupsCommand::List { json } => {
            let groups = store.groups()?;
            if json {
                println!("{}", serde_json::to_string(&groups)?);
            } else {
                for group in groups {
                    let wakes = match (&group.trigger, group.is_main) {
                        (_, true) => "main: every message".to_owned(),
                        (Some(trigger), false) => format!("trigger {trigger}"),
                        (None, false) => "no trigger".to_owned(),
                    };
                    println!(
                        "{:<20} {:<30} {}",
                        group.name,
                        escape::line(&group.chat_id),
                        escape::line(&wakes)
                    );
                }
            }
        }
        GroupsCommand::Add {
            name,
            chat,
            trigger,
        } => {
            let group = store.add_group(&name, &chat, trigger.as_deref())?;
            println!(
                "registered {} for chat {} (trigger {})",
                group.name,
                group.chat_id,
                group.trigger.unwrap_or_default()
            );
        }
        GroupsCommand::Remove { name: group, purge } => {
            store.removable(&group)?;
            // Folders first: a group whose folders could not be taken away
            // stays registered, so nobody new inherits them.
            use pincer_assistant::folders::{Retired, retire};
            let retired = retire(paths, &group, purge)?;
            store.remove_group(group.as_str())?;
            match retired {
                Retired::Archived(to) => {
                    println!("removed {group} (its folders are in {})", to.display())
                }
                Retired::Purged => println!("removed {group} and deleted its folders"),
                Retired::Nothing => println!("removed {group}"),
            }
        }
        GroupsCommand::Mount { group, spec } => {
            store.add_group_mount(
                &group,
                &spec.host_path,
                spec.container_name.as_deref(),
                spec.read_write,
            )?;
            println!(
                "{group} asks for {} (decided by the mount allowlist at each invocation)",
                spec.host_path
            );
        }
        GroupsCommand::Unmount { group, host_path } => {
            store.remove_group_mount(&group, &host_path)?;
            println!("{group} no longer asks for {host_path}");
        }
        GroupsCommand::Mounts { group } => {
            for (host_path, name, read_write) in store.group_mounts(&group)? {
                let name = name.map(|n| format!(" as {n}")).unwrap_or_default();
                println!(
                    "{host_path}{name}{}",
                    if read_write {
                        " (read-write asked)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(())
}
