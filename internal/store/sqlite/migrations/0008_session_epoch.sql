-- 0008: a per-user session epoch. Session tokens carry it and are refused once it has
-- moved on (password or role change, logout), so one write ends every session.

ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
