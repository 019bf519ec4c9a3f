package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/api/httpjson"
	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// internalMessage is all a client learns about an internal error; the log has the rest.
const internalMessage = "internal error; quote request_id when reporting it"

// errorBody is the JSON shape of every error response and of the SSE "error" event.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Field     string `json:"field,omitempty"`
	// Quota, Limit and Used explain a quota refusal; RetryAfter (seconds) a rate limit.
	Quota      string   `json:"quota,omitempty"`
	Limit      *float64 `json:"limit,omitempty"`
	Used       *float64 `json:"used,omitempty"`
	RetryAfter int      `json:"retry_after,omitempty"`
}

// httpError is an edge-only error for conditions that are about HTTP itself (unknown
// route, wrong method) rather than about the domain.
type httpError struct {
	status int
	code   string
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

// errorResponse classifies err into a status and a client-safe body, logging internal
// errors with the request id so that a quoted id leads to the cause.
func (s *Server) errorResponse(r *http.Request, err error) (int, errorBody) {
	id := requestIDFrom(r.Context())
	var he *httpError
	if errors.As(err, &he) {
		return he.status, errorBody{Code: he.code, Message: he.msg, RequestID: id}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, errorBody{
			Code:      domain.KindInvalid.String(),
			Message:   fmt.Sprintf("request body is larger than %d bytes", mbe.Limit),
			RequestID: id,
		}
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
		return http.StatusInternalServerError, errorBody{Code: kind.String(), Message: internalMessage, RequestID: id}
	}
	msg := domain.PublicMessage(err)
	if msg == "" {
		msg = strings.ReplaceAll(kind.String(), "_", " ")
	}
	body := errorBody{Code: kind.String(), Message: msg, RequestID: id, Field: domain.FieldOf(err)}
	status := statusOf(kind)
	var qe *domain.QuotaError
	if kind == domain.KindQuotaExceeded && errors.As(err, &qe) {
		limit, used := qe.Limit, qe.Used
		body.Quota, body.Limit, body.Used = qe.Quota, &limit, &used
		switch {
		case qe.Quota == "requests_per_minute":
			body.Code = "rate_limited"
			body.RetryAfter = retryAfterSeconds(qe.RetryAfter)
		case qe.Quota == "spending_limit":
			// Waiting does not help: only a raised limit or the next period does.
			status = http.StatusForbidden
		}
	}
	return status, body
}

// writeError sends err as a JSON error response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.errorResponse(r, err)
	s.writeErrorBody(w, r, status, body)
}

// retryAfterSeconds rounds a wait up to whole seconds, at least 1, for Retry-After.
func retryAfterSeconds(d time.Duration) int {
	n := int((d + time.Second - 1) / time.Second)
	if n < 1 {
		n = 1
	}
	return n
}

func (s *Server) writeErrorBody(w http.ResponseWriter, r *http.Request, status int, body errorBody) {
	if body.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(body.RetryAfter))
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warren"`)
	}
	s.writeJSON(w, r, status, body)
}

// writeJSON sends v with the given status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "encoding response",
			slog.String(logkey.RequestID, requestIDFrom(r.Context())), slog.Any(logkey.Err, err))
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Code: "internal", Message: internalMessage, RequestID: requestIDFrom(r.Context())})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeJSON reads one JSON object from the capped body into dst. An empty body leaves
// dst as is (all defaults). Errors are KindInvalid and say which field is wrong and how.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	return httpjson.Decode(w, r, dst, s.opts.maxJSONBytes, "unknown field %q")
}
