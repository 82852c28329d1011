//! The owner's budgets: model tokens ([`Budget`]) and what an agent can make
//! the host do ([`Limits`]).
//!
//! Model tokens: per group and in total, per day and per
//! month (UTC), counted by the host from what the model answered — never by
//! the agent, which could lie or simply keep asking.
//!
//! A request over a budget is refused at the gateway, and a message of the
//! group gets a clear answer before any container starts; the main chat is
//! told once per budget and period (`budget_notices`).

mod limits;

pub use limits::{Limits, parse_bytes};

use pincer_store::{Store, StoreError};

/// `[budget]` in `config.toml`: each limit in tokens, absent for none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Each group's tokens per UTC day.
    pub group_daily_tokens: Option<u64>,
    /// Each group's tokens per UTC month.
    pub group_monthly_tokens: Option<u64>,
    /// All groups' tokens per UTC day.
    pub total_daily_tokens: Option<u64>,
    /// All groups' tokens per UTC month.
    pub total_monthly_tokens: Option<u64>,
}

/// A budget that is used up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{who} used {used} of {limit} model tokens {period_name} (UTC); no more model requests until \
     it resets, or the owner raises [budget] {key} in config.toml"
)]
pub struct OverBudget {
    who: String,
    used: u64,
    limit: u64,
    period_name: &'static str,
    key: &'static str,
    scope: String,
    period: String,
}

/// A budget could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// Over it.
    #[error(transparent)]
    Over(#[from] OverBudget),
    /// The store failed (the request is refused: a budget that cannot be
    /// read is not a budget that holds).
    #[error("cannot read the model usage: {0}")]
    Store(#[from] StoreError),
}

impl Budget {
    /// Whether `group` may make another model request now. Over a budget,
    /// the main chat is told (once per budget and period).
    pub fn check(&self, store: &Store, group: &str) -> Result<(), BudgetError> {
        let now = pincer_store::time::now();
        // Each period by its name and by the instant it began (UTC).
        let day = (&now[..10], format!("{}T00:00:00Z", &now[..10]));
        let month = (&now[..7], format!("{}-01T00:00:00Z", &now[..7]));
        let limits = [
            (
                self.group_daily_tokens,
                Some(group),
                &day,
                "today",
                "group_daily_tokens",
            ),
            (
                self.group_monthly_tokens,
                Some(group),
                &month,
                "this month",
                "group_monthly_tokens",
            ),
            (
                self.total_daily_tokens,
                None,
                &day,
                "today",
                "total_daily_tokens",
            ),
            (
                self.total_monthly_tokens,
                None,
                &month,
                "this month",
                "total_monthly_tokens",
            ),
        ];
        for (limit, scope, (period, since), period_name, key) in limits {
            let Some(limit) = limit else { continue };
            let used = store.tokens_since(scope, since)?;
            if used >= limit {
                let over = OverBudget {
                    who: scope.map_or("all groups together".to_owned(), |g| format!("group {g}")),
                    used,
                    limit,
                    period_name,
                    key,
                    scope: format!("{key}:{}", scope.unwrap_or("*")),
                    period: (*period).to_owned(),
                };
                tell_the_owner_once(store, &over);
                return Err(over.into());
            }
        }
        Ok(())
    }
}

fn tell_the_owner_once(store: &Store, over: &OverBudget) {
    store.tell_main_once(&over.scope, &over.period, &format!("Budget: {over}."));
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_store::{MAIN_CHAT, Usage};

    #[test]
    fn each_budget_holds_and_the_owner_is_told_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("pincer.db")).unwrap();
        let spend = |group: &str, tokens: u64| {
            let usage = Usage {
                input_tokens: tokens,
                ..Usage::default()
            };
            store.record_usage(group, "inv", "m", usage).unwrap();
        };
        let budget = Budget {
            group_daily_tokens: Some(100),
            total_daily_tokens: Some(250),
            ..Budget::default()
        };
        spend("family", 99);
        assert!(budget.check(&store, "family").is_ok());
        spend("family", 1);
        let err = budget.check(&store, "family").unwrap_err().to_string();
        assert!(
            err.contains("group family used 100 of 100") && err.contains("group_daily_tokens"),
            "{err}"
        );
        assert!(budget.check(&store, "family").is_err());
        assert!(budget.check(&store, "main").is_ok());
        spend("main", 99);
        spend("work", 60);
        let err = budget.check(&store, "main").unwrap_err().to_string();
        assert!(err.contains("all groups together used 259 of 250"), "{err}");
        let told: Vec<String> = store
            .outgoing(MAIN_CHAT)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(told[0].contains("group family") && told[1].contains("all groups"));
    }
}
