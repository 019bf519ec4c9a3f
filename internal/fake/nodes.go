package fake

import (
	"context"

	"github.com/warren-sh/warren/internal/domain"
)

// Nodes is a domain.NodeService.
type Nodes struct {
	ListNodesFn func(ctx context.Context, p domain.Principal) ([]*domain.Node, error)
	DrainFn     func(ctx context.Context, p domain.Principal, name string) (*domain.Node, error)
	UndrainFn   func(ctx context.Context, p domain.Principal, name string) (*domain.Node, error)
}

var _ domain.NodeService = (*Nodes)(nil)

func (f *Nodes) ListNodes(ctx context.Context, p domain.Principal) ([]*domain.Node, error) {
	if f.ListNodesFn == nil {
		return nil, ErrNotSet
	}
	return f.ListNodesFn(ctx, p)
}

func (f *Nodes) Drain(ctx context.Context, p domain.Principal, name string) (*domain.Node, error) {
	if f.DrainFn == nil {
		return nil, ErrNotSet
	}
	return f.DrainFn(ctx, p, name)
}

func (f *Nodes) Undrain(ctx context.Context, p domain.Principal, name string) (*domain.Node, error) {
	if f.UndrainFn == nil {
		return nil, ErrNotSet
	}
	return f.UndrainFn(ctx, p, name)
}
