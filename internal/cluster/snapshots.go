package cluster

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Snapshots is a control replica's snapshot service: it lists and reads snapshots from
// the database. Forks and new snapshots are made where their sandbox runs (the control
// forwards those requests), and a deletion goes to the node holding the files when it
// answers; one that reaches this service deletes the row, and the node removes files
// that have no row when it next starts.
type Snapshots struct {
	store SnapshotsStore
}

// SnapshotsStore is what a control replica reads and deletes snapshots with.
type SnapshotsStore interface {
	GetSnapshot(ctx context.Context, teamID, ref string) (*domain.Snapshot, error)
	ListSnapshots(ctx context.Context, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error)
	DeleteSnapshot(ctx context.Context, teamID, id string) error
}

var _ domain.SnapshotService = (*Snapshots)(nil)

// NewSnapshots returns the control replica's snapshot service.
func NewSnapshots(s SnapshotsStore) *Snapshots { return &Snapshots{store: s} }

// Fork implements domain.SnapshotService: forks are made on the sandbox's node.
func (s *Snapshots) Fork(ctx context.Context, p domain.Principal, id string, count int, timeout time.Duration) ([]domain.ForkResult, error) {
	return nil, domain.Errorf(domain.KindUnavailable, "sandbox %q is forked on its node, and this control replica could not reach it; try again shortly", id)
}

// CreateSnapshot implements domain.SnapshotService: snapshots are taken on the
// sandbox's node.
func (s *Snapshots) CreateSnapshot(ctx context.Context, p domain.Principal, sandboxID, name string) (*domain.Snapshot, error) {
	return nil, domain.Errorf(domain.KindUnavailable, "sandbox %q is saved on its node, and this control replica could not reach it; try again shortly", sandboxID)
}

// ListSnapshots implements domain.SnapshotService.
func (s *Snapshots) ListSnapshots(ctx context.Context, p domain.Principal, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, "", err
	}
	f.TeamID = p.TeamID
	return s.store.ListSnapshots(ctx, f)
}

// GetSnapshot implements domain.SnapshotService.
func (s *Snapshots) GetSnapshot(ctx context.Context, p domain.Principal, ref string) (*domain.Snapshot, error) {
	if err := p.Need(domain.ScopeSandboxesRead); err != nil {
		return nil, err
	}
	return s.find(ctx, p.TeamID, ref)
}

func (s *Snapshots) find(ctx context.Context, teamID, ref string) (*domain.Snapshot, error) {
	if ref == "" || len(ref) > 128 {
		return nil, domain.NotFound("snapshot", ref)
	}
	return s.store.GetSnapshot(ctx, teamID, ref)
}

// DeleteSnapshot implements domain.SnapshotService: the row (see Snapshots).
func (s *Snapshots) DeleteSnapshot(ctx context.Context, p domain.Principal, ref string) error {
	if err := p.Need(domain.ScopeSandboxesWrite); err != nil {
		return err
	}
	snap, err := s.find(ctx, p.TeamID, ref)
	if err != nil {
		return err
	}
	return s.store.DeleteSnapshot(ctx, p.TeamID, snap.ID)
}
