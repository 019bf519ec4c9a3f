package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// MonitorStore is what a Monitor reads and writes.
type MonitorStore interface {
	ListNodes(ctx context.Context) ([]*domain.Node, error)
	MarkNodeDown(ctx context.Context, name string, staleBefore time.Time, reason string, at time.Time) (marked bool, lost int, err error)
	domain.LockStore
}

// MonitorLock is the lock of the node monitor: one server checks at a time.
const MonitorLock = "node-monitor"

// Monitor marks nodes down whose heartbeat is older than the timeout.
type Monitor struct {
	store MonitorStore
	// self is the monitoring server's own node, never marked down by it: a server that
	// runs the monitor is alive, and its heartbeat is its registrar's business.
	self    string
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	// probe, when set, asks a node whose heartbeat is late whether it is alive.
	probe func(ctx context.Context, n *domain.Node) error
}

// probeGrace is how many node timeouts a late node that answers its probe is spared
// for: a node alive but unable to heartbeat that long (its database connection is
// gone) is marked down all the same.
const probeGrace = 3

// WithProbe makes the monitor ask a node whose heartbeat is late whether it is alive
// (probe returns nil) before marking it down: on a loaded host a heartbeat can be late
// while the node serves its sandboxes well, and marking it down would lose them all. A
// node that answers is spared until its heartbeat is probeGrace timeouts old.
func (m *Monitor) WithProbe(probe func(ctx context.Context, n *domain.Node) error) *Monitor {
	m.probe = probe
	return m
}

// NewMonitor returns the monitor of the node table, run by node self.
func NewMonitor(store MonitorStore, self string, timeout time.Duration, now func() time.Time, log *slog.Logger) (*Monitor, error) {
	if store == nil || timeout <= 0 {
		return nil, errors.New("cluster: a monitor needs a store and a positive node timeout")
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{store: store, self: self, timeout: timeout, now: now, log: log.With(logkey.Subsystem, "cluster")}, nil
}

// LostReason is the end reason of a sandbox whose node went down.
func LostReason(node string, timeout time.Duration) string {
	return fmt.Sprintf("lost: node %s went down (no heartbeat for %s)", node, timeout)
}

// Check marks down every other node whose heartbeat is older than the timeout, and
// stops its live sandboxes as lost. It returns the nodes it marked. The caller holds
// MonitorLock (Run takes it).
func (m *Monitor) Check(ctx context.Context) ([]string, error) {
	nodes, err := m.store.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	cutoff := now.Add(-m.timeout)
	var down []string
	var errs []error
	for _, n := range nodes {
		if n.Name == m.self || n.State == domain.NodeDown || !n.HeartbeatAt.Before(cutoff) {
			continue
		}
		if m.alive(ctx, n, now) {
			continue
		}
		marked, lost, err := m.store.MarkNodeDown(ctx, n.Name, cutoff, LostReason(n.Name, m.timeout), now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if marked {
			down = append(down, n.Name)
			m.log.WarnContext(ctx, "node marked down: no heartbeat within the node timeout; its sandboxes are lost",
				logkey.Node, n.Name, "last_heartbeat", n.HeartbeatAt, "lost_sandboxes", lost)
		}
	}
	return down, errors.Join(errs...)
}

// alive reports whether the late node n answers its probe and is within its grace.
func (m *Monitor) alive(ctx context.Context, n *domain.Node, now time.Time) bool {
	if m.probe == nil || !n.HeartbeatAt.After(now.Add(-probeGrace*m.timeout)) {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, min(2*time.Second, m.timeout))
	defer cancel()
	if err := m.probe(pctx, n); err != nil {
		return false
	}
	m.log.WarnContext(ctx, "node's heartbeat is late but it answers its health check: not marked down yet",
		logkey.Node, n.Name, "last_heartbeat", n.HeartbeatAt)
	return true
}

// Run checks every interval, on one server at a time (MonitorLock), until ctx ends.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) {
	Singleton(ctx, m.store, MonitorLock, interval, func(ctx context.Context) error {
		_, err := m.Check(ctx)
		return err
	}, m.log)
}
