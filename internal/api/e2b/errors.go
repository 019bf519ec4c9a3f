package e2b

import (
	"github.com/warren-sh/warren/internal/api/httpjson"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// maxJSONBytes caps JSON request bodies.
const maxJSONBytes = 1 << 20

// defaultRetryAfter is the Retry-After sent with 429 when the error does not say how long
// to wait. The SDK retries up to 3 times when the wait fits its request timeout.
const defaultRetryAfter = 5 * time.Second

// errorBody is E2B's error shape. Code equals the HTTP status: the SDK reads it, not the
// status, to tell "not found" (404) and "already paused" (409) from other failures.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// httpError is an edge-only error about HTTP itself (unknown route, wrong method,
// unsupported operation) rather than about the domain.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// statusOf maps a domain error kind to its HTTP status. This is the one place it happens.
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

func internalMessage(requestID string) string {
	return "internal error; quote request id " + requestID + " when reporting it"
}

// writeError classifies err and sends it as an E2B error body. Internal errors are logged
// with the request id and reach the client as a generic message carrying that id.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	id := requestIDFrom(r.Context())
	var (
		he  *httpError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &he):
		s.writeErrorBody(w, r, he.status, he.msg)
		return
	case errors.As(err, &mbe):
		s.writeErrorBody(w, r, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", mbe.Limit))
		return
	}
	kind := domain.KindOf(err)
	if kind == domain.KindInternal {
		level := slog.LevelError
		if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
			level = slog.LevelInfo // the client went away; nothing is broken
		}
		s.log.LogAttrs(r.Context(), level, "internal error",
			slog.String(logkey.RequestID, id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any(logkey.Err, err))
		s.writeErrorBody(w, r, http.StatusInternalServerError, internalMessage(id))
		return
	}
	msg := domain.PublicMessage(err)
	if msg == "" {
		msg = strings.ReplaceAll(kind.String(), "_", " ")
	}
	// E2B's error body has no field member, so the message must name the field itself.
	if f := domain.FieldOf(err); f != "" && !strings.Contains(msg, f) {
		msg = f + ": " + msg
	}
	status := statusOf(kind)
	var qe *domain.QuotaError
	switch {
	case kind == domain.KindQuotaExceeded && errors.As(err, &qe) && qe.Quota == "spending_limit":
		// Waiting does not help (the SDK would retry a 429): only a raised limit does.
		status = http.StatusForbidden
	case kind == domain.KindQuotaExceeded:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	s.writeErrorBody(w, r, status, msg)
}

// retryAfterSeconds is how long a 429 asks the client to wait: the error's own
// RetryAfter() if some error in the chain has one, else defaultRetryAfter. Always a whole
// number of seconds, at least 1 (the SDK only retries on integer values).
func retryAfterSeconds(err error) int {
	d := defaultRetryAfter
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		d = ra.RetryAfter()
	}
	return max(1, int(math.Ceil(d.Seconds())))
}

func (s *Server) writeErrorBody(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.writeJSON(w, r, status, errorBody{Code: status, Message: msg})
}

// writeJSON sends v with the given status and an explicit Content-Length.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		id := requestIDFrom(r.Context())
		s.log.LogAttrs(r.Context(), slog.LevelError, "encoding response",
			slog.String(logkey.RequestID, id), slog.Any(logkey.Err, err))
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: status, Message: internalMessage(id)})
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// noContent answers a success without a body: 204, which the SDK accepts and never parses.
func noContent(w http.ResponseWriter) {
	w.WriteHeader(http.StatusNoContent)
}

// decodeJSON reads one JSON object from the capped body (chunked or not) into dst. An
// empty body leaves dst as is. Unknown fields are rejected: a setting Warren does not know
// could be one the caller relies on for security. Errors are KindInvalid and name the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return httpjson.Decode(w, r, dst, maxJSONBytes, "field %q is not supported by this Warren server")
}
