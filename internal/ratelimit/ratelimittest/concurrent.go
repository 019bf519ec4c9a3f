package ratelimittest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/warren-sh/warren/internal/ratelimit"
)

// testConcurrentExact: N callers at once against limit L admit exactly min(N, L), and
// each admitted caller sees a distinct Remaining, as if they had queued.
func testConcurrentExact(t *testing.T, l ratelimit.Limiter) {
	tests := []struct{ callers, limit int }{
		{callers: 100, limit: 37},
		{callers: 64, limit: 64},
		{callers: 50, limit: 1},
		{callers: 80, limit: 100},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d callers limit %d", tt.callers, tt.limit), func(t *testing.T) {
			key := fmt.Sprintf("concurrent-%d-%d", tt.callers, tt.limit)
			start := make(chan struct{})
			var wg sync.WaitGroup
			results := make([]ratelimit.Decision, tt.callers)
			errs := make([]error, tt.callers)
			for i := range tt.callers {
				wg.Go(func() {
					<-start
					results[i], errs[i] = l.Allow(t.Context(), key, int64(tt.limit), long)
				})
			}
			close(start)
			wg.Wait()

			seen := map[int64]bool{}
			allowed := 0
			for i, d := range results {
				if errs[i] != nil {
					t.Fatalf("caller %d: %v", i, errs[i])
				}
				if !d.Allowed {
					continue
				}
				allowed++
				if seen[d.Remaining] {
					t.Errorf("two admitted callers saw Remaining %d", d.Remaining)
				}
				seen[d.Remaining] = true
			}
			if want := min(tt.callers, tt.limit); allowed != want {
				t.Fatalf("%d of %d concurrent callers allowed with limit %d, want exactly %d", allowed, tt.callers, tt.limit, want)
			}
			for r := range int64(tt.limit) {
				if !seen[r] && r >= int64(tt.limit-tt.callers) {
					t.Errorf("no admitted caller saw Remaining %d", r)
				}
			}
		})
	}
}
