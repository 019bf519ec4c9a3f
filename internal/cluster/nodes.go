package cluster

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// NodesStore is what the node service reads and changes.
type NodesStore interface {
	GetNode(ctx context.Context, name string) (*domain.Node, error)
	ListNodes(ctx context.Context) ([]*domain.Node, error)
	SetNodeState(ctx context.Context, name string, state domain.NodeState) error
}

// Nodes is the node table for platform admins (domain.NodeService).
type Nodes struct{ store NodesStore }

var _ domain.NodeService = (*Nodes)(nil)

// NewNodes returns the node service on store.
func NewNodes(store NodesStore) *Nodes { return &Nodes{store: store} }

// needAdmin refuses anyone but a platform admin: nodes are the platform's, not a team's.
func needAdmin(p domain.Principal) error {
	if p.Admin {
		return nil
	}
	return domain.Errorf(domain.KindForbidden, "nodes are the platform's: only a platform admin (the admin key, admin.key in the server's data directory) may list, drain or undrain them")
}

// ListNodes implements domain.NodeService.
func (s *Nodes) ListNodes(ctx context.Context, p domain.Principal) ([]*domain.Node, error) {
	if err := needAdmin(p); err != nil {
		return nil, err
	}
	return s.store.ListNodes(ctx)
}

// Drain implements domain.NodeService: the node takes no new sandboxes; those it runs
// go on to their end.
func (s *Nodes) Drain(ctx context.Context, p domain.Principal, name string) (*domain.Node, error) {
	return s.set(ctx, p, name, domain.NodeDraining)
}

// Undrain implements domain.NodeService: the node takes new sandboxes again.
func (s *Nodes) Undrain(ctx context.Context, p domain.Principal, name string) (*domain.Node, error) {
	return s.set(ctx, p, name, domain.NodeReady)
}

func (s *Nodes) set(ctx context.Context, p domain.Principal, name string, state domain.NodeState) (*domain.Node, error) {
	if err := needAdmin(p); err != nil {
		return nil, err
	}
	if err := s.store.SetNodeState(ctx, name, state); err != nil {
		return nil, err
	}
	return s.store.GetNode(ctx, name)
}
