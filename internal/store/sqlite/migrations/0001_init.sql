-- 0001: teams, API keys, templates, sandboxes.
--
-- Conventions (a PostgreSQL store follows the same numbering with its own dialect):
--   * times are INTEGER unix nanoseconds in UTC; NULL means the zero time.
--   * maps and limits are JSON text; a NULL map is a nil map, '{}' an empty one.
--   * booleans are INTEGER 0/1.

CREATE TABLE teams (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER
);

CREATE TABLE api_keys (
    id           TEXT    PRIMARY KEY,
    team_id      TEXT    NOT NULL REFERENCES teams (id),
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    admin        INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE INDEX api_keys_team ON api_keys (team_id, created_at, id);

CREATE TABLE templates (
    id          TEXT    PRIMARY KEY,
    description TEXT    NOT NULL,
    hash        TEXT    NOT NULL,
    rootfs      TEXT    NOT NULL,
    ready       INTEGER NOT NULL DEFAULT 0,
    built_at    INTEGER,
    size_bytes  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sandboxes (
    id             TEXT    PRIMARY KEY,
    team_id        TEXT    NOT NULL REFERENCES teams (id),
    template_id    TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    end_reason     TEXT    NOT NULL,
    metadata       TEXT,
    env            TEXT,
    limits         TEXT    NOT NULL,
    internet       INTEGER NOT NULL DEFAULT 0,
    runtime_name   TEXT    NOT NULL,
    runtime_handle BLOB,
    address        TEXT    NOT NULL,
    slot           INTEGER NOT NULL,
    access_token   TEXT    NOT NULL,
    -- created_at is never NULL, so that paging can compare it: the zero time is stored
    -- as -9223372036854775808 (the smallest int64), which sorts oldest.
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    ends_at        INTEGER,
    stopped_at     INTEGER
);

-- Listing pages newest first, within a team or across all of them.
CREATE INDEX sandboxes_team_created ON sandboxes (team_id, created_at DESC, id DESC);
CREATE INDEX sandboxes_created ON sandboxes (created_at DESC, id DESC);
-- UsedSlots and the reaper look sandboxes up by state.
CREATE INDEX sandboxes_state ON sandboxes (state);
