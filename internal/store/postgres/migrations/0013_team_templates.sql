-- 0013: templates as a team's property, template builds and their logs.
-- A template's id is unique within its team ('' = a built-in, seen by every team), so
-- the primary key becomes (team_id, id). The start defaults of a built template (env,
-- workdir, user, its ready check) come with it. Teams get quotas on how many templates
-- they keep and on their size (0: no limit; teams that exist keep no limit, new teams
-- get the server's defaults).

ALTER TABLE templates ADD COLUMN team_id TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE templates DROP CONSTRAINT templates_pkey;
ALTER TABLE templates ADD PRIMARY KEY (team_id, id);
ALTER TABLE templates ADD COLUMN env JSONB;
ALTER TABLE templates ADD COLUMN workdir TEXT NOT NULL DEFAULT '';
ALTER TABLE templates ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE templates ADD COLUMN ready_check JSONB;
ALTER TABLE templates ADD COLUMN created_at TIMESTAMPTZ;
CREATE INDEX templates_id ON templates (id);

ALTER TABLE teams ADD COLUMN max_templates BIGINT NOT NULL DEFAULT 0;
ALTER TABLE teams ADD COLUMN max_template_mb BIGINT NOT NULL DEFAULT 0;

CREATE TABLE template_builds (
    id          TEXT COLLATE "C" PRIMARY KEY,
    team_id     TEXT COLLATE "C" NOT NULL REFERENCES teams (id),
    template_id TEXT             NOT NULL,
    state       TEXT             NOT NULL,
    reason      TEXT             NOT NULL DEFAULT '',
    steps       JSONB,
    spec        JSONB,
    created_at  TIMESTAMPTZ      NOT NULL,
    finished_at TIMESTAMPTZ
);
CREATE INDEX template_builds_template ON template_builds (team_id, template_id, created_at DESC, id DESC);
CREATE INDEX template_builds_state ON template_builds (state);

-- A build's log, one row per line, numbered from 0; the template service bounds how
-- many lines a build keeps.
CREATE TABLE template_build_logs (
    build_id TEXT COLLATE "C" NOT NULL,
    seq      BIGINT           NOT NULL,
    at       TIMESTAMPTZ      NOT NULL,
    level    TEXT             NOT NULL,
    message  TEXT             NOT NULL,
    PRIMARY KEY (build_id, seq)
);
