package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/warren-sh/warren/internal/domain"
)

// internalMessage is all a client learns about an internal error; the log has the rest.
const internalMessage = "internal error; quote request_id when reporting it"

// errorBody is the JSON shape of every error response and of the SSE "error" event.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Field     string `json:"field,omitempty"`
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
			slog.String("request_id", id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("error", err))
		return http.StatusInternalServerError, errorBody{Code: kind.String(), Message: internalMessage, RequestID: id}
	}
	msg := domain.PublicMessage(err)
	if msg == "" {
		msg = strings.ReplaceAll(kind.String(), "_", " ")
	}
	return statusOf(kind), errorBody{Code: kind.String(), Message: msg, RequestID: id, Field: domain.FieldOf(err)}
}

// writeError sends err as a JSON error response.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.errorResponse(r, err)
	s.writeErrorBody(w, r, status, body)
}

func (s *Server) writeErrorBody(w http.ResponseWriter, r *http.Request, status int, body errorBody) {
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
			slog.String("request_id", requestIDFrom(r.Context())), slog.Any("error", err))
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
	body := http.MaxBytesReader(w, r.Body, s.opts.maxJSONBytes)
	dec := json.NewDecoder(body)
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
		return domain.Invalid(name, "unknown field %q", name)
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
