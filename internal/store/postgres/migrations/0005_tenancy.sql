-- 0005: multi-tenancy, metering and billing: team quotas and plans, users, scoped and
-- expiring keys, the append-only audit log, usage buckets, meters and invoices.

ALTER TABLE teams
    ADD COLUMN max_sandboxes       BIGINT           NOT NULL DEFAULT 0,
    ADD COLUMN max_cpu_cores       DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN max_memory_mb       BIGINT           NOT NULL DEFAULT 0,
    ADD COLUMN max_disk_mb         BIGINT           NOT NULL DEFAULT 0,
    ADD COLUMN requests_per_minute BIGINT           NOT NULL DEFAULT 0,
    ADD COLUMN plan_id             TEXT             NOT NULL DEFAULT '',
    ADD COLUMN spend_limit         TEXT             NOT NULL DEFAULT '';

-- scopes is a JSON list; NULL (also written for an empty list) grants nothing. Keys made
-- before scopes existed could do everything in their team, and keep that power.
ALTER TABLE api_keys
    ADD COLUMN scopes     JSONB,
    ADD COLUMN user_id    TEXT NOT NULL DEFAULT '',
    ADD COLUMN expires_at TIMESTAMPTZ;
UPDATE api_keys SET scopes = '["admin"]';

-- email is stored lower-cased, so the unique index makes it unique case-insensitively.
CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    team_id       TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    email         TEXT             NOT NULL,
    name          TEXT             NOT NULL,
    role          TEXT             NOT NULL,
    password_hash TEXT             NOT NULL,
    created_at    TIMESTAMPTZ,
    last_login_at TIMESTAMPTZ,
    disabled_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_team ON users (team_id, created_at NULLS FIRST, id);

-- The audit log has no foreign keys: an entry must never fail to be written because of
-- what it talks about (for example a failed login to no team, team_id '').
CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id     TEXT COLLATE "C" NOT NULL,
    at          TIMESTAMPTZ      NOT NULL,
    actor_type  TEXT             NOT NULL,
    actor_id    TEXT             NOT NULL,
    action      TEXT             NOT NULL,
    target      TEXT             NOT NULL,
    status      INTEGER          NOT NULL,
    remote_addr TEXT             NOT NULL,
    request_id  TEXT             NOT NULL,
    details     JSONB
);
CREATE INDEX audit_log_team ON audit_log (team_id, id);
CREATE INDEX audit_log_team_action ON audit_log (team_id, action, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- One row per sandbox and UTC day (day: midnight UTC). Quantities are integers so that
-- billing on them is exact.
CREATE TABLE usage_buckets (
    sandbox_id   TEXT COLLATE "C" NOT NULL,
    day          TIMESTAMPTZ      NOT NULL,
    team_id      TEXT COLLATE "C" NOT NULL,
    template_id  TEXT             NOT NULL,
    wall_ms      BIGINT           NOT NULL DEFAULT 0,
    cpu_us       BIGINT           NOT NULL DEFAULT 0,
    mem_mb_s     BIGINT           NOT NULL DEFAULT 0,
    disk_mb_s    BIGINT           NOT NULL DEFAULT 0,
    net_rx_bytes BIGINT           NOT NULL DEFAULT 0,
    net_tx_bytes BIGINT           NOT NULL DEFAULT 0,
    PRIMARY KEY (sandbox_id, day)
);
CREATE INDEX usage_buckets_team_day ON usage_buckets (team_id, day);
CREATE INDEX usage_buckets_day ON usage_buckets (day);

CREATE TABLE meters (
    sandbox_id   TEXT COLLATE "C" PRIMARY KEY,
    team_id      TEXT COLLATE "C" NOT NULL,
    started_at   TIMESTAMPTZ,
    sampled_at   TIMESTAMPTZ,
    cpu_us       BIGINT           NOT NULL,
    net_rx_bytes BIGINT           NOT NULL,
    net_tx_bytes BIGINT           NOT NULL,
    closed_at    TIMESTAMPTZ
);
CREATE INDEX meters_open ON meters (sandbox_id) WHERE closed_at IS NULL;

-- body is the whole invoice as JSON; the other columns index it.
CREATE TABLE invoices (
    id           TEXT COLLATE "C" PRIMARY KEY,
    team_id      TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    period_start TIMESTAMPTZ      NOT NULL,
    period_end   TIMESTAMPTZ      NOT NULL,
    final        BOOLEAN          NOT NULL DEFAULT false,
    total        TEXT             NOT NULL,
    body         JSONB            NOT NULL,
    UNIQUE (team_id, period_start)
);
