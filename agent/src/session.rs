//! The group's conversation, kept in the session folder between invocations.
//!
//! `transcript.json` holds the Messages API `messages` of earlier
//! invocations; a new invocation resumes from it. When it outgrows the
//! invocation's budget, the model writes a summary that replaces it, and the
//! original is archived in `archive/`. Memory files (`MEMORY.md` of the group
//! and the global one) are read into the system prompt.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The longest memory file read into the prompt.
const MAX_MEMORY_BYTES: usize = 16 * 1024;
/// Turns kept verbatim after a compaction (the rest is summarised).
const KEEP_AFTER_COMPACTION: usize = 1;

pub(crate) struct Session {
    dir: PathBuf,
}

impl Session {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    fn transcript(&self) -> PathBuf {
        self.dir.join("transcript.json")
    }

    /// The earlier messages, or none (a missing or unreadable transcript
    /// starts a fresh conversation, and says so on stderr). The folder is the
    /// agent's to write: a transcript that is a link or a folder is not read
    /// (and is set aside by the next save).
    pub(crate) fn load(&self) -> Vec<Value> {
        if !is_plain_file(&self.transcript()) {
            return Vec::new();
        }
        let Ok(text) = std::fs::read_to_string(self.transcript()) else {
            return Vec::new();
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(value) => value["messages"].as_array().cloned().unwrap_or_default(),
            Err(err) => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "session transcript unreadable, starting afresh: {err}"
                );
                Vec::new()
            }
        }
    }

    /// Saves `messages` atomically (write, then rename). Whatever else is
    /// where the transcript or its temporary file goes (a folder, a link the
    /// agent made) is set aside first, so that a session is never stuck.
    pub(crate) fn save(&self, messages: &[Value]) -> std::io::Result<u64> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_vec(&json!({"version": 1, "messages": messages}))?;
        let temporary = self.dir.join("transcript.json.tmp");
        if is_plain_file(&temporary) {
            std::fs::remove_file(&temporary)?; // a crash's leftover
        } else if std::fs::symlink_metadata(&temporary).is_ok() {
            set_aside(&temporary)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temporary)?;
        file.write_all(&text)?;
        drop(file);
        let transcript = self.transcript();
        if std::fs::symlink_metadata(&transcript).is_ok() && !is_plain_file(&transcript) {
            set_aside(&transcript)?;
        }
        std::fs::rename(&temporary, &transcript)?;
        Ok(text.len() as u64)
    }

    /// Archives the current transcript as `archive/<label>-<n>.json`, with
    /// the first `n` not taken: an archive is never overwritten (the runner's
    /// pid, say, repeats from one container to the next).
    pub(crate) fn archive(&self, label: &str) -> std::io::Result<PathBuf> {
        let archive = self.dir.join("archive");
        let is_dir = std::fs::symlink_metadata(&archive).map(|m| m.is_dir());
        if matches!(is_dir, Ok(false)) {
            set_aside(&archive)?;
        }
        std::fs::create_dir_all(&archive)?;
        let mut original = std::fs::File::open(self.transcript())?;
        for n in 1.. {
            let path = archive.join(format!("{label}-{n}.json"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut copy) => {
                    std::io::copy(&mut original, &mut copy)?;
                    return Ok(path);
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(std::io::Error::other("no free archive name"))
    }
}

/// Whether `path` is a regular file itself (not a link to one).
fn is_plain_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Moves what is at `path` to `<path>.set-aside-<n>` (the first free `n`),
/// and says so on stderr.
fn set_aside(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    for n in 1.. {
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".set-aside-{n}"));
        let aside = PathBuf::from(aside);
        if std::fs::symlink_metadata(&aside).is_ok() {
            continue;
        }
        std::fs::rename(path, &aside)?;
        let _ = writeln!(
            std::io::stderr(),
            "session: {} was not a plain file or folder; set aside as {}",
            path.display(),
            aside.display()
        );
        return Ok(());
    }
    Err(std::io::Error::other("no free name to set aside"))
}

/// The size `messages` take in the transcript.
pub(crate) fn size(messages: &[Value]) -> u64 {
    serde_json::to_vec(messages)
        .map(|v| v.len() as u64)
        .unwrap_or(0)
}

/// Where the conversation splits for a compaction: everything before the
/// returned index is summarised. The split falls on a user turn that is a
/// plain prompt (not a tool result), so no tool call loses its answer.
pub(crate) fn compaction_split(messages: &[Value]) -> usize {
    let prompts: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m["role"] == "user" && m["content"].is_string())
        .map(|(i, _)| i)
        .collect();
    if prompts.len() <= KEEP_AFTER_COMPACTION {
        return messages.len();
    }
    prompts[prompts.len() - KEEP_AFTER_COMPACTION]
}

/// The memory files' text for the system prompt.
/// Only a plain file is read, and only its first [`MAX_MEMORY_BYTES`]: the
/// agent can make `MEMORY.md` a link to `/dev/zero`, a fifo or a huge file,
/// and the group's next invocation must still start.
pub(crate) fn memory(files: &[(&str, PathBuf)]) -> String {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    for (label, path) in files {
        // Opened without following a link and without waiting (a fifo
        // swapped in after a check would block), then checked as opened.
        let mut content = Vec::new();
        let read = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .and_then(|file| {
                if file.metadata()?.file_type().is_file() {
                    file.take(MAX_MEMORY_BYTES as u64).read_to_end(&mut content)
                } else {
                    Err(std::io::Error::other("not a plain file"))
                }
            });
        if read.is_ok() {
            let content = String::from_utf8_lossy(&content);
            if !content.trim().is_empty() {
                text.push_str(&format!(
                    "\n\n## {label} ({})\n{}",
                    path.display(),
                    content.trim()
                ));
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcripts_round_trip_and_archive() {
        let dir = std::env::temp_dir().join(format!("pincer-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let session = Session::new(&dir);
        assert!(session.load().is_empty());
        let messages = vec![json!({"role": "user", "content": "hi"})];
        session.save(&messages).unwrap();
        assert_eq!(session.load(), messages);
        session.archive("first").unwrap();
        assert!(dir.join("archive/first-1.json").exists());
        // A second archive with the same label keeps the first.
        session
            .save(&[json!({"role": "user", "content": "later"})])
            .unwrap();
        assert_eq!(
            session.archive("first").unwrap(),
            dir.join("archive/first-2.json")
        );
        assert!(
            std::fs::read_to_string(dir.join("archive/first-1.json"))
                .unwrap()
                .contains("hi")
        );
        assert!(
            std::fs::read_to_string(dir.join("archive/first-2.json"))
                .unwrap()
                .contains("later")
        );
        std::fs::write(dir.join("transcript.json"), "{broken").unwrap();
        assert!(session.load().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn links_and_folders_where_the_session_keeps_files_are_set_aside() {
        let dir = std::env::temp_dir().join(format!("pincer-session-aside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let canary = dir.join("canary");
        std::fs::create_dir_all(&canary).unwrap();
        let session = Session::new(&dir);
        std::fs::create_dir_all(dir.join("transcript.json.tmp/x")).unwrap();
        std::os::unix::fs::symlink(canary.join("t.json"), dir.join("transcript.json")).unwrap();
        std::os::unix::fs::symlink(&canary, dir.join("archive")).unwrap();
        assert!(session.load().is_empty());
        session
            .save(&[json!({"role": "user", "content": "hi"})])
            .unwrap();
        assert_eq!(session.load().len(), 1);
        session.archive("first").unwrap();
        assert!(dir.join("archive/first-1.json").is_file());
        assert!(dir.join("archive").symlink_metadata().unwrap().is_dir());
        // Nothing reached what the links led to.
        assert_eq!(std::fs::read_dir(&canary).unwrap().count(), 0);
        assert!(dir.join("transcript.json.tmp.set-aside-1/x").is_dir());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn memory_reads_only_plain_files_and_only_their_start() {
        let dir = std::env::temp_dir().join(format!("pincer-memory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.join("zero.md")).unwrap();
        std::fs::write(dir.join("big.md"), "x".repeat(MAX_MEMORY_BYTES * 4)).unwrap();
        let fifo =
            std::ffi::CString::new(dir.join("fifo.md").into_os_string().into_encoded_bytes())
                .unwrap();
        #[allow(unsafe_code)]
        // SAFETY: a valid NUL-terminated path.
        let made = unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) };
        assert_eq!(made, 0);
        let text = memory(&[
            ("zero", dir.join("zero.md")),
            ("fifo", dir.join("fifo.md")),
            ("big", dir.join("big.md")),
        ]);
        assert!(!text.contains("## fifo"));
        assert!(
            !text.contains("## zero"),
            "{}",
            &text[..100.min(text.len())]
        );
        assert!(text.contains("## big"));
        assert!(text.len() < MAX_MEMORY_BYTES + 200, "{}", text.len());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn compaction_keeps_whole_recent_turns() {
        let user = |t: &str| json!({"role": "user", "content": t});
        let assistant =
            |t: &str| json!({"role": "assistant", "content": [{"type": "text", "text": t}]});
        let tool_result = json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": "r"}]});
        let messages = vec![
            user("one"),
            assistant("1"),
            user("two"),
            assistant("calling"),
            tool_result.clone(),
            assistant("2"),
            user("three"),
            assistant("3"),
        ];
        assert_eq!(
            compaction_split(&messages),
            6,
            "splits before the last prompt"
        );
        assert_eq!(compaction_split(&messages[..2]), 2, "too short to compact");
    }
}
