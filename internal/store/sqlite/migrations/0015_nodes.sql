-- 0015: the node table and each sandbox's node. Every node writes its row at start and
-- heartbeats it (capacity and free figures); the monitor marks nodes whose heartbeat is
-- too old 'down'. state is ready, draining or down. Lists (runtimes, templates) and the
-- warm pools summary are JSON; the capacity figures are columns so that placement can
-- order by them. A sandbox records the node it was created on ('' for older rows).

CREATE TABLE nodes (
    name           TEXT    PRIMARY KEY,
    address        TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    runtimes       TEXT,
    templates      TEXT,
    cpu_cores      REAL    NOT NULL DEFAULT 0,
    memory_mb      INTEGER NOT NULL DEFAULT 0,
    disk_mb        INTEGER NOT NULL DEFAULT 0,
    slots          INTEGER NOT NULL DEFAULT 0,
    free_cpu_cores REAL    NOT NULL DEFAULT 0,
    free_memory_mb INTEGER NOT NULL DEFAULT 0,
    free_disk_mb   INTEGER NOT NULL DEFAULT 0,
    free_slots     INTEGER NOT NULL DEFAULT 0,
    sandboxes      INTEGER NOT NULL DEFAULT 0,
    warm_pools     TEXT,
    started_at     INTEGER,
    heartbeat_at   INTEGER NOT NULL
);

ALTER TABLE sandboxes ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX sandboxes_node_state ON sandboxes (node, state);
