//! `pincer egress`: the per-group network allowlist, and a dry run of a decision.

use std::process::ExitCode;

use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_core::group::GroupName;
use pincer_socket::egress::{Egress, EgressRule, LeakGuard};

use crate::{open_store, report};

#[derive(Subcommand)]
pub(crate) enum EgressCommand {
    /// Allow a destination: host, *.domain or IP, with :port or :* (default ports 80 and 443).
    Allow {
        /// The group.
        group: GroupName,
        /// The rule, e.g. github.com, *.githubusercontent.com, 10.0.0.5:8080.
        rule: String,
    },
    /// Remove a rule.
    Revoke {
        /// The group.
        group: GroupName,
        /// The rule, as it was added.
        rule: String,
    },
    /// Show the rules (of one group, or all).
    List {
        /// Only this group.
        group: Option<GroupName>,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tell whether a URL would be allowed for a group, and why; prints one
    /// JSON object. Exit 0 allowed, 1 denied, 2 usage error.
    Test {
        /// The group.
        group: GroupName,
        /// The URL (http, https) or host:port.
        url: String,
    },
}

pub(crate) async fn egress_command(paths: &Paths, command: EgressCommand) -> ExitCode {
    let usage = |err: anyhow::Error| {
        report(&err);
        ExitCode::from(2)
    };
    let store = match open_store(paths) {
        Ok(store) => std::sync::Arc::new(store),
        Err(err) => return usage(err),
    };
    let done = |result: anyhow::Result<()>| match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    };
    match command {
        EgressCommand::Allow { group, rule } => {
            let parsed: EgressRule = match rule.parse() {
                Ok(rule) => rule,
                Err(err) => return usage(anyhow::anyhow!(err)),
            };
            done(
                store
                    .allow_egress(&group, &parsed.to_string())
                    .map_err(Into::into)
                    .map(|()| {
                        println!("{group} may now reach {parsed}");
                    }),
            )
        }
        EgressCommand::Revoke { group, rule } => done(
            store
                .revoke_egress(&group, rule.trim())
                .map_err(Into::into)
                .map(|()| println!("revoked {} for {group}", rule.trim())),
        ),
        EgressCommand::List { group, json } => done((|| {
            let groups = match group {
                Some(group) => vec![group.to_string()],
                None => store.groups()?.into_iter().map(|g| g.name).collect(),
            };
            let mut all = serde_json::Map::new();
            for group in groups {
                let rules = store.egress_rules(&group)?;
                if !json {
                    let shown = if rules.is_empty() {
                        "(nothing: no egress)".to_owned()
                    } else {
                        rules.join(" ")
                    };
                    println!("{group:<20} {shown}");
                }
                all.insert(group, rules.into());
            }
            if json {
                println!("{}", serde_json::Value::Object(all));
            }
            Ok(())
        })()),
        EgressCommand::Test { group, url } => {
            if let Err(err) = store
                .group(&group)
                .map_err(anyhow::Error::from)
                .and_then(|g| {
                    g.map(|_| ())
                        .ok_or_else(|| anyhow::anyhow!("no group named {group}"))
                })
            {
                return usage(err);
            }
            let (host, port) = match host_and_port(&url) {
                Ok(target) => target,
                Err(err) => return usage(anyhow::anyhow!(err)),
            };
            let egress = match Egress::new(store, LeakGuard::default()) {
                Ok(egress) => egress,
                Err(err) => return usage(err.into()),
            };
            match egress.decide(&group, &host, port).await {
                Ok(allowed) => {
                    let addresses: Vec<String> =
                        allowed.addresses.iter().map(|a| a.to_string()).collect();
                    println!(
                        "{}",
                        serde_json::json!({"allowed": true, "host": host, "port": port, "rule": allowed.rule, "addresses": addresses})
                    );
                    ExitCode::SUCCESS
                }
                Err(reason) => {
                    println!(
                        "{}",
                        serde_json::json!({"allowed": false, "host": host, "port": port, "reason": reason})
                    );
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `https://host[:port]/…`, `http://…`, or `host:port`.
pub(crate) fn host_and_port(url: &str) -> Result<(String, u16), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|err| format!("cannot read {url:?} as a URL: {err}"))?;
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") | None => 80,
        Some(other) => return Err(format!("unsupported scheme {other}")),
    };
    let host = uri.host().ok_or_else(|| format!("{url:?} has no host"))?;
    Ok((host.to_owned(), uri.port_u16().unwrap_or(default_port)))
}
