//! What one `/sync` answer asks of the channel: invites to answer, messages
//! to hand in. Reading the answer is separate from acting on it, so that
//! what counts as whose message is tested without a server.

use serde_json::Value;

use pincer_assistant::channel::MAIN_CHAT;

/// A message to hand to the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// The event id: the message's source, unique on the server.
    pub(crate) event: String,
    pub(crate) room: String,
    /// The chat id it belongs to (`matrix:!room:server`, or main).
    pub(crate) chat: String,
    pub(crate) sender: String,
    pub(crate) body: String,
}

/// An invite the channel accepts: only the owner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invite {
    pub(crate) room: String,
    /// The owner asked for a direct chat: that room becomes main.
    pub(crate) direct: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) next_batch: String,
    pub(crate) messages: Vec<Incoming>,
    pub(crate) invites: Vec<Invite>,
    /// Invites from anyone but the owner: declined, so that they do not
    /// pile up in every sync.
    pub(crate) declined: Vec<String>,
    /// Rooms that sent encrypted events this skill cannot read.
    pub(crate) encrypted: Vec<String>,
    /// Rooms whose timeline had more news than one sync carries.
    pub(crate) gaps: Vec<String>,
}

/// Who the channel is and whom it serves.
pub(crate) struct Reader<'a> {
    pub(crate) me: &'a str,
    pub(crate) owner: Option<&'a str>,
    pub(crate) owner_room: Option<&'a str>,
}

impl Reader<'_> {
    /// The batch in `answer`. Messages from the bot itself never wake it;
    /// in the owner's direct room only the owner's messages count, and they
    /// are main's. `m.notice` (what bots send) is not a message to answer.
    pub(crate) fn read(&self, answer: &Value) -> Batch {
        let mut batch = Batch {
            next_batch: answer["next_batch"].as_str().unwrap_or_default().to_owned(),
            ..Batch::default()
        };
        if let Some(joined) = answer["rooms"]["join"].as_object() {
            for (room, state) in joined {
                if state["timeline"]["limited"] == true {
                    batch.gaps.push(room.clone());
                }
                let mut invited_at = None;
                for event in state["timeline"]["events"].as_array().into_iter().flatten() {
                    self.read_event(room, event, &mut invited_at, &mut batch);
                }
            }
        }
        if let Some(invited) = answer["rooms"]["invite"].as_object() {
            for (room, state) in invited {
                match self.read_invite(room, state) {
                    Some(invite) => batch.invites.push(invite),
                    None => batch.declined.push(room.clone()),
                }
            }
        }
        batch
    }

    /// `invited_at`: how many of the batch's messages there were when the
    /// bot was invited to `room` in this timeline.
    fn read_event(
        &self,
        room: &str,
        event: &Value,
        invited_at: &mut Option<usize>,
        batch: &mut Batch,
    ) {
        if event["type"] == "m.room.member" && event["state_key"] == self.me {
            let membership = &event["content"]["membership"];
            if membership == "invite" {
                *invited_at = Some(batch.messages.len());
            }
            // The bot's own join: what the room said before it was invited
            // is history the server shows a newcomer, not messages for it
            // (what was said between the invite and the join is for it).
            if membership == "join" && event["unsigned"]["prev_content"]["membership"] != "join" {
                let cut = invited_at.unwrap_or(batch.messages.len());
                let mut position = 0;
                batch.messages.retain(|m| {
                    position += 1;
                    m.room != room || position > cut
                });
            }
            return;
        }
        let sender = event["sender"].as_str().unwrap_or_default();
        if sender == self.me || sender.is_empty() {
            return;
        }
        if event["type"] == "m.room.encrypted" {
            if !batch.encrypted.iter().any(|r| r == room) {
                batch.encrypted.push(room.to_owned());
            }
            return;
        }
        // Edits ("* new words") are not new messages.
        if event["type"] != "m.room.message"
            || event["content"]["msgtype"] != "m.text"
            || event["content"]["m.relates_to"]["rel_type"] == "m.replace"
        {
            return;
        }
        let (Some(id), Some(body)) = (
            event["event_id"].as_str(),
            event["content"]["body"].as_str(),
        ) else {
            return;
        };
        let chat = if Some(room) == self.owner_room {
            if Some(sender) != self.owner {
                return;
            }
            MAIN_CHAT.to_owned()
        } else {
            format!("matrix:{room}")
        };
        batch.messages.push(Incoming {
            event: id.to_owned(),
            room: room.to_owned(),
            chat,
            sender: sender.to_owned(),
            body: body.to_owned(),
        });
    }

    /// The invite of the bot in `state`, if it names the owner as its
    /// sender. The server appends the invite itself last; what comes before
    /// it is the inviting server's word, so the last one counts. Even that is
    /// only a claim (another homeserver may say anything): the channel joins,
    /// then checks that the owner is in the room, and leaves if not.
    fn read_invite(&self, room: &str, state: &Value) -> Option<Invite> {
        let owner = self.owner?;
        let events = state["invite_state"]["events"].as_array()?;
        let invite = events.iter().rev().find(|e| {
            e["type"] == "m.room.member"
                && e["state_key"] == self.me
                && e["content"]["membership"] == "invite"
        })?;
        if invite["sender"] != owner {
            return None;
        }
        Some(Invite {
            room: room.to_owned(),
            direct: invite["content"]["is_direct"] == true,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(id: &str, sender: &str, body: &str) -> Value {
        json!({"type": "m.room.message", "event_id": id, "sender": sender,
               "content": {"msgtype": "m.text", "body": body}})
    }

    #[test]
    fn whose_message_is_whose() {
        let reader = Reader {
            me: "@pincer:hs",
            owner: Some("@owner:hs"),
            owner_room: Some("!dm:hs"),
        };
        let answer = json!({"next_batch": "s2", "rooms": {"join": {
            "!family:hs": {"timeline": {"events": [
                message("$1", "@alice:hs", "@pincer hi"),
                message("$2", "@pincer:hs", "my own answer"),
                {"type": "m.room.message", "event_id": "$3", "sender": "@bot:hs",
                 "content": {"msgtype": "m.notice", "body": "a bot's notice"}},
                {"type": "m.room.encrypted", "event_id": "$4", "sender": "@alice:hs", "content": {}}
            ]}},
            "!dm:hs": {"timeline": {"limited": true, "events": [
                message("$0", "@owner:hs", "said before the bot came"),
                {"type": "m.room.member", "state_key": "@pincer:hs", "sender": "@owner:hs",
                 "event_id": "$i", "content": {"membership": "invite", "is_direct": true}},
                message("$00", "@owner:hs", "said between the invite and the join"),
                {"type": "m.room.message", "event_id": "$e", "sender": "@owner:hs",
                 "content": {"msgtype": "m.text", "body": "* hello, edited",
                             "m.relates_to": {"rel_type": "m.replace", "event_id": "$00"}}},
                {"type": "m.room.member", "state_key": "@pincer:hs", "sender": "@pincer:hs",
                 "event_id": "$j", "content": {"membership": "join"}},
                message("$5", "@owner:hs", "hello"),
                {"type": "m.room.member", "state_key": "@pincer:hs", "sender": "@pincer:hs",
                 "event_id": "$k", "content": {"membership": "join", "displayname": "P"},
                 "unsigned": {"prev_content": {"membership": "join"}}},
                message("$6", "@mallory:hs", "I am in the owner's room")
            ]}}
        }}});
        let batch = reader.read(&answer);
        assert_eq!(batch.next_batch, "s2");
        let got: Vec<(&str, &str)> = batch
            .messages
            .iter()
            .map(|m| (m.event.as_str(), m.chat.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("$00", MAIN_CHAT),
                ("$5", MAIN_CHAT),
                ("$1", "matrix:!family:hs")
            ]
        );
        assert_eq!(batch.gaps, vec!["!dm:hs".to_owned()]);
        assert_eq!(batch.encrypted, vec!["!family:hs".to_owned()]);
    }

    #[test]
    fn only_the_owners_invites_are_taken() {
        let reader = Reader {
            me: "@pincer:hs",
            owner: Some("@owner:hs"),
            owner_room: None,
        };
        let invite = |sender: &str, direct: bool| {
            json!({"invite_state": {"events": [
                {"type": "m.room.create", "state_key": "", "sender": sender, "content": {}},
                // What another server may put first: only the last counts.
                {"type": "m.room.member", "state_key": "@pincer:hs", "sender": "@owner:hs",
                 "content": {"membership": "invite", "is_direct": true}},
                {"type": "m.room.member", "state_key": "@pincer:hs", "sender": sender,
                 "content": {"membership": "invite", "is_direct": direct}}
            ]}})
        };
        let answer = json!({"next_batch": "s3", "rooms": {"invite": {
            "!a:hs": invite("@owner:hs", true),
            "!b:hs": invite("@mallory:hs", true),
            "!c:hs": invite("@owner:hs", false)
        }}});
        let batch = reader.read(&answer);
        assert_eq!(batch.declined, vec!["!b:hs".to_owned()]);
        let mut invites = batch.invites;
        invites.sort_by(|a, b| a.room.cmp(&b.room));
        assert_eq!(
            invites,
            vec![
                Invite {
                    room: "!a:hs".into(),
                    direct: true
                },
                Invite {
                    room: "!c:hs".into(),
                    direct: false
                }
            ]
        );
        let nobody = Reader {
            owner: None,
            ..reader
        };
        assert!(nobody.read(&answer).invites.is_empty());
    }
}
