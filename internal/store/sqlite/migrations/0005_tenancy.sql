-- 0005: multi-tenancy, metering and billing: team quotas and plans, users, scoped and
-- expiring keys, the append-only audit log, usage buckets, meters and invoices.

ALTER TABLE teams ADD COLUMN max_sandboxes       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN max_cpu_cores       REAL    NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN max_memory_mb       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN max_disk_mb         INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN requests_per_minute INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN plan_id             TEXT    NOT NULL DEFAULT '';
ALTER TABLE teams ADD COLUMN spend_limit         TEXT    NOT NULL DEFAULT '';

-- scopes is a JSON list; NULL (also written for an empty list) grants nothing. Keys made
-- before scopes existed could do everything in their team, and keep that power.
ALTER TABLE api_keys ADD COLUMN scopes     TEXT;
ALTER TABLE api_keys ADD COLUMN user_id    TEXT    NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
UPDATE api_keys SET scopes = '["admin"]';

-- email is stored lower-cased, so the unique index makes it unique case-insensitively.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    team_id       TEXT    NOT NULL REFERENCES teams (id),
    email         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER,
    last_login_at INTEGER,
    disabled_at   INTEGER
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_team ON users (team_id, created_at, id);

-- The audit log has no foreign keys: an entry must never fail to be written because of
-- what it talks about (for example a failed login to no team, team_id '').
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    team_id     TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    actor_type  TEXT    NOT NULL,
    actor_id    TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    remote_addr TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    details     TEXT
);
CREATE INDEX audit_log_team ON audit_log (team_id, id);
CREATE INDEX audit_log_team_action ON audit_log (team_id, action, id);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- One row per sandbox and UTC day (day: unix nanoseconds of midnight). Quantities are
-- integers so that billing on them is exact.
CREATE TABLE usage_buckets (
    sandbox_id   TEXT    NOT NULL,
    day          INTEGER NOT NULL,
    team_id      TEXT    NOT NULL,
    template_id  TEXT    NOT NULL,
    wall_ms      INTEGER NOT NULL DEFAULT 0,
    cpu_us       INTEGER NOT NULL DEFAULT 0,
    mem_mb_s     INTEGER NOT NULL DEFAULT 0,
    disk_mb_s    INTEGER NOT NULL DEFAULT 0,
    net_rx_bytes INTEGER NOT NULL DEFAULT 0,
    net_tx_bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sandbox_id, day)
);
CREATE INDEX usage_buckets_team_day ON usage_buckets (team_id, day);
CREATE INDEX usage_buckets_day ON usage_buckets (day);

CREATE TABLE meters (
    sandbox_id   TEXT    PRIMARY KEY,
    team_id      TEXT    NOT NULL,
    started_at   INTEGER,
    sampled_at   INTEGER,
    cpu_us       INTEGER NOT NULL,
    net_rx_bytes INTEGER NOT NULL,
    net_tx_bytes INTEGER NOT NULL,
    closed_at    INTEGER
);
CREATE INDEX meters_open ON meters (closed_at);

-- body is the whole invoice as JSON; the other columns index it.
CREATE TABLE invoices (
    id           TEXT    PRIMARY KEY,
    team_id      TEXT    NOT NULL REFERENCES teams (id),
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL,
    final        INTEGER NOT NULL DEFAULT 0,
    total        TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    UNIQUE (team_id, period_start)
);
