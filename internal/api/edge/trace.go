package edge

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// tracer starts the server span of each request. It is asked of the global provider
// each time (a no-op until telemetry.Setup installs one), not kept from package
// start: a kept tracer stays bound to the first provider installed.
func tracer() trace.Tracer { return otel.Tracer("github.com/warren-sh/warren/internal/api/edge") }

// traceContext reads W3C traceparent/tracestate whether or not tracing is on, so that
// the access log carries a caller's trace id even when Warren exports no spans.
var traceContext = propagation.TraceContext{}

// startSpan continues the trace of r's traceparent header (if any) with the request's
// server span, named by its method until the route is known (endSpan). A quiet request
// (a health check, polled every few seconds) gets no span of its own.
func startSpan(r *http.Request, requestID string, quiet bool) (*http.Request, trace.Span) {
	ctx := r.Context()
	if len(r.Header["Traceparent"]) > 0 { // looked up canonical: Header.Get would build the key each time
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	if quiet {
		return r.WithContext(ctx), trace.SpanFromContext(ctx) // the caller's, not recording here
	}
	ctx, span := tracer().Start(ctx, r.Method, serverKind)
	if span.IsRecording() {
		// Set after Start, not as start options: an untraced server builds none of them.
		span.SetAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("client.address", ClientIP(r)),
			attribute.String("warren.request_id", requestID),
		)
	} else if !span.SpanContext().IsValid() {
		return r, span // nothing to carry: tracing is off and the caller sent no trace
	}
	return r.WithContext(ctx), span
}

// serverKind is the option of every server span, made once.
var serverKind = trace.WithSpanKind(trace.SpanKindServer)

// endSpan names the server span by the route that served r (its ServeMux pattern,
// never the raw path, whose ids would make every name unique) and records the outcome.
func endSpan(span trace.Span, r *http.Request, status int, teamID string) {
	if !span.IsRecording() {
		span.End()
		return
	}
	if route := routeOf(r.Pattern); route != "" {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if teamID != "" {
		span.SetAttributes(attribute.String("warren.team_id", teamID))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// routeOf is a ServeMux pattern without its method ("POST /v1/sandboxes" is
// "/v1/sandboxes") and host.
func routeOf(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = strings.TrimSpace(p)
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:]
	}
	return pattern
}
