package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/warren-sh/warren/internal/domain"
	"github.com/warren-sh/warren/internal/logkey"
)

// LogHandler wraps h so that every record logged with a context (slog's *Context
// methods and LogAttrs) that carries a span gets that span's trace_id and span_id, and
// one logged in an API request's context its request_id unless the line has one: an
// operator goes from a log line to its trace and its request and back. The trace ids
// come from the context even when tracing is off, as long as the request brought a
// traceparent header (the edge reads it either way).
func LogHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return h.Handler.Handle(ctx, r)
	}
	sc := trace.SpanContextFromContext(ctx)
	reqID := domain.RequestMetaFrom(ctx).RequestID
	if reqID != "" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == logkey.RequestID {
				reqID = "" // the caller wrote it
				return false
			}
			return true
		})
	}
	if !sc.IsValid() && reqID == "" {
		return h.Handler.Handle(ctx, r)
	}
	r = r.Clone()
	if reqID != "" {
		r.AddAttrs(slog.String(logkey.RequestID, reqID))
	}
	if sc.IsValid() {
		r.AddAttrs(slog.String(logkey.TraceID, sc.TraceID().String()), slog.String(logkey.SpanID, sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
