-- 0010: pause and resume. A sandbox's lifecycle (what happens at its timeout: '' or
-- 'kill', or 'pause'; whether traffic resumes it when paused) is fixed at creation;
-- paused_at is when it was last paused (NULL: never), for the paused retention.
ALTER TABLE sandboxes ADD COLUMN on_timeout TEXT NOT NULL DEFAULT '';
ALTER TABLE sandboxes ADD COLUMN auto_resume BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sandboxes ADD COLUMN paused_at TIMESTAMPTZ;
