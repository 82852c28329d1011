//! Side doors: places where the host itself could follow something an agent
//! controls — a path it swaps, a link it plants, a uid it shares, a folder it
//! hides secrets in, a name it spells differently. Each test performs the
//! attack from inside a real container first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use pincer::group::GroupName;
use serde_json::{Value, json};
use support::*;

fn open_up(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
}

fn groups_cmd(install: &Installation, args: &[&str]) {
    let output = install
        .pincer("http://127.0.0.1:1")
        .arg("groups")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
}

/// Main's agent can write `~/share`; family is granted `~/share/docs` read-only.
/// Main's agent swaps `docs` for a link to a folder no allowlist grants, over
/// and over, while family is invoked 100 times: family's container never
/// sees anything but the checked folder, and the audit names what was mounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_source_swapped_for_a_link_is_never_what_another_group_gets() {
    let install = Installation::new();
    install.add_group("family");
    let share = install.user_home().join("share");
    let vault = install.user_home().join("vault");
    std::fs::create_dir_all(share.join("docs")).unwrap();
    std::fs::create_dir_all(&vault).unwrap();
    std::fs::write(share.join("docs/marker"), "DOCS\n").unwrap();
    std::fs::write(vault.join("marker"), "CANARY\n").unwrap();
    open_up(&share);
    install.allow(r#"{"allowed_roots": [{"path": "~/share", "allow_read_write": true}]}"#);
    groups_cmd(&install, &["mount", "family", "host=~/share/docs"]);
    let docs = share.join("docs").canonicalize().unwrap();
    let docs_meta = std::fs::metadata(&docs).unwrap();

    // Main's agent flips `docs` until the test is done (or 10 minutes pass).
    let flip = format!(
        "cd /workspace/extra/share; i=0; end=$(( $(date +%s) + 600 )); \
         while [ ! -e stop ] && [ $(date +%s) -lt $end ]; do \
           mv docs d2 && ln -s {vault} docs && usleep 80000 && rm docs && mv d2 docs; i=$((i+1)); usleep 20000; \
         done; echo flipped $i",
        vault = vault.display()
    );
    let flipper_model = ScriptedModel::start(vec![
        tool_use("bash", json!({"command": flip, "timeout_ms": 660000})),
        answer(|request| request.last_tool_result()),
    ]);
    let flipper = install
        .pincer(&flipper_model.url())
        .args([
            "run-once",
            "--group",
            "main",
            "--mount",
            "host=~/share,rw",
            "go",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The flipping has begun when `docs` is a link for the first time.
    assert!(
        wait_for(Duration::from_secs(120), || std::fs::symlink_metadata(
            share.join("docs")
        )
        .is_ok_and(|m| m.file_type().is_symlink())),
        "main's agent never started flipping"
    );

    let model = ScriptedModel::always(bash_then_echo(
        "cat /workspace/extra/docs/marker 2>&1; echo END",
    ));
    let (host, _) = install.start_host(&model.url(), &[]).await;
    let family = GroupName::new("family").unwrap();
    // At least 100 invocations that reach a container (those whose check
    // saw a link stop before one, and are tried again 5 ms later).
    let (mut seen_docs, mut swapped, mut refused) = (0, 0, Vec::new());
    for _ in 0..5000 {
        if seen_docs + swapped >= 100 {
            break;
        }
        let mut ignore = |_: &pincer_protocol::Event| {};
        match host.invoke(&family, "read", &[], &mut ignore).await {
            Ok(reply) => {
                assert!(
                    !reply.text.contains("CANARY"),
                    "family's container saw the folder main's link led to: {}",
                    reply.text
                );
                if reply.text.contains("DOCS") {
                    seen_docs += 1;
                }
            }
            Err(err) => {
                let err = err.to_string();
                if err.contains("not what was checked") {
                    swapped += 1;
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                refused.push(err);
            }
        }
    }
    std::fs::write(share.join("stop"), "").unwrap();
    let flipped = flipper.wait_with_output().unwrap();
    let flipped_text = String::from_utf8_lossy(&flipped.stdout).into_owned();
    eprintln!(
        "family: {seen_docs} saw the checked folder, {swapped} swapped and refused, {} refused \
         at the check ({flipped_text:?})",
        refused.len() - swapped
    );
    assert!(flipped_text.contains("flipped"), "{}", text(&flipped));
    assert!(
        seen_docs + swapped >= 100,
        "too few invocations reached a container; the last refusal: {:?}",
        refused.last()
    );
    assert!(install.containers().is_empty());

    // Every spawn of family names the checked folder, by path and identity;
    // a spawn whose container got something else is refused on record.
    let spawns: Vec<Value> = install
        .audit_of_kind("spawn")
        .into_iter()
        .filter(|e| e["group"] == "family")
        .collect();
    let mut created = 0;
    for entry in &spawns {
        if entry["action"] != "create_container" {
            assert_eq!(entry["action"], "refuse_container", "{entry}");
            assert_eq!(entry["allowed"], false);
            assert!(
                entry["reason"]
                    .as_str()
                    .unwrap()
                    .contains("not what was checked")
            );
            continue;
        }
        created += 1;
        let detail: Value = serde_json::from_str(entry["detail"].as_str().unwrap()).unwrap();
        let mount = detail["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["target"] == "/workspace/extra/docs")
            .unwrap_or_else(|| panic!("no docs mount in {detail}"))
            .clone();
        assert_eq!(mount["source"], docs.to_str().unwrap(), "{mount}");
        assert_eq!(mount["identity"]["ino"], docs_meta.ino(), "{mount}");
        assert_eq!(mount["identity"]["dev"], docs_meta.dev(), "{mount}");
    }
    assert!(
        created >= seen_docs,
        "{created} spawns, {seen_docs} answers"
    );
}
