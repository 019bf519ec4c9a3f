package edge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-sh/warren/internal/api/edge/edgetest"
	"github.com/warren-sh/warren/internal/logkey"
	"github.com/warren-sh/warren/internal/telemetry"
	"github.com/warren-sh/warren/internal/telemetry/otlptest"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
)

// traceEdge is an Edge logging through telemetry.LogHandler, as warren serve's does,
// serving one route with a path value through a ServeMux.
func traceEdge(t *testing.T) (http.Handler, *edgetest.LogBuffer, *trace.SpanContext) {
	t.Helper()
	logs := &edgetest.LogBuffer{}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(logs, nil)))
	var e *Edge
	e = New(log, func(w http.ResponseWriter, r *http.Request, c Class) { e.WriteJSON(w, r, c.Status, c) }, "/healthz")
	seen := &trace.SpanContext{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sandboxes/{id}/pause", func(w http.ResponseWriter, r *http.Request) {
		*seen = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.Serve(w, r, mux) }), logs, seen
}

func pauseRequest(traceparent string) *http.Request {
	r := httptest.NewRequest("POST", "/v1/sandboxes/sbxsecretid123/pause", nil)
	if traceparent != "" {
		r.Header.Set("traceparent", traceparent)
	}
	return r
}

// accessLog returns the access log line of logs.
func accessLog(t *testing.T, logs *edgetest.LogBuffer) map[string]any {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" {
			return m
		}
	}
	t.Fatalf("no access log line in:\n%s", logs)
	return nil
}

// TestTraceparent: with tracing on, the request's server span is a child of the
// caller's traceparent, named by the route pattern (no raw id), and the access log
// carries its trace and span ids beside the request id.
func TestTraceparent(t *testing.T) {
	rcv := otlptest.New()
	defer rcv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	// Leave a no-op behind (the default delegate cannot be put back once replaced).
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	tr, err := telemetry.Setup(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, logs, seen := traceEdge(t)
	res := edgetest.Serve(t, h, pauseRequest("00-"+callerTrace+"-"+callerSpan+"-01"))
	quiet := httptest.NewRequest("GET", "/healthz", nil)
	quiet.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
	edgetest.Serve(t, h, quiet) // no span of its own
	if res.Status != http.StatusNoContent {
		t.Fatalf("status %d", res.Status)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := seen.TraceID().String(); got != callerTrace {
		t.Errorf("handler ran in trace %s, want the caller's %s", got, callerTrace)
	}
	if seen.SpanID().String() == callerSpan || !seen.IsValid() {
		t.Errorf("handler ran in span %s: want a new server span under the caller's", seen.SpanID())
	}
	line := accessLog(t, logs) // the first: the pause's
	if line[logkey.TraceID] != callerTrace || line[logkey.SpanID] != seen.SpanID().String() || line[logkey.RequestID] != res.Header.Get("X-Request-Id") {
		t.Errorf("access log line %v: want trace_id %s, span_id %s and the request id", line, callerTrace, seen.SpanID())
	}
	spans := rcv.Trace(callerTrace)
	if len(spans) != 1 {
		t.Fatalf("received %+v, want one span of trace %s (problems: %v)", rcv.Spans(), callerTrace, rcv.Problems())
	}
	s := spans[0]
	if s.Name != "POST /v1/sandboxes/{id}/pause" || s.ParentSpanID != callerSpan || s.SpanID != seen.SpanID().String() || s.Kind != "SPAN_KIND_SERVER" {
		t.Errorf("server span %+v: want POST /v1/sandboxes/{id}/pause, a server span under %s", s, callerSpan)
	}
	if s.Attrs["http.route"] != "/v1/sandboxes/{id}/pause" || s.Attrs["http.response.status_code"] != "204" || s.Attrs["warren.request_id"] != res.Header.Get("X-Request-Id") {
		t.Errorf("server span attributes %v", s.Attrs)
	}
	if strings.Contains(s.Name, "sbxsecretid123") {
		t.Errorf("span name %q holds the raw id", s.Name)
	}
}

// TestTraceparentUntraced: with tracing off the caller's trace id still reaches the
// handler's context and the access log; without a traceparent the log has none.
func TestTraceparentUntraced(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	otel.SetTracerProvider(noop.NewTracerProvider()) // as after an earlier test's Setup
	h, logs, seen := traceEdge(t)
	edgetest.Serve(t, h, pauseRequest("00-"+callerTrace+"-"+callerSpan+"-01"))
	if got := seen.TraceID().String(); got != callerTrace {
		t.Errorf("handler ran in trace %s, want the caller's %s", got, callerTrace)
	}
	if line := accessLog(t, logs); line[logkey.TraceID] != callerTrace {
		t.Errorf("access log line %v: want trace_id %s", line, callerTrace)
	}

	for _, tp := range []string{"", "00-zz-yy-01", "00-" + callerTrace + "-0000000000000000-01"} {
		h, logs, seen = traceEdge(t)
		edgetest.Serve(t, h, pauseRequest(tp))
		if seen.IsValid() {
			t.Errorf("traceparent %q: handler has span context %v", tp, seen)
		}
		if line := accessLog(t, logs); line[logkey.TraceID] != nil {
			t.Errorf("traceparent %q: access log line %v has a trace id", tp, line)
		}
	}
}

func TestRouteOf(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"POST /v1/sandboxes":        "/v1/sandboxes",
		"/v1/sandboxes/{id}":        "/v1/sandboxes/{id}",
		"GET example.com/x/{id...}": "/x/{id...}",
	} {
		if got := routeOf(in); got != want {
			t.Errorf("routeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkServeUntraced is a request through Serve with tracing off (the default):
// what the edge's trace handling costs when nothing is exported. Compare it with the
// same benchmark on a tree before tracing to see that cost.
func BenchmarkServeUntraced(b *testing.B) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	e := New(slog.New(slog.DiscardHandler), func(w http.ResponseWriter, r *http.Request, c Class) {})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sandboxes/{id}/pause", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tp := range []string{"", "00-" + callerTrace + "-" + callerSpan + "-01"} {
		name := "no traceparent"
		if tp != "" {
			name = "traceparent"
		}
		b.Run(name, func(b *testing.B) {
			r := pauseRequest(tp)
			b.ReportAllocs()
			for b.Loop() {
				e.Serve(httptest.NewRecorder(), r, mux)
			}
		})
	}
}
