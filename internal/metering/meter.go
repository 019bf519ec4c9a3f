// Package metering measures what each sandbox uses: wall time, CPU time, memory and
// disk integrated over time (MB·s), and network bytes in and out. It samples every
// running sandbox at a fixed interval and books the growth since the previous sample
// into per-day usage buckets.
//
// Durability: every sample saves the meter (the cumulative counters it last read and
// when) together with the deltas it books, in one store call. A server that crashes
// therefore loses nothing of a sandbox that keeps running: the first sample after the
// restart computes its deltas against the stored counters, so the CPU and traffic of
// the time the server was down are booked too. What a crash can lose is the last
// interval of a sandbox that ended while the server was down and whose counters could
// no longer be read (see Recover).
package metering

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Store is the part of domain.Store that metering uses.
type Store interface {
	// RecordUsage adds the deltas to their buckets and saves m, in one transaction.
	RecordUsage(ctx context.Context, m *domain.Meter, deltas []domain.UsageDelta) error
	// GetMeter returns a sandbox's meter, KindNotFound if there is none.
	GetMeter(ctx context.Context, sandboxID string) (*domain.Meter, error)
	// OpenMeters returns the meters that are not closed.
	OpenMeters(ctx context.Context) ([]*domain.Meter, error)
}

// Reading is one measurement of a sandbox. CPU and network are cumulative counters
// (since the sandbox started); memory and disk are gauges at At.
type Reading struct {
	// At is when the reading was taken (zero: the meter's clock when Read returned).
	At          time.Time
	CPUMicros   int64
	MemoryBytes int64
	DiskBytes   int64
	NetRxBytes  int64
	NetTxBytes  int64
}

// Source reads a sandbox's resource use. It returns an error (KindNotFound when the
// sandbox is gone) rather than zeros when it cannot read: a zero counter would be
// taken for a reset.
type Source interface {
	Read(ctx context.Context, sb *domain.Sandbox) (Reading, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context, sb *domain.Sandbox) (Reading, error)

// Read implements Source.
func (f SourceFunc) Read(ctx context.Context, sb *domain.Sandbox) (Reading, error) { return f(ctx, sb) }

// Config configures a Meter.
type Config struct {
	Store  Store
	Source Source
	// Interval is the time between two samples of a sandbox in Run (default 10 s); it
	// bounds what a crash can lose.
	Interval time.Duration
	// Parallel is how many sandboxes Run samples at once (default 4).
	Parallel int
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Meter meters sandboxes. It keeps each sandbox's meter in memory as a cache; the store
// is the source of truth (after a restart, or after a failed write, the meter is read
// back from it). Safe for concurrent use: the samples of one sandbox are serialised.
type Meter struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	// lastTick is when Run last completed a tick (or started), in Unix nanoseconds.
	lastTick atomic.Int64
}

// entry is the cached meter of one sandbox. Its fields are guarded by mu, which is held
// for the whole of a read-compute-write, so two samples of a sandbox never book the
// same interval.
type entry struct {
	mu     sync.Mutex
	dead   bool // dropped from the cache: look the entry up again
	loaded bool // m and found reflect the store
	found  bool // the store has a meter for the sandbox
	m      domain.Meter
	c      carry
}

// New checks cfg and returns a Meter.
func New(cfg Config) (*Meter, error) {
	if cfg.Store == nil || cfg.Source == nil {
		return nil, fmt.Errorf("metering: Store and Source are required")
	}
	if cfg.Interval < 0 || cfg.Parallel < 0 {
		return nil, fmt.Errorf("metering: Interval and Parallel must not be negative")
	}
	if cfg.Interval == 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Meter{cfg: cfg, log: cfg.Log.With(logkey.Subsystem, "metering"), entries: map[string]*entry{}}, nil
}

// lock returns the sandbox's entry, locked and loaded from the store if it was not.
func (m *Meter) lock(ctx context.Context, id string) (*entry, error) {
	for {
		m.mu.Lock()
		e := m.entries[id]
		if e == nil {
			e = &entry{}
			m.entries[id] = e
		}
		m.mu.Unlock()
		e.mu.Lock()
		if e.dead {
			e.mu.Unlock()
			continue
		}
		if !e.loaded {
			got, err := m.cfg.Store.GetMeter(ctx, id)
			switch {
			case domain.IsKind(err, domain.KindNotFound):
				e.m, e.found = domain.Meter{}, false
			case err != nil:
				e.mu.Unlock()
				return nil, fmt.Errorf("loading the meter of sandbox %s: %w", id, err)
			default:
				e.m, e.found = *got, true
			}
			e.loaded, e.c = true, carry{}
		}
		return e, nil
	}
}

// drop removes e from the cache. Preconditions: e.mu held.
func (m *Meter) drop(id string, e *entry) {
	e.dead = true
	m.mu.Lock()
	if m.entries[id] == e {
		delete(m.entries, id)
	}
	m.mu.Unlock()
}

// fresh is a new meter for sb: it starts at the sandbox's start with zero counters.
func (m *Meter) fresh(sb *domain.Sandbox) domain.Meter {
	t := sb.StartedAt
	if t.IsZero() {
		t = m.cfg.Now()
	}
	t = msUTC(t)
	return domain.Meter{SandboxID: sb.ID, TeamID: sb.TeamID, StartedAt: t, SampledAt: t}
}

// current is e's meter, or a fresh one for sb if the store has none.
func (m *Meter) current(e *entry, sb *domain.Sandbox) domain.Meter {
	if e.found {
		return e.m
	}
	return m.fresh(sb)
}

// record saves next and its deltas in one store call and, once that succeeded, makes
// them e's state. A failed write leaves e to be reloaded from the store (the write may
// or may not have happened). Preconditions: e.mu held.
func (m *Meter) record(ctx context.Context, e *entry, next domain.Meter, c carry, deltas []domain.UsageDelta) error {
	saved := next
	if err := m.cfg.Store.RecordUsage(ctx, &saved, deltas); err != nil {
		e.loaded = false
		return fmt.Errorf("recording the usage of sandbox %s: %w", next.SandboxID, err)
	}
	e.m, e.c, e.found = next, c, true
	return nil
}

// Begin starts metering sb from sb.StartedAt (now if unset), with zero counters, and
// saves the meter at once. A sandbox that already has an open meter keeps it; one
// whose meter is closed (it was paused, and is running again) gets it opened afresh
// from sb.StartedAt: the time it was paused is not booked.
func (m *Meter) Begin(ctx context.Context, sb *domain.Sandbox) error {
	e, err := m.lock(ctx, sb.ID)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.found && e.m.ClosedAt.IsZero() {
		return nil
	}
	return m.record(ctx, e, m.fresh(sb), carry{}, nil)
}

// Sample reads sb's use and books what it used since its last sample. A sandbox without
// a meter gets one from its start (as Begin would) in the same write; a closed meter
// is left alone.
func (m *Meter) Sample(ctx context.Context, sb *domain.Sandbox) error {
	e, err := m.lock(ctx, sb.ID)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.found && !e.m.ClosedAt.IsZero() {
		return nil
	}
	r, err := m.cfg.Source.Read(ctx, sb)
	if err != nil {
		return fmt.Errorf("reading the usage of sandbox %s: %w", sb.ID, err)
	}
	if r.At.IsZero() {
		r.At = m.cfg.Now()
	}
	next, c, deltas := interval(m.current(e, sb), e.c, sb, r.At, &r)
	return m.record(ctx, e, next, c, deltas)
}

// End books sb's last interval, up to at (now if zero), and closes its meter. It reads
// the source one last time; if that fails (the sandbox is gone) it books only the wall
// time up to at, and the counters' growth since the last sample is lost. Call it
// before the sandbox's network and cgroups are removed. End is idempotent: a closed
// meter is left as it is. ClosedAt is at, or the last sample's time if at is earlier.
func (m *Meter) End(ctx context.Context, sb *domain.Sandbox, at time.Time) error {
	return m.end(ctx, sb, at, true)
}

func (m *Meter) end(ctx context.Context, sb *domain.Sandbox, at time.Time, read bool) error {
	e, err := m.lock(ctx, sb.ID)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	if e.found && !e.m.ClosedAt.IsZero() {
		return nil
	}
	if at.IsZero() {
		at = m.cfg.Now()
	}
	var rp *Reading
	if read {
		if r, err := m.cfg.Source.Read(ctx, sb); err == nil {
			rp = &r
		} else {
			m.log.Debug("final reading failed; booking wall time only", logkey.SandboxID, sb.ID, logkey.Err, err)
		}
	}
	next, c, deltas := interval(m.current(e, sb), e.c, sb, at, rp)
	next.ClosedAt = next.SampledAt
	if err := m.record(ctx, e, next, c, deltas); err != nil {
		return err
	}
	m.drop(sb.ID, e)
	return nil
}

// SamplePaused books the storage a paused sandbox holds (bytes() of disk, its image and
// files) from its meter's last sample, or its pause if later, up to at: disk MB·s
// only, no wall time, CPU or memory, since nothing of it runs. It does nothing when
// less than minGap has passed since the last booking (bytes() walks the sandbox's
// files), or when the sandbox's meter is open (it runs). The meter stays closed; its
// sample time moves to at, so no time is booked twice.
func (m *Meter) SamplePaused(ctx context.Context, sb *domain.Sandbox, at time.Time, minGap time.Duration, bytes func() int64) error {
	e, err := m.lock(ctx, sb.ID)
	if err != nil {
		return err
	}
	defer e.mu.Unlock()
	cur := m.current(e, sb)
	if e.found && cur.ClosedAt.IsZero() {
		return nil
	}
	if p := msUTC(sb.PausedAt); p.After(cur.SampledAt) {
		cur.SampledAt = p
	}
	if at.IsZero() {
		at = m.cfg.Now()
	}
	if msUTC(at).Sub(cur.SampledAt) < minGap {
		return nil
	}
	// The counters are not read while paused: keep them as they were.
	r := Reading{CPUMicros: cur.CPUMicros, NetRxBytes: cur.NetRxBytes, NetTxBytes: cur.NetTxBytes, DiskBytes: bytes()}
	next, c, deltas := interval(cur, e.c, sb, at, &r)
	out := deltas[:0]
	for _, d := range deltas {
		d.WallMS = 0
		if d.DiskMBSeconds != 0 {
			out = append(out, d)
		}
	}
	if next.ClosedAt.IsZero() {
		next.ClosedAt = cur.SampledAt
	}
	return m.record(ctx, e, next, c, out)
}
