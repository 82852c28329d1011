//! `pincer changes`: what agents wrote to staged grants, reviewed and
//! accepted (whole or in part) or rejected by the owner; and what agents
//! asked for (`request_access`), approved or refused. The decisions are
//! the assistant's (`pincer_assistant::changes`, which the main chat's
//! `/changes` commands use too); this prints them.

use std::process::ExitCode;

use clap::Subcommand;
use pincer_assistant::changes::{self, Said};
use pincer_assistant::config::Paths;
use pincer_assistant::escape;
use pincer_core::group::GroupName;
use pincer_store::{Decision, Store};

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
    /// Apply a change set's waiting entries (or those at PATHs; a PATH
    /// ending in / names everything below it) to the real folder. Refused, and nothing applied, when a file there
    /// changed since the agent began (both versions are shown).
    Accept {
        /// The change set's number.
        id: i64,
        /// Paths within the set (`dir/` names everything below it).
        paths: Vec<String>,
    },
    /// Drop a change set's waiting entries (or those at PATHs; a PATH
    /// ending in / names everything below it); the real folder is not touched.
    Reject {
        /// The change set's number.
        id: i64,
        /// Paths within the set (`dir/` names everything below it).
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
    let said = match command {
        None if json => return print_json(list_json(&store, group.as_ref(), all)),
        None => changes::list(&store, group.as_ref().map(GroupName::as_str), all).map(Said::Done),
        Some(ChangesCommand::Show { id, json: true }) => {
            return print_json(show_json(&store, id));
        }
        Some(ChangesCommand::Show { id, json: false }) => changes::show(&store, id),
        Some(ChangesCommand::Accept { id, paths }) => {
            changes::decide(&store, id, &paths, Decision::Accepted)
        }
        Some(ChangesCommand::Reject { id, paths }) => {
            changes::decide(&store, id, &paths, Decision::Rejected)
        }
        Some(ChangesCommand::Approve { id }) => changes::answer_access(&store, id, true),
        Some(ChangesCommand::Refuse { id }) => changes::answer_access(&store, id, false),
    };
    match said {
        Ok(Said::Done(text)) => {
            println!("{}", escape::text(&text));
            ExitCode::SUCCESS
        }
        Ok(Said::Refused(text)) => {
            report(&anyhow::anyhow!(text));
            ExitCode::from(1)
        }
        Ok(Said::Usage(text)) => {
            report(&anyhow::anyhow!(text));
            ExitCode::from(2)
        }
        Err(err) => {
            report(&err.into());
            ExitCode::from(2)
        }
    }
}

fn print_json(lines: anyhow::Result<Vec<serde_json::Value>>) -> ExitCode {
    match lines {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            report(&err);
            ExitCode::from(2)
        }
    }
}

/// One object per change set and per access request, each with its `type`.
fn list_json(
    store: &Store,
    group: Option<&GroupName>,
    all: bool,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let group = group.map(GroupName::as_str);
    let typed = |kind: &str, mut value: serde_json::Value| {
        if let Some(object) = value.as_object_mut() {
            object.insert("type".into(), kind.into());
        }
        value
    };
    let mut lines = Vec::new();
    for set in store.change_sets(group, !all)? {
        lines.push(typed("change_set", serde_json::to_value(set)?));
    }
    for request in store.access_requests(group, !all)? {
        lines.push(typed("access_request", serde_json::to_value(request)?));
    }
    Ok(lines)
}

fn show_json(store: &Store, id: i64) -> anyhow::Result<Vec<serde_json::Value>> {
    let set = store
        .change_set(id)?
        .ok_or_else(|| anyhow::anyhow!(changes::no_such_set(id)))?;
    Ok(vec![serde_json::to_value(set)?])
}
