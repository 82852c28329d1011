//! `pincer logs`: the log `serve` and `chat` write under
//! `$PINCER_HOME/logs/`, oldest first, rotated files included; `--group`
//! keeps one group's lines, `-f` waits for more. Lines can quote an agent:
//! escaped for the terminal (`--json` prints them as they are).

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use pincer_assistant::config::Paths;
use pincer_assistant::escape;
use pincer_core::group::GroupName;
use serde_json::Value;

use crate::logging::{KEPT, LOG_FILE, logs_dir};

/// How often `-f` looks for more.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);

pub(crate) async fn logs_command(
    paths: &Paths,
    follow: bool,
    group: Option<GroupName>,
    json: bool,
) -> anyhow::Result<()> {
    let dir = logs_dir(&paths.home);
    let show = |line: &str| show_line(line, group.as_deref(), json);
    let current = dir.join(LOG_FILE);
    let rotated: Vec<PathBuf> = (1..=KEPT)
        .rev()
        .map(|n| dir.join(format!("{LOG_FILE}.{n}")))
        .filter(|p| p.exists())
        .collect();
    if !current.exists() && rotated.is_empty() && !follow {
        println!(
            "no log yet at {} (`pincer serve` and `pincer chat` write it)",
            current.display()
        );
        return Ok(());
    }
    for path in &rotated {
        if let Some(file) = open(path)? {
            read_lines(&file, 0, &show)?;
        }
    }
    // The file being written is held open: after a rotation, the lines
    // written to it last are read from it before the new one is taken up.
    let mut reading = open(&current)?.map(|file| (file, 0));
    loop {
        if let Some((file, offset)) = &mut reading {
            *offset = read_lines(file, *offset, &show)?;
        }
        if !follow {
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
        let replaced = match (&reading, file_identity(&current)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some((file, _)), Some(now)) => identity(file) != Some(now),
        };
        if replaced {
            if let Some((file, offset)) = &mut reading {
                *offset = read_lines(file, *offset, &show)?;
            }
            reading = open(&current)?.map(|file| (file, 0));
        }
    }
}

fn open(path: &Path) -> anyhow::Result<Option<std::fs::File>> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn identity(file: &std::fs::File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// Shows each whole line of `file` from `offset`; returns where it stopped
/// (a line still being written is read whole next time).
fn read_lines(file: &std::fs::File, offset: u64, show: &dyn Fn(&str)) -> anyhow::Result<u64> {
    let mut reader = std::io::BufReader::new(file);
    reader.seek(std::io::SeekFrom::Start(offset))?;
    let mut offset = offset;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 || !line.ends_with(b"\n") {
            return Ok(offset);
        }
        offset += read as u64;
        show(String::from_utf8_lossy(&line).trim_end());
    }
}

fn show_line(line: &str, group: Option<&str>, json: bool) {
    let parsed = serde_json::from_str::<Value>(line).ok();
    if let Some(group) = group
        && parsed.as_ref().and_then(|v| v["group"].as_str()) != Some(group)
    {
        return;
    }
    if json {
        println!("{line}");
        return;
    }
    match parsed {
        Some(entry) => println!("{}", escape::line(&human(&entry))),
        None => println!("{}", escape::line(line)),
    }
}

/// `2026-11-30T22:50:01.123456Z  INFO model request group=main status=200`.
fn human(entry: &Value) -> String {
    let mut text = format!(
        "{}  {:>5} {}",
        entry["timestamp"].as_str().unwrap_or(""),
        entry["level"].as_str().unwrap_or(""),
        entry["message"].as_str().unwrap_or("")
    );
    if let Some(fields) = entry.as_object() {
        for (key, value) in fields {
            if matches!(key.as_str(), "timestamp" | "level" | "message") {
                continue;
            }
            match value.as_str() {
                Some(value) => text.push_str(&format!(" {key}={value}")),
                None => text.push_str(&format!(" {key}={value}")),
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_line_reads_as_a_log_line() {
        let entry = json!({"timestamp": "2026-11-30T22:50:01Z", "level": "INFO",
            "message": "model request", "group": "main", "status": 200});
        assert_eq!(
            human(&entry),
            "2026-11-30T22:50:01Z   INFO model request group=main status=200"
        );
    }

    #[test]
    fn only_whole_lines_are_read_and_the_offset_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        let show = |line: &str| seen.borrow_mut().push(line.to_owned());
        let file = std::fs::File::open(&path).unwrap();
        let offset = read_lines(&file, 0, &show).unwrap();
        assert_eq!(offset, 8);
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        read_lines(&file, offset, &show).unwrap();
        assert_eq!(*seen.borrow(), ["one", "two", "three"]);
    }
}
