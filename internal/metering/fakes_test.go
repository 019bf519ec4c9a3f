package metering

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// fakeStore is a Store whose methods call its function fields.
type fakeStore struct {
	recordUsage func(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error
	getMeter    func(ctx context.Context, id string) (*domain.Meter, error)
	openMeters  func(ctx context.Context) ([]*domain.Meter, error)
}

func (f *fakeStore) RecordUsage(ctx context.Context, m *domain.Meter, d []domain.UsageDelta) error {
	return f.recordUsage(ctx, m, d)
}
func (f *fakeStore) GetMeter(ctx context.Context, id string) (*domain.Meter, error) {
	return f.getMeter(ctx, id)
}
func (f *fakeStore) OpenMeters(ctx context.Context) ([]*domain.Meter, error) {
	return f.openMeters(ctx)
}

// call is one RecordUsage call as the store received it.
type call struct {
	meter  domain.Meter
	deltas []domain.UsageDelta
}

// memStore keeps meters and day buckets in memory, as the real stores do, and records
// every RecordUsage call. failNext makes the next write fail without effect.
type memStore struct {
	mu       sync.Mutex
	meters   map[string]domain.Meter
	buckets  map[string]map[time.Time]domain.UsageRow // by sandbox, then day
	calls    []call
	failNext bool
}

func newMemStore() *memStore {
	return &memStore{meters: map[string]domain.Meter{}, buckets: map[string]map[time.Time]domain.UsageRow{}}
}

func (s *memStore) fake() *fakeStore {
	return &fakeStore{
		recordUsage: func(_ context.Context, m *domain.Meter, deltas []domain.UsageDelta) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.failNext {
				s.failNext = false
				return domain.Errorf(domain.KindUnavailable, "store down")
			}
			s.calls = append(s.calls, call{*m, append([]domain.UsageDelta(nil), deltas...)})
			s.meters[m.SandboxID] = *m
			for _, d := range deltas {
				if s.buckets[d.SandboxID] == nil {
					s.buckets[d.SandboxID] = map[time.Time]domain.UsageRow{}
				}
				row := s.buckets[d.SandboxID][d.Day]
				row.Add(domain.UsageRow{WallMS: d.WallMS, CPUMicros: d.CPUMicros, MemMBSeconds: d.MemMBSeconds,
					DiskMBSeconds: d.DiskMBSeconds, NetRxBytes: d.NetRxBytes, NetTxBytes: d.NetTxBytes})
				s.buckets[d.SandboxID][d.Day] = row
			}
			return nil
		},
		getMeter: func(_ context.Context, id string) (*domain.Meter, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			m, ok := s.meters[id]
			if !ok {
				return nil, domain.NotFound("meter", id)
			}
			return &m, nil
		},
		openMeters: func(context.Context) ([]*domain.Meter, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			var out []*domain.Meter
			for _, m := range s.meters {
				if m.ClosedAt.IsZero() {
					out = append(out, &m)
				}
			}
			return out, nil
		},
	}
}

// total sums a sandbox's buckets over all days.
func (s *memStore) total(id string) domain.UsageRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t domain.UsageRow
	for _, r := range s.buckets[id] {
		t.Add(r)
	}
	return t
}

func (s *memStore) day(id string, day time.Time) domain.UsageRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buckets[id][day]
}

func (s *memStore) meter(id string) domain.Meter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.meters[id]
}

func (s *memStore) ncalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// fakeSource is a Source whose Read calls read.
type fakeSource struct {
	read func(ctx context.Context, sb *domain.Sandbox) (Reading, error)
}

func (f *fakeSource) Read(ctx context.Context, sb *domain.Sandbox) (Reading, error) {
	return f.read(ctx, sb)
}

// counters is a settable reading per sandbox for fakeSource; a sandbox without one
// reads as KindNotFound.
type counters struct {
	mu sync.Mutex
	r  map[string]Reading
}

func (c *counters) set(id string, r Reading) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.r == nil {
		c.r = map[string]Reading{}
	}
	c.r[id] = r
}

func (c *counters) gone(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.r, id)
}

func (c *counters) source() *fakeSource {
	return &fakeSource{read: func(_ context.Context, sb *domain.Sandbox) (Reading, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		r, ok := c.r[sb.ID]
		if !ok {
			return Reading{}, domain.Errorf(domain.KindNotFound, "sandbox %q is gone", sb.ID)
		}
		return r, nil
	}}
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func newMeter(t *testing.T, st Store, src Source, now func() time.Time) *Meter {
	t.Helper()
	m, err := New(Config{Store: st, Source: src, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const mib = 1 << 20

var t0 = time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)

func testSandbox(id string) *domain.Sandbox {
	return &domain.Sandbox{ID: id, TeamID: "team1", TemplateID: "base", State: domain.StateRunning, StartedAt: t0}
}
