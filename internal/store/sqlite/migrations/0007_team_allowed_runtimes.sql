-- 0007: a team may be limited to some of the runtimes the server enables.
-- allowed_runtimes is a JSON list of runtime names; NULL (also written for an empty
-- list) allows every runtime the server enables.
ALTER TABLE teams ADD COLUMN allowed_runtimes TEXT;
