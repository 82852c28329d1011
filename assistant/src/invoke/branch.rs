//! A staged grant that is a git repository gets the agent's changes as a
//! branch too, `agent/<group>/<invocation>`: HEAD plus the change set's
//! files, committed by the host with git's plumbing (a private index, no
//! hooks, the working tree and the owner's index untouched), so the owner
//! can `git diff` and `git merge` it. The branch is an offer, like the
//! change set: nothing of it is in the owner's checkout until they merge.

use std::ffi::OsStr;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use pincer_core::beneath::{Folder, Kind};
use pincer_core::staging::{Change, ChangeKind};

/// Why no branch was made (the change set stands without one).
#[derive(Debug, thiserror::Error)]
#[error("git {step}: {message}")]
pub struct BranchError {
    step: &'static str,
    message: String,
}

/// The private index, beside the copy (never in the owner's `.git`).
const INDEX_FILE: &str = "git-index";

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

/// `real`'s HEAD commit now (taken before the agent starts: the branch's
/// parent, so that merging it never undoes what the owner committed while
/// the agent worked); `None` when there is none (no commit yet, no git).
pub fn head(real: &Path) -> Option<String> {
    let index = Path::new("/nonexistent");
    run(
        real,
        index,
        "rev-parse",
        &["rev-parse", "--verify", "-q", "HEAD^{commit}"],
        None,
    )
    .ok()
}

/// Commits the applicable `changes` (from the copy at `tree`) on top of
/// `parent` (see [`head`]) as branch `name`, with `scratch` (a host folder)
/// for the private index; returns the commit.
pub fn make_branch(
    real: &Path,
    tree: &Path,
    changes: &[Change],
    name: &str,
    parent: &str,
    scratch: &Path,
) -> Result<String, BranchError> {
    let index = scratch.join(INDEX_FILE);
    let git = |step: &'static str, args: &[&str], input: Option<&mut dyn Read>| {
        run(real, &index, step, args, input)
    };
    git("read-tree", &["read-tree", parent], None)?;
    let copy = Folder::open(tree).map_err(|err| BranchError {
        step: "hash-object",
        message: err.to_string(),
    })?;
    let mut info = String::new();
    for change in changes.iter().filter(|c| c.refused.is_none()) {
        if change.kind == ChangeKind::Deleted {
            info.push_str(&format!("0 {}\t{}\0", "0".repeat(40), change.path));
            continue;
        }
        let (folder, name) = change.path.rsplit_once('/').unwrap_or(("", &change.path));
        let opened = copy.open_dir(folder).and_then(|folder| {
            let mode = folder.stat(OsStr::new(name))?.map_or(0, |s| s.mode);
            Ok((folder.open_file(OsStr::new(name))?, mode))
        });
        let (mut file, mode) = opened.map_err(|err| BranchError {
            step: "hash-object",
            message: err.to_string(),
        })?;
        // Streamed from the copy, never through a path git would resolve.
        let blob = git(
            "hash-object",
            &["hash-object", "-w", "--stdin"],
            Some(&mut file),
        )?;
        let mode = if mode & 0o111 != 0 {
            "100755"
        } else {
            "100644"
        };
        info.push_str(&format!("{mode} {blob}\t{}\0", change.path));
    }
    let mut info = info.as_bytes();
    git(
        "update-index",
        &["update-index", "-z", "--index-info"],
        Some(&mut info),
    )?;
    let written = git("write-tree", &["write-tree"], None)?;
    let message = format!("{name}: the agent's changes, staged by Pincer");
    let commit = git(
        "commit-tree",
        &["commit-tree", &written, "-p", parent, "-m", &message],
        None,
    )?;
    git(
        "update-ref",
        &["update-ref", &format!("refs/heads/{name}"), &commit, ""],
        None,
    )?;
    if let Ok(folder) = Folder::open(scratch) {
        let _ = folder.remove_file(OsStr::new(INDEX_FILE));
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

/// One git command in `real` with the private index, no hooks, no
/// fsmonitor, no prompts, and nothing of this process's environment but
/// `PATH` (a `GIT_DIR` or `GIT_CONFIG_*` here must not steer it); its
/// trimmed stdout.
fn run(
    real: &Path,
    index: &Path,
    step: &'static str,
    args: &[&str],
    input: Option<&mut dyn Read>,
) -> Result<String, BranchError> {
    let fail = |message: String| BranchError { step, message };
    let mut command = Command::new("git");
    command
        .env_clear()
        .envs(std::env::var_os("PATH").map(|path| ("PATH", path)))
        .arg("-C")
        .arg(real)
        .args([
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.fsmonitor=false",
        ])
        .args(["-c", "safe.directory=*"])
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
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|err| fail(err.to_string()))?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        std::io::copy(input, &mut stdin).map_err(|err| fail(err.to_string()))?;
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
