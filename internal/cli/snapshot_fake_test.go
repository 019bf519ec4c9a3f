package cli

import (
	"context"
	"sort"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

var _ domain.SnapshotService = (*memService)(nil)

// snapshotLocked finds the team's snapshot by id or name. Preconditions: m.mu held.
func (m *memService) snapshotLocked(p domain.Principal, ref string) (*domain.Snapshot, error) {
	for _, s := range m.snapshots {
		if s.TeamID == p.TeamID && (s.ID == ref || (s.Name != "" && s.Name == ref)) {
			return s, nil
		}
	}
	return nil, domain.NotFound("snapshot", ref)
}

func (m *memService) Fork(_ context.Context, p domain.Principal, id string, count int, timeout time.Duration) ([]domain.ForkResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, id)
	if err != nil {
		return nil, err
	}
	if sb.State != domain.StateRunning {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %s is %s: only a running sandbox can be forked; resume it first", id, sb.State)
	}
	if count < 1 || count > 20 {
		return nil, domain.Invalid("count", "count must be 1 to 20, not %d", count)
	}
	out := make([]domain.ForkResult, count)
	for i := range out {
		if m.forkMax > 0 && i >= m.forkMax {
			out[i].Err = domain.Errorf(domain.KindQuotaExceeded, "quota max_sandboxes exceeded: the team runs %d of at most %d sandboxes", m.forkMax, m.forkMax)
			continue
		}
		out[i].Sandbox = m.createLocked(p, domain.CreateSandbox{TemplateID: sb.TemplateID, Timeout: timeout, Metadata: sb.Metadata})
	}
	return out, nil
}

func (m *memService) CreateSnapshot(_ context.Context, p domain.Principal, sandboxID, name string) (*domain.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, err := m.lookup(p, sandboxID)
	if err != nil {
		return nil, err
	}
	if sb.State != domain.StateRunning {
		return nil, domain.Errorf(domain.KindConflict, "sandbox %s is %s: only a running sandbox can be saved", sandboxID, sb.State)
	}
	if name != "" {
		if _, err := m.snapshotLocked(p, name); err == nil {
			return nil, domain.Errorf(domain.KindConflict, "the team has a snapshot named %q already: pick another name or delete that one", name)
		}
	}
	m.seq++
	s := &domain.Snapshot{ID: domain.NewSnapshotID(), TeamID: p.TeamID, Name: name, SandboxID: sandboxID, TemplateID: sb.TemplateID,
		RuntimeName: "fake", SizeBytes: 3 << 20, CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(m.seq) * time.Second)}
	m.snapshots[s.ID] = s
	cp := *s
	return &cp, nil
}

func (m *memService) ListSnapshots(_ context.Context, p domain.Principal, f domain.SnapshotFilter) ([]*domain.Snapshot, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*domain.Snapshot
	for _, s := range m.snapshots {
		if s.TeamID == p.TeamID && (f.SandboxID == "" || s.SandboxID == f.SandboxID) && (f.Name == "" || s.Name == f.Name) {
			cp := *s
			out = append(out, &cp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out, "", nil
}

func (m *memService) GetSnapshot(_ context.Context, p domain.Principal, ref string) (*domain.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.snapshotLocked(p, ref)
	if err != nil {
		return nil, err
	}
	cp := *s
	return &cp, nil
}

func (m *memService) DeleteSnapshot(_ context.Context, p domain.Principal, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.snapshotLocked(p, ref)
	if err != nil {
		return err
	}
	delete(m.snapshots, s.ID)
	return nil
}
