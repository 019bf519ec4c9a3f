package warren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors to match with errors.Is. An *APIError matches the one its status or
// code stands for; ErrTimeout also matches a context deadline or HTTP client timeout
// met by a call, and a *CommandTimeoutError.
var (
	// ErrNotFound: no such object for the caller's team (404, code not_found).
	ErrNotFound = errors.New("warren: not found")
	// ErrAuthentication: the API key or session token is missing, malformed, unknown,
	// revoked or expired (401, code unauthorized).
	ErrAuthentication = errors.New("warren: authentication failed")
	// ErrForbidden: the credentials lack a scope, or a spending limit was reached (403).
	ErrForbidden = errors.New("warren: forbidden")
	// ErrInvalid: the request is invalid; APIError.Field names the culprit (400).
	ErrInvalid = errors.New("warren: invalid request")
	// ErrConflict: the object's state does not allow this (409).
	ErrConflict = errors.New("warren: conflict")
	// ErrRateLimited: too many requests; see RateLimitedError.RetryAfter (429).
	ErrRateLimited = errors.New("warren: rate limited")
	// ErrQuotaExceeded: a team quota or spending limit refused the request; see
	// QuotaExceededError (429 or 403, code quota_exceeded).
	ErrQuotaExceeded = errors.New("warren: quota exceeded")
	// ErrUnavailable: the service cannot do this right now (503).
	ErrUnavailable = errors.New("warren: unavailable")
	// ErrTimeout: a deadline passed: the call's context, the HTTP client's timeout, or
	// a command's own timeout (a *CommandTimeoutError, which carries the result).
	ErrTimeout = errors.New("warren: timed out")
)

// APIError is an error the API reported: an error response, or an error event that
// ended a stream.
type APIError struct {
	// Status is the HTTP status code. For an error event inside a stream (whose
	// response was a 200) it is the status the code maps to.
	Status int
	// Code is the machine-readable kind: not_found, invalid, unauthorized, forbidden,
	// conflict, rate_limited, quota_exceeded, unavailable, internal, ...
	Code string
	// Message says what went wrong and what to do, for people.
	Message string
	// RequestID identifies the request in the server's logs; quote it in bug reports.
	RequestID string
	// Field names the offending request field or query parameter, for code invalid.
	Field string

	retryAfter    time.Duration // the Retry-After header or retry_after field
	hasRetryAfter bool
}

// Error formats the error as `message (HTTP 404, not_found, request req_...)`.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	b.WriteString(" (")
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d, ", e.Status)
	}
	b.WriteString(e.Code)
	if e.RequestID != "" {
		b.WriteString(", request ")
		b.WriteString(e.RequestID)
	}
	b.WriteString(")")
	return b.String()
}

// Is reports whether the error is of the kind target names (one of the Err sentinels).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound || e.Code == "not_found"
	case ErrAuthentication:
		return e.Status == http.StatusUnauthorized || e.Code == "unauthorized"
	case ErrForbidden:
		return e.Status == http.StatusForbidden || e.Code == "forbidden"
	case ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Code == "invalid"
	case ErrConflict:
		return e.Status == http.StatusConflict || e.Code == "conflict"
	case ErrRateLimited:
		return e.Code == "rate_limited" || (e.Status == http.StatusTooManyRequests && e.Code != "quota_exceeded")
	case ErrQuotaExceeded:
		return e.Code == "quota_exceeded"
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable || e.Code == "unavailable"
	}
	return false
}

// RateLimitedError is a 429 that is not a quota refusal: the team's requests per
// minute (or the login rate) ran out. The client retries these by itself (see
// RetryPolicy); callers see one when the retries are used up.
type RateLimitedError struct {
	*APIError
	// RetryAfter is how long the server asked to wait (0 if it did not say).
	RetryAfter time.Duration
}

// Unwrap returns the underlying *APIError.
func (e *RateLimitedError) Unwrap() error { return e.APIError }

// QuotaExceededError is a refusal by a team quota (429) or spending limit (403).
// Waiting only helps once sandboxes end or the billing period turns over, so these are
// never retried.
type QuotaExceededError struct {
	*APIError
	// Quota names the quota: max_sandboxes, max_cpu_cores, max_memory_mb,
	// max_disk_mb, requests_per_minute or spending_limit.
	Quota string
	// Limit is the quota's limit and Used what the team used when refused.
	Limit, Used float64
}

// Unwrap returns the underlying *APIError.
func (e *QuotaExceededError) Unwrap() error { return e.APIError }

// CommandExitError is returned by Commands().Run and CommandHandle.Wait when the
// command ended with a non-zero exit code or a signal (unless
// RunOptions.AllowNonZeroExit is set). It carries the result.
type CommandExitError struct {
	*CommandResult
}

// Error says how the command ended, with the end of its standard error.
func (e *CommandExitError) Error() string {
	msg := fmt.Sprintf("command exited with code %d", e.ExitCode)
	if e.CommandResult.Error != "" && e.CommandResult.Error != fmt.Sprintf("exit status %d", e.ExitCode) {
		msg += " (" + e.CommandResult.Error + ")"
	}
	if tail := lastLine(e.Stderr); tail != "" {
		msg += ": " + tail
	}
	return msg
}

// CommandTimeoutError is returned by Commands().Run and CommandHandle.Wait when the
// command was killed at its timeout (RunOptions.Timeout, or for Run the context's
// deadline or the server's default), whatever RunOptions.AllowNonZeroExit says: a
// command cut short did not do its job. It carries the result, with the output until
// the kill (ExitCode -1, TimedOut true), and matches ErrTimeout.
type CommandTimeoutError struct {
	*CommandResult
}

// Error says that the command timed out, with the end of its standard error.
func (e *CommandTimeoutError) Error() string {
	msg := "command timed out and was killed"
	if e.CommandResult.Error != "" {
		msg = e.CommandResult.Error
	}
	if tail := lastLine(e.Stderr); tail != "" {
		msg += ": " + tail
	}
	return msg
}

// Is reports whether target is ErrTimeout.
func (e *CommandTimeoutError) Is(target error) bool { return target == ErrTimeout }

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// timeoutError marks a context deadline or transport timeout as ErrTimeout while
// keeping the original error (context.DeadlineExceeded, *url.Error, ...) reachable.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string        { return e.err.Error() }
func (e *timeoutError) Unwrap() error        { return e.err }
func (e *timeoutError) Is(target error) bool { return target == ErrTimeout }

// transportError classifies an error from the HTTP client: timeouts become ErrTimeout.
func transportError(ctx context.Context, err error) error {
	var te interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		(errors.As(err, &te) && te.Timeout()) {
		return &timeoutError{err}
	}
	return err
}

// errorWire is the JSON error body (and the data of a stream's error event).
type errorWire struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	RequestID  string   `json:"request_id"`
	Field      string   `json:"field"`
	Quota      string   `json:"quota"`
	Limit      *float64 `json:"limit"`
	Used       *float64 `json:"used"`
	RetryAfter *float64 `json:"retry_after"`
}

// codeStatus is the HTTP status each error code is sent with, for errors that arrive
// inside a stream.
var codeStatus = map[string]int{
	"invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
	"rate_limited": 429, "quota_exceeded": 429, "internal": 500, "not_implemented": 501, "unavailable": 503,
}

// newAPIError classifies a decoded error body. status 0 means "from a stream": the
// status is the code's. retryAfter is the Retry-After header's value, if any.
func newAPIError(w errorWire, status int, requestID string, retryAfter time.Duration, hasRetryAfter bool) error {
	if status == 0 {
		status = codeStatus[w.Code]
	}
	e := &APIError{Status: status, Code: w.Code, Message: w.Message, RequestID: w.RequestID, Field: w.Field}
	if !hasRetryAfter && w.RetryAfter != nil && *w.RetryAfter > 0 {
		retryAfter, hasRetryAfter = time.Duration(*w.RetryAfter*float64(time.Second)), true
	}
	e.retryAfter, e.hasRetryAfter = retryAfter, hasRetryAfter
	if e.RequestID == "" {
		e.RequestID = requestID
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(strings.ToLower(http.StatusText(status)) + " " + strings.ReplaceAll(w.Code, "_", " "))
	}
	switch {
	case w.Code == "quota_exceeded":
		q := &QuotaExceededError{APIError: e, Quota: w.Quota}
		if w.Limit != nil {
			q.Limit = *w.Limit
		}
		if w.Used != nil {
			q.Used = *w.Used
		}
		return q
	case status == http.StatusTooManyRequests || w.Code == "rate_limited":
		return &RateLimitedError{APIError: e, RetryAfter: retryAfter}
	}
	return e
}

// readAPIError turns a non-2xx response into an error. A body that is not the API's
// error JSON (a proxy's error page, say) still becomes an *APIError, with code
// "http_<status>".
func readAPIError(resp *http.Response, body []byte) error {
	reqID := resp.Header.Get("X-Request-Id")
	ra, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	var w errorWire
	if json.Unmarshal(body, &w) == nil && w.Code != "" {
		return newAPIError(w, resp.StatusCode, reqID, ra, hasRA)
	}
	w = errorWire{Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: http.StatusText(resp.StatusCode)}
	if text := strings.TrimSpace(string(body)); text != "" && len(text) < 200 {
		w.Message += ": " + text
	}
	if w.Message == "" {
		w.Message = "unexpected HTTP status " + resp.Status
	}
	return newAPIError(w, resp.StatusCode, reqID, ra, hasRA)
}
