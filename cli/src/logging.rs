//! Where the logs go. The long-running commands (`serve`, `chat`) write
//! JSON lines to `$PINCER_HOME/logs/pincer.log`, rotated by size, which
//! `pincer logs` reads. `serve` also logs to stderr, for its service
//! manager's journal. `chat` does not: its terminal is a conversation, so
//! only warnings and errors reach it, as one-line notices. Every other
//! command logs to stderr as before. `RUST_LOG` sets the level everywhere.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use pincer_assistant::escape;

/// The log file, in `$PINCER_HOME/logs/`.
pub(crate) const LOG_FILE: &str = "pincer.log";
/// A log file is rotated past this size.
const ROTATE_BYTES: u64 = 10 * 1024 * 1024;
/// Held while a process rotates the log.
const ROTATE_LOCK: &str = "rotate.lock";
/// Rotated files kept: `pincer.log.1` (the newest) to `pincer.log.4`.
pub(crate) const KEPT: u32 = 4;

/// How a command logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logging {
    /// Stderr only.
    Stderr,
    /// The log file and stderr.
    Service,
    /// The log file, and warnings as notices on stderr.
    Conversation,
}

pub(crate) fn logs_dir(home: &Path) -> PathBuf {
    home.join("logs")
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("pincer=info"))
}

/// Installs the subscriber for `logging`; where the log file cannot be
/// opened, says so and logs to stderr alone.
pub(crate) fn init(logging: Logging, home: Option<&Path>) {
    let file = match (logging, home) {
        (Logging::Stderr, _) | (_, None) => None,
        (_, Some(home)) => match LogFile::open(&logs_dir(home)) {
            Ok(file) => Some(file),
            Err(err) => {
                crate::report(&anyhow::anyhow!(
                    "cannot write the log under {}: {err}",
                    logs_dir(home).display()
                ));
                None
            }
        },
    };
    let Some(file) = file else {
        tracing_subscriber::registry().with(stderr()).init();
        return;
    };
    let file = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_writer(file)
        .with_filter(filter());
    let registry = tracing_subscriber::registry().with(file);
    if logging == Logging::Service {
        registry.with(stderr()).init();
    } else {
        let notices = tracing_subscriber::fmt::layer()
            .without_time()
            .with_target(false)
            .with_level(true)
            .with_ansi(false)
            .compact()
            .with_writer(|| NoticeWriter)
            .with_filter(LevelFilter::WARN);
        registry.with(notices).init();
    }
}

fn stderr<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter())
}

/// Stderr, one notice per event: indented, control characters escaped (a
/// log line can quote an agent).
struct NoticeWriter;

impl Write for NoticeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let line = escape::line(text.trim());
        std::io::stderr().write_all(format!("  ! {line}\n").as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// The log file, rotated when it outgrows [`ROTATE_BYTES`]. Each event is
/// one write (the fmt layer formats a whole line first), under the lock;
/// `O_APPEND` keeps the lines of two processes whole.
pub(crate) struct LogFile {
    dir: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            file: Mutex::new(append(&dir.join(LOG_FILE))?),
        })
    }

    fn write_line(&self, buf: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(LOG_FILE);
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // Another process (`serve` beside a `chat`) may write and rotate the
        // same log: the size is the file's, and the file the path's now.
        if identity_of_path(&path) != identity_of(&file) {
            *file = append(&path)?;
        }
        let size = file.metadata()?.len();
        if size > 0 && size + buf.len() as u64 > ROTATE_BYTES {
            self.rotate(&path, buf.len() as u64)?;
            *file = append(&path)?;
        }
        file.write_all(buf)
    }

    /// Rotates under a lock shared by every process writing here, unless
    /// another one just did.
    fn rotate(&self, path: &Path, adding: u64) -> std::io::Result<()> {
        let lock = append(&self.dir.join(ROTATE_LOCK))?;
        lock.lock()?;
        let size = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
        if size > 0 && size + adding > ROTATE_BYTES {
            rotate(&self.dir)?;
        }
        Ok(())
    }
}

/// Opens for appending, never through a link (the folder is the owner's;
/// no agent can write it, but a log is no reason to follow one).
fn append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

fn identity_of(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn identity_of_path(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// `pincer.log` becomes `pincer.log.1`, each older one moves up, the oldest goes.
fn rotate(dir: &Path) -> std::io::Result<()> {
    let numbered = |n: u32| dir.join(format!("{LOG_FILE}.{n}"));
    for n in (1..KEPT).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(dir.join(LOG_FILE), numbered(1))
}

pub(crate) struct LogWriter<'a>(&'a LogFile);

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_line(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = LogWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_writers_rotate_once_and_lose_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let (serve, chat) = (
            LogFile::open(dir.path()).unwrap(),
            LogFile::open(dir.path()).unwrap(),
        );
        let mut line = vec![b'x'; 1024 * 1024 - 1];
        line.push(b'\n');
        for i in 0..15 {
            let writer = if i % 2 == 0 { &serve } else { &chat };
            writer.make_writer().write_all(&line).unwrap();
        }
        let sizes: Vec<u64> = ["pincer.log", "pincer.log.1"]
            .iter()
            .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
            .collect();
        // Ten lines filled the first file, five the second: one rotation, none lost.
        assert_eq!(sizes, [5 * line.len() as u64, 10 * line.len() as u64]);
        assert!(!dir.path().join("pincer.log.2").exists());
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_a_few() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path()).unwrap();
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..(10 * (KEPT as usize + 3)) {
            log.make_writer().write_all(&line).unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "pincer.log",
                "pincer.log.1",
                "pincer.log.2",
                "pincer.log.3",
                "pincer.log.4",
                ROTATE_LOCK
            ]
        );
        for name in names.iter().filter(|n| n.starts_with(LOG_FILE)) {
            let size = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(size <= ROTATE_BYTES, "{size}");
        }
    }
}
