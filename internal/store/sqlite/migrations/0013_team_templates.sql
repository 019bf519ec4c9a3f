-- 0013: templates as a team's property, template builds and their logs.
-- A template's id is unique within its team ('' = a built-in, seen by every team), so
-- the primary key becomes (team_id, id); SQLite changes a primary key by copying the
-- table. The start defaults of a built template (env, workdir, user, its ready check)
-- come with it. Teams get quotas on how many templates they keep and on their size
-- (0: no limit; teams that exist keep no limit, new teams get the server's defaults).

CREATE TABLE templates_0013 (
    team_id       TEXT    NOT NULL DEFAULT '',
    id            TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    hash          TEXT    NOT NULL,
    rootfs        TEXT    NOT NULL,
    ready         INTEGER NOT NULL DEFAULT 0,
    built_at      INTEGER,
    size_bytes    INTEGER NOT NULL DEFAULT 0,
    start_cmd     TEXT    NOT NULL DEFAULT '',
    ready_port    INTEGER NOT NULL DEFAULT 0,
    private_ports TEXT    NOT NULL DEFAULT '',
    env           TEXT,
    workdir       TEXT    NOT NULL DEFAULT '',
    user_name     TEXT    NOT NULL DEFAULT '',
    ready_check   TEXT,
    created_at    INTEGER,
    PRIMARY KEY (team_id, id)
);
INSERT INTO templates_0013 (team_id, id, description, hash, rootfs, ready, built_at, size_bytes, start_cmd,
    ready_port, private_ports)
    SELECT '', id, description, hash, rootfs, ready, built_at, size_bytes, start_cmd, ready_port, private_ports
    FROM templates;
DROP TABLE templates;
ALTER TABLE templates_0013 RENAME TO templates;
CREATE INDEX templates_id ON templates (id);

ALTER TABLE teams ADD COLUMN max_templates INTEGER NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN max_template_mb INTEGER NOT NULL DEFAULT 0;

CREATE TABLE template_builds (
    id          TEXT    PRIMARY KEY,
    team_id     TEXT    NOT NULL REFERENCES teams (id),
    template_id TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    steps       TEXT,
    spec        TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX template_builds_template ON template_builds (team_id, template_id, created_at DESC, id DESC);
CREATE INDEX template_builds_state ON template_builds (state);

-- A build's log, one row per line, numbered from 0; the template service bounds how
-- many lines a build keeps.
CREATE TABLE template_build_logs (
    build_id TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    level    TEXT    NOT NULL,
    message  TEXT    NOT NULL,
    PRIMARY KEY (build_id, seq)
);
