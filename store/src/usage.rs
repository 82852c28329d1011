//! Model usage: what each request cost, as the model's answer said, kept per
//! group and invocation; sums for budgets and `pincer usage`; and the budget
//! warnings already given (one per scope and period).

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError};

/// The tokens of one model answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input at full price.
    pub input_tokens: u64,
    /// Output.
    pub output_tokens: u64,
    /// Input read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input written to the prompt cache.
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Every token, whatever its price.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// One group's usage on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageDay {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// The group.
    pub group: String,
    /// Model requests answered.
    pub requests: u64,
    /// Their tokens.
    #[serde(flatten)]
    pub usage: Usage,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Store {
    /// Records one answered model request.
    pub fn record_usage(
        &self,
        group: &str,
        invocation: &str,
        model: &str,
        usage: Usage,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO model_usage (at, group_name, invocation, model, input_tokens,
                     output_tokens, cache_read_tokens, cache_write_tokens)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    crate::time::now(),
                    group,
                    invocation,
                    model,
                    to_i64(usage.input_tokens),
                    to_i64(usage.output_tokens),
                    to_i64(usage.cache_read_tokens),
                    to_i64(usage.cache_write_tokens),
                ],
            )
            .map(|_| ())
        })
    }

    /// All tokens since `since` (a stored timestamp), of one group or all.
    pub fn tokens_since(&self, group: Option<&str>, since: &str) -> Result<u64, StoreError> {
        let total: i64 = self.with(|c| {
            c.query_row(
                "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_read_tokens
                     + cache_write_tokens), 0)
                 FROM model_usage WHERE at >= ?1 AND (?2 IS NULL OR group_name = ?2)",
                params![since, group],
                |row| row.get(0),
            )
        })?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Usage per group per day since `since`, oldest day first.
    pub fn usage_by_day(
        &self,
        group: Option<&str>,
        since: &str,
    ) -> Result<Vec<UsageDay>, StoreError> {
        self.with(|c| {
            let mut statement = c.prepare(
                "SELECT substr(at, 1, 10), group_name, COUNT(*), SUM(input_tokens),
                     SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens)
                 FROM model_usage WHERE at >= ?1 AND (?2 IS NULL OR group_name = ?2)
                 GROUP BY 1, 2 ORDER BY 1, 2",
            )?;
            let rows = statement.query_map(params![since, group], |row| {
                let n = |i| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                Ok(UsageDay {
                    day: row.get(0)?,
                    group: row.get(1)?,
                    requests: n(2)?,
                    usage: Usage {
                        input_tokens: n(3)?,
                        output_tokens: n(4)?,
                        cache_read_tokens: n(5)?,
                        cache_write_tokens: n(6)?,
                    },
                })
            })?;
            rows.collect()
        })
    }

    /// Tells the main chat `text`, the first time only for `scope` in
    /// `period`: the note that it was told and the message are one
    /// transaction, so the owner is told once, not never. A failure is
    /// logged: the refusal it accompanies stands either way.
    pub fn tell_main_once(&self, scope: &str, period: &str, text: &str) {
        let told = self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let first = tx.execute(
                "INSERT OR IGNORE INTO budget_notices (scope, period) VALUES (?1, ?2)",
                params![scope, period],
            )? == 1;
            if first {
                crate::messages::insert_outgoing(&tx, super::MAIN_CHAT, "pincer", text)?;
            }
            tx.commit()
        });
        if let Err(err) = told {
            tracing::error!("cannot tell the main chat: {err}");
        }
    }
}
