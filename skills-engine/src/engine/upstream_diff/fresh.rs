//! Whether a remote-tracking upstream ref is what its remote has now.
//!
//! `update` fetches into `refs/pincer/upstream` and never moves
//! `upstream/main`, so that ref goes stale; patches made against a stale
//! one carry upstream's own newer commits as the owner's. Before anything
//! is computed, a remote-tracking ref (`upstream/main` resolving to
//! `refs/remotes/upstream/main`) is compared with its remote's branch,
//! read-only (no fetch: the owner's refs stay as they are). Any other ref
//! (a local branch, a tag, a commit id) is taken as given.
//!
//! The remote is asked through libgit2 first. This crate's libgit2 is built
//! without HTTPS and SSH, which is how most owners reach their upstream, so
//! when libgit2 cannot reach it `git ls-remote` is asked instead (the same
//! git the owner will fetch with). A remote that neither reaches is a
//! refusal too: `--offline` skips the check.

use std::process::{Command, Stdio};

use git2::Oid;

use super::super::Engine;
use crate::SkillError;

/// A remote-tracking ref: where it came from.
struct Tracked {
    /// The remote's name (`upstream`).
    remote: String,
    /// The branch on the remote (`refs/heads/main`).
    branch: String,
}

impl Engine {
    /// Refuses when `upstream_ref` is a remote-tracking ref at `local` and
    /// the remote's branch is elsewhere, or when the remote cannot be asked.
    pub(super) fn check_fresh(&self, upstream_ref: &str, local: Oid) -> Result<(), SkillError> {
        let Some(tracked) = self.tracking(upstream_ref)? else {
            return Ok(());
        };
        let Tracked { remote, branch } = &tracked;
        let fetch = format!("fetch first (`git fetch {remote}`)");
        let offline = format!("or pass --offline to use {upstream_ref} as it is");
        let head = self.remote_head(remote, branch).map_err(|why| {
            SkillError::Refused(format!(
                "cannot check {upstream_ref} against the remote {remote}: {why}; {fetch} {offline}"
            ))
        })?;
        let short_branch = branch.trim_start_matches("refs/heads/");
        let Some(head) = head else {
            return Err(SkillError::Refused(format!(
                "the remote {remote} has no {branch} any more, which {upstream_ref} tracks; \
                 name another upstream ref, {offline}"
            )));
        };
        if head == local {
            return Ok(());
        }
        let short = &head.to_string()[..10];
        if self.repo.find_commit(head).is_err() {
            return Err(SkillError::Refused(format!(
                "{upstream_ref} is behind the remote (its {short_branch} is at {short}); {fetch}"
            )));
        }
        let (ahead, behind) = self.repo.graph_ahead_behind(local, head)?;
        if behind > 0 {
            let commits = if behind == 1 { "commit" } else { "commits" };
            return Err(SkillError::Refused(format!(
                "{upstream_ref} is {behind} {commits} behind the remote; {fetch}"
            )));
        }
        // The remote went back (or was rewritten onto an ancestor): patches
        // against the local ref could carry commits upstream dropped.
        Err(SkillError::Refused(format!(
            "{upstream_ref} is not what the remote has: its {short_branch} is at {short}, \
             {ahead} behind {upstream_ref}; {fetch} {offline}"
        )))
    }

    /// The remote and branch `upstream_ref` tracks, when it names a
    /// remote-tracking ref.
    fn tracking(&self, upstream_ref: &str) -> Result<Option<Tracked>, SkillError> {
        // The same short-name rules as `git rev-parse`, which resolved the
        // commit: `upstream/main` is a local branch of that name if there is
        // one, else `refs/remotes/upstream/main`.
        let Ok(reference) = self.repo.resolve_reference_from_short_name(upstream_ref) else {
            return Ok(None);
        };
        // `upstream/HEAD` points at the branch it stands for.
        let reference = reference.resolve()?;
        let Ok(name) = reference.name() else {
            return Ok(None);
        };
        if !reference.is_remote() {
            return Ok(None);
        }
        let cannot_tell = |why: String| {
            SkillError::Refused(format!(
                "cannot tell which remote {upstream_ref} ({name}) tracks: {why}; \
                 pass --offline to use it as it is"
            ))
        };
        let remote_name = self
            .repo
            .branch_remote_name(name)
            .map_err(|err| cannot_tell(err.message().to_owned()))?;
        let remote_name = remote_name
            .as_str()
            .map_err(|_| cannot_tell("its name is not UTF-8".into()))?
            .to_owned();
        let remote = self.repo.find_remote(&remote_name)?;
        let branch = remote
            .refspecs()
            .filter(|spec| spec.direction() == git2::Direction::Fetch && spec.dst_matches(name))
            .find_map(|spec| spec.rtransform(name).ok())
            .and_then(|branch| branch.as_str().ok().map(str::to_owned))
            .ok_or_else(|| cannot_tell(format!("no fetch refspec of {remote_name} maps to it")))?;
        Ok(Some(Tracked {
            remote: remote_name,
            branch,
        }))
    }

    /// Where `branch` of `remote` is now (`None`: the remote has no such
    /// branch), or why the remote could not be asked.
    fn remote_head(&self, remote: &str, branch: &str) -> Result<Option<Oid>, String> {
        let through_libgit2 = || -> Result<Option<Oid>, git2::Error> {
            let mut remote = self.repo.find_remote(remote)?;
            remote.connect(git2::Direction::Fetch)?;
            let head = remote
                .list()?
                .iter()
                .find(|head| head.name() == branch)
                .map(git2::RemoteHead::oid);
            Ok(head)
        };
        match through_libgit2() {
            Ok(head) => Ok(head),
            Err(libgit2) => self.ls_remote(remote, branch).map_err(|git| match git {
                Some(git) => git,
                None => libgit2.message().to_owned(),
            }),
        }
    }

    /// `git ls-remote REMOTE BRANCH`; the error is git's own reason, or
    /// `None` when git could not be run at all.
    fn ls_remote(&self, remote: &str, branch: &str) -> Result<Option<Oid>, Option<String>> {
        let output = Command::new("git")
            .args(["ls-remote", remote, branch])
            .current_dir(&self.root)
            // Never wait on a password prompt nobody sees.
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .output()
            .map_err(|_| None)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .unwrap_or("git ls-remote failed")
                .trim_start_matches("fatal: ")
                .to_owned();
            return Err(Some(why));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        // `ls-remote` matches the pattern as a path suffix: keep the exact ref.
        Ok(stdout.lines().find_map(|line| {
            let (id, name) = line.split_once('\t')?;
            (name == branch).then(|| Oid::from_str(id).ok())?
        }))
    }
}
