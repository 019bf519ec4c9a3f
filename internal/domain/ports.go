package domain

import "context"

// PortLister finds the TCP ports something listens on inside a sandbox (the agent's own
// port excluded), for links to exposed services. Needs the sandboxes:read scope.
type PortLister interface {
	Ports(ctx context.Context, p Principal, id string) ([]int, error)
}
