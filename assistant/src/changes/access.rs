//! The owner's word on an agent's request for more access. Approval writes
//! the rule `pincer egress allow` or `pincer groups mount` would write,
//! audited with the request.

use pincer_store::{AccessRequest, AuditRecord, Store, StoreError};

use super::{ChangesError, Said};

/// One line for a request.
pub(super) fn line(request: &AccessRequest) -> String {
    let what = match (request.kind.as_str(), request.read_write) {
        ("egress", _) => format!("to reach {}", request.what),
        (_, true) => format!("for the folder {} (read-write)", request.what),
        (_, false) => format!("for the folder {} (read-only)", request.what),
    };
    format!(
        "request {:>3}  {}  {:<12} asks {what} — \u{201c}{}\u{201d} [{}]",
        request.id,
        &request.created_at[..16.min(request.created_at.len())],
        request.group,
        request.reason,
        request.status
    )
}

/// Approves (`approve`) or refuses access request `id`.
pub fn answer_access(store: &Store, id: i64, approve: bool) -> Result<Said, ChangesError> {
    let decided = if approve {
        store.approve_access(id)
    } else {
        store.refuse_access(id)
    };
    let request = match decided {
        Ok(request) => request,
        Err(StoreError::Refused(why)) => return Ok(Said::Usage(why)),
        Err(err) => return Err(err.into()),
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
    let (group, what) = (&request.group, &request.what);
    Ok(Said::Done(match (approve, request.kind.as_str()) {
        (true, "egress") => {
            format!("group {group} may now reach {what} (as `pincer egress allow {group} {what}`)")
        }
        (true, _) => format!(
            "group {group} asks for {what} at every invocation now (as `pincer groups mount`); \
             the mount allowlist still decides"
        ),
        (false, _) => format!("refused: group {group}'s agent is told so if it asks again"),
    }))
}
