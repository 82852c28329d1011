//! `pincer audit`: what agents did and were refused; the owner's prune.

use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_assistant::escape;
use pincer_core::group::GroupName;

use crate::open_store;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Remove the entries written before a date (a new entry says so, and
    /// the database gives the space back). Agents can never remove entries.
    Prune {
        /// YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ, or an age (90d: older than 90 days).
        #[arg(long)]
        before: String,
    },
}

pub(crate) fn audit_command(
    paths: &Paths,
    group: Option<GroupName>,
    since: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    let since = since
        .map(|s| pincer_store::time::parse_since(&s, std::time::SystemTime::now()))
        .transpose()
        .map_err(|err| anyhow::anyhow!("--since: {err}"))?;
    for entry in store.audit_entries(group.as_deref(), since.as_deref())? {
        if json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            let decision = match entry.allowed {
                Some(true) => "allowed",
                Some(false) => "DENIED",
                None => "-",
            };
            let times = match entry.count {
                1 => String::new(),
                n => format!(" (×{n}, last {})", entry.last_at.as_deref().unwrap_or("-")),
            };
            println!(
                "{}  {:<12} {:<8} {:<16} {:<24} {:<8} {}{times}",
                entry.at,
                escape::line(entry.group.as_deref().unwrap_or("-")),
                escape::line(&entry.kind),
                escape::line(&entry.action),
                escape::line(entry.target.as_deref().unwrap_or("-")),
                decision,
                escape::line(entry.reason.as_deref().unwrap_or(""))
            );
        }
    }
    Ok(())
}

pub(crate) fn prune_audit(paths: &Paths, before: &str) -> anyhow::Result<()> {
    let before = pincer_store::time::parse_since(before, std::time::SystemTime::now())
        .map_err(|err| anyhow::anyhow!("--before: {err}"))?;
    let removed = open_store(paths)?.prune_audit(&before)?;
    println!("removed {removed} audit entries written before {before}");
    Ok(())
}
