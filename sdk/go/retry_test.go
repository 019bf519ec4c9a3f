package warren

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRetryAfterHonoured: a 429 with Retry-After is retried no sooner than the header
// says, in seconds and as an HTTP date.
func TestRetryAfterHonoured(t *testing.T) {
	for _, c := range []struct {
		name   string
		header func() string
		min    time.Duration
	}{
		{"seconds", func() string { return "1" }, time.Second},
		{"fraction", func() string { return "0.3" }, 300 * time.Millisecond},
		// An HTTP date has a resolution of one second; ask for 2s so at least 1s remains.
		{"http-date", func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			var n atomic.Int32
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) == 1 {
					w.Header().Set("Retry-After", c.header())
					apiError(w, 429, "rate_limited", "slow down")
					return
				}
				writeJSON(w, 200, map[string]any{"templates": []any{}})
			})
			start := time.Now()
			if _, err := f.client().Templates(context.Background()); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d attempts, want 2", len(reqs))
			}
			if gap := reqs[1].at.Sub(reqs[0].at); gap < c.min {
				t.Errorf("retried after %v, before the Retry-After of %v", gap, c.min)
			}
			if el := time.Since(start); el > c.min+2*time.Second {
				t.Errorf("took %v", el)
			}
		})
	}
}

// TestRetryAfterFromBody: without the header, the body's retry_after counts.
func TestRetryAfterFromBody(t *testing.T) {
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			writeJSON(w, 429, map[string]any{"code": "rate_limited", "message": "m", "request_id": "r", "retry_after": 1})
			return
		}
		writeJSON(w, 200, map[string]any{"keys": []any{}})
	})
	if _, err := f.client().ListKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[1].at.Sub(reqs[0].at) < time.Second {
		t.Errorf("%d attempts, gap %v", len(reqs), reqs[len(reqs)-1].at.Sub(reqs[0].at))
	}
}

// TestBackoff503: a 503 without Retry-After to a GET is retried with exponential
// backoff and jitter until MaxAttempts, then returned.
func TestBackoff503(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		apiError(w, 503, "unavailable", "try later")
	})
	c := f.client(WithRetry(RetryPolicy{MaxAttempts: 4, BaseDelay: 40 * time.Millisecond, MaxDelay: time.Second}))
	_, err := c.GetSandbox(context.Background(), "abc")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d attempts, want 4", len(reqs))
	}
	// Waits are in [d/2, d] for d = 40, 80, 160 ms (plus scheduling slack).
	for i, d := range []time.Duration{40, 80, 160} {
		d *= time.Millisecond
		gap := reqs[i+1].at.Sub(reqs[i].at)
		if gap < d/2 || gap > d+150*time.Millisecond {
			t.Errorf("wait %d = %v, want between %v and %v", i+1, gap, d/2, d)
		}
	}
}

func TestBackoffThenSuccess(t *testing.T) {
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			apiError(w, 503, "unavailable", "warming up")
			return
		}
		writeJSON(w, 200, map[string]any{"id": "abc", "state": "running"})
	})
	info, err := f.client().GetSandbox(context.Background(), "abc")
	if err != nil || info.State != "running" || len(f.requests()) != 3 {
		t.Errorf("info %+v, err %v, %d attempts", info, err, len(f.requests()))
	}
}

// TestRetry503AnyMethod: a 503 means the server did not do the work, so it is retried
// whatever the method, with or without Retry-After.
func TestRetry503AnyMethod(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, method string
		call         func(c *Client) error
	}{
		{"POST create", "POST", func(c *Client) error { _, err := c.CreateSandbox(ctx, SandboxOptions{}); return err }},
		{"POST background start", "POST", func(c *Client) error {
			_, err := c.Sandbox("abc").Commands().Start(ctx, "sleep 1", RunOptions{})
			return err
		}},
		{"POST stdin", "POST", func(c *Client) error { return c.Sandbox("abc").Commands().SendStdin(ctx, 4, []byte("x")) }},
		{"PATCH", "PATCH", func(c *Client) error { _, err := c.UpdateTeam(ctx, "t", TeamUpdate{Name: Ptr("x")}); return err }},
		{"DELETE", "DELETE", func(c *Client) error { return c.Sandbox("abc").Files().Remove(ctx, "/f") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				apiError(w, 503, "unavailable", "the sandbox agent is not answering")
			})
			err := tc.call(f.client(WithRetry(RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond})))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v", err)
			}
			reqs := f.requests()
			if len(reqs) != 3 || reqs[0].method != tc.method || !bytes.Equal(reqs[0].body, reqs[2].body) {
				t.Errorf("%d attempts (want 3) of %s", len(reqs), reqs[0].method)
			}
		})
	}
}

// TestNoRetry lists answers and requests that must not be retried.
func TestNoRetry(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		status int
		code   string
		header string
		call   func(c *Client) error
		is     error
	}{
		{"500", 500, "internal", "", func(c *Client) error { _, err := c.ListKeys(ctx); return err }, nil},
		{"400", 400, "invalid", "", func(c *Client) error { _, err := c.ListKeys(ctx); return err }, ErrInvalid},
		{"404", 404, "not_found", "", func(c *Client) error { _, err := c.GetTeam(ctx, "t"); return err }, ErrNotFound},
		{"quota 429", 429, "quota_exceeded", "1", func(c *Client) error {
			_, err := c.CreateSandbox(ctx, SandboxOptions{})
			return err
		}, ErrQuotaExceeded},
		{"POST with a consumed stream", 429, "rate_limited", "0", func(c *Client) error {
			body := io.MultiReader(strings.NewReader("not "), strings.NewReader("seekable"))
			return c.call(ctx, request{route: routeCreateSandbox, body: body, contentType: "application/json"}, nil)
		}, ErrRateLimited},
		{"PUT upload from a pipe", 503, "unavailable", "0", func(c *Client) error {
			pr, pw := io.Pipe()
			go func() { pw.Write([]byte("data")); pw.Close() }()
			_, err := c.Sandbox("abc").Files().Write(ctx, "/f", pr)
			return err
		}, ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				apiError(w, tc.status, tc.code, "no")
			})
			err := tc.call(f.client())
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status {
				t.Fatalf("err = %#v", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
		})
	}
}

// TestRetryReplaysBodies: JSON bodies, []byte uploads and seekable files are sent again
// whole; a POST 503 with Retry-After is retried.
func TestRetryReplaysBodies(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	file := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			w.Header().Set("Retry-After", "0")
			apiError(w, 503, "unavailable", "busy")
			return
		}
		if r.Method == "PUT" {
			writeJSON(w, 200, map[string]any{"name": "up", "path": "/up", "type": "file", "size": 1})
			return
		}
		writeJSON(w, 201, map[string]any{"id": "abcdefghij0123456789", "state": "running"})
	})
	c := f.client()
	if _, err := c.CreateSandbox(ctx, SandboxOptions{Template: "base", Metadata: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sandbox("abc").Files().WriteBytes(ctx, "/up", data); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.Seek(5, io.SeekStart); err != nil { // uploads start where the file is
		t.Fatal(err)
	}
	if _, err := c.Sandbox("abc").Files().Write(ctx, "/up", fh); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if len(reqs) != 6 {
		t.Fatalf("%d requests, want 6", len(reqs))
	}
	wants := [][]byte{reqs[0].body, data, data[5:]}
	for i := 0; i < 6; i += 2 {
		if !bytes.Equal(reqs[i].body, reqs[i+1].body) || !bytes.Equal(reqs[i].body, wants[i/2]) {
			t.Errorf("attempt %d sent %d bytes then %d, want %d", i/2, len(reqs[i].body), len(reqs[i+1].body), len(wants[i/2]))
		}
	}
	if got := reqs[5].header.Get("Content-Length"); got != "999995" {
		t.Errorf("file upload Content-Length = %q", got)
	}
	// The caller's file is not closed by the client.
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		t.Errorf("the upload closed the caller's file: %v", err)
	}
}

// TestRetryRespectsContext: a wait that would outlast the deadline is not taken, and
// a cancellation during a wait ends it.
func TestRetryRespectsContext(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		apiError(w, 429, "rate_limited", "wait")
	})
	c := f.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.ListKeys(ctx)
	var rl *RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 5*time.Second || time.Since(start) > 500*time.Millisecond {
		t.Errorf("deadline before Retry-After: err %v after %v", err, time.Since(start))
	}

	f.set(func(w http.ResponseWriter, r *http.Request) { apiError(w, 503, "unavailable", "later") })
	c = f.client(WithRetry(RetryPolicy{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second}))
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel2)
	start = time.Now()
	_, err = c.GetSandbox(ctx2, "abc")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled during the wait: err %v after %v", err, time.Since(start))
	}

	// Retry-After beyond MaxRetryAfter: returned at once.
	f.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		apiError(w, 429, "rate_limited", "come back in an hour")
	})
	before := len(f.requests())
	if _, err := f.client().ListKeys(context.Background()); !errors.Is(err, ErrRateLimited) || len(f.requests())-before != 1 {
		t.Errorf("long Retry-After: %v, %d attempts", err, len(f.requests())-before)
	}
}

func TestRetryDisabled(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) { apiError(w, 503, "unavailable", "no") })
	if _, err := f.client(WithRetry(RetryPolicy{MaxAttempts: 1})).ListKeys(context.Background()); err == nil || len(f.requests()) != 1 {
		t.Errorf("MaxAttempts 1: err %v, %d attempts", err, len(f.requests()))
	}
	if _, err := New(WithEnv(nil), WithRetry(RetryPolicy{BaseDelay: -1})); err == nil {
		t.Error("negative retry policy accepted")
	}
}

func TestBackoffDelay(t *testing.T) {
	p := RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	for n, d := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 4: 800, 5: 1000, 30: 1000} {
		d *= time.Millisecond
		for range 50 {
			if got := p.delay(n); got < d/2 || got > d {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", n, got, d/2, d)
			}
		}
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[p.delay(3)] = true
	}
	if len(seen) < 5 {
		t.Errorf("delays are not jittered: %v", seen)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"0": 0, "7": 7 * time.Second, "1.5": 1500 * time.Millisecond, "-3": 0,
		"Thu, 01 Jan 2026 12:00:30 GMT": 30 * time.Second, "Thu, 01 Jan 2026 11:00:00 GMT": 0,
	} {
		if got, ok := parseRetryAfter(in, now); !ok || got != want {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "soon", "1h"} {
		if _, ok := parseRetryAfter(bad, now); ok {
			t.Errorf("parseRetryAfter(%q) accepted", bad)
		}
	}
}
