//! Staged read-write grants with real containers: nothing an agent writes
//! reaches the owner's folder until `pincer changes accept`, part by part,
//! never over a file the owner changed, never a link or a fifo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use pincer_test_support as support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::*;

/// Every file below `root` and its content (links as `-> target`).
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                files.insert(name, format!("-> {}", target.display()));
            } else {
                files.insert(name, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    files
}

fn changes(install: &Installation, args: &[&str]) -> Output {
    install.owner(&[&["changes"], args].concat())
}

fn site(install: &Installation) -> std::path::PathBuf {
    let site = install.user_home().join("projects/site");
    std::fs::create_dir_all(site.join("old")).unwrap();
    std::fs::write(site.join("index.html"), "<h1>home</h1>\n").unwrap();
    std::fs::write(site.join("about.html"), "<p>about</p>\n").unwrap();
    std::fs::write(site.join("notes.md"), "owner's notes\n").unwrap();
    std::fs::write(site.join("old/a.txt"), "a\n").unwrap();
    std::fs::write(site.join("old/b.txt"), "b\n").unwrap();
    std::fs::write(site.join(".env"), "SECRET=hunter2\n").unwrap();
    site
}

/// The agent "cleans up" the site through one bash command; the answer is
/// its output.
fn clean_up(install: &Installation, command: &str) -> (Output, ScriptedModel) {
    let model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": command})),
        answer(|request| request.last_tool_result()),
    ]);
    let output = install
        .pincer(&model.url())
        .args([
            "run-once",
            "--group",
            "main",
            "--mount",
            "host=~/projects/site,rw",
            "go",
        ])
        .output()
        .unwrap();
    (output, model)
}

#[test]
fn an_agents_clean_up_waits_for_the_owner_who_accepts_half_of_it() {
    let install = Installation::new();
    let site = site(&install);
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);
    let before = snapshot(&site);

    let (output, _) = clean_up(
        &install,
        "cd /workspace/extra/site && rm -r old && echo '<p>about us</p>' > about.html && \
         echo new > new.txt && echo agent >> notes.md && ln -s /etc/passwd passwd && \
         mkfifo pipe && cat .env; echo ENV=$?; ls",
    );
    assert!(output.status.success(), "{}", text(&output));
    let seen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        seen.contains("new.txt") && !seen.contains("old"),
        "the agent saw its own writes: {seen}"
    );
    assert!(!seen.contains("hunter2"), "{seen}");
    assert_eq!(snapshot(&site), before, "nothing reached the real folder");

    // The set waits, and the main chat was told.
    let listed = changes(&install, &["--json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let set: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = set["id"].as_i64().unwrap();
    let entries: Vec<(String, String, bool)> = set["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
                e["refused"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("about.html".into(), "changed".into(), false),
            ("new.txt".into(), "added".into(), false),
            ("notes.md".into(), "changed".into(), false),
            ("old/a.txt".into(), "deleted".into(), false),
            ("old/b.txt".into(), "deleted".into(), false),
            ("passwd".into(), "added".into(), true),
            ("pipe".into(), "added".into(), true),
        ]
    );
    let told = store(&install).outgoing(pincer_store::MAIN_CHAT).unwrap();
    assert!(
        told.iter()
            .any(|(_, text)| text.contains(&format!("pincer changes show {id}"))),
        "{told:?}"
    );

    let shown = changes(&install, &["show", &id.to_string()]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(
        shown.contains("-<p>about</p>") && shown.contains("+<p>about us</p>"),
        "{shown}"
    );
    assert!(shown.contains("never applied: a link"), "{shown}");

    // The owner edits notes.md meanwhile: accepting the agent's version is refused, both shown.
    std::fs::write(site.join("notes.md"), "owner's notes, edited\n").unwrap();
    let refused = changes(
        &install,
        &["accept", &id.to_string(), "notes.md", "new.txt"],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        said.contains("cannot accept notes.md") && said.contains("+agent"),
        "{said}"
    );
    assert!(
        !site.join("new.txt").exists(),
        "nothing of a refused accept is applied"
    );
    assert_eq!(
        std::fs::read_to_string(site.join("notes.md")).unwrap(),
        "owner's notes, edited\n"
    );

    // Links and fifos are never applied.
    let link = changes(&install, &["accept", &id.to_string(), "passwd"]);
    assert_eq!(link.status.code(), Some(1), "{}", text(&link));
    assert!(std::fs::symlink_metadata(site.join("passwd")).is_err());

    // Half of it: the old folder goes, about.html changes; the rest is untouched.
    let half = changes(&install, &["accept", &id.to_string(), "old/", "about.html"]);
    assert!(half.status.success(), "{}", text(&half));
    assert!(!site.join("old").exists());
    assert_eq!(
        std::fs::read_to_string(site.join("about.html")).unwrap(),
        "<p>about us</p>\n"
    );
    assert!(!site.join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(site.join(".env")).unwrap(),
        "SECRET=hunter2\n"
    );

    // The rest is rejected: no trace of it, the copy gone, nothing waits.
    let rejected = changes(&install, &["reject", &id.to_string()]);
    assert!(rejected.status.success(), "{}", text(&rejected));
    assert!(!site.join("new.txt").exists() && !site.join("pipe").exists());
    let staging = install.home().join("staging/main");
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "the copy is gone"
    );
    let left = changes(&install, &["--json"]);
    assert!(left.stdout.is_empty(), "{}", text(&left));
    let audit = install.audit_of_kind("changes");
    let actions: Vec<&str> = audit
        .iter()
        .map(|row| row["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["stage_changes", "accept_changes", "reject_changes"]
    );
}

#[test]
fn a_grant_left_unchanged_leaves_nothing_and_a_direct_grant_writes_at_once() {
    let install = Installation::new();
    let site = site(&install);
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);
    let (output, _) = clean_up(&install, "cat /workspace/extra/site/index.html");
    assert!(output.status.success(), "{}", text(&output));
    assert!(changes(&install, &["--json"]).stdout.is_empty());
    assert_eq!(
        std::fs::read_dir(install.home().join("staging/main")).map_or(0, |d| d.count()),
        0
    );

    // Named as such in the allowlist, writes land as they happen.
    std::fs::set_permissions(&site, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    install.allow(
        r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true, "writes": "direct"}]}"#,
    );
    let (output, _) = clean_up(&install, "echo now > /workspace/extra/site/direct.txt");
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        std::fs::read_to_string(site.join("direct.txt")).unwrap(),
        "now\n"
    );
    assert!(changes(&install, &["--json"]).stdout.is_empty());
}

fn git(repo: &Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Owner",
            "-c",
            "user.email=owner@example.org",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn a_git_repository_grant_yields_a_branch_the_owner_can_diff_and_merge() {
    let install = Installation::new();
    let repo = install.user_home().join("projects/site");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README.md"), "site\n").unwrap();
    std::fs::write(repo.join("old.txt"), "old\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);

    let (output, _) = clean_up(
        &install,
        "cd /workspace/extra/site && echo 'site, tidied' > README.md && rm old.txt && \
         printf '#!/bin/sh\\necho run\\n' > run.sh && chmod +x run.sh && \
         printf '#!/bin/sh\\ntouch /tmp/pwned\\n' > .git/hooks/post-merge && echo DONE",
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("DONE"),
        "{}",
        text(&output)
    );
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "the checkout is untouched"
    );
    let branches = git(
        &repo,
        &["branch", "--list", "agent/*", "--format=%(refname:short)"],
    );
    let branch = branches
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no branch: {branches}"));
    assert!(branch.starts_with("agent/main/"), "{branch}");
    let diff = git(&repo, &["diff", "--name-status", "HEAD", branch]);
    assert_eq!(diff, "M\tREADME.md\nD\told.txt\nA\trun.sh", "{diff}");
    assert_eq!(git(&repo, &["log", "-1", "--format=%an", branch]), "Pincer");
    let shown = changes(&install, &["show", "1"]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(branch),
        "{}",
        text(&shown)
    );

    // Merged by the owner as any branch; git's own files never came with it.
    git(&repo, &["merge", "-q", "--ff-only", branch]);
    assert_eq!(
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
        "site, tidied\n"
    );
    assert!(!repo.join("old.txt").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(repo.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o111, 0, "the execute bit came along");
    assert!(!repo.join(".git/hooks/post-merge").exists());

    // A set rejected whole takes its branch with it.
    let (output, _) = clean_up(&install, "echo again >> /workspace/extra/site/README.md");
    assert!(output.status.success(), "{}", text(&output));
    let second = git(
        &repo,
        &["branch", "--list", "agent/*", "--format=%(refname:short)"],
    );
    assert_eq!(second.lines().count(), 2, "{second}");
    let rejected = changes(&install, &["reject", "2"]);
    assert!(rejected.status.success(), "{}", text(&rejected));
    let left = git(
        &repo,
        &["branch", "--list", "agent/*", "--format=%(refname:short)"],
    );
    assert_eq!(left, branch, "only the merged one stays");
}

#[test]
fn the_owner_decides_from_the_main_chat_and_no_agent_sees_the_command() {
    let install = Installation::new();
    install.add_group("family");
    let site = site(&install);
    install.allow(r#"{"allowed_roots": [{"path": "~/projects", "allow_read_write": true}]}"#);
    let model = ScriptedModel::always(Box::new(|request: &Recorded| {
        if request.json()["messages"]
            .to_string()
            .contains("tool_result")
        {
            (200, message("done"))
        } else {
            tool_use(
                "bash",
                json!({"command": "cd /workspace/extra/site && echo new > new.txt && rm notes.md"}),
            )(request)
        }
    }));
    let mounted = install
        .pincer(&model.url())
        .args(["groups", "mount", "main", "host=~/projects/site,rw"])
        .output()
        .unwrap();
    assert!(mounted.status.success(), "{}", text(&mounted));
    let daemon = DaemonProcess::start(&install, &model.url(), &[]);
    let mut control = daemon.control();
    let reply = control.ask("main", "tidy the site");
    assert_eq!(reply["text"], "done", "{reply}");
    let told = store(&install).outgoing(pincer_store::MAIN_CHAT).unwrap();
    assert!(
        told.iter()
            .any(|(_, text)| text.contains("(1 added, 0 changed, 1 deleted)")
                && text.contains("pincer changes show 1")),
        "{told:?}"
    );

    // In a non-main chat the words are a message for its agent, and decide nothing.
    let family = control.ask("family", "@pincer /changes accept 1");
    assert_eq!(family["text"], "done", "{family}");
    assert!(!site.join("new.txt").exists());

    let listed = control.ask("main", "/changes");
    assert!(
        listed["text"].as_str().unwrap().contains("2 waiting"),
        "{listed}"
    );
    let accepted = control.ask("main", "/changes accept 1 new.txt");
    assert_eq!(accepted["failed"], false, "{accepted}");
    assert!(
        accepted["text"]
            .as_str()
            .unwrap()
            .contains("accepted new.txt"),
        "{accepted}"
    );
    assert_eq!(
        std::fs::read_to_string(site.join("new.txt")).unwrap(),
        "new\n"
    );
    let wrong = control.ask("main", "/changes accept 7");
    assert_eq!(wrong["failed"], true, "{wrong}");
    // Through `pincer send` as well.
    let rejected = install
        .pincer(&model.url())
        .args(["send", "main", "/changes reject 1"])
        .output()
        .unwrap();
    assert!(rejected.status.success(), "{}", text(&rejected));
    assert!(
        String::from_utf8_lossy(&rejected.stdout).contains("rejected notes.md"),
        "{}",
        text(&rejected)
    );
    assert!(site.join("notes.md").exists());
    assert_eq!(daemon.terminate(), Some(0));
    let seen: Vec<String> = model
        .requests()
        .iter()
        .map(|r| r.json()["messages"].to_string())
        .collect();
    assert!(
        seen.iter()
            .all(|m| !m.contains("/changes reject") && !m.contains("/changes\"")),
        "{seen:?}"
    );
}
