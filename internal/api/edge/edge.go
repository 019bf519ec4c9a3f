// Package edge is what Warren's two HTTP APIs, /v1 (api/rest) and E2B's control plane
// (api/e2b), share at their edge: request ids, panic recovery and the access log (Serve);
// API keys, rate limits and the caller's domain.Principal in the context
// (Authenticate); the audit log (Audit); and Classify, the one mapping of domain error
// kinds to HTTP statuses and client-safe messages. Each API only renders a Class in its
// own body shape.
//
// Internal errors reach clients as a generic message carrying the request id; what they
// said goes to the operator log only, under that id.
//
// The package knows HTTP and the domain, nothing of stores, nodes, runtimes or the
// sandbox service.
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// Renderer writes the error response c, classified for r, in an API's own body shape.
// It is called only while nothing of the response has been written.
type Renderer func(w http.ResponseWriter, r *http.Request, c Class)

// Edge serves one API's requests. Create it with New; it is safe for concurrent use.
type Edge struct {
	log    *slog.Logger
	render Renderer
	quiet  map[string]bool
	// api names the API in metrics (v1, e2b, console); metrics nil records nothing.
	api     string
	metrics Metrics
}

// Metrics records the requests an Edge serves and the refusals it writes, for the
// operator's metrics (package metrics implements it). route is the ServeMux pattern
// that served the request ("unmatched" when none did), never a raw path.
type Metrics interface {
	Request(api, route, method string, status int, d time.Duration, teamID string)
	Refused(kind, reason, teamID string)
}

// WithMetrics returns a copy of e that records its requests in m under the API name
// api (v1, e2b, console). A nil m records nothing.
func (e *Edge) WithMetrics(api string, m Metrics) *Edge {
	c := *e
	c.api, c.metrics = api, m
	return &c
}

// New returns an Edge that logs to log (which names the API's subsystem) and writes
// errors with render. Requests for the quiet paths (health checks) are logged at debug
// level only.
func New(log *slog.Logger, render Renderer, quiet ...string) *Edge {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{log: log, render: render, quiet: map[string]bool{}}
	for _, p := range quiet {
		e.quiet[p] = true
	}
	return e
}

// RequestID returns the id of the request whose context is ctx, or "".
func RequestID(ctx context.Context) string { return domain.RequestMetaFrom(ctx).RequestID }

// ClientIP is the address the request came from, without the port.
func ClientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// Serve is the outermost middleware: it assigns the request id (X-Request-Id, and the
// domain.RequestMeta of the context), continues the caller's trace (traceparent) with
// the request's server span, recovers panics and logs the request, around h. The
// access log is written in the span's context, so a trace-aware handler
// (telemetry.LogHandler) adds its trace_id and span_id.
func (e *Edge) Serve(w http.ResponseWriter, r *http.Request, h http.Handler) {
	start := time.Now()
	id := requestID(r)
	rec := &recorder{ResponseWriter: w}
	rec.Header().Set("X-Request-Id", id)
	r = r.WithContext(domain.WithRequestMeta(r.Context(), domain.RequestMeta{RemoteAddr: ClientIP(r), RequestID: id}))
	r, span := startSpan(r, id, e.quiet[r.URL.Path]) // trace.go

	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			e.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String(logkey.RequestID, id), slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if !rec.wroteHeader {
				// Not WriteError: that would log again, and the panic is logged with its stack.
				e.render(rec, r, internalClass(id))
			}
		}
		e.logRequest(r, rec, start, v == http.ErrAbortHandler)
		endSpan(span, r, responseStatus(rec), rec.teamID)
		e.observe(r, rec, start)
		if v == http.ErrAbortHandler {
			panic(v) // let net/http abort the connection so the client sees a broken body
		}
	}()
	if p := r.URL.Path; p != "" && p != cleanPath(p) {
		// ServeMux would answer with a redirect (a PATCH turning into a GET on the way);
		// an API answers what was wrong instead.
		e.WriteError(rec, r, &HTTPError{Status: http.StatusNotFound, Code: domain.KindNotFound.String(),
			Message: "no route for " + r.Method + " " + p + ": the path has empty, '.' or '..' segments; send it as " + cleanPath(p)})
		return
	}
	h.ServeHTTP(rec, r)
}

// cleanPath is p without empty, "." and ".." segments, keeping a trailing slash (as
// net/http's ServeMux cleans paths before routing).
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// responseStatus is the status rec sent (200 when the handler wrote nothing).
func responseStatus(rec *recorder) int {
	if !rec.wroteHeader {
		return http.StatusOK
	}
	return rec.status
}

func (e *Edge) logRequest(r *http.Request, rec *recorder, start time.Time, aborted bool) {
	status := responseStatus(rec)
	level := slog.LevelInfo
	if e.quiet[r.URL.Path] {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.Int64("bytes", rec.bytes),
		slog.String(logkey.RequestID, RequestID(r.Context())),
	}
	if rec.teamID != "" {
		attrs = append(attrs, slog.String(logkey.TeamID, rec.teamID))
	}
	if aborted {
		attrs = append(attrs, slog.Bool("aborted", true))
	}
	e.log.LogAttrs(r.Context(), level, "request", attrs...)
}

// requestID reuses a well-formed X-Request-Id from the client (or a proxy in front) and
// otherwise makes one. The check keeps log lines and headers free of injected junk.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" {
		return id
	}
	return "req_" + domain.NewID(20)
}

// Adapt turns an error-returning handler into an http.Handler. The error is written
// with WriteError while nothing of the response has been written; after that (a stream
// broke mid-way) it can only be logged.
func (e *Edge) Adapt(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		if Started(w) {
			e.log.LogAttrs(r.Context(), slog.LevelWarn, "request failed after the response started",
				slog.String(logkey.RequestID, RequestID(r.Context())), slog.Any(logkey.Err, err))
			return
		}
		e.WriteError(w, r, err)
	})
}

// WriteError sends err as the API's error response.
func (e *Edge) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	c := e.Class(r, err)
	e.countRefusal(w, r, c)
	e.render(w, r, c)
}

// Class classifies err for the response to r. A server-side failure that says more than
// its client-safe message is logged with the request id, and an internal error's message
// carries that id, so that a client who quotes it leads the operator to the cause.
func (e *Edge) Class(r *http.Request, err error) Class {
	c := Classify(err)
	id := RequestID(r.Context())
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away (nobody reads this answer): nothing is broken, and the
		// access log and the request metrics say 499, as nginx does, not a 500 or a
		// 503 (an agent call cut short by it: "the agent did not answer") that would
		// page someone.
		c = Class{Status: StatusClientClosed, Code: "client_closed_request", Message: "the client closed the request before it was answered"}
		e.log.LogAttrs(r.Context(), slog.LevelInfo, "request failed",
			slog.String(logkey.RequestID, id), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", c.Status), slog.Any(logkey.Err, err))
		return c
	}
	if c.Internal {
		c = internalClass(id)
	} else if c.Status < 500 || err.Error() == c.Message {
		return c
	}
	level := slog.LevelWarn
	if c.Internal {
		level = slog.LevelError
	}
	e.log.LogAttrs(r.Context(), level, "request failed",
		slog.String(logkey.RequestID, id), slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", c.Status), slog.Any(logkey.Err, err))
	return c
}

// WriteJSON sends v as JSON with the given status and an explicit Content-Length.
func (e *Edge) WriteJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.log.LogAttrs(r.Context(), slog.LevelError, "encoding response",
			slog.String(logkey.RequestID, RequestID(r.Context())), slog.Any(logkey.Err, err))
		e.render(w, r, internalClass(RequestID(r.Context())))
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// recorder remembers what the handler wrote, for the access log, the audit log and for
// deciding whether an error can still be sent as JSON.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
	teamID      string
}

// Started reports whether the response written through w has begun, so that an error
// can no longer be its body. w must be what Serve handed on (or wrap nothing else).
func Started(w http.ResponseWriter) bool {
	rec, ok := w.(*recorder)
	return ok && rec.wroteHeader
}

// status returns the status the response written through w has (200 until one is
// written).
func status(w http.ResponseWriter) int {
	if rec, ok := w.(*recorder); ok && rec.wroteHeader {
		return rec.status
	}
	return http.StatusOK
}

func (rec *recorder) WriteHeader(code int) {
	// 101 Switching Protocols is final too: the connection is a WebSocket from here on.
	if !rec.wroteHeader && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.status = code
		rec.wroteHeader = true
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// FlushError makes the recorder usable for SSE through http.ResponseController.
func (rec *recorder) FlushError() error {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// Flush implements http.Flusher for code that asserts it directly.
func (rec *recorder) Flush() { _ = rec.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
