//! `pincer mounts`: the mount allowlist, and what it would decide for a request.

use std::process::ExitCode;

use clap::Subcommand;
use pincer_assistant::config::Paths;
use pincer_assistant::invoke::host_facts;
use pincer_core::group::GroupName;
use pincer_core::mounts::{MountPolicy, MountRequest};
use pincer_core::sandbox::EngineEndpoint;

use crate::report;

#[derive(Subcommand)]
pub(crate) enum MountsCommand {
    /// Decide one extra mount as an invocation would; prints one JSON object.
    /// Exit 0 allowed, 1 denied, 2 usage or configuration error.
    Check {
        /// Decide for this group (`main` is the trusted one).
        #[arg(long)]
        group: Option<GroupName>,
        /// Decide as for the main group.
        #[arg(long)]
        main: bool,
        /// Ask for read-write.
        #[arg(long)]
        rw: bool,
        /// The host path (`~` allowed).
        host_path: String,
        /// The name under /workspace/extra/ (default: the folder's name).
        container_name: Option<String>,
    },
    /// Show the effective policy: allowlist, built-in blocks, protected paths.
    List {
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `host=PATH[,name=NAME][,rw]`, or a bare PATH.
pub(crate) fn parse_mount_request(spec: &str) -> Result<MountRequest, String> {
    if !spec.contains('=') {
        return Ok(MountRequest {
            host_path: spec.to_owned(),
            container_name: None,
            read_write: false,
        });
    }
    let mut request = MountRequest {
        host_path: String::new(),
        container_name: None,
        read_write: false,
    };
    for part in spec.split(',') {
        match part.split_once('=') {
            Some(("host", path)) => request.host_path = path.to_owned(),
            Some(("name", name)) => request.container_name = Some(name.to_owned()),
            None if part == "rw" => request.read_write = true,
            None if part == "ro" => request.read_write = false,
            _ => {
                return Err(format!(
                    "unknown part {part:?} (use host=PATH[,name=NAME][,rw])"
                ));
            }
        }
    }
    if request.host_path.is_empty() {
        return Err("missing host=PATH".into());
    }
    Ok(request)
}

pub(crate) fn mounts_command(
    paths: &Paths,
    engine: &EngineEndpoint,
    command: MountsCommand,
) -> ExitCode {
    let facts = host_facts(paths, engine);
    let policy = match MountPolicy::load(&facts) {
        Ok(policy) => policy,
        Err(err) => {
            report(&err.into());
            return ExitCode::from(2);
        }
    };
    match command {
        MountsCommand::Check {
            group,
            main,
            rw,
            host_path,
            container_name,
        } => {
            let is_main = main || group.is_some_and(|g| g.is_main());
            let request = MountRequest {
                host_path,
                container_name,
                read_write: rw,
            };
            match policy.check(&request, is_main, paths.user_home.as_deref()) {
                Ok(mount) => {
                    // What the invocation would cover; a folder too large to scan is left out.
                    let shadowed = if mount.source().is_dir() {
                        pincer_core::mounts::scan_secrets(
                            mount.source(),
                            mount.target(),
                            &policy,
                            Some(mount.identity()),
                        )
                    } else {
                        Ok(Vec::new())
                    };
                    let shadowed = match shadowed {
                        Ok(secrets) => secrets,
                        Err(err) => {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "allowed": false,
                                    "reason": format!("{err} (an invocation leaves it out)"),
                                })
                            );
                            return ExitCode::from(1);
                        }
                    };
                    let shadowed: Vec<String> = shadowed
                        .iter()
                        .map(|s| s.relative.display().to_string())
                        .collect();
                    println!(
                        "{}",
                        serde_json::json!({
                            "allowed": true,
                            "host_path": mount.source(),
                            "container_path": mount.target(),
                            "read_only": mount.read_only(),
                            "staged": mount.staged(),
                            "shadowed": shadowed,
                        })
                    );
                    ExitCode::SUCCESS
                }
                Err(denial) => {
                    println!(
                        "{}",
                        serde_json::json!({"allowed": false, "reason": denial.reason})
                    );
                    ExitCode::from(1)
                }
            }
        }
        MountsCommand::List { json: true } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&policy).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        MountsCommand::List { json: false } => {
            print_policy(&policy);
            ExitCode::SUCCESS
        }
    }
}

pub(crate) fn print_policy(policy: &MountPolicy) {
    let presence = if policy.file_present {
        "present"
    } else {
        "not present: no extra mounts are allowed"
    };
    println!("mount allowlist: {} ({presence})", policy.file.display());
    println!("allowed roots:");
    if policy.allowed_roots.is_empty() {
        println!("  (none)");
    }
    for root in &policy.allowed_roots {
        let real = root
            .real_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(does not exist: allows nothing)".into());
        let mode = match (root.allow_read_write, root.writes) {
            (false, _) => "read-only",
            (true, pincer_core::mounts::Writes::Staged) => {
                "read-write, staged: changes wait for `pincer changes accept`"
            }
            (true, pincer_core::mounts::Writes::Direct) => {
                "read-write, direct: writes land at once"
            }
        };
        let note = root
            .description
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        println!("  {} -> {real} ({mode}){note}", root.path);
    }
    println!(
        "non-main groups: {}",
        if policy.non_main_read_only {
            "read-only extra mounts"
        } else {
            "read-write where the root allows it"
        }
    );
    println!("blocked names: {}", policy.blocked_names.join(" "));
    println!("protected paths (never mounted, nor their parents):");
    for path in &policy.blocked_paths {
        println!("  {}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_specs() {
        let r = parse_mount_request("~/notes").unwrap();
        assert_eq!(
            (r.host_path.as_str(), r.container_name, r.read_write),
            ("~/notes", None, false)
        );
        let r = parse_mount_request("host=/srv/data,name=data,rw").unwrap();
        assert_eq!(
            (
                r.host_path.as_str(),
                r.container_name.as_deref(),
                r.read_write
            ),
            ("/srv/data", Some("data"), true)
        );
        assert!(parse_mount_request("name=x").is_err());
        assert!(parse_mount_request("host=/x,writable").is_err());
    }
}
