-- 0004: the port whose GET /health must answer before a template's sandbox is returned
-- (its start command's server, e.g. the code interpreter on 49999); 0 = none.
ALTER TABLE templates ADD COLUMN ready_port INTEGER NOT NULL DEFAULT 0;
