-- 0001: the audit log. Never edit a shipped migration; add a new file.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    time_ms     INTEGER NOT NULL,
    -- call | answer | malformed | shim_connect | shim_disconnect | policy_reload | refused
    kind        TEXT    NOT NULL,
    server      TEXT    NOT NULL DEFAULT '',
    session     TEXT    NOT NULL DEFAULT '',
    tool        TEXT    NOT NULL DEFAULT '',
    class       TEXT    NOT NULL DEFAULT '',
    decision    TEXT    NOT NULL DEFAULT '',
    -- JSON array of strings
    reasons     TEXT    NOT NULL DEFAULT '[]',
    -- redacted JSON
    args        TEXT    NOT NULL DEFAULT 'null',
    args_hash   TEXT    NOT NULL DEFAULT '',
    rule        TEXT,
    approval_id TEXT,
    -- ok | is_error | rpc_error | cancelled | server_died | blocked
    outcome     TEXT,
    latency_us  INTEGER,
    -- channel:who, for answers and approved calls
    answered_by TEXT,
    detail      TEXT
);
CREATE INDEX events_time ON events(time_ms);
CREATE INDEX events_server_tool ON events(server, tool);

-- Daemon state that must survive a restart (pending approvals, grants).
CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
