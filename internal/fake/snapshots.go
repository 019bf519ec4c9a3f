package fake

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Snapshots is a domain.SnapshotService.
type Snapshots struct {
	ForkFn           func(ctx context.Context, p domain.Principal, id string, count int, timeout time.Duration) ([]domain.ForkResult, error)
	CreateSnapshotFn func(ctx context.Context, p domain.Principal, sandboxID, name string) (*domain.Snapshot, error)
	ListSnapshotsFn  func(ctx context.Context, p domain.Principal, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error)
	GetSnapshotFn    func(ctx context.Context, p domain.Principal, ref string) (*domain.Snapshot, error)
	DeleteSnapshotFn func(ctx context.Context, p domain.Principal, ref string) error
}

var _ domain.SnapshotService = (*Snapshots)(nil)

func (f *Snapshots) Fork(ctx context.Context, p domain.Principal, id string, count int, timeout time.Duration) ([]domain.ForkResult, error) {
	if f.ForkFn == nil {
		return nil, ErrNotSet
	}
	return f.ForkFn(ctx, p, id, count, timeout)
}

func (f *Snapshots) CreateSnapshot(ctx context.Context, p domain.Principal, sandboxID, name string) (*domain.Snapshot, error) {
	if f.CreateSnapshotFn == nil {
		return nil, ErrNotSet
	}
	return f.CreateSnapshotFn(ctx, p, sandboxID, name)
}

func (f *Snapshots) ListSnapshots(ctx context.Context, p domain.Principal, fl domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	if f.ListSnapshotsFn == nil {
		return nil, "", ErrNotSet
	}
	return f.ListSnapshotsFn(ctx, p, fl)
}

func (f *Snapshots) GetSnapshot(ctx context.Context, p domain.Principal, ref string) (*domain.Snapshot, error) {
	if f.GetSnapshotFn == nil {
		return nil, ErrNotSet
	}
	return f.GetSnapshotFn(ctx, p, ref)
}

func (f *Snapshots) DeleteSnapshot(ctx context.Context, p domain.Principal, ref string) error {
	if f.DeleteSnapshotFn == nil {
		return ErrNotSet
	}
	return f.DeleteSnapshotFn(ctx, p, ref)
}
