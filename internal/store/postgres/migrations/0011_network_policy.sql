-- 0011: egress policy. A sandbox's network policy (domain.NetworkPolicy as JSON:
-- {"allow_out": [...], "deny_out": [...]}); '{}' is no policy (internet access alone
-- decides). Set at creation, replaced by PUT .../network.
ALTER TABLE sandboxes ADD COLUMN network_policy JSONB NOT NULL DEFAULT '{}';
