package warren

import (
	"context"
	"time"
)

// Node is one host that runs sandboxes for the server's database, as it last reported
// itself (platform admins see them).
type Node struct {
	Name string `json:"name"`
	// Address is where control replicas reach the node.
	Address string `json:"address"`
	// State is ready (takes new sandboxes), draining (takes none; its sandboxes run to
	// their end) or down (no heartbeat within the server's node timeout).
	State     string   `json:"state"`
	Runtimes  []string `json:"runtimes"`
	Templates []string `json:"templates"`
	// Capacity is what the node has in all; Free what is left of it.
	Capacity NodeCapacity `json:"capacity"`
	Free     NodeCapacity `json:"free"`
	// Sandboxes counts its running sandboxes; WarmPools its ready warm pool members by
	// template.
	Sandboxes   int            `json:"sandboxes"`
	WarmPools   map[string]int `json:"warm_pools"`
	StartedAt   time.Time      `json:"started_at,omitzero"`
	HeartbeatAt time.Time      `json:"heartbeat_at"`
}

// NodeCapacity is an amount of each resource a node places sandboxes on.
type NodeCapacity struct {
	// CPUCores are cores (free: not held by the running sandboxes' limits).
	CPUCores float64 `json:"cpu_cores"`
	// MemoryMB and DiskMB are MiB of memory and of the data directory's disk (free:
	// what the host has available).
	MemoryMB int64 `json:"memory_mb"`
	DiskMB   int64 `json:"disk_mb"`
	// Slots are the sandboxes that can exist at once (free: not held by a sandbox or a
	// warm pool member).
	Slots int `json:"slots"`
}

type nodeList struct {
	Nodes []Node `json:"nodes"`
}

// Nodes lists the nodes by name (platform admins only).
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var list nodeList
	if err := c.call(ctx, request{route: routeListNodes}, &list); err != nil {
		return nil, err
	}
	if list.Nodes == nil {
		list.Nodes = []Node{}
	}
	return list.Nodes, nil
}

// DrainNode stops the node taking new sandboxes; those it runs go on to their end
// (platform admins only). It returns the node as it is now.
func (c *Client) DrainNode(ctx context.Context, name string) (*Node, error) {
	var n Node
	if err := c.call(ctx, request{route: routeDrainNode, params: []string{name}}, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// UndrainNode lets a drained node take new sandboxes again (platform admins only).
func (c *Client) UndrainNode(ctx context.Context, name string) (*Node, error) {
	var n Node
	if err := c.call(ctx, request{route: routeUndrainNode, params: []string{name}}, &n); err != nil {
		return nil, err
	}
	return &n, nil
}
