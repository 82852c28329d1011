//! The schema, one migration per entry; never edit a released one, append.
//! `PRAGMA user_version` records how far a database file has come.

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE groups (
        name TEXT PRIMARY KEY,
        chat_id TEXT NOT NULL UNIQUE,
        is_main INTEGER NOT NULL DEFAULT 0 CHECK (is_main IN (0, 1)),
        trigger TEXT,
        created_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX one_main_group ON groups (is_main) WHERE is_main = 1;
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        sender TEXT NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages (chat_id, id);
    CREATE TABLE sessions (
        group_name TEXT PRIMARY KEY REFERENCES groups (name) ON DELETE CASCADE,
        session_id TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        chat_id TEXT NOT NULL,
        prompt TEXT NOT NULL,
        schedule_kind TEXT NOT NULL CHECK (schedule_kind IN ('cron', 'interval', 'once')),
        schedule_value TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'cancelled', 'done')),
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE task_runs (
        id INTEGER PRIMARY KEY,
        task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT,
        result TEXT
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        group_name TEXT,
        kind TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT,
        allowed INTEGER CHECK (allowed IN (0, 1)),
        reason TEXT,
        detail TEXT
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;",
    // 2: per-group egress allowlists.
    "CREATE TABLE egress_rules (
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (group_name, rule)
    );",
    // 3: the daemon's queue: inbound messages wait, are claimed, and are
    // answered (by a reply's id); outbound ones wait for delivery. Tasks know
    // when they run next.
    "ALTER TABLE messages ADD COLUMN group_name TEXT;
    ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'delivered';
    ALTER TABLE messages ADD COLUMN answered_by INTEGER;
    CREATE INDEX messages_by_status ON messages (status, group_name, id);
    ALTER TABLE tasks ADD COLUMN next_run TEXT;
    ALTER TABLE tasks ADD COLUMN last_run TEXT;",
    // 4: the extra folders each group asks for (the mount allowlist decides).
    "CREATE TABLE group_mounts (
        group_name TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,
        host_path TEXT NOT NULL,
        container_name TEXT,
        read_write INTEGER NOT NULL DEFAULT 0 CHECK (read_write IN (0, 1)),
        PRIMARY KEY (group_name, host_path)
    );",
    // 5: a task's run knows the message it became, so answering that message
    // finishes the run. Sessions live in each group's session folder (the
    // runner keeps them): the table the first schema planned goes.
    "ALTER TABLE task_runs ADD COLUMN message_id INTEGER;
    CREATE INDEX task_runs_by_message ON task_runs (message_id);
    DROP TABLE sessions;",
    // 6: group names are case-insensitive (`Main` is `main`; on a
    // case-insensitive file system two spellings would share a folder):
    // stored folded. Two groups that differ only in case stop the migration
    // by name; the owner removes one with an older Pincer and starts again.
    "CREATE TEMP TABLE fold_check (
        clashes INTEGER CONSTRAINT two_groups_differ_only_in_case_remove_one CHECK (clashes = 0)
    );
    INSERT INTO fold_check SELECT count(*) FROM
        (SELECT lower(name) FROM groups GROUP BY lower(name) HAVING count(*) > 1);
    DROP TABLE fold_check;
    PRAGMA defer_foreign_keys = ON;
    UPDATE groups SET name = lower(name) WHERE name <> lower(name);
    UPDATE group_mounts SET group_name = lower(group_name) WHERE group_name <> lower(group_name);
    UPDATE egress_rules SET group_name = lower(group_name) WHERE group_name <> lower(group_name);
    UPDATE tasks SET group_name = lower(group_name) WHERE group_name <> lower(group_name);
    UPDATE messages SET group_name = lower(group_name) WHERE group_name <> lower(group_name);",
    // 7: what each model request cost, counted by the host from the answer's
    // `usage` (never by the agent), and the budget warnings already given.
    "CREATE TABLE model_usage (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        group_name TEXT NOT NULL,
        invocation TEXT NOT NULL,
        model TEXT NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL
    );
    CREATE INDEX model_usage_by_time ON model_usage (at, group_name);
    CREATE TABLE budget_notices (
        scope TEXT NOT NULL,
        period TEXT NOT NULL,
        PRIMARY KEY (scope, period)
    );",
    // 8: an audit row counts repeats (a flood is one row), and the owner may
    // prune old rows: only rows older than a cut-off recorded in
    // `audit_pruned` can be deleted, and nothing but the count (upwards) and
    // the time of the last repeat can change.
    "ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN last_at TEXT;
    CREATE TABLE audit_pruned (before TEXT NOT NULL, at TEXT NOT NULL);
    DROP TRIGGER audit_is_append_only_update;
    DROP TRIGGER audit_is_append_only_delete;
    CREATE TRIGGER audit_is_append_only_update
        BEFORE UPDATE OF id, at, group_name, kind, action, target, allowed, reason, detail ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
    CREATE TRIGGER audit_count_only_grows BEFORE UPDATE OF count ON audit
        WHEN NEW.count < OLD.count
        BEGIN SELECT RAISE(ABORT, 'an audit row''s count only grows'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        WHEN OLD.at >= coalesce((SELECT max(before) FROM audit_pruned), '')
        BEGIN SELECT RAISE(ABORT, 'the audit table is append-only (the owner prunes old rows with pincer audit prune)'); END;",
    // 9: what agents wrote to staged grants, waiting for the owner: one row
    // a grant and invocation; its entries (JSON) each carry the owner's
    // decision once made.
    "CREATE TABLE change_sets (
        id INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL,
        invocation TEXT NOT NULL,
        real_path TEXT NOT NULL,
        target TEXT NOT NULL,
        folder TEXT NOT NULL,
        created_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'decided')),
        entries TEXT NOT NULL,
        branch TEXT,
        branch_commit TEXT
    );
    CREATE INDEX change_sets_by_status ON change_sets (status, group_name);",
    // 10: an agent's requests for more access (an egress rule, a folder),
    // each decided once by the owner; a refusal is kept so that the same
    // request is not asked again.
    "CREATE TABLE access_requests (
        id INTEGER PRIMARY KEY,
        group_name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('egress', 'folder')),
        what TEXT NOT NULL,
        read_write INTEGER NOT NULL DEFAULT 0 CHECK (read_write IN (0, 1)),
        reason TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'refused')),
        created_at TEXT NOT NULL,
        decided_at TEXT
    );
    CREATE INDEX access_requests_by_group ON access_requests (group_name, kind, what);",
    // 11: where a channel's messages came from (a Matrix event id, an IMAP
    // uid), so that one its server hands over again after a restart is
    // stored once; and where each channel stopped reading (a sync token).
    "ALTER TABLE messages ADD COLUMN source TEXT;
    CREATE UNIQUE INDEX messages_by_source ON messages (source) WHERE source IS NOT NULL;
    CREATE TABLE channel_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
];
