package warren

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// request is one API call: a route with its path parameters, query and body.
type request struct {
	route  *route
	params []string // path parameters, in the order of the route's placeholders
	query  url.Values
	// json is marshalled as the body; or body is sent raw with contentType.
	json        any
	body        io.Reader
	contentType string
	accept      string
}

// bodySource yields the body for each attempt, and knows whether it can do so again.
type bodySource struct {
	data   []byte        // a JSON body or a []byte upload: replayable
	rs     io.ReadSeeker // a seekable stream: replayable from start
	start  int64
	size   int64     // of rs from start, or -1
	stream io.Reader // anything else: one attempt only
	used   bool
}

func newBodySource(r request) (*bodySource, error) {
	b := &bodySource{size: -1}
	switch {
	case r.json != nil:
		data, err := json.Marshal(r.json)
		if err != nil {
			return nil, fmt.Errorf("warren: encoding the %s %s request: %w", r.route.method, r.route.path, err)
		}
		b.data = data
	case r.body == nil:
	case isBytes(r.body):
		data, _ := io.ReadAll(r.body) // *bytes.Reader, *strings.Reader, *bytes.Buffer: cannot fail
		b.data = data
	default:
		b.stream = r.body
		if rs, ok := r.body.(io.ReadSeeker); ok {
			// Pipes and terminals are *os.File too; their Seek fails and they stay one-shot.
			if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
				if end, err := rs.Seek(0, io.SeekEnd); err == nil {
					if _, err := rs.Seek(start, io.SeekStart); err == nil {
						b.rs, b.start, b.size, b.stream = rs, start, end-start, nil
					}
				}
			}
		}
	}
	return b, nil
}

func isBytes(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *strings.Reader, *bytes.Buffer:
		return true
	}
	return false
}

// replayable reports whether the body can be sent (again).
func (b *bodySource) replayable() bool { return b.stream == nil || !b.used }

// open returns the body of the next attempt and its length (-1 if unknown). The body
// never implements io.Closer, so the transport cannot close the caller's file.
func (b *bodySource) open() (io.Reader, int64, error) {
	switch {
	case b.data != nil:
		return bytes.NewReader(b.data), int64(len(b.data)), nil
	case b.rs != nil:
		if _, err := b.rs.Seek(b.start, io.SeekStart); err != nil {
			return nil, 0, fmt.Errorf("warren: rewinding the request body: %w", err)
		}
		return struct{ io.Reader }{b.rs}, b.size, nil
	case b.stream != nil:
		b.used = true
		return struct{ io.Reader }{b.stream}, -1, nil
	}
	return nil, 0, nil
}

// newHTTPRequest builds one attempt of r.
func (c *Client) newHTTPRequest(ctx context.Context, r request, body io.Reader, size int64) (*http.Request, error) {
	target := c.base + r.route.url(r.params...)
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.route.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("warren: %w", err)
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case r.json != nil:
		req.Header.Set("Content-Type", "application/json")
	case r.contentType != "":
		req.Header.Set("Content-Type", r.contentType)
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	return req, nil
}

// send performs r, retrying as the client's RetryPolicy allows, and returns a 2xx
// response whose body the caller must close. Error responses become *APIError (or a
// type wrapping one).
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	src, err := newBodySource(r)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		body, size, err := src.open()
		if err != nil {
			return nil, err
		}
		req, err := c.newHTTPRequest(ctx, r, body, size)
		if err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, transportError(ctx, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		apiErr := readAPIError(resp, data)
		wait, ok := c.retryWait(ctx, apiErr, attempt, src)
		if !ok {
			return nil, apiErr
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("%w (while waiting to retry after: %w)", transportError(ctx, err), apiErr)
		}
	}
}

// retryWait decides whether attempt may be followed by another, and after how long.
func (c *Client) retryWait(ctx context.Context, apiErr error, attempt int, src *bodySource) (time.Duration, bool) {
	if attempt >= c.retry.MaxAttempts || !src.replayable() {
		return 0, false
	}
	wait, hasWait, ok := retryable(apiErr)
	if !ok {
		return 0, false
	}
	if hasWait {
		if wait > c.retry.MaxRetryAfter {
			return 0, false
		}
	} else {
		wait = c.retry.delay(attempt)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false // the context would end first: say why now, not after waiting
	}
	return wait, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call performs r and decodes a JSON response into out (if non-nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("warren: decoding the %s %s response: %w", r.route.method, r.route.path, transportError(ctx, err))
	}
	drain(resp.Body)
	return nil
}

// drain reads what is left of a response whose content was used (a JSON value's
// trailing newline, an event stream's last chunk) so that the connection is reused:
// net/http closes a connection whose body is closed before its end. It reads at most
// 64 KiB, so a server that keeps sending cannot hold the caller.
func drain(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
}
