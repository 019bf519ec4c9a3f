-- 0017: creates remembered by their Idempotency-Key (per team, for 24 hours): the hash
-- of the request that first used the key, the token of the reservation, and the
-- sandbox it created ('' while the create is in progress).
CREATE TABLE idempotency_keys (
    team_id      TEXT    NOT NULL REFERENCES teams (id),
    idem_key     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    token        TEXT    NOT NULL,
    sandbox_id   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (team_id, idem_key)
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
