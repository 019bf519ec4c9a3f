package domain

import (
	"context"
	"time"
)

// NodeState is a node's state in the cluster's node table.
type NodeState string

// Node states. A node that registers is ready; an admin drains it (no new sandboxes,
// existing ones run to their end) and undrains it; the monitor marks it down when its
// heartbeat is older than the node timeout, and it is ready again at its next heartbeat
// (draining stays draining across a restart).
const (
	NodeReady    NodeState = "ready"
	NodeDraining NodeState = "draining"
	NodeDown     NodeState = "down"
)

// Valid reports whether s is a known node state.
func (s NodeState) Valid() bool { return s == NodeReady || s == NodeDraining || s == NodeDown }

// NodeCapacity is an amount of each resource a node schedules sandboxes on.
type NodeCapacity struct {
	CPUCores float64 `json:"cpu_cores"`
	MemoryMB int64   `json:"memory_mb"`
	DiskMB   int64   `json:"disk_mb"`
	Slots    int     `json:"slots"`
}

// Node is one host that runs sandboxes, as it last reported itself.
type Node struct {
	// Name identifies the node (--node-name, default the hostname).
	Name string
	// Address is where control replicas reach the node (--advertise).
	Address string
	State   NodeState
	// Runtimes are the runtimes the node offers; Templates the templates (ids, built-in
	// and teams') it has ready on its disk.
	Runtimes  []string
	Templates []string
	// Capacity is what the node has in all; Free what is left of it (cores and slots
	// not held by sandboxes, memory and disk the host has free).
	Capacity NodeCapacity
	Free     NodeCapacity
	// Sandboxes counts the node's running sandboxes.
	Sandboxes int
	// WarmPools is the number of ready warm sandboxes per template.
	WarmPools map[string]int
	// StartedAt is when the node's server started; HeartbeatAt its last report.
	StartedAt, HeartbeatAt time.Time
}

// NodeStore persists the node table.
type NodeStore interface {
	// UpsertNode records n's report: every field but State. A new node is ready, a down
	// node becomes ready again (wasDown true), a draining one stays draining.
	UpsertNode(ctx context.Context, n *Node) (wasDown bool, err error)
	GetNode(ctx context.Context, name string) (*Node, error)
	// ListNodes returns every node by name.
	ListNodes(ctx context.Context) ([]*Node, error)
	// SetNodeState moves a node that is not down to state (ready or draining); a down
	// node is KindConflict, an unknown one KindNotFound.
	SetNodeState(ctx context.Context, name string, state NodeState) error
	// MarkNodeDown marks the node down if it is not down and its heartbeat is older
	// than staleBefore, and, in the same transaction, stops its live sandboxes with
	// reason at at. It returns whether it marked the node and how many sandboxes it
	// stopped.
	MarkNodeDown(ctx context.Context, name string, staleBefore time.Time, reason string, at time.Time) (marked bool, lost int, err error)
}

// LockStore holds named locks shared by every server on the database, for the jobs
// that must run once at a time across replicas.
type LockStore interface {
	// TryLock takes the lock name if nobody holds it and returns its release (ok true),
	// or returns ok false at once. The lock also ends with the holder's connection or
	// process.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
}

// NodeService is the node table for platform admins (GET /v1/nodes, drain, undrain).
type NodeService interface {
	ListNodes(ctx context.Context, p Principal) ([]*Node, error)
	Drain(ctx context.Context, p Principal, name string) (*Node, error)
	Undrain(ctx context.Context, p Principal, name string) (*Node, error)
}
