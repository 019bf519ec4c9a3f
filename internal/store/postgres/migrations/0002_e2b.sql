-- 0002: per-sandbox traffic token (E2B allowPublicTraffic: false); listing by template
-- and start time.
ALTER TABLE sandboxes ADD COLUMN traffic_token TEXT NOT NULL DEFAULT '';
CREATE INDEX sandboxes_template ON sandboxes (template_id);
