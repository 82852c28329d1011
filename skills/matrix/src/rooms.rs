//! Invites: the owner's are joined, and checked once joined; anyone
//! else's are declined.

use hyper::Method;
use serde_json::{Value, json};

use crate::api::{Api, CallError, segment};
use crate::sync::Invite;

/// What joining on an invite came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Joined {
    /// A room the owner is in.
    Room,
    /// A direct room of the owner and the bot alone: the main group's.
    Direct,
    /// Not the owner's after all (another server spoke in the owner's name),
    /// or gone: left, or never joined.
    Left,
}

/// Joins the room of `invite` and checks, from the bot's own homeserver,
/// that the owner is in it (an invite's sender is another server's claim
/// when the room lives there). A failure worth another try is an error: the
/// sync that carried the invite is not saved, so it comes again.
pub(crate) async fn join(
    api: &Api,
    invite: &Invite,
    me: &str,
    owner: &str,
) -> Result<Joined, CallError> {
    let room = segment(&invite.room);
    match api
        .call(Method::POST, &format!("/join/{room}"), Some(&json!({})))
        .await
    {
        Ok(_) => {}
        Err(err) if err.is_final() => {
            tracing::warn!("{err}");
            return Ok(Joined::Left);
        }
        Err(err) => return Err(err),
    }
    let members = api
        .call(Method::GET, &format!("/rooms/{room}/joined_members"), None)
        .await?;
    let joined: Vec<&str> = members["joined"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    if !joined.contains(&owner) {
        tracing::warn!(
            room = invite.room,
            "matrix: an invite in the owner's name to a room the owner is not in: leaving"
        );
        leave(api, &invite.room).await;
        return Ok(Joined::Left);
    }
    let alone = joined.len() == 2 && joined.contains(&me);
    Ok(if invite.direct && alone {
        Joined::Direct
    } else {
        Joined::Room
    })
}

/// Leaves (or declines) `room`; a failure is only logged: the room is not
/// the bot's business either way.
pub(crate) async fn leave(api: &Api, room: &str) {
    let path = format!("/rooms/{}/leave", segment(room));
    if let Err(err) = api
        .call(
            Method::POST,
            &path,
            Some(&Value::Object(Default::default())),
        )
        .await
    {
        tracing::debug!("{err}");
    }
}
