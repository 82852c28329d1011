//! The store on a real SQLite file: migrations, concurrent writers, and a
//! writer killed in the middle of a transaction.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The tests open the file behind the store's back, as a crash or a tool would.
#![allow(clippy::disallowed_types)]

use std::process::Command;
use std::time::{Duration, Instant};

use pincer_store::{AuditRecord, MAIN_CHAT, Store};

fn audit(store: &Store, action: &str) {
    store
        .audit(AuditRecord {
            group: Some("main"),
            kind: "test",
            action,
            allowed: Some(true),
            ..Default::default()
        })
        .unwrap();
}

/// What migration 8 did, undone, as a database of before it had it.
/// What migrations 9 to 11 made (change sets, access requests, message sources).
const UNDO_11_9: &str = "DROP TABLE channel_state; DROP INDEX messages_by_source;
    ALTER TABLE messages DROP COLUMN source;
    DROP TABLE access_requests; DROP TABLE change_sets;";

const UNDO_8: &str = "DROP TRIGGER audit_count_only_grows;
    DROP TRIGGER audit_is_append_only_delete; DROP TRIGGER audit_is_append_only_update;
    DROP TABLE audit_pruned;
    ALTER TABLE audit DROP COLUMN count; ALTER TABLE audit DROP COLUMN last_at;
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;";

#[test]
fn migrations_run_from_empty_and_reopening_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pincer.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 11);
    let groups = store.groups().unwrap();
    assert_eq!(groups.len(), 1);
    assert!(groups[0].is_main && groups[0].name == "main" && groups[0].chat_id == MAIN_CHAT);
    audit(&store, "first");
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 11);
    assert_eq!(
        store.groups().unwrap().len(),
        1,
        "a second main group appeared"
    );
    assert_eq!(store.audit_entries(None, None).unwrap().len(), 1);
    drop(store);

    // A file from a newer Pincer is refused, not "migrated".
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("schema version 99") && err.contains("upgrade pincer"),
        "{err}"
    );
}

#[test]
fn the_audit_table_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pincer.db");
    let store = Store::open(&path).unwrap();
    audit(&store, "kept");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let update = raw.execute("UPDATE audit SET allowed = 0", []).unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = raw.execute("DELETE FROM audit", []).unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    assert_eq!(
        store.audit_entries(None, None).unwrap()[0].allowed,
        Some(true)
    );
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pincer.db");
    Store::open(&path).unwrap();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let path = path.clone();
            std::thread::spawn(move || {
                // Each writer its own connection, as separate processes would have.
                let store = Store::open(&path).unwrap();
                for i in 0..200 {
                    audit(&store, &format!("w{writer}-{i}"));
                    store
                        .add_outgoing(MAIN_CHAT, "test", &format!("{writer}/{i}"))
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let entries = store.audit_entries(None, None).unwrap();
    assert_eq!(entries.len(), 800);
    for writer in 0..4 {
        let mine: Vec<_> = entries
            .iter()
            .filter(|e| e.action.starts_with(&format!("w{writer}-")))
            .map(|e| e.action.clone())
            .collect();
        let expected: Vec<_> = (0..200).map(|i| format!("w{writer}-{i}")).collect();
        assert_eq!(
            mine, expected,
            "writer {writer}'s entries are missing or out of order"
        );
    }
    assert_eq!(store.outgoing(MAIN_CHAT).unwrap().len(), 800);
}

/// Not a test by itself: the child process of the crash test. It commits 100
/// audit rows, then opens a transaction, writes into it, says so, and waits
/// to be killed.
#[test]
#[ignore = "run by a_crash_in_the_middle_of_a_write_leaves_the_database_consistent"]
fn crash_writer_child() {
    let Ok(path) = std::env::var("PINCER_TEST_CRASH_DB") else {
        return;
    };
    let store = Store::open(std::path::Path::new(&path)).unwrap();
    for i in 0..100 {
        audit(&store, &format!("committed-{i}"));
    }
    let mut raw = rusqlite::Connection::open(&path).unwrap();
    let tx = raw.transaction().unwrap();
    for i in 0..5000 {
        tx.execute(
            "INSERT INTO messages (chat_id, direction, sender, text, created_at) VALUES ('x', 'out', 'crash', ?1, 'now')",
            [format!("uncommitted {i}")],
        )
        .unwrap();
    }
    std::fs::write(format!("{path}.ready"), "").unwrap();
    std::thread::sleep(Duration::from_secs(600));
    tx.commit().unwrap();
}

#[test]
fn a_crash_in_the_middle_of_a_write_leaves_the_database_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pincer.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_writer_child", "--ignored", "--nocapture"])
        .env("PINCER_TEST_CRASH_DB", &path)
        .spawn()
        .unwrap();
    let ready = dir.path().join("pincer.db.ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "the writer never got to its transaction"
        );
        assert!(child.try_wait().unwrap().is_none(), "the writer died early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL, mid-transaction
    child.wait().unwrap();

    let store = Store::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let check: String = raw
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let entries = store.audit_entries(None, None).unwrap();
    assert_eq!(entries.len(), 100, "committed rows were lost");
    assert!(
        store.outgoing("x").unwrap().is_empty(),
        "a half-written transaction is visible"
    );
    audit(&store, "after the crash");
    assert_eq!(store.audit_entries(None, None).unwrap().len(), 101);
}

#[test]
fn group_names_stored_before_they_were_folded_are_folded_and_a_clash_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pincer.db");
    drop(Store::open(&path).unwrap());
    // As a schema-5 Pincer left them: a group spelled with capitals.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(&format!(
        "INSERT INTO groups (name, chat_id, is_main, trigger, created_at)
             VALUES ('Work', 'test:work', 0, NULL, 'then');
         INSERT INTO group_mounts (group_name, host_path) VALUES ('Work', '~/w');
         INSERT INTO egress_rules (group_name, rule, created_at) VALUES ('Work', 'example.org', 'then');
         DROP TABLE model_usage; DROP TABLE budget_notices;
         {UNDO_11_9}
         {UNDO_8}
         INSERT INTO audit (at, kind, action) VALUES ('then', 'test', 'before');
         PRAGMA user_version = 5;"
    ))
    .unwrap();
    drop(raw);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 11);
    assert!(store.group("work").unwrap().is_some());
    assert!(store.group("Work").unwrap().is_none());
    assert_eq!(store.group_mounts("work").unwrap().len(), 1);
    assert_eq!(store.egress_rules("work").unwrap(), ["example.org"]);
    let kept = store.audit_entries(None, None).unwrap();
    assert_eq!(kept.len(), 1, "the audit row of before is kept");
    assert_eq!((kept[0].count, kept[0].last_at.as_deref()), (1, None));
    drop(store);

    // Two spellings of one name cannot both be kept: the migration stops and says why.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(&format!(
        "INSERT INTO groups (name, chat_id, is_main, trigger, created_at)
             VALUES ('WORK', 'test:work2', 0, NULL, 'then');
         DROP TABLE model_usage; DROP TABLE budget_notices;
         {UNDO_11_9}
         {UNDO_8}
         PRAGMA user_version = 5;"
    ))
    .unwrap();
    drop(raw);
    let err = Store::open(&path).unwrap_err().to_string();
    assert!(err.contains("two_groups_differ_only_in_case"), "{err}");
}
