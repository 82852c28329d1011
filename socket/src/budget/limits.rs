//! What one invocation, and one group, can make the host do: `[limits]` in
//! `config.toml` (the model's tokens are the other budget, `[budget]`). The container's own limits (memory, pids, CPU, tmpfs) hold
//! inside it; these hold outside it, on the host, where an agent's requests,
//! output and files turn into the host's memory, descriptors, disk and log.
//! Every one has a default that is safe for a machine an owner also uses for
//! other things, and a refusal of each is audited (floods coalesced).

use std::time::Duration;

use serde::Deserialize;

use pincer_store::AuditLimits;

/// `[limits]`: each key optional, an unknown key an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections one invocation's socket serves at once; more wait in the
    /// kernel's queue (they hold no descriptor of the host's).
    pub connections: usize,
    /// The largest model request body. Model bodies are read one at a time
    /// per invocation, so this is also what one invocation can make the host
    /// hold in memory for them.
    #[serde(deserialize_with = "bytes")]
    pub model_request_bytes: usize,
    /// The longest text of one audit field (action, target, reason); longer
    /// ones are cut, saying how long they were.
    #[serde(deserialize_with = "bytes")]
    pub audit_field_bytes: usize,
    /// Audit rows one group's agent may cause in a minute; past it, the
    /// minute's further events are counted in one row.
    pub audit_rows_per_minute: u32,
    /// Messages one invocation may send to chats (`send_message`); its
    /// final answer is not one of them.
    pub messages_per_invocation: u32,
    /// Tasks (active or paused) one group may have.
    pub tasks_per_group: usize,
    /// The longest task prompt.
    #[serde(deserialize_with = "bytes")]
    pub task_prompt_bytes: usize,
    /// Times one group's tasks may fire in a UTC day; past it, due runs
    /// are skipped (the owner is told). A task whose last run is still
    /// unanswered is skipped too: runs never pile up behind a slow group.
    pub task_runs_per_day: u64,
    /// The longest prompt one invocation is given: a batch of waiting
    /// messages longer than this loses its oldest messages (said in a note).
    #[serde(deserialize_with = "bytes")]
    pub prompt_bytes: usize,
    /// Lines of the runner's output that are not events (empty, malformed,
    /// oversized) an invocation may write before it is ended.
    pub junk_lines: u32,
    /// How long the host waits for a container to take its invocation on stdin.
    #[serde(deserialize_with = "duration")]
    pub stdin_timeout: Duration,
    /// The size of a group's folder (bytes), checked before and after each
    /// invocation: over it, the group's messages are refused until the owner
    /// makes room (0: no quota).
    #[serde(deserialize_with = "bytes")]
    pub group_folder_bytes: u64,
    /// The most file content one staged read-write grant is copied with;
    /// a larger folder is left out of the invocation (said so), never
    /// mounted directly instead. What the agent then writes there counts
    /// toward its group's folders.
    #[serde(deserialize_with = "bytes")]
    pub staged_copy_bytes: u64,
    /// Access requests (`request_access`) a non-main group may make in a
    /// day; main's agent asks without a limit (the owner decides either way).
    pub access_requests_per_day: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 16,
            model_request_bytes: 32 * MIB as usize,
            audit_field_bytes: AuditLimits::default().field_bytes,
            audit_rows_per_minute: AuditLimits::default().rows_per_minute,
            messages_per_invocation: 20,
            tasks_per_group: 20,
            task_prompt_bytes: 4 * 1024,
            task_runs_per_day: 500,
            prompt_bytes: 256 * 1024,
            junk_lines: 1000,
            stdin_timeout: Duration::from_secs(30),
            group_folder_bytes: GIB,
            staged_copy_bytes: 256 * MIB,
            access_requests_per_day: 5,
        }
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Parses `4096`, `64KiB`, `16MiB`, `1GiB` (also `k`, `M`, `G`, `KB`, `MB`,
/// `GB`: all binary multiples, which is what an owner means by them here).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (like 4096, 64KiB, 16MiB or 1GiB)"))?;
    let unit = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(unit)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Size {
    Number(u64),
    Text(String),
}

fn bytes<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    let value = match Size::deserialize(deserializer)? {
        Size::Number(number) => number,
        Size::Text(text) => parse_bytes(&text).map_err(serde::de::Error::custom)?,
    };
    T::try_from(value).map_err(|_| serde::de::Error::custom(format!("{value} is too large")))
}

fn duration<'de, D>(deserializer: D) -> Result<Duration, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    pincer_store::time::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_bytes("16 MiB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_bytes("1G"), Ok(1024 * 1024 * 1024));
        assert!(parse_bytes("12 parsecs").unwrap_err().contains("unit"));
        assert!(parse_bytes("lots").is_err());
        assert!(
            parse_bytes("99999999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn a_limits_table_takes_numbers_sizes_and_durations() {
        let limits: Limits = toml::from_str(
            "connections = 4\nmodel_request_bytes = \"8MiB\"\nstdin_timeout = \"5s\"\ngroup_folder_bytes = 0",
        )
        .unwrap();
        assert_eq!(limits.connections, 4);
        assert_eq!(limits.model_request_bytes, 8 * 1024 * 1024);
        assert_eq!(limits.stdin_timeout, Duration::from_secs(5));
        assert_eq!(limits.group_folder_bytes, 0);
        assert_eq!(limits.tasks_per_group, Limits::default().tasks_per_group);
        let err = toml::from_str::<Limits>("conections = 4").unwrap_err();
        assert!(err.to_string().contains("conections"), "{err}");
    }
}
