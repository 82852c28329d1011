//! `pincer changes`: what agents wrote to staged grants, reviewed and
//! accepted (whole or in part) or rejected by the owner; and what agents
//! asked for (`request_access`), approved or refused.

mod access;
mod decide;
mod show;

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_assistant::escape;
use pincer_core::group::GroupName;
use pincer_core::staging::{ChangeKind, Manifest};
use pincer_store::{ChangeSet, Decision, Store};

use crate::{open_store, report};

#[derive(Subcommand)]
pub(crate) enum ChangesCommand {
    /// The entries of a change set and their diffs.
    Show {
        /// The change set's number.
        id: i64,
        /// The set as one JSON object (no diffs).
        #[arg(long)]
        json: bool,
    },
    /// Apply a change set's waiting entries (or those at or below PATHs) to
    /// the real folder. Refused, and nothing applied, when a file there
    /// changed since the agent began (both versions are shown).
    Accept {
        /// The change set's number.
        id: i64,
        /// Paths within the set (a folder names everything below it).
        paths: Vec<String>,
    },
    /// Drop a change set's waiting entries (or those at or below PATHs);
    /// the real folder is not touched.
    Reject {
        /// The change set's number.
        id: i64,
        /// Paths within the set (a folder names everything below it).
        paths: Vec<String>,
    },
    /// Grant an agent's access request: the egress rule or folder request
    /// is written for its group, as `pincer egress allow` or `pincer groups
    /// mount` would.
    Approve {
        /// The request's number.
        id: i64,
    },
    /// Refuse an agent's access request; asking again gets the refusal.
    Refuse {
        /// The request's number.
        id: i64,
    },
}

pub(crate) fn changes_command(
    paths: &Paths,
    command: Option<ChangesCommand>,
    group: Option<GroupName>,
    all: bool,
    json: bool,
) -> ExitCode {
    let store = match open_store(paths) {
        Ok(store) => store,
        Err(err) => {
            report(&err);
            return ExitCode::from(2);
        }
    };
    let result = match command {
        None => list(&store, group.as_ref(), all, json),
        Some(ChangesCommand::Show { id, json }) => show::show(&store, id, json),
        Some(ChangesCommand::Accept { id, paths }) => {
            decide::decide(&store, id, &paths, Decision::Accepted)
        }
        Some(ChangesCommand::Reject { id, paths }) => {
            decide::decide(&store, id, &paths, Decision::Rejected)
        }
        Some(ChangesCommand::Approve { id }) => access::decide(&store, id, true),
        Some(ChangesCommand::Refuse { id }) => access::decide(&store, id, false),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::from(2)
        }
    }
}

fn list(
    store: &Store,
    group: Option<&GroupName>,
    all: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let group = group.map(GroupName::as_str);
    let sets = store.change_sets(group, !all)?;
    let requests = store.access_requests(group, !all)?;
    if json {
        let typed = |kind: &str, value: serde_json::Value| {
            let mut value = value;
            if let Some(object) = value.as_object_mut() {
                object.insert("type".into(), kind.into());
            }
            value
        };
        for set in &sets {
            println!("{}", typed("change_set", serde_json::to_value(set)?));
        }
        for request in &requests {
            println!(
                "{}",
                typed("access_request", serde_json::to_value(request)?)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if sets.is_empty() && requests.is_empty() {
        println!("nothing waits for you");
        return Ok(ExitCode::SUCCESS);
    }
    for set in &sets {
        let waiting = set.entries.iter().filter(|e| e.decision.is_none()).count();
        let bytes: u64 = set
            .entries
            .iter()
            .filter(|e| e.decision.is_none())
            .filter_map(|e| e.change.len)
            .sum();
        println!(
            "{:>4}  {}  {:<12} {}  {} waiting ({}), {} bytes",
            set.id,
            &set.created_at[..16.min(set.created_at.len())],
            set.group,
            escape::line(&set.real_path),
            waiting,
            counts(set),
            bytes
        );
    }
    for request in &requests {
        println!("{}", access::line(request));
    }
    Ok(ExitCode::SUCCESS)
}

/// `2 added, 1 changed, 3 deleted` of the waiting entries.
fn counts(set: &ChangeSet) -> String {
    let count = |kind| {
        set.entries
            .iter()
            .filter(|e| e.decision.is_none() && e.change.kind == kind)
            .count()
    };
    format!(
        "{} added, {} changed, {} deleted",
        count(ChangeKind::Added),
        count(ChangeKind::Changed),
        count(ChangeKind::Deleted)
    )
}

fn load(store: &Store, id: i64) -> anyhow::Result<ChangeSet> {
    store
        .change_set(id)?
        .with_context(|| format!("there is no change set {id} (`pincer changes --all` lists them)"))
}

/// What was copied for the set: the host's own file beside the copy.
fn manifest(set: &ChangeSet) -> anyhow::Result<Manifest> {
    let file =
        std::path::Path::new(&set.folder).join(pincer_assistant::invoke::staged::MANIFEST_FILE);
    let text = std::fs::read(&file).with_context(|| {
        format!(
            "cannot read change set {}'s record {}",
            set.id,
            file.display()
        )
    })?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "change set {}'s record {} is malformed",
            set.id,
            file.display()
        )
    })
}
