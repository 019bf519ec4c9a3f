-- 0012: a snapshot keeps the egress policy of the sandbox it was taken of (as
-- sandboxes.network_policy, 0011): sandboxes started from it inherit it.
ALTER TABLE snapshots ADD COLUMN network_policy JSONB NOT NULL DEFAULT '{}';
