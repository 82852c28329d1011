//! Where skills plug in. A skill crate exports `register(&mut Registry)`;
//! the `pincer` binary calls it from its one registry file
//! (`pincer/src/skills.rs`), a line per skill that `cargo xtask apply-skill`
//! writes. Through the registry a skill adds a channel, a model provider or a
//! doctor check. A skill depends on this crate alone (`tests/tidy.rs` holds
//! that): it cannot name the core, the store or the socket, only the types
//! the assistant re-exports for it ([`EngineFacts`], [`Provider`],
//! [`MAIN_CHAT`](crate::channel::MAIN_CHAT)) and the assistant's public API.

use std::collections::BTreeMap;
use std::sync::Arc;

pub use pincer_core::sandbox::EngineFacts;
use pincer_socket::gateway::GatewayError;
pub use pincer_socket::gateway::Provider;

use crate::channel::Channel;
use crate::config::Settings;

/// How a channel skill reads its settings: the binary's environment lookup
/// (library code never reads the environment itself).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Builds a channel from the environment, or `None` when it is not
/// configured (a channel skill that is linked but has no token stays off).
pub type ChannelFactory = fn(Env<'_>) -> Option<Arc<dyn Channel>>;

/// A check of `pincer doctor`, from what the engine says about itself.
pub type DoctorCheck = fn(&Settings, &EngineFacts) -> Vec<Check>;

/// One line of `pincer doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// A short name (`engine`, `runtime`, `gvisor`).
    pub check: String,
    pub ok: bool,
    /// What was found, and when it fails, what to do.
    pub detail: String,
}

/// What the linked skills add.
#[derive(Default)]
pub struct Registry {
    channels: Vec<ChannelFactory>,
    providers: BTreeMap<&'static str, Arc<dyn Provider>>,
    doctor: Vec<DoctorCheck>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("channels", &self.channels.len())
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("doctor", &self.doctor.len())
            .finish()
    }
}

impl Registry {
    /// The registry with the skills `register` adds (the binary's list).
    pub fn with(register: impl FnOnce(&mut Self)) -> Self {
        let mut registry = Self::default();
        register(&mut registry);
        registry
    }

    pub fn add_channel(&mut self, factory: ChannelFactory) {
        self.channels.push(factory);
    }

    /// A model provider, chosen by `model_provider` in the configuration.
    /// The first skill to register a name keeps it (skills that would both
    /// claim one declare each other in `conflicts`).
    pub fn add_provider(&mut self, name: &'static str, provider: Arc<dyn Provider>) {
        if self.providers.contains_key(name) || name == "anthropic" {
            tracing::warn!("model provider {name:?} is registered already: the second is ignored");
            return;
        }
        self.providers.insert(name, provider);
    }

    pub fn add_doctor_check(&mut self, check: DoctorCheck) {
        self.doctor.push(check);
    }

    /// The linked channels that `env` configures (the daemon adds its
    /// built-in local one: the terminal and `pincer send`).
    pub fn channels(&self, env: Env<'_>) -> Vec<Arc<dyn Channel>> {
        self.channels
            .iter()
            .filter_map(|factory| factory(env))
            .collect()
    }

    /// The provider called `name` (`anthropic`: none, the Messages API as it is).
    pub fn provider(&self, name: &str) -> Result<Option<Arc<dyn Provider>>, GatewayError> {
        if name == "anthropic" {
            return Ok(None);
        }
        match self.providers.get(name) {
            Some(provider) => Ok(Some(Arc::clone(provider))),
            None => Err(GatewayError::BadUrl {
                url: name.to_owned(),
                reason: format!(
                    "unknown model provider (known: anthropic{}; provider skills add others)",
                    self.providers
                        .keys()
                        .map(|k| format!(", {k}"))
                        .collect::<String>()
                ),
            }),
        }
    }

    /// What the linked skills' doctor checks say.
    pub fn doctor(&self, settings: &Settings, facts: &EngineFacts) -> Vec<Check> {
        self.doctor
            .iter()
            .flat_map(|check| check(settings, facts))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn providers_are_registered_by_name() {
        let registry = Registry::default();
        assert!(registry.provider("anthropic").unwrap().is_none());
        let err = registry.provider("made-up").unwrap_err().to_string();
        assert!(err.contains("unknown model provider"), "{err}");
    }

    #[test]
    fn unconfigured_channel_skills_stay_off() {
        fn off(_: Env<'_>) -> Option<Arc<dyn Channel>> {
            None
        }
        let registry = Registry::with(|r| r.add_channel(off));
        assert!(registry.channels(&|_| None).is_empty());
    }
}
