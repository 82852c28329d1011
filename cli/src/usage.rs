//! `pincer usage`: model tokens per group and day.

use pincer_assistant::config::Paths;
use pincer_core::group::GroupName;

use crate::open_store;

pub(crate) fn usage_command(
    paths: &Paths,
    group: Option<GroupName>,
    since: &str,
    json: bool,
) -> anyhow::Result<()> {
    let store = open_store(paths)?;
    let since = pincer_store::time::parse_since(since, std::time::SystemTime::now())
        .map_err(|err| anyhow::anyhow!("--since: {err}"))?;
    let days = store.usage_by_day(group.as_deref(), &since)?;
    if !json && days.is_empty() {
        println!("no model requests since {since}");
    } else if !json {
        println!(
            "{:<10}  {:<16} {:>8} {:>12} {:>10} {:>12} {:>12} {:>7}",
            "day", "group", "requests", "input", "output", "cache read", "cache write", "cached"
        );
    }
    for day in days {
        let u = day.usage;
        let input = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens;
        let cached = if input == 0 {
            0.0
        } else {
            u.cache_read_tokens as f64 / input as f64
        };
        if json {
            let mut row = serde_json::to_value(&day)?;
            row["cached_share"] = serde_json::json!((cached * 1000.0).round() / 1000.0);
            println!("{row}");
        } else {
            println!(
                "{:<10}  {:<16} {:>8} {:>12} {:>10} {:>12} {:>12} {:>6.1}%",
                day.day,
                day.group,
                day.requests,
                u.input_tokens,
                u.output_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
                cached * 100.0
            );
        }
    }
    Ok(())
}
