package edge

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
)

// Class is what a client may learn of an error: everything an API needs to render it.
type Class struct {
	// Status is the HTTP status.
	Status int
	// Code names the error for programs: a domain kind ("not_found", "quota_exceeded"),
	// "rate_limited" for a requests_per_minute or login_attempts refusal, "node_full"
	// when the node has no room for a sandbox, or what an HTTPError says
	// ("method_not_allowed", "not_implemented").
	Code string
	// Message says what was wrong and what to do, and is safe to show: an internal
	// error's is generic.
	Message string
	// Field names the offending request field of an invalid request, if one does.
	Field string
	// Quota details a quota refusal that names its quota (nil otherwise).
	Quota *domain.QuotaError
	// RetryAfter is the whole seconds (at least 1) a rate-limited client, or one
	// refused by a full node, should wait; 0 otherwise.
	RetryAfter int
	// Internal is set when the error is not one the client can act on: Message hides it,
	// and the operator log has it under the request id.
	Internal bool
}

// Classify maps err to its status and client-safe message. This is the one place where
// domain error kinds become HTTP statuses:
//
//	NotFound 404, Invalid 400, Unauthorized 401, Forbidden 403, Conflict 409,
//	QuotaExceeded 429 (403 for a spending limit: waiting does not help),
//	Unavailable 503 (code node_full with a Retry-After when the node has no room for a
//	sandbox), anything unclassified 500.
//
// An *HTTPError keeps its own status, and an oversized body (http.MaxBytesError, or a
// classified error carrying a *domain.TooLargeError) is 413.
// A classified error's public message is its domain.Error Message only: the errors it
// wraps, and the context added around it, never reach the client.
func Classify(err error) Class {
	var he *HTTPError
	if errors.As(err, &he) {
		return Class{Status: he.Status, Code: he.Code, Message: he.Message}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return Class{Status: http.StatusRequestEntityTooLarge, Code: domain.KindInvalid.String(),
			Message: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	}
	var tle *domain.TooLargeError
	if errors.As(err, &tle) && domain.PublicMessage(err) != "" {
		return Class{Status: http.StatusRequestEntityTooLarge, Code: domain.KindOf(err).String(), Message: domain.PublicMessage(err),
			Field: domain.FieldOf(err)}
	}
	kind := domain.KindOf(err)
	if kind == domain.KindInternal {
		return Class{Status: http.StatusInternalServerError, Code: kind.String(), Message: "internal error", Internal: true}
	}
	msg := domain.PublicMessage(err)
	if msg == "" {
		msg = strings.ReplaceAll(kind.String(), "_", " ")
	}
	c := Class{Status: statusOf(kind), Code: kind.String(), Message: msg, Field: domain.FieldOf(err)}
	var qe *domain.QuotaError
	if kind == domain.KindQuotaExceeded && errors.As(err, &qe) {
		q := *qe
		c.Quota = &q
		switch q.Quota {
		case "requests_per_minute", "login_attempts":
			c.Code = "rate_limited"
			c.RetryAfter = retryAfterSeconds(q.RetryAfter)
		case "spending_limit":
			c.Status = http.StatusForbidden
		}
	}
	var nf *domain.NodeFullError
	if kind == domain.KindUnavailable && errors.As(err, &nf) {
		c.Code = "node_full"
		c.RetryAfter = retryAfterSeconds(nf.RetryAfter)
	}
	return c
}

func statusOf(k domain.Kind) int {
	switch k {
	case domain.KindNotFound:
		return http.StatusNotFound
	case domain.KindInvalid:
		return http.StatusBadRequest
	case domain.KindUnauthorized:
		return http.StatusUnauthorized
	case domain.KindForbidden:
		return http.StatusForbidden
	case domain.KindConflict:
		return http.StatusConflict
	case domain.KindQuotaExceeded:
		return http.StatusTooManyRequests
	case domain.KindUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// internalClass is the response to an internal error of the request with the given id.
// StatusClientClosed is the status logged and counted for a request whose client went
// away before the answer (nginx's 499); no client ever receives it.
const StatusClientClosed = 499

func internalClass(requestID string) Class {
	return Class{Status: http.StatusInternalServerError, Code: domain.KindInternal.String(), Internal: true,
		Message: "internal error; quote request id " + requestID + " when reporting it"}
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, for Retry-After (the
// E2B SDK only retries on whole numbers).
func retryAfterSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// HTTPError is an error about HTTP itself (no such route, a method the route does not
// serve, an operation this server lacks) rather than about the domain.
type HTTPError struct {
	Status  int
	Code    string
	Message string
}

func (e *HTTPError) Error() string { return e.Message }

// NoRoute answers a path no route serves; hint, if any, says where to look instead.
func NoRoute(r *http.Request, prefix, hint string) error {
	msg := prefix + " " + r.Method + " " + r.URL.Path
	if hint != "" {
		msg += "; " + hint
	}
	return &HTTPError{Status: http.StatusNotFound, Code: domain.KindNotFound.String(), Message: msg}
}

// MethodNotAllowed answers a method r's path does not serve; allow lists those it does
// (the caller sets the Allow header to the same list).
func MethodNotAllowed(r *http.Request, allow string) error {
	return &HTTPError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
		Message: "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + allow}
}

// NotImplemented answers an operation this server does not offer; msg says so and what
// to do instead.
func NotImplemented(msg string) error {
	return &HTTPError{Status: http.StatusNotImplemented, Code: "not_implemented", Message: msg}
}
