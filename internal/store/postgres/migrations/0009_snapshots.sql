-- 0009: named snapshots of sandboxes (memory and files; the files live on the node) and
-- the team quota on how many a team keeps (0: no limit). As with the other quotas, teams
-- that exist keep no limit; new teams get the server's default (20).

ALTER TABLE teams ADD COLUMN max_snapshots BIGINT NOT NULL DEFAULT 0;

CREATE TABLE snapshots (
    id           TEXT COLLATE "C" PRIMARY KEY,
    team_id      TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    -- '' when the snapshot has no name; a name is unique in its team.
    name         TEXT             NOT NULL,
    sandbox_id   TEXT COLLATE "C" NOT NULL,
    template_id  TEXT             NOT NULL,
    -- the template's root filesystem the sandbox ran on (its lower layer), which a
    -- restore must use again, even after the template is rebuilt.
    template_rootfs TEXT          NOT NULL,
    runtime_name TEXT             NOT NULL,
    limits       JSONB            NOT NULL,
    env          JSONB,
    internet     BOOLEAN          NOT NULL DEFAULT false,
    access_token TEXT             NOT NULL,
    size_bytes   BIGINT           NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ      NOT NULL
);

CREATE UNIQUE INDEX snapshots_team_name ON snapshots (team_id, name) WHERE name <> '';
CREATE INDEX snapshots_team_created ON snapshots (team_id, created_at DESC, id DESC);
CREATE INDEX snapshots_created ON snapshots (created_at DESC, id DESC);
