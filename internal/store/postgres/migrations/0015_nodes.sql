-- 0015: the node table and each sandbox's node. Every node writes its row at start and
-- heartbeats it (capacity and free figures); the monitor marks nodes whose heartbeat is
-- too old 'down'. state is ready, draining or down. Lists (runtimes, templates) and the
-- warm pools summary are JSON; the capacity figures are columns so that placement can
-- order by them. A sandbox records the node it was created on ('' for older rows).

CREATE TABLE nodes (
    name           TEXT COLLATE "C" PRIMARY KEY,
    address        TEXT             NOT NULL,
    state          TEXT             NOT NULL,
    runtimes       JSONB,
    templates      JSONB,
    cpu_cores      DOUBLE PRECISION NOT NULL DEFAULT 0,
    memory_mb      BIGINT           NOT NULL DEFAULT 0,
    disk_mb        BIGINT           NOT NULL DEFAULT 0,
    slots          BIGINT           NOT NULL DEFAULT 0,
    free_cpu_cores DOUBLE PRECISION NOT NULL DEFAULT 0,
    free_memory_mb BIGINT           NOT NULL DEFAULT 0,
    free_disk_mb   BIGINT           NOT NULL DEFAULT 0,
    free_slots     BIGINT           NOT NULL DEFAULT 0,
    sandboxes      BIGINT           NOT NULL DEFAULT 0,
    warm_pools     JSONB,
    started_at     TIMESTAMPTZ,
    heartbeat_at   TIMESTAMPTZ      NOT NULL
);

ALTER TABLE sandboxes ADD COLUMN node TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX sandboxes_node_state ON sandboxes (node, state);
