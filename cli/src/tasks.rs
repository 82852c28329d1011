//! `pincer tasks`: the scheduled tasks and their runs.

use anyhow::Context as _;
use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_assistant::escape;
use pincer_core::group::GroupName;

use crate::open_store;

#[derive(Subcommand)]
pub(crate) enum TasksCommand {
    /// List the tasks.
    List {
        /// Only this group's.
        #[arg(long)]
        group: Option<GroupName>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pause a task.
    Pause {
        /// Its id.
        id: i64,
    },
    /// Resume a paused task (its next run is planned from now).
    Resume {
        /// Its id.
        id: i64,
    },
    /// Cancel a task.
    Cancel {
        /// Its id.
        id: i64,
    },
}

pub(crate) fn tasks_command(paths: &Paths, command: TasksCommand) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    match command {
        TasksCommand::List { group, json } => {
            let tasks = store.tasks(group.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&tasks)?);
            } else {
                for task in tasks {
                    println!(
                        "{:>4}  {:<12} {:<9} {:<8} {:<20} next {:<21} {}",
                        task.id,
                        task.group,
                        task.status,
                        task.schedule_kind,
                        escape::line(&task.schedule_value),
                        task.next_run.as_deref().unwrap_or("-"),
                        escape::line(&task.prompt)
                    );
                }
            }
        }
        TasksCommand::Pause { id } | TasksCommand::Resume { id } | TasksCommand::Cancel { id } => {
            let status = match command {
                TasksCommand::Pause { .. } => "paused",
                TasksCommand::Resume { .. } => "active",
                _ => "cancelled",
            };
            let task = store.task(id)?.with_context(|| format!("no task {id}"))?;
            if task.status == "cancelled" || task.status == "done" {
                anyhow::bail!("task {id} is {}", task.status);
            }
            store.set_task_status(id, status)?;
            println!("task {id} is {status}");
        }
    }
    Ok(())
}
