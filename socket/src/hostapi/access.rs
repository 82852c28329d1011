//! `request_access {kind, what, reason, read_write?}`: an agent asks the
//! owner for an egress rule or a folder. The request is recorded and told
//! to the main chat; only the owner decides (`pincer changes approve` or
//! `refuse`), never an agent, main's included. A request that waits is not
//! asked twice, one that was refused is answered with the refusal, and a
//! non-main group asks at most `[limits] access_requests_per_day` times a day.

use serde::Deserialize;
use serde_json::json;

use super::{Outcome, Reply, validate_text};
use crate::budget::Limits;
use crate::egress::EgressRule;
use pincer_store::{AccessAsk, Asked, Group, Store, StoreError};

/// The longest reason an agent may give (it is shown to the owner).
const MAX_REASON_BYTES: usize = 500;
/// The longest folder path.
const MAX_PATH_BYTES: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestAccess {
    kind: String,
    what: String,
    reason: String,
    #[serde(default)]
    read_write: bool,
}

pub(super) fn request_access(
    store: &Store,
    limits: &Limits,
    me: &Group,
    request: RequestAccess,
) -> Result<Outcome, StoreError> {
    let deny = |status, message: &str| {
        Ok(Outcome::denied(
            request.what.clone(),
            status,
            message,
            message,
        ))
    };
    if let Err(message) = validate_text("reason", &request.reason, MAX_REASON_BYTES) {
        return deny(400, &message);
    }
    if request.reason.chars().any(char::is_control) {
        return deny(400, "`reason` must be one line without control characters");
    }
    let (what, described) = match request.kind.as_str() {
        "egress" => match request.what.parse::<EgressRule>() {
            Ok(rule) => {
                let rule = rule.to_string();
                if store.egress_rules(&me.name)?.contains(&rule) {
                    return granted(&rule);
                }
                let described = format!("to reach {rule}");
                (rule, described)
            }
            Err(err) => return deny(400, &format!("`what` is not an egress rule: {err}")),
        },
        "folder" => {
            let written = request.what.trim();
            if let Err(message) = folder_path(written) {
                return deny(400, &message);
            }
            // One spelling per folder (`/x/`, `//x` and `/x/.` are `/x`), so
            // that a refusal cannot be stepped round by respelling.
            let normal: std::path::PathBuf = std::path::Path::new(written).components().collect();
            let normal = normal.to_string_lossy().into_owned();
            let path = normal.as_str();
            let mounts = store.group_mounts(&me.name)?;
            if mounts
                .iter()
                .any(|(host, _, rw)| host == path && (*rw || !request.read_write))
            {
                return granted(path);
            }
            let mode = if request.read_write {
                "read-write"
            } else {
                "read-only"
            };
            (path.to_owned(), format!("for the folder {path} ({mode})"))
        }
        _ => return deny(400, "`kind` is `egress` or `folder`"),
    };
    let notice = format!(
        "Group {} asks {described}: \u{201c}{}\u{201d}. Nothing changes unless you approve: \
         pincer changes approve {{id}} (or refuse {{id}})",
        me.name, request.reason
    );
    let per_day = (!me.is_main).then_some(limits.access_requests_per_day);
    let asked = store.ask_access(
        AccessAsk {
            group: &me.name,
            kind: &request.kind,
            what: &what,
            read_write: request.read_write,
            reason: &request.reason,
        },
        per_day,
        &notice,
    )?;
    Ok(match asked {
        Asked::New(id) => Outcome::allowed(
            what,
            Reply::ok(json!({
                "request": id,
                "status": "asked",
                "note": "the owner decides; until then nothing changes, and asking again does not help"
            })),
            Some(json!({"request": id, "reason": request.reason})),
        ),
        Asked::Waiting(id) => Outcome::allowed(
            what,
            Reply::ok(json!({"request": id, "status": "waiting for the owner"})),
            None,
        ),
        Asked::Refused(earlier) => Outcome::denied(
            what,
            403,
            &format!(
                "the owner refused this (request {}, {}); do not ask again",
                earlier.id,
                earlier.decided_at.as_deref().unwrap_or("earlier")
            ),
            "asked again after a refusal",
        ),
        Asked::TooMany => Outcome::denied(
            what,
            429,
            &format!(
                "this group may ask for access {} times a day; wait for the owner",
                limits.access_requests_per_day
            ),
            "too many access requests today",
        ),
    })
}

fn granted(what: &str) -> Result<Outcome, StoreError> {
    Ok(Outcome::allowed(
        what.to_owned(),
        Reply::ok(json!({"status": "granted already"})),
        None,
    ))
}

/// A folder as `pincer groups mount` takes it: absolute or `~/…`, one line.
fn folder_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("`what` is longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err("`what` must not contain control characters".into());
    }
    if !(path.starts_with('/') || path == "~" || path.starts_with("~/")) {
        return Err("`what` must be an absolute path or start with ~/".into());
    }
    Ok(())
}
