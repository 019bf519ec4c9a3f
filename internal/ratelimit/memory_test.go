package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ratelimit"
	"github.com/warren-sh/warren/internal/ratelimit/ratelimittest"
)

func TestMemoryConformance(t *testing.T) {
	ratelimittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		m, err := ratelimit.NewMemory()
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newFakeMemory(t *testing.T, opts ...ratelimit.MemoryOption) (*ratelimit.Memory, *fakeClock) {
	t.Helper()
	c := newFakeClock()
	m, err := ratelimit.NewMemory(append([]ratelimit.MemoryOption{ratelimit.WithClock(c.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, c
}

// TestMemoryExactTiming walks a key through scripted times and checks every Decision
// field exactly, including emission intervals that are not whole nanoseconds.
func TestMemoryExactTiming(t *testing.T) {
	type step struct {
		advance time.Duration // before the call
		want    ratelimit.Decision
	}
	third := time.Second / 3 // 333333333ns; the exact interval is 333333333.33ns
	tests := []struct {
		name   string
		limit  int64
		window time.Duration
		steps  []step
	}{
		{"per minute", 3, time.Minute, []step{
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 20 * time.Second}},
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 40 * time.Second}},
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Minute}},
			{0, ratelimit.Decision{Limit: 3, RetryAfter: 20 * time.Second, Reset: time.Minute}},
			{5 * time.Second, ratelimit.Decision{Limit: 3, RetryAfter: 15 * time.Second, Reset: 55 * time.Second}},
			{15*time.Second - 1, ratelimit.Decision{Limit: 3, RetryAfter: 1, Reset: 40*time.Second + 1}},
			{1, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Minute}},
			// Half-way through the refill: 1.5 intervals of debt after this request.
			{50 * time.Second, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 30 * time.Second}},
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: 50 * time.Second}},
			{0, ratelimit.Decision{Limit: 3, RetryAfter: 10 * time.Second, Reset: 50 * time.Second}},
			{time.Hour, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: 20 * time.Second}},
		}},
		{"fractional interval", 3, time.Second, []step{
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 2, Reset: third + 1}},
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 1, Reset: 2*third + 1}},
			{0, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Second}},
			{0, ratelimit.Decision{Limit: 3, RetryAfter: third + 1, Reset: time.Second}},
			{third, ratelimit.Decision{Limit: 3, RetryAfter: 1, Reset: 2*third + 1}},
			// TAT is now 4/3s and the clock 1/3s+1ns: Reset is 999999999.33ns, rounded up.
			{1, ratelimit.Decision{Allowed: true, Limit: 3, Remaining: 0, Reset: time.Second}},
		}},
		{"limit one", 1, time.Second, []step{
			{0, ratelimit.Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second}},
			{999 * time.Millisecond, ratelimit.Decision{Limit: 1, RetryAfter: time.Millisecond, Reset: time.Millisecond}},
			{time.Millisecond, ratelimit.Decision{Allowed: true, Limit: 1, Remaining: 0, Reset: time.Second}},
		}},
		{"window shorter than limit in ns", 1000, 10 * time.Nanosecond, []step{
			{0, ratelimit.Decision{Allowed: true, Limit: 1000, Remaining: 999, Reset: 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, clock := newFakeMemory(t)
			for i, s := range tt.steps {
				clock.Advance(s.advance)
				got, err := m.Allow(t.Context(), "k", tt.limit, tt.window)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got != s.want {
					t.Fatalf("step %d (+%s): got %+v, want %+v", i, s.advance, got, s.want)
				}
			}
		})
	}
}

// TestMemoryLimitOverWindow checks the budget over a long run: with requests every
// millisecond, a key admits limit per window plus the initial burst, never more.
func TestMemoryLimitOverWindow(t *testing.T) {
	const limit, window = 7, 100 * time.Millisecond
	m, clock := newFakeMemory(t)
	allowed := 0
	for range 1000 { // one second
		d, err := m.Allow(t.Context(), "steady", limit, window)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
		clock.Advance(time.Millisecond)
	}
	// Burst of 7 at t=0, then one per 100/7ms for the remaining 999ms: 69 more.
	if want := limit + int(999*time.Millisecond/(window/limit)); allowed != want {
		t.Errorf("allowed %d requests in 1s at limit %d per %s, want %d", allowed, limit, window, want)
	}
}

// TestMemoryEvictsIdleKeys: state does not grow with the number of keys ever seen, and
// keys still in debt survive sweeps, so eviction never hands out budget early.
func TestMemoryEvictsIdleKeys(t *testing.T) {
	const window = time.Minute
	m, clock := newFakeMemory(t, ratelimit.WithSweepInterval(10*time.Second))
	allowKey := func(key string, limit int64) ratelimit.Decision {
		t.Helper()
		d, err := m.Allow(t.Context(), key, limit, window)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Rounds of one-off keys, as a stream of distinct teams would make; each round
	// starts a window after the previous one, when all its keys are idle.
	const perRound = 2000
	for round := range 5 {
		for i := range perRound {
			allowKey(fmt.Sprintf("r%d-k%d", round, i), 100)
		}
		if n := m.Len(); n != perRound {
			t.Fatalf("round %d: Len = %d, want %d (only this round's keys hold debt)", round, n, perRound)
		}
		clock.Advance(window)
	}
	allowKey("trigger", 100)
	if n := m.Len(); n != 1 {
		t.Fatalf("Len = %d after every other key went idle, want 1", n)
	}

	// A key in debt is kept by a sweep.
	allowKey("hot", 2)
	allowKey("hot", 2) // TAT = now + 60s
	clock.Advance(15 * time.Second)
	allowKey("sweeper", 100) // sweep due: trigger is idle, hot is not
	if n := m.Len(); n != 2 {
		t.Fatalf("Len = %d after a sweep, want 2 (hot and sweeper)", n)
	}
	if d := allowKey("hot", 2); d.Allowed || d.RetryAfter != 15*time.Second {
		t.Fatalf("hot after a sweep: %+v, want refused with RetryAfter 15s (its debt was forgotten?)", d)
	}
	// No sweep runs before the interval has passed since the last one.
	clock.Advance(5 * time.Second)
	allowKey("early", 100)
	if n := m.Len(); n != 3 {
		t.Fatalf("Len = %d 5s after a sweep, want 3: sweeps must be rate-limited, not run per call", n)
	}
}

func TestNewMemoryRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  ratelimit.MemoryOption
	}{
		{"nil clock", ratelimit.WithClock(nil)},
		{"zero sweep", ratelimit.WithSweepInterval(0)},
		{"negative sweep", ratelimit.WithSweepInterval(-time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ratelimit.NewMemory(tt.opt); !domain.IsKind(err, domain.KindInvalid) {
				t.Fatalf("NewMemory error = %v, want kind invalid", err)
			}
		})
	}
}
