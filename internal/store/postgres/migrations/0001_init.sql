-- 0001: teams, API keys, templates, sandboxes.
--
-- Conventions (the SQLite store follows the same numbering with its own dialect):
--   * times are TIMESTAMPTZ (microseconds); NULL means the zero time. A NOT NULL time
--     that orders rows stores the zero time as 0001-01-01 00:00:00 UTC, the oldest.
--   * maps and limits are JSONB; a NULL map is a nil map, '{}' an empty one.
--   * ids are COLLATE "C", so that they order bytewise whatever the database's locale.

CREATE TABLE teams (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT             NOT NULL,
    created_at TIMESTAMPTZ
);

CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    team_id      TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    name         TEXT             NOT NULL,
    prefix       TEXT             NOT NULL,
    hash         TEXT             NOT NULL UNIQUE,
    admin        BOOLEAN          NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE INDEX api_keys_team ON api_keys (team_id, created_at NULLS FIRST, id);

CREATE TABLE templates (
    id          TEXT COLLATE "C" PRIMARY KEY,
    description TEXT             NOT NULL,
    hash        TEXT             NOT NULL,
    rootfs      TEXT             NOT NULL,
    ready       BOOLEAN          NOT NULL DEFAULT false,
    built_at    TIMESTAMPTZ,
    size_bytes  BIGINT           NOT NULL DEFAULT 0
);

CREATE TABLE sandboxes (
    id             TEXT COLLATE "C" PRIMARY KEY,
    team_id        TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    template_id    TEXT             NOT NULL,
    state          TEXT             NOT NULL,
    end_reason     TEXT             NOT NULL,
    metadata       JSONB,
    env            JSONB,
    limits         JSONB            NOT NULL,
    internet       BOOLEAN          NOT NULL DEFAULT false,
    runtime_name   TEXT             NOT NULL,
    runtime_handle BYTEA,
    address        TEXT             NOT NULL,
    slot           INTEGER          NOT NULL,
    access_token   TEXT             NOT NULL,
    -- never NULL, so that paging can compare it: the zero time is 0001-01-01 UTC.
    created_at     TIMESTAMPTZ      NOT NULL,
    started_at     TIMESTAMPTZ,
    ends_at        TIMESTAMPTZ,
    stopped_at     TIMESTAMPTZ
);

-- Listing pages newest first, within a team or across all of them.
CREATE INDEX sandboxes_team_created ON sandboxes (team_id, created_at DESC, id DESC);
CREATE INDEX sandboxes_created ON sandboxes (created_at DESC, id DESC);
-- UsedSlots and the reaper look sandboxes up by state.
CREATE INDEX sandboxes_state ON sandboxes (state);
-- Listing by metadata (metadata @> '{"k":"v"}').
CREATE INDEX sandboxes_metadata ON sandboxes USING GIN (metadata jsonb_path_ops);
