// Package ratelimittest is the conformance suite every ratelimit.Limiter must pass. A
// backend's test calls Run with a constructor; each subtest gets a fresh limiter.
//
// Real-time cases use windows of a few hundred milliseconds and assert only what must
// hold however slowly the machine runs (a loaded CI box may stall for 100ms at any
// point): time passing between two calls can only refill the budget, never drain it.
package ratelimittest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/ratelimit"
)

// long is a window long enough that no refill happens while a test runs.
const long = time.Hour

// slack bounds how much wall time a sequence of calls in one test may take, for
// assertions on RetryAfter and Reset that shrink as time passes.
const slack = 10 * time.Second

// Run runs the suite. newLimiter is called once per subtest and must return a limiter
// with no state (for a shared store, use a fresh key prefix and clean it up).
func Run(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	tests := []struct {
		name string
		fn   func(*testing.T, ratelimit.Limiter)
	}{
		{"Burst", testBurst},
		{"RefusalRetryAfter", testRefusalRetryAfter},
		{"RefillAfterRetryAfter", testRefillAfterRetryAfter},
		{"FullRefillAfterWindow", testFullRefillAfterWindow},
		{"IndependentKeys", testIndependentKeys},
		{"ConcurrentExact", testConcurrentExact},
		{"InvalidArgs", testInvalidArgs},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newLimiter(t)) })
	}
}

// allow calls l.Allow and fails the test on error.
func allow(t *testing.T, l ratelimit.Limiter, key string, limit int64, window time.Duration) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), key, limit, window)
	if err != nil {
		t.Fatalf("Allow(%q, %d, %s): %v", key, limit, window, err)
	}
	if d.Limit != limit {
		t.Fatalf("Allow(%q, %d, %s).Limit = %d, want %d", key, limit, window, d.Limit, limit)
	}
	return d
}

// within fails the test unless lo < got <= hi.
func within(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got <= lo || got > hi {
		t.Errorf("%s = %s, want in (%s, %s]", what, got, lo, hi)
	}
}

// testBurst: an idle key admits a burst of exactly limit requests, counting Remaining
// down to zero, and Reset grows by one emission interval per request.
func testBurst(t *testing.T, l ratelimit.Limiter) {
	const limit = 6
	interval := long / limit
	for i := range int64(limit) {
		d := allow(t, l, "burst", limit, long)
		if !d.Allowed || d.Remaining != limit-1-i || d.RetryAfter != 0 {
			t.Fatalf("request %d: got %+v, want allowed with Remaining %d and no RetryAfter", i+1, d, limit-1-i)
		}
		within(t, "Reset", d.Reset, time.Duration(i+1)*interval-slack, time.Duration(i+1)*interval)
	}
}

// testRefusalRetryAfter: request limit+1 is refused with RetryAfter of about one emission
// interval, Remaining 0 and Reset of about a window, and refusals consume nothing.
func testRefusalRetryAfter(t *testing.T, l ratelimit.Limiter) {
	const limit = 4
	interval := long / limit
	for range limit {
		if d := allow(t, l, "refuse", limit, long); !d.Allowed {
			t.Fatalf("burst request refused: %+v", d)
		}
	}
	var prev time.Duration
	for i := range 3 {
		d := allow(t, l, "refuse", limit, long)
		if d.Allowed || d.Remaining != 0 {
			t.Fatalf("request %d: got %+v, want refused with Remaining 0", limit+1+i, d)
		}
		within(t, "RetryAfter", d.RetryAfter, interval-slack, interval)
		within(t, "Reset", d.Reset, long-slack, long)
		// Refusals must not push the budget further away.
		if i > 0 && d.RetryAfter > prev {
			t.Errorf("RetryAfter grew from %s to %s across refusals: a refusal consumed budget", prev, d.RetryAfter)
		}
		prev = d.RetryAfter
	}
}

// testRefillAfterRetryAfter: waiting RetryAfter is enough for one request to pass.
func testRefillAfterRetryAfter(t *testing.T, l ratelimit.Limiter) {
	const limit, window = 2, 400 * time.Millisecond
	for range limit {
		allow(t, l, "refill", limit, window)
	}
	for attempt := range 3 {
		d := allow(t, l, "refill", limit, window)
		if d.Allowed {
			// The machine stalled for a whole interval since the last call; that is a
			// refill, not a bug. Use the request up and look again.
			continue
		}
		within(t, "RetryAfter", d.RetryAfter, 0, window/limit)
		time.Sleep(d.RetryAfter + time.Millisecond)
		if d := allow(t, l, "refill", limit, window); !d.Allowed {
			t.Fatalf("attempt %d: refused after waiting the RetryAfter it was given: %+v", attempt, d)
		}
		return
	}
	t.Fatalf("never refused: %d requests passed with limit %d per %s", limit+3, limit, window)
}

// testFullRefillAfterWindow: after an idle window the whole burst is back, not more.
func testFullRefillAfterWindow(t *testing.T, l ratelimit.Limiter) {
	const limit, window = 5, 300 * time.Millisecond
	for range limit {
		allow(t, l, "full", limit, window)
	}
	time.Sleep(window + 5*time.Millisecond)
	for i := range limit {
		if d := allow(t, l, "full", limit, window); !d.Allowed {
			t.Fatalf("request %d after an idle window refused: %+v", i+1, d)
		}
	}
	// A burst does not bank unused budget: after a long rest, still at most limit pass
	// at once (plus what refills while the calls run, on a slow machine).
	time.Sleep(3 * window)
	passed := 0
	start := time.Now()
	for range 3 * limit {
		if allow(t, l, "full", limit, window).Allowed {
			passed++
		}
	}
	refilled := int(time.Since(start) / (window / limit))
	if passed < limit || passed > limit+refilled {
		t.Errorf("after resting 3 windows, %d requests passed in a row; want %d (up to %d on a slow machine)", passed, limit, limit+refilled)
	}
}

// testIndependentKeys: exhausting one key leaves another untouched.
func testIndependentKeys(t *testing.T, l ratelimit.Limiter) {
	const limit = 3
	for range limit {
		allow(t, l, "team-a", limit, long)
	}
	if d := allow(t, l, "team-a", limit, long); d.Allowed {
		t.Fatalf("team-a request %d allowed: %+v", limit+1, d)
	}
	for i := range int64(limit) {
		d := allow(t, l, "team-b", limit, long)
		if !d.Allowed || d.Remaining != limit-1-i {
			t.Fatalf("team-b request %d: %+v, want allowed with Remaining %d", i+1, d, limit-1-i)
		}
	}
	if d := allow(t, l, "team-a", limit, long); d.Allowed {
		t.Errorf("team-a allowed again after team-b's requests: %+v", d)
	}
}

// testInvalidArgs: bad arguments are KindInvalid errors with a zero Decision, and
// consume nothing.
func testInvalidArgs(t *testing.T, l ratelimit.Limiter) {
	tests := []struct {
		name   string
		key    string
		limit  int64
		window time.Duration
		field  string
	}{
		{"empty key", "", 10, time.Minute, "key"},
		{"zero limit", "bad", 0, time.Minute, "limit"},
		{"negative limit", "bad", -5, time.Minute, "limit"},
		{"zero window", "bad", 10, 0, "window"},
		{"negative window", "bad", 10, -time.Second, "window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := l.Allow(t.Context(), tt.key, tt.limit, tt.window)
			if !domain.IsKind(err, domain.KindInvalid) {
				t.Fatalf("Allow(%q, %d, %s) error = %v (kind %s), want kind invalid", tt.key, tt.limit, tt.window, err, domain.KindOf(err))
			}
			if f := domain.FieldOf(err); f != tt.field {
				t.Errorf("error names field %q, want %q", f, tt.field)
			}
			if d != (ratelimit.Decision{}) {
				t.Errorf("Decision = %+v, want zero with an error", d)
			}
		})
	}
	if d := allow(t, l, "bad", 1, long); !d.Allowed {
		t.Errorf("after invalid calls, the first valid call on the key was refused: %+v", d)
	}
}

// testCanceledContext: a canceled context is an error wrapping context.Canceled.
func testCanceledContext(t *testing.T, l ratelimit.Limiter) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d, err := l.Allow(ctx, "canceled", 1, long)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a canceled context = %+v, %v; want an error wrapping context.Canceled", d, err)
	}
}
