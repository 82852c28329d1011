//! A staged grant that is a git repository gets the agent's changes as a
//! branch too, `agent/<group>/<invocation>`: HEAD plus the change set's
//! files, committed by the host with git's plumbing (a private index, no
//! hooks, the working tree and the owner's index untouched), so the owner
//! can `git diff` and `git merge` it. The branch is an offer, like the
//! change set: nothing of it is in the owner's checkout until they merge.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use pincer_core::beneath::{Folder, Kind};
use pincer_core::staging::{Change, ChangeKind, read_below};

/// Why no branch was made (the change set stands without one).
#[derive(Debug, thiserror::Error)]
#[error("git {step}: {message}")]
pub struct BranchError {
    step: &'static str,
    message: String,
}

/// The private index, beside the copy (never in the owner's `.git`).
const INDEX_FILE: &str = "git-index";

/// Most of one file put in a branch (the staged copy's limit bounds them all).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// The branch for `group`'s invocation `invocation`.
pub fn branch_name(group: &str, invocation: &str) -> String {
    format!("agent/{group}/{invocation}")
}

/// Whether `real` is the top of a git work tree (its own `.git`).
pub fn is_repository(real: &Path) -> bool {
    Folder::open(real)
        .and_then(|folder| folder.stat(std::ffi::OsStr::new(".git")))
        .is_ok_and(|stat| stat.is_some_and(|s| s.kind == Kind::Dir))
}

/// Commits the applicable `changes` (from the copy at `tree`) on top of
/// `real`'s HEAD as branch `name`, with `scratch` (a host folder) for the
/// private index; returns the commit.
pub fn make_branch(
    real: &Path,
    tree: &Path,
    changes: &[Change],
    name: &str,
    scratch: &Path,
) -> Result<String, BranchError> {
    let index = scratch.join(INDEX_FILE);
    let git = |step: &'static str, args: &[&str], input: Option<&[u8]>| {
        run(real, &index, step, args, input)
    };
    let head = git(
        "rev-parse",
        &["rev-parse", "--verify", "HEAD^{commit}"],
        None,
    )?;
    git("read-tree", &["read-tree", &head], None)?;
    let mut info = String::new();
    for change in changes.iter().filter(|c| c.refused.is_none()) {
        if change.kind == ChangeKind::Deleted {
            info.push_str(&format!("0 {}\t{}\0", "0".repeat(40), change.path));
            continue;
        }
        let Some((bytes, false)) =
            read_below(tree, &change.path, MAX_FILE_BYTES).map_err(|err| BranchError {
                step: "hash-object",
                message: err.to_string(),
            })?
        else {
            continue;
        };
        let blob = git(
            "hash-object",
            &["hash-object", "-w", "--stdin"],
            Some(&bytes),
        )?;
        let mode = if executable(tree, &change.path) {
            "100755"
        } else {
            "100644"
        };
        info.push_str(&format!("{mode} {blob}\t{}\0", change.path));
    }
    git(
        "update-index",
        &["update-index", "-z", "--index-info"],
        Some(info.as_bytes()),
    )?;
    let written = git("write-tree", &["write-tree"], None)?;
    let message = format!("{name}: the agent's changes, staged by Pincer");
    let commit = git(
        "commit-tree",
        &["commit-tree", &written, "-p", &head, "-m", &message],
        None,
    )?;
    git(
        "update-ref",
        &["update-ref", &format!("refs/heads/{name}"), &commit, ""],
        None,
    )?;
    if let Ok(folder) = Folder::open(scratch) {
        let _ = folder.remove_file(std::ffi::OsStr::new(INDEX_FILE));
    }
    Ok(commit)
}

/// Deletes branch `name` if it still points at `commit` (the owner may have
/// moved it: then it is theirs).
pub fn drop_branch(real: &Path, name: &str, commit: &str) -> Result<(), BranchError> {
    run(
        real,
        Path::new("/nonexistent"),
        "update-ref",
        &["update-ref", "-d", &format!("refs/heads/{name}"), commit],
        None,
    )
    .map(|_| ())
}

/// Whether the copy's file at `path` has an execute bit (read without
/// following a link, like its content).
fn executable(tree: &Path, path: &str) -> bool {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    Folder::open(tree)
        .and_then(|top| top.open_dir(parent))
        .and_then(|folder| folder.stat(std::ffi::OsStr::new(name)))
        .is_ok_and(|stat| stat.is_some_and(|s| s.kind == Kind::File && s.mode & 0o111 != 0))
}

/// One git command in `real` with the private index, no hooks and no
/// prompts; its trimmed stdout.
fn run(
    real: &Path,
    index: &Path,
    step: &'static str,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<String, BranchError> {
    let fail = |message: String| BranchError { step, message };
    let mut child = Command::new("git")
        .arg("-C")
        .arg(real)
        .args(["-c", "core.hooksPath=/dev/null", "-c", "safe.directory=*"])
        .args(args)
        .env("GIT_INDEX_FILE", index)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Pincer")
        .env("GIT_AUTHOR_EMAIL", "pincer@localhost")
        .env("GIT_COMMITTER_NAME", "Pincer")
        .env("GIT_COMMITTER_EMAIL", "pincer@localhost")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| fail(err.to_string()))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input)
            .map_err(|err| fail(err.to_string()))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|err| fail(err.to_string()))?;
    if !output.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
