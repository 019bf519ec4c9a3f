package sqlstore

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Nodes is the domain.NodeStore.
type Nodes struct{ db *db }

var _ domain.NodeStore = (*Nodes)(nil)

const nodeColumns = `name, address, state, runtimes, templates, cpu_cores, memory_mb, disk_mb, slots,
	free_cpu_cores, free_memory_mb, free_disk_mb, free_slots, sandboxes, warm_pools, started_at, heartbeat_at`

// reportSet is the SET list of a node's report: every column but name and state.
const reportSet = `address = ?, runtimes = ?, templates = ?, cpu_cores = ?, memory_mb = ?, disk_mb = ?,
	slots = ?, free_cpu_cores = ?, free_memory_mb = ?, free_disk_mb = ?, free_slots = ?, sandboxes = ?,
	warm_pools = ?, started_at = ?, heartbeat_at = ?`

// report returns the values of reportSet for n.
func report(e *encoder, n *domain.Node) []any {
	var pools any
	if n.WarmPools != nil {
		pools = e.json("warm_pools", n.WarmPools)
	}
	c, f := n.Capacity, n.Free
	return []any{n.Address, e.names("runtimes", n.Runtimes), e.names("templates", n.Templates),
		c.CPUCores, c.MemoryMB, c.DiskMB, c.Slots, f.CPUCores, f.MemoryMB, f.DiskMB, f.Slots, n.Sandboxes,
		pools, e.time("started_at", n.StartedAt), e.sortTime("heartbeat_at", n.HeartbeatAt)}
}

// UpsertNode writes n's report. Each statement is one UPDATE (or the INSERT), so a
// concurrent MarkNodeDown is seen either before or after it, never half: the first
// updates a node that is not down (state kept), the second brings a down node back to
// ready, and only a node with no row is inserted, ready.
func (s *Nodes) UpsertNode(ctx context.Context, n *domain.Node) (wasDown bool, err error) {
	if n.Name == "" {
		return false, domain.Invalid("name", "a node needs a name")
	}
	e := encoder{d: s.db.d}
	vals := report(&e, n)
	if e.err != nil {
		return false, s.db.wrap(e.err, "recording node %s", n.Name)
	}
	k, err := s.db.exec(ctx, `UPDATE nodes SET `+reportSet+` WHERE name = ? AND state <> ?`,
		append(vals, n.Name, string(domain.NodeDown))...)
	if err != nil || k == 1 {
		return false, s.wrapErr(err, n.Name)
	}
	k, err = s.db.exec(ctx, `UPDATE nodes SET `+reportSet+`, state = ? WHERE name = ? AND state = ?`,
		append(vals, string(domain.NodeReady), n.Name, string(domain.NodeDown))...)
	if err != nil || k == 1 {
		return k == 1, s.wrapErr(err, n.Name)
	}
	_, err = s.db.exec(ctx, `INSERT INTO nodes (`+nodeColumns+`) VALUES (`+marks(17)+`)`,
		append([]any{n.Name, vals[0], string(domain.NodeReady)}, vals[1:]...)...)
	if err != nil {
		if s.db.d.IsUniqueViolation(err) { // written by another process meanwhile
			return false, domain.Errorf(domain.KindConflict, "node %q registered twice at once: give each node its own --node-name", n.Name)
		}
		return false, s.wrapErr(err, n.Name)
	}
	return false, nil
}

func (s *Nodes) wrapErr(err error, name string) error {
	if err == nil {
		return nil
	}
	return s.db.wrap(err, "recording node %s", name)
}

func scanNode(d Dialect, r rowScanner) (*domain.Node, error) {
	var n domain.Node
	c, f := &n.Capacity, &n.Free
	if err := r.Scan(&n.Name, &n.Address, &n.State, scanJSON(&n.Runtimes), scanJSON(&n.Templates),
		&c.CPUCores, &c.MemoryMB, &c.DiskMB, &c.Slots, &f.CPUCores, &f.MemoryMB, &f.DiskMB, &f.Slots,
		&n.Sandboxes, scanJSON(&n.WarmPools), scanTime(d, &n.StartedAt), scanTime(d, &n.HeartbeatAt)); err != nil {
		return nil, err
	}
	return &n, nil
}

// GetNode returns the node name.
func (s *Nodes) GetNode(ctx context.Context, name string) (*domain.Node, error) {
	return get(ctx, s.db, scanNode, "node", name, `SELECT `+nodeColumns+` FROM nodes WHERE name = ?`, name)
}

// ListNodes returns every node, by name.
func (s *Nodes) ListNodes(ctx context.Context) ([]*domain.Node, error) {
	return list(ctx, s.db, scanNode, "listing nodes", `SELECT `+nodeColumns+` FROM nodes ORDER BY name`)
}

// SetNodeState moves a node that is not down to state.
func (s *Nodes) SetNodeState(ctx context.Context, name string, state domain.NodeState) error {
	if state != domain.NodeReady && state != domain.NodeDraining {
		return domain.Invalid("state", "a node can be set ready or draining, not %q", state)
	}
	k, err := s.db.exec(ctx, `UPDATE nodes SET state = ? WHERE name = ? AND state <> ?`,
		string(state), name, string(domain.NodeDown))
	if err != nil {
		return s.db.wrap(err, "setting node %s %s", name, state)
	}
	if k == 1 {
		return nil
	}
	if _, err := s.GetNode(ctx, name); err != nil {
		return err
	}
	return domain.Errorf(domain.KindConflict, "node %q is down (no heartbeat); it is ready again once it heartbeats, and can then be drained or undrained", name)
}

// MarkNodeDown marks the node down and stops its live sandboxes in one transaction.
// The condition on the heartbeat is in the UPDATE, so a heartbeat that came after the
// node was read stale keeps it up.
func (s *Nodes) MarkNodeDown(ctx context.Context, name string, staleBefore time.Time, reason string, at time.Time) (marked bool, lost int, err error) {
	e := encoder{d: s.db.d}
	cutoff, stopped := e.at("stale_before", staleBefore), e.at("at", at)
	if e.err != nil {
		return false, 0, e.err
	}
	err = s.db.inTx(ctx, "marking node "+name+" down", func(tx *tx) error {
		k, err := tx.exec(ctx, `UPDATE nodes SET state = ? WHERE name = ? AND state <> ? AND heartbeat_at < ?`,
			string(domain.NodeDown), name, string(domain.NodeDown), cutoff)
		if err != nil || k == 0 {
			return s.db.wrapNil(err, "marking node %s down", name)
		}
		marked = true
		n, err := tx.exec(ctx, `UPDATE sandboxes SET state = ?, end_reason = ?, stopped_at = ? WHERE node = ? AND state IN (?, ?)`,
			string(domain.StateStopped), reason, stopped, name, string(domain.StateStarting), string(domain.StateRunning))
		lost = int(n)
		return s.db.wrapNil(err, "stopping the sandboxes of node %s", name)
	})
	if err != nil {
		return false, 0, err
	}
	return marked, lost, nil
}

// wrapNil is wrap for an error that may be nil.
func (db *db) wrapNil(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return db.wrap(err, format, args...)
}
