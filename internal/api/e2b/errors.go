package e2b

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
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
			slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("error", err))
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
	if kind == domain.KindQuotaExceeded {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(err)))
	}
	s.writeErrorBody(w, r, statusOf(kind), msg)
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
			slog.String("request_id", id), slog.Any("error", err))
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if err == io.EOF {
			return nil
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return domain.Invalid("", "request body must hold a single JSON object and nothing after it")
	}
	return nil
}

// jsonError turns encoding/json's errors into messages for people.
func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &se):
		return domain.Invalid("", "request body is not valid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Invalid("", "request body ends in the middle of a JSON value")
	case errors.As(err, &te):
		if te.Field == "" {
			return domain.Invalid("", "request body must be a JSON object, got %s", te.Value)
		}
		return domain.Invalid(te.Field, "field %q: expected %s, got %s", te.Field, jsonTypeName(te.Type), te.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return domain.Invalid(name, "field %q is not supported by this Warren server", name)
	}
	return domain.Invalid("", "cannot decode request body: %s", err.Error())
}

func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "a different type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonTypeName(t.Elem())
	}
	return t.String()
}
