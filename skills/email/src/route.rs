//! Which chat a sender's mail belongs to, and where a chat's replies go.

use pincer_assistant::channel::MAIN_CHAT;

/// The chats a sender's mail may belong to, in the order tried: the
/// address's own (`email:alice@example.org`), then its domain's
/// (`email:@example.org`).
pub(crate) fn chats_for(sender: &str) -> Vec<String> {
    let sender = sender.to_ascii_lowercase();
    let mut chats = vec![format!("email:{sender}")];
    if let Some((_, domain)) = sender.rsplit_once('@')
        && !domain.is_empty()
    {
        chats.push(format!("email:@{domain}"));
    }
    chats
}

/// Where a reply to a chat goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The owner's address (the main group).
    Owner,
    /// This address's own chat.
    Address(String),
    /// A domain's chat: whoever of it wrote last.
    LastSender,
    /// A chat with nobody to write to (the strangers' context chat).
    Nobody,
}

pub(crate) fn target_of(chat_id: &str) -> Option<Target> {
    if chat_id == MAIN_CHAT {
        return Some(Target::Owner);
    }
    let rest = chat_id.strip_prefix("email:")?;
    Some(if rest.starts_with('@') {
        Target::LastSender
    } else if crate::smtp::is_plain_address(rest) {
        Target::Address(rest.to_owned())
    } else {
        Target::Nobody
    })
}

/// The domain of an address, lowercased.
pub(crate) fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_map_to_their_address_then_their_domain() {
        assert_eq!(
            chats_for("Alice@Example.ORG"),
            ["email:alice@example.org", "email:@example.org"]
        );
        assert_eq!(chats_for("nodomain"), ["email:nodomain"]);
        // The store takes these as chat ids.
        for chat in chats_for("alice@example.org") {
            pincer_store::validate_chat_id(&chat).unwrap();
        }
    }

    #[test]
    fn replies_go_to_the_owner_the_address_or_the_domains_last_sender() {
        assert_eq!(target_of(MAIN_CHAT), Some(Target::Owner));
        assert_eq!(
            target_of("email:alice@example.org"),
            Some(Target::Address("alice@example.org".into()))
        );
        assert_eq!(target_of("email:@example.org"), Some(Target::LastSender));
        assert_eq!(target_of("email:strangers"), Some(Target::Nobody));
        assert_eq!(target_of("irc:#x"), None);
        assert_eq!(domain_of("a@B.org").as_deref(), Some("b.org"));
    }
}
