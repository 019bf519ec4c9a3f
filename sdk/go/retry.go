package warren

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy says how requests refused with 429 (rate limited) or 503 (unavailable)
// are retried, whatever their method: the API answers these only for work it did not
// do (a command that runs past its timeout is a normal result, not a 503), so sending
// the request again cannot do anything twice. Nothing else is retried: not other
// statuses, not network errors (the request may have been handled), not an error
// inside a stream that began, and never a request whose body cannot be sent again (a
// stream that is not an io.ReadSeeker). A 429 that is a quota refusal (code
// quota_exceeded) is not retried either: waiting seconds does not free a quota.
//
// The wait before retry n (counting from 1) is the server's Retry-After when it gave
// one, else BaseDelay*2^(n-1) capped at MaxDelay, with jitter: a random duration
// between half of that and all of it. A wait longer than MaxRetryAfter, or one that
// would end after the context's deadline, is not taken: the error is returned at once.
type RetryPolicy struct {
	// MaxAttempts bounds the attempts, the first one included; 1 disables retries.
	// Zero means the default, 4.
	MaxAttempts int
	// BaseDelay is the first backoff (default 250ms).
	BaseDelay time.Duration
	// MaxDelay caps one backoff (default 8s).
	MaxDelay time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for (default 60s).
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is the policy of a client made without WithRetry.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, BaseDelay: 250 * time.Millisecond, MaxDelay: 8 * time.Second, MaxRetryAfter: time.Minute}

// withDefaults fills zero fields from DefaultRetryPolicy.
func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	return p
}

// retryable reports whether err (an error response) may be retried, and the wait the
// server asked for (hasWait false: it did not say).
func retryable(err error) (wait time.Duration, hasWait, ok bool) {
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		return rl.retryAfter, rl.hasRetryAfter, true
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code == "quota_exceeded" {
		return 0, false, false
	}
	return ae.retryAfter, ae.hasRetryAfter, true
}

// delay is the wait before retry number n (n >= 1) when the server gave no
// Retry-After: exponential, capped, with jitter in [d/2, d].
func (p RetryPolicy) delay(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 {
			secs = 0
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}
