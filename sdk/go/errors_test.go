package warren

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"
)

var allSentinels = []error{ErrNotFound, ErrAuthentication, ErrForbidden, ErrInvalid, ErrConflict,
	ErrRateLimited, ErrQuotaExceeded, ErrUnavailable, ErrTimeout}

// TestErrorMapping: each class of error response maps to exactly the sentinels and
// types it should.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		status int
		body   string
		is     []error
		check  func(t *testing.T, err error)
	}{
		{400, `{"code":"invalid","message":"bad template","request_id":"r1","field":"template"}`, []error{ErrInvalid}, func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Field != "template" || ae.RequestID != "r1" {
				t.Errorf("%#v", err)
			}
		}},
		{401, `{"code":"unauthorized","message":"invalid API key","request_id":"r2"}`, []error{ErrAuthentication}, nil},
		{403, `{"code":"forbidden","message":"the key lacks scope team:write","request_id":"r3"}`, []error{ErrForbidden}, nil},
		{403, `{"code":"quota_exceeded","message":"spending limit reached","request_id":"r4","quota":"spending_limit","limit":100,"used":100.5}`,
			[]error{ErrForbidden, ErrQuotaExceeded}, func(t *testing.T, err error) {
				var q *QuotaExceededError
				if !errors.As(err, &q) || q.Quota != "spending_limit" || q.Limit != 100 || q.Used != 100.5 || q.Status != 403 {
					t.Errorf("%#v", err)
				}
			}},
		{404, `{"code":"not_found","message":"sandbox \"x\" not found","request_id":"r5"}`, []error{ErrNotFound}, nil},
		{409, `{"code":"conflict","message":"already stopped","request_id":"r6"}`, []error{ErrConflict}, nil},
		{429, `{"code":"quota_exceeded","message":"at most 2 sandboxes","request_id":"r7","quota":"max_sandboxes","limit":2,"used":2}`,
			[]error{ErrQuotaExceeded}, func(t *testing.T, err error) {
				var q *QuotaExceededError
				var rl *RateLimitedError
				if !errors.As(err, &q) || q.Quota != "max_sandboxes" || q.Limit != 2 || errors.As(err, &rl) {
					t.Errorf("%#v", err)
				}
			}},
		{429, `{"code":"rate_limited","message":"slow down","request_id":"r8","retry_after":7}`, []error{ErrRateLimited}, func(t *testing.T, err error) {
			var rl *RateLimitedError
			if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
				t.Errorf("%#v", err)
			}
		}},
		{500, `{"code":"internal","message":"internal error; quote request_id","request_id":"r9"}`, nil, nil},
		{501, `{"code":"not_implemented","message":"code execution is not configured","request_id":"r10"}`, nil, nil},
		{503, `{"code":"unavailable","message":"agent gone","request_id":"r11"}`, []error{ErrUnavailable}, nil},
		{502, `<html>bad gateway</html>`, nil, func(t *testing.T, err error) {
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != "http_502" || !strings.Contains(ae.Message, "Bad Gateway: <html>bad gateway</html>") || ae.RequestID != "req_hdr" {
				t.Errorf("%#v", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status, " ", c.body[:min(30, len(c.body))]), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-Id", "req_hdr")
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			})
			_, err := f.client(WithRetry(RetryPolicy{MaxAttempts: 1})).ListKeys(context.Background())
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != c.status {
				t.Fatalf("err = %#v", err)
			}
			for _, s := range allSentinels {
				want := false
				for _, w := range c.is {
					want = want || w == s
				}
				if errors.Is(err, s) != want {
					t.Errorf("errors.Is(err, %v) = %v", s, !want)
				}
			}
			if c.check != nil {
				c.check(t, err)
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	e := &APIError{Status: 404, Code: "not_found", Message: `sandbox "abc" not found`, RequestID: "req_1"}
	if got := e.Error(); got != `sandbox "abc" not found (HTTP 404, not_found, request req_1)` {
		t.Errorf("Error() = %q", got)
	}
	e = &APIError{Code: "unavailable", Message: "gone"}
	if got := e.Error(); got != "gone (unavailable)" {
		t.Errorf("Error() = %q", got)
	}
	ce := &CommandExitError{&CommandResult{ExitCode: 2, Error: "exit status 2", Stderr: "a\nls: cannot access 'x'\n"}}
	if got := ce.Error(); got != "command exited with code 2: ls: cannot access 'x'" {
		t.Errorf("CommandExitError = %q", got)
	}
	ce = &CommandExitError{&CommandResult{ExitCode: -1, Error: "signal: killed"}}
	if got := ce.Error(); got != "command exited with code -1 (signal: killed)" {
		t.Errorf("CommandExitError = %q", got)
	}
	pe := &fs.PathError{Op: "remove", Path: "/x", Err: ErrNotFound}
	if !errors.Is(pe, ErrNotFound) {
		t.Error("PathError does not match ErrNotFound")
	}
}

// TestTimeoutError: a context deadline and an HTTP client timeout are ErrTimeout, and
// still match what caused them.
func TestTimeoutError(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.client().ListKeys(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context deadline: %v", err)
	}
	_, err = f.client(WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond})).ListKeys(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("client timeout: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = f.client().ListKeys(ctx)
	if errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
