//! Running a skill's test (or the build) for apply, remove and update: shown
//! live, and written to a log in the git directory, so that a failure can
//! show its last lines and say where the rest is (the owner may not have
//! watched it scroll by, or may read it in a CI log far above the error).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use super::Engine;
use crate::SkillError;

/// The log of the last command run, in the git directory: outside the
/// working tree, which must stay clean for the commit. Each run replaces it.
pub(crate) const TEST_LOG: &str = "pincer-skill-test.log";

/// How many of the log's last lines a failure carries.
const TAIL_LINES: usize = 40;

/// How often the log is read for new output while the command runs.
const POLL: Duration = Duration::from_millis(50);

impl Engine {
    /// Runs a skill's `test` command.
    pub(super) fn run_test(&self, test: &str) -> Result<(), SkillError> {
        self.run_logged("the skill's test", test)
    }

    /// Runs `command` with `sh -c` at the root, its stdout and stderr going
    /// to the log and copied from there to stderr as they come; `what` names
    /// it when it fails.
    pub(super) fn run_logged(&self, what: &str, command: &str) -> Result<(), SkillError> {
        let log = self.repo.path().join(TEST_LOG);
        let output = File::create(&log).map_err(SkillError::io(&log))?;
        let mut reader = File::open(&log).map_err(SkillError::io(&log))?;
        // Both streams share one file offset (as `>log 2>&1` does), so
        // neither overwrites the other and their order is kept.
        let errors = output.try_clone().map_err(SkillError::io(&log))?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.root)
            .stdout(output)
            .stderr(errors)
            .spawn()
            .map_err(SkillError::io("sh"))?;
        let status = follow(&mut child, &mut reader, &log)?;
        if status.success() {
            return Ok(());
        }
        Err(SkillError::TestFailed {
            what: what.to_owned(),
            command: command.to_owned(),
            status: status.to_string(),
            tail: tail(&log),
            log,
        })
    }
}

/// Copies what `child` writes into the log onto stderr until it exits, and
/// returns how it ended. The log is read rather than a pipe: a process the
/// command leaves behind holding its output open cannot keep the engine
/// waiting.
fn follow(child: &mut Child, log: &mut File, path: &Path) -> Result<ExitStatus, SkillError> {
    let mut buffer = [0u8; 8192];
    let mut shown = std::io::stderr();
    loop {
        // Checked before reading: once it has exited, all it wrote is in
        // the file, and this read takes it to the end.
        let exited = child.try_wait().map_err(SkillError::io("sh"))?;
        loop {
            let read = log.read(&mut buffer).map_err(SkillError::io(path))?;
            if read == 0 {
                break;
            }
            // Best effort: a closed terminal must not fail the test, whose
            // output the log keeps anyway.
            let _shown = shown.write_all(&buffer[..read]);
        }
        if let Some(status) = exited {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
}

/// The log's last lines (empty when it cannot be read: the failure itself is
/// what matters, and it names the log).
fn tail(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
}
