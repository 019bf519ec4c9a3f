-- 0011: egress policy. A sandbox's network policy (domain.NetworkPolicy as JSON text:
-- {"allow_out": [...], "deny_out": [...]}); '{}' is no policy (internet access alone
-- decides). Set at creation, replaced by PUT .../network.
ALTER TABLE sandboxes ADD COLUMN network_policy TEXT NOT NULL DEFAULT '{}';
