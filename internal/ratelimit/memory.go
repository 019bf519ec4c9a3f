package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// DefaultSweepInterval is how often, at most, Memory scans for idle keys to evict.
const DefaultSweepInterval = time.Minute

// Memory is an in-process Limiter. It is exact under concurrency (one mutex guards all
// keys) and bounded in memory: a key whose debt has run out is indistinguishable from an
// unknown key, so it is evicted by a sweep that runs at most once per sweep interval,
// inside Allow (no background goroutine to stop).
type Memory struct {
	now   func() time.Time
	epoch time.Time // times are kept as nanoseconds since epoch, so they stay small
	sweep time.Duration

	mu        sync.Mutex
	keys      map[string]gcraState // guarded by mu
	lastSweep int64                // guarded by mu
}

var _ Limiter = (*Memory)(nil)

// MemoryOption configures NewMemory.
type MemoryOption func(*Memory) error

// WithClock makes the limiter read time from now instead of time.Now, for tests. now must
// be safe for concurrent use.
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) error {
		if now == nil {
			return domain.Invalid("clock", "rate limiter clock must not be nil")
		}
		m.now = now
		return nil
	}
}

// WithSweepInterval sets how often, at most, idle keys are evicted (DefaultSweepInterval
// when unset).
func WithSweepInterval(d time.Duration) MemoryOption {
	return func(m *Memory) error {
		if d <= 0 {
			return domain.Invalid("sweep_interval", "rate limiter sweep interval must be positive, got %s", d)
		}
		m.sweep = d
		return nil
	}
}

// NewMemory returns an empty in-process limiter.
func NewMemory(opts ...MemoryOption) (*Memory, error) {
	m := &Memory{keys: make(map[string]gcraState)}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.sweep == 0 {
		m.sweep = DefaultSweepInterval
	}
	m.epoch = m.now()
	return m, nil
}

// Allow implements Limiter.
func (m *Memory) Allow(ctx context.Context, key string, limit int64, window time.Duration) (Decision, error) {
	if err := validate(key, limit, window); err != nil {
		return Decision{}, err
	}
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := int64(m.now().Sub(m.epoch))
	if now-m.lastSweep >= int64(m.sweep) {
		m.evictIdle(now)
	}
	st, ok := m.keys[key]
	if !ok {
		st = gcraState{tat: now}
	}
	r := gcra(now, st, limit, int64(window))
	if r.allowed {
		m.keys[key] = r.next
	}
	return Decision{
		Allowed:    r.allowed,
		Limit:      limit,
		Remaining:  r.remaining,
		RetryAfter: time.Duration(r.retryAfter),
		Reset:      time.Duration(r.reset),
	}, nil
}

// Len reports how many keys the limiter holds state for (idle keys not yet evicted count).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// evictIdle drops every key with no debt left at now. Preconditions: mu held.
func (m *Memory) evictIdle(now int64) {
	for k, st := range m.keys {
		if st.tat < now || (st.tat == now && st.frac == 0) {
			delete(m.keys, k)
		}
	}
	m.lastSweep = now
}
