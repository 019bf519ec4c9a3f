-- 0014: a built template's sandbox defaults (E2B's cpuCount and memoryMB; 0 = the
-- server's default), and the limits a build was created with (JSON, as its spec).
ALTER TABLE templates ADD COLUMN cpu_cores DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE templates ADD COLUMN memory_mb BIGINT NOT NULL DEFAULT 0;
ALTER TABLE template_builds ADD COLUMN limits TEXT;
