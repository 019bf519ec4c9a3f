// Package cluster keeps the node table, the shared view of the hosts that run
// sandboxes. Each `warren serve` is a node: its Registrar writes the node's row at start
// (name, address, runtimes, templates, capacity and free figures, warm pools) and
// heartbeats it every few seconds; Open is the node's admission (a drained node takes no
// new sandboxes). A Monitor marks nodes whose heartbeat is older than the node timeout
// down and stops their live sandboxes as lost, in one transaction; a node that heartbeats
// again is ready, and its server stops what it still ran of them. Nodes is the platform
// admins' service (list, drain, undrain). Singleton runs a periodic job on one server
// at a time, under a lock of the store (a PostgreSQL advisory lock across replicas).
//
// The package sees the store through the small interfaces below and the node's figures
// through a Measure function the server gives it.
package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Defaults of the heartbeat and the node timeout (--node-timeout).
const (
	DefaultHeartbeat = 5 * time.Second
	DefaultTimeout   = 15 * time.Second
)

// Singleton runs job every interval until ctx ends, each time only if it can take the
// lock name (domain.LockStore): of the servers on one database, one runs it at a time,
// and a server that stops or loses the database hands it over at once. The lock is
// held for one run, not for the server's life, so a stalled holder never keeps it.
func Singleton(ctx context.Context, locks domain.LockStore, name string, interval time.Duration, job func(ctx context.Context) error, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := Once(ctx, locks, name, job); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "singleton job", logkey.Job, name, logkey.Err, err)
			}
		}
	}
}

// Once runs job if it can take the lock name, and says whether it ran.
func Once(ctx context.Context, locks domain.LockStore, name string, job func(ctx context.Context) error) (ran bool, err error) {
	release, ok, err := locks.TryLock(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	defer release()
	return true, job(ctx)
}
