//! `upstream-diff`: the owner's own fixes out, as a series `git am` applies
//! on upstream, and nothing of what is theirs alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pincer_skills::{SkillError, UpstreamDiffOptions};

/// Upstream, and a fork of it that has it as a real remote `upstream`,
/// fetched (so `upstream/main` is a remote-tracking ref).
fn upstream_and_fork() -> (Repo, Repo) {
    let up = Repo::new();
    upstream(&up);
    let fork = Repo::new();
    fork.git(&["remote", "add", "upstream", up.root().to_str().unwrap()]);
    fork.git(&["fetch", "-q", "upstream"]);
    fork.git(&["reset", "-q", "--hard", "upstream/main"]);
    (up, fork)
}

/// The owner's customisations: two commits of files `.pincer/local` lists
/// (a folder, a glob), one of a core file: line 4 of a.rs, which the fix
/// below has in its context.
fn customise(fork: &Repo) {
    fork.write(".pincer/local", "# this fork's own\nconfig/\ndeploy-*.sh\n");
    fork.write("config/site.toml", "name = \"home\"\n");
    fork.commit("Local settings");
    fork.write("deploy-home.sh", "#!/bin/sh\nrsync -a . home:pincer\n");
    fork.commit("Deploy to my server");
    edit(
        fork,
        "core/src/a.rs",
        "a line 4\n",
        "a line 4, my default\n",
    );
    fork.commit("My own default");
}

/// The owner's fix: line 6 of a.rs (one unchanged line below the owner's
/// line 4), with a local setting in the same commit; by another author, at
/// a set date in a zone of their own. Returns its id.
fn fix(fork: &Repo) -> String {
    edit(fork, "core/src/a.rs", "a line 6\n", "a line 6, fixed\n");
    fork.write("config/site.toml", "name = \"home\"\nfixed = true\n");
    fork.git(&["add", "-A"]);
    fork.git(&[
        "commit",
        "-q",
        "--author=Zoë Fixer <zoe@example.org>",
        "--date=1700000000 +0530",
        "-m",
        "Fix line six\n\nIt was off by one.",
    ]);
    fork.git(&["rev-parse", "HEAD"])
}

/// Upstream moves on: two lines above the fix (every line number below
/// moves) and a new file.
fn upstream_moves_on(up: &Repo) -> String {
    let a = up.read("core/src/a.rs");
    up.write(
        "core/src/a.rs",
        &format!("// upstream's header\n// two lines\n{a}"),
    );
    up.write("core/src/new.rs", "// new upstream file\n");
    up.commit("upstream moves on")
}

fn edit(repo: &Repo, path: &str, from: &str, to: &str) {
    let text = repo.read(path);
    assert!(text.contains(from), "{path}: {text}");
    repo.write(path, &text.replace(from, to));
}

/// A fresh clone of upstream's HEAD.
fn clone(up: &Repo) -> Repo {
    let clone = Repo::new();
    clone.git(&["pull", "-q", up.root().to_str().unwrap(), "main"]);
    clone
}

/// `git am` of `patches` on a fresh clone of upstream's HEAD (panics, with
/// git's reason, if one does not apply).
fn am_on_clone(up: &Repo, patches: &[PathBuf]) -> Repo {
    let clone = clone(up);
    let mut args = vec!["am", "-q"];
    args.extend(patches.iter().map(|p| p.to_str().unwrap()));
    clone.git(&args);
    clone
}

/// Whether a git command succeeds (for the ones expected to fail).
fn git_ok(repo: &Repo, args: &[&str]) -> bool {
    Command::new("git")
        .args(args)
        .current_dir(repo.root())
        .output()
        .unwrap()
        .status
        .success()
}

fn author(repo: &Repo, rev: &str) -> String {
    repo.git(&["log", "-1", "--format=%an%n%ae%n%ad", "--date=raw", rev])
}

fn pick(numbers: &[usize]) -> UpstreamDiffOptions {
    UpstreamDiffOptions {
        pick: Some(numbers.to_vec()),
        ..UpstreamDiffOptions::default()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `(number, summary, files)` of each commit `--list` shows.
fn listed(fork: &Repo) -> Vec<(usize, String, Vec<String>)> {
    fork.engine()
        .upstream_commits("upstream/main", false)
        .unwrap()
        .into_iter()
        .map(|c| (c.number, c.summary, c.files))
        .collect()
}

#[test]
fn one_fix_among_customisations_is_one_patch_that_applies_upstream() {
    let (up, fork) = upstream_and_fork();
    customise(&fork);
    let fix = fix(&fork);
    upstream_moves_on(&up);
    fork.git(&["fetch", "-q", "upstream"]);

    // The fix as committed does not apply upstream: its context has the
    // owner's line 4, and its line numbers are from before upstream's header.
    let raw = fork.root().join(".git/raw.patch");
    let text = fork.git(&["format-patch", "-1", "--stdout", &fix]);
    std::fs::write(&raw, format!("{text}\n")).unwrap();
    assert!(!git_ok(
        &clone(&up),
        &["apply", "--check", raw.to_str().unwrap()]
    ));

    // The commits of local files are no candidates; the customisation of a
    // core file is one, which the owner leaves out with --pick.
    let a = vec!["core/src/a.rs".to_owned()];
    assert_eq!(
        listed(&fork),
        [
            (1, "My own default".to_owned(), a.clone()),
            (2, "Fix line six".to_owned(), a)
        ]
    );
    let sent = fork
        .engine()
        .upstream_diff("upstream/main", &pick(&[2]))
        .unwrap();
    assert_eq!(sent.patches.len(), 1, "{:?}", sent.patches);
    assert!(sent.already_upstream.is_empty());
    let patch = read(&sent.patches[0]);
    assert!(
        patch.contains("Subject: [PATCH 1/1] Fix line six\n")
            && patch.contains("+a line 6, fixed\n")
            && patch.contains(" a line 4\n"),
        "{patch}"
    );
    for local in ["my default", "config/", "deploy", ".pincer"] {
        assert!(!patch.contains(local), "{local}: {patch}");
    }

    let applied = am_on_clone(&up, &sent.patches);
    assert_eq!(author(&applied, "HEAD"), author(&fork, &fix));
    assert!(author(&applied, "HEAD").ends_with("1700000000 +0530"));
    assert_eq!(
        applied.git(&["log", "-1", "--format=%B"]),
        "Fix line six\n\nIt was off by one."
    );
    let expected = up
        .read("core/src/a.rs")
        .replace("a line 6\n", "a line 6, fixed\n");
    assert_eq!(applied.read("core/src/a.rs"), expected);
    assert_eq!(applied.read("core/src/new.rs"), "// new upstream file\n");
    assert!(!applied.root().join("config").exists());
}

#[test]
fn list_and_pick_choose_the_commits() {
    let (up, fork) = upstream_and_fork();
    customise(&fork);
    fix(&fork);
    upstream_moves_on(&up);
    fork.git(&["fetch", "-q", "upstream"]);
    let subjects = |options: &UpstreamDiffOptions| -> Vec<String> {
        let sent = fork
            .engine()
            .upstream_diff("upstream/main", options)
            .unwrap();
        sent.patches
            .iter()
            .map(|p| {
                let text = read(p);
                let line = text.lines().find(|l| l.starts_with("Subject: ")).unwrap();
                line.trim_start_matches("Subject: ").to_owned()
            })
            .collect()
    };

    // Listing writes nothing.
    listed(&fork);
    assert!(!fork.engine().default_patch_dir().exists());
    assert!(fork.clean());

    // All by default, and the series applies in order.
    assert_eq!(
        subjects(&UpstreamDiffOptions::default()),
        ["[PATCH 1/2] My own default", "[PATCH 2/2] Fix line six"]
    );
    let out = fork.engine().default_patch_dir();
    let mut all: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    let applied = am_on_clone(&up, &all);
    assert!(
        applied
            .read("core/src/a.rs")
            .contains("a line 4, my default\na line 5\na line 6, fixed\n")
    );

    assert_eq!(subjects(&pick(&[1])), ["[PATCH 1/1] My own default"]);
    // The series keeps the commits' order, whatever the order picked.
    assert_eq!(
        subjects(&pick(&[2, 1])),
        ["[PATCH 1/2] My own default", "[PATCH 2/2] Fix line six"]
    );

    for (numbers, why) in [
        (
            vec![3],
            "--pick 3: there is no commit 3 to send (there are 2",
        ),
        (vec![0], "--pick 0: there is no commit 0"),
        (vec![], "--pick takes the numbers"),
    ] {
        let err = fork
            .engine()
            .upstream_diff("upstream/main", &pick(&numbers))
            .unwrap_err();
        assert!(matches!(err, SkillError::Refused(_)), "{err:?}");
        assert!(err.to_string().contains(why), "{err}");
    }
}

#[test]
fn a_fix_upstream_has_taken_is_left_out() {
    let (up, fork) = upstream_and_fork();
    customise(&fork);
    let fix = fix(&fork);
    let sent = fork
        .engine()
        .upstream_diff("upstream/main", &pick(&[2]))
        .unwrap();
    // Upstream takes it (a new commit id), and the owner merges upstream.
    up.git(&["am", "-q", sent.patches[0].to_str().unwrap()]);
    fork.git(&["pull", "-q", "--no-rebase", "--no-edit", "upstream", "main"]);

    let sent = fork
        .engine()
        .upstream_diff("upstream/main", &UpstreamDiffOptions::default())
        .unwrap();
    let left_out: Vec<&str> = sent
        .already_upstream
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(left_out, [fix.as_str()]);
    assert_eq!(sent.patches.len(), 1, "{:?}", sent.patches);
    assert!(read(&sent.patches[0]).contains("Subject: [PATCH 1/1] My own default"));
}

#[test]
fn a_commit_that_does_not_apply_upstream_is_refused_and_nothing_is_written() {
    let (up, fork) = upstream_and_fork();
    fork.write("core/src/helper.rs", "fn help() {}\n");
    fork.commit("A helper of my own");
    fork.write("core/src/helper.rs", "fn help() {}\nfn help_more() {}\n");
    let uses = fork.commit("More help");
    let fix = fix(&fork);
    // Upstream changed the fix's line its own way.
    edit(
        &up,
        "core/src/a.rs",
        "a line 6\n",
        "a line 6, upstream's way\n",
    );
    up.commit("upstream's line six");
    fork.git(&["fetch", "-q", "upstream"]);

    let earlier = fork.engine().default_patch_dir().join("0001-earlier.patch");
    std::fs::create_dir_all(earlier.parent().unwrap()).unwrap();
    std::fs::write(&earlier, "an earlier run's\n").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = elsewhere.path().join("patches");
    let cases = [
        (
            None,
            &fix,
            "\"Fix line six\" does not apply onto upstream/main:\n  core/src/a.rs (the lines it changes",
        ),
        (
            Some(vec![2]),
            &uses,
            "\"More help\" does not apply onto upstream/main:\n  core/src/helper.rs (not in upstream/main",
        ),
    ];
    for (picked, commit, why) in cases {
        for dir in [None, Some(out.clone())] {
            let options = UpstreamDiffOptions {
                out: dir,
                pick: picked.clone(),
                offline: false,
            };
            let err = fork
                .engine()
                .upstream_diff("upstream/main", &options)
                .unwrap_err();
            assert!(matches!(err, SkillError::Refused(_)), "{err:?}");
            let err = err.to_string();
            assert!(
                err.contains(&format!("commit {} {why}", &commit[..10])),
                "{err}"
            );
            assert!(err.contains("no patches written"), "{err}");
            assert_eq!(read(&earlier), "an earlier run's\n");
            assert!(!out.exists());
        }
    }
}

#[test]
fn a_stale_upstream_ref_is_refused_until_fetched() {
    let (up, fork) = upstream_and_fork();
    fix(&fork);
    let stale = fork.git(&["rev-parse", "upstream/main"]);
    up.write("core/src/new.rs", "// new upstream file\n");
    up.commit("upstream one");
    edit(&up, "core/src/a.rs", "a line 1\n", "a line 1, upstream's\n");
    let head = up.commit("upstream two");
    let default = UpstreamDiffOptions::default();
    let refused = |fork: &Repo| -> String {
        let listing = fork.engine().upstream_commits("upstream/main", false);
        let err = fork
            .engine()
            .upstream_diff("upstream/main", &default)
            .unwrap_err();
        assert!(matches!(err, SkillError::Refused(_)), "{err:?}");
        assert_eq!(listing.unwrap_err().to_string(), err.to_string());
        assert!(!fork.engine().default_patch_dir().exists());
        err.to_string()
    };

    // Upstream's new commits are not here at all.
    assert_eq!(
        refused(&fork),
        format!(
            "upstream/main is behind the remote (its main is at {}); fetch first (`git fetch upstream`)",
            &head[..10]
        )
    );
    // They are, as after an update from upstream's path or URL (which
    // fetches into the engine's own ref and leaves upstream/main as it was).
    let url = up.root().to_str().unwrap();
    fork.git(&["fetch", "-q", url, "+refs/heads/main:refs/pincer/upstream"]);
    assert_eq!(
        refused(&fork),
        "upstream/main is 2 commits behind the remote; fetch first (`git fetch upstream`)"
    );
    // A remote that cannot be reached is no excuse.
    fork.git(&["remote", "set-url", "upstream", "/no/such/upstream"]);
    let err = refused(&fork);
    assert!(
        err.starts_with("cannot check upstream/main against the remote upstream: ")
            && err.contains("/no/such/upstream")
            && err.ends_with("or pass --offline to use upstream/main as it is"),
        "{err}"
    );
    // A remote libgit2 cannot read (a bundle) is asked through git.
    let bundle = up.root().join(".git/upstream.bundle");
    let bundle = bundle.to_str().unwrap();
    up.git(&["bundle", "create", "-q", bundle, "main"]);
    fork.git(&["remote", "set-url", "upstream", bundle]);
    assert_eq!(
        refused(&fork),
        "upstream/main is 2 commits behind the remote; fetch first (`git fetch upstream`)"
    );

    // --offline takes the ref as it is; so is a ref that tracks no remote.
    let offline = UpstreamDiffOptions {
        offline: true,
        ..UpstreamDiffOptions::default()
    };
    let sent = fork
        .engine()
        .upstream_diff("upstream/main", &offline)
        .unwrap();
    assert_eq!(sent.patches.len(), 1);
    fork.git(&["branch", "old-upstream", &stale]);
    for name in ["old-upstream", stale.as_str()] {
        let sent = fork.engine().upstream_diff(name, &default).unwrap();
        assert_eq!(sent.patches.len(), 1, "{name}");
    }

    fork.git(&["fetch", "-q", "upstream"]);
    let sent = fork
        .engine()
        .upstream_diff("upstream/main", &default)
        .unwrap();
    assert_eq!(sent.patches.len(), 1);
    let applied = am_on_clone(&up, &sent.patches);
    assert!(
        applied
            .read("core/src/a.rs")
            .contains("a line 1, upstream's\n")
    );
    assert!(applied.read("core/src/a.rs").contains("a line 6, fixed\n"));
}

#[test]
fn upstream_diff_keeps_only_the_owners_own_core_changes() {
    let repo = Repo::new();
    let base = upstream(&repo);
    repo.git(&["branch", "upstream"]);
    add_skill(&repo, "demo", &base, "a line 10 by the skill", "");
    repo.commit("add the skill");
    committed(repo.engine().apply("demo", false).unwrap());
    repo.git(&["checkout", "-q", "main"]);
    repo.git(&["merge", "-q", "skill/demo"]);
    // Within three lines of the skill's line 10: the skill's line is the
    // commit's context, upstream's is the patch's.
    edit(&repo, "core/src/a.rs", "a line 8\n", "a line 8, fixed\n");
    repo.commit("Fix line eight");

    // By default into the git directory: the tree stays clean for the next
    // apply, and an earlier run's patches go.
    let stale = repo
        .root()
        .join(".git/pincer-upstream-patches/0002-stale.patch");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "an earlier run's\n").unwrap();
    let default = UpstreamDiffOptions::default();
    let sent = repo.engine().upstream_diff("upstream", &default).unwrap();
    assert_eq!(sent.dir, repo.engine().default_patch_dir());
    assert!(sent.dir.starts_with(repo.root().join(".git")), "{sent:?}");
    assert_eq!(sent.patches.len(), 1, "{sent:?}");
    assert!(sent.patches[0].starts_with(&sent.dir), "{sent:?}");
    assert!(!stale.exists());
    assert!(repo.clean(), "{}", repo.git(&["status", "--porcelain"]));
    // Or where the owner says.
    let elsewhere = tempfile::tempdir().unwrap();
    let options = UpstreamDiffOptions {
        out: Some(elsewhere.path().to_owned()),
        ..UpstreamDiffOptions::default()
    };
    let sent = repo.engine().upstream_diff("upstream", &options).unwrap();
    assert_eq!(sent.dir, elsewhere.path());
    assert_eq!(sent.patches.len(), 1, "{sent:?}");
    assert!(sent.patches[0].starts_with(elsewhere.path()));
    let patch = read(&sent.patches[0]);
    assert!(
        patch.contains("Subject: [PATCH 1/1] Fix line eight"),
        "{patch}"
    );
    assert!(
        patch.contains("+a line 8, fixed\n") && patch.contains(" a line 10\n"),
        "{patch}"
    );
    assert!(
        !patch.contains("skills/") && !patch.contains("demo") && !patch.contains(".pincer"),
        "{patch}"
    );

    // It applies to upstream as it is.
    let upstream_clone = Repo::new();
    upstream_clone.git(&["pull", "-q", repo.root().to_str().unwrap(), "upstream"]);
    upstream_clone.git(&["am", "-q", sent.patches[0].to_str().unwrap()]);
    assert_eq!(
        upstream_clone.read("core/src/a.rs"),
        lines(10, "a").replace("a line 8\n", "a line 8, fixed\n")
    );
}
