//! The channel's settings, from the environment of `pincer serve`.

use std::path::PathBuf;
use std::time::Duration;

use pincer_assistant::registry::Env;

use crate::net::Server;

/// The channel's settings (the skill's SKILL.md says what each means).
pub(crate) struct Settings {
    pub(crate) imap: Server,
    pub(crate) smtp: Server,
    pub(crate) user: String,
    pub(crate) password: String,
    /// The bot's own address: From of every reply.
    pub(crate) address: String,
    /// The owner's address, lowercased: the main group's.
    pub(crate) owner: Option<String>,
    /// Whose Authentication-Results header vouches for the owner's mail.
    pub(crate) authserv_id: Option<String>,
    /// The owner took the risk of a forgeable From line.
    pub(crate) owner_unauthenticated: bool,
    /// A chat for strangers' mail, as context; `None`: left unseen.
    pub(crate) strangers: Option<String>,
    pub(crate) ca_file: Option<PathBuf>,
    /// How often to look for mail on a server without IDLE.
    pub(crate) poll: Duration,
}

impl Settings {
    /// `None` when `EMAIL_IMAP` is not set (the channel is off); an error
    /// names the setting that is missing or wrong.
    pub(crate) fn from_env(env: Env<'_>) -> Option<Result<Self, String>> {
        let get = |name: &str| {
            env(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let imap = get("EMAIL_IMAP")?;
        Some(Self::read(&get, &imap))
    }

    fn read(get: &dyn Fn(&str) -> Option<String>, imap: &str) -> Result<Self, String> {
        let required = |name: &str| get(name).ok_or_else(|| format!("{name} is not set"));
        let yes =
            |name: &str| get(name).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
        let insecure = yes("EMAIL_INSECURE_LOOPBACK");
        let implicit = |name: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case("implicit"));
        let imap = Server::parse(imap, 993, implicit("EMAIL_IMAP_TLS"), insecure)
            .map_err(|err| format!("EMAIL_IMAP: {err}"))?;
        let smtp = Server::parse(
            &required("EMAIL_SMTP")?,
            465,
            implicit("EMAIL_SMTP_TLS"),
            insecure,
        )
        .map_err(|err| format!("EMAIL_SMTP: {err}"))?;
        let address = required("EMAIL_ADDRESS")?.to_ascii_lowercase();
        if !crate::smtp::is_plain_address(&address) {
            return Err(format!("EMAIL_ADDRESS: {address:?} is not an address"));
        }
        let owner = get("EMAIL_OWNER").map(|o| o.to_ascii_lowercase());
        if let Some(owner) = &owner
            && !crate::smtp::is_plain_address(owner)
        {
            return Err(format!("EMAIL_OWNER: {owner:?} is not an address"));
        }
        let strangers = match get("EMAIL_STRANGERS") {
            None => None,
            Some(v) if v == "ignore" => None,
            Some(chat) if chat.starts_with("email:") && !chat.contains('@') => Some(chat),
            Some(other) => {
                return Err(format!(
                    "EMAIL_STRANGERS: {other:?} is neither `ignore` nor an email: chat without an address (email:strangers)"
                ));
            }
        };
        let poll =
            match get("EMAIL_POLL_SECONDS") {
                None => 60,
                Some(v) => v.parse::<u64>().ok().filter(|&s| s > 0).ok_or_else(|| {
                    format!("EMAIL_POLL_SECONDS: {v:?} is not a number of seconds")
                })?,
            };
        Ok(Self {
            imap,
            smtp,
            user: required("EMAIL_USER")?,
            password: required("EMAIL_PASSWORD")?,
            address,
            owner,
            authserv_id: get("EMAIL_AUTHSERV_ID"),
            owner_unauthenticated: yes("EMAIL_OWNER_UNAUTHENTICATED"),
            strangers,
            ca_file: get("EMAIL_CA_FILE").map(PathBuf::from),
            poll: Duration::from_secs(poll),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Option<Result<Settings, String>> {
        let env = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        Settings::from_env(&env)
    }

    const BASE: [(&str, &str); 5] = [
        ("EMAIL_IMAP", "imap.example.org:993"),
        ("EMAIL_SMTP", "smtp.example.org:587"),
        ("EMAIL_USER", "bot"),
        ("EMAIL_PASSWORD", "secret"),
        ("EMAIL_ADDRESS", "Bot@Example.org"),
    ];

    #[test]
    fn the_channel_is_off_without_imap_and_refuses_bad_settings() {
        assert!(settings(&[]).is_none());
        let ok = settings(&BASE).unwrap().unwrap();
        assert!(ok.imap.implicit_tls && !ok.smtp.implicit_tls);
        assert_eq!(ok.address, "bot@example.org");
        assert!(ok.strangers.is_none() && !ok.owner_unauthenticated);
        let mut without_password = BASE.to_vec();
        without_password.retain(|(k, _)| *k != "EMAIL_PASSWORD");
        let err = settings(&without_password).unwrap().err().unwrap();
        assert_eq!(err, "EMAIL_PASSWORD is not set");
        let mut insecure = BASE.to_vec();
        insecure.push(("EMAIL_INSECURE_LOOPBACK", "1"));
        let err = settings(&insecure).unwrap().err().unwrap();
        assert!(err.contains("only for a server on 127.0.0.1"), "{err}");
        let mut strangers = BASE.to_vec();
        strangers.push(("EMAIL_STRANGERS", "email:alice@example.org"));
        assert!(
            settings(&strangers).unwrap().is_err(),
            "a stranger's mail must not go to a person's chat"
        );
    }
}
