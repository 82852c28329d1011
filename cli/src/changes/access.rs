//! `pincer changes approve|refuse ID`: the owner's word on an agent's
//! request for more access. Approval writes the rule `pincer egress allow`
//! or `pincer groups mount` would write, audited with the request.

use std::process::ExitCode;

use pincer_assistant::escape;
use pincer_store::{AccessRequest, AuditRecord, Store};

/// One line for a request.
pub(super) fn line(request: &AccessRequest) -> String {
    let what = match (request.kind.as_str(), request.read_write) {
        ("egress", _) => format!("to reach {}", request.what),
        (_, true) => format!("for the folder {} (read-write)", request.what),
        (_, false) => format!("for the folder {} (read-only)", request.what),
    };
    format!(
        "request {:>3}  {}  {:<12} asks {} — \u{201c}{}\u{201d} [{}]",
        request.id,
        &request.created_at[..16.min(request.created_at.len())],
        request.group,
        escape::line(&what),
        escape::line(&request.reason),
        request.status
    )
}

pub(super) fn decide(store: &Store, id: i64, approve: bool) -> anyhow::Result<ExitCode> {
    let request = if approve {
        store.approve_access(id)?
    } else {
        store.refuse_access(id)?
    };
    store.audit_or_log(AuditRecord {
        group: Some(&request.group),
        kind: "access",
        action: if approve {
            "approve_access"
        } else {
            "refuse_access"
        },
        target: Some(&request.what),
        allowed: Some(approve),
        reason: Some(&request.reason),
        detail: Some(format!(
            "request {id}: {} {}{}",
            request.kind,
            request.what,
            if request.read_write {
                " (read-write)"
            } else {
                ""
            }
        )),
    });
    let what = escape::line(&request.what).into_owned();
    match (approve, request.kind.as_str()) {
        (true, "egress") => println!(
            "group {} may now reach {what} (as `pincer egress allow {} {what}`)",
            request.group, request.group
        ),
        (true, _) => println!(
            "group {} asks for {what} at every invocation now (as `pincer groups mount`); \
             the mount allowlist still decides",
            request.group
        ),
        (false, _) => println!(
            "refused: group {}'s agent is told so if it asks again",
            request.group
        ),
    }
    Ok(ExitCode::SUCCESS)
}
