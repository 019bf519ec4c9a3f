-- 0003: a template's start command (run by the agent at boot, e.g. the code interpreter).
ALTER TABLE templates ADD COLUMN start_cmd TEXT NOT NULL DEFAULT '';
