-- 0006: the ports of a template's own services that the proxy opens only with the
-- sandbox's access or traffic token (the code interpreter's 49999), comma-separated;
-- '' = none.
ALTER TABLE templates ADD COLUMN private_ports TEXT NOT NULL DEFAULT '';
