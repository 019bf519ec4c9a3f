package ratelimit

import (
	"context"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Limiter decides whether one more request under key is allowed right now.
//
// Each call that returns Allowed consumes one unit of key's budget; a refused call
// consumes nothing. limit requests are allowed per window, and a burst of up to limit
// requests is allowed after the key has been idle for a whole window. The same key should
// be used with the same limit and window; changing them takes effect at once, carrying
// over the key's debt.
//
// Allow returns a domain.KindInvalid error when key is empty, limit <= 0 or window <= 0.
type Limiter interface {
	Allow(ctx context.Context, key string, limit int64, window time.Duration) (Decision, error)
}

// Decision is the outcome of one Allow call, with what an HTTP edge needs for the
// RateLimit-* and Retry-After headers.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the limit the decision was made with.
	Limit int64
	// Remaining is how many more requests would be allowed right now, after this one.
	Remaining int64
	// RetryAfter is zero when Allowed; when refused it is how long until one request
	// would be allowed (waiting it, then calling Allow, succeeds absent other callers).
	RetryAfter time.Duration
	// Reset is how long until the key is back to its full burst of Limit requests.
	Reset time.Duration
}

// validate checks the arguments every Limiter takes.
func validate(key string, limit int64, window time.Duration) error {
	switch {
	case key == "":
		return domain.Invalid("key", "rate limit key must not be empty")
	case limit <= 0:
		return domain.Invalid("limit", "rate limit must be positive, got %d", limit)
	case window <= 0:
		return domain.Invalid("window", "rate limit window must be positive, got %s", window)
	}
	return nil
}
