package node

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The node's spans are "node.<step>", with the sandbox's id as an attribute. tracer is
// asked of the global provider at each use (a no-op unless warren serve exports
// traces).
func tracer() trace.Tracer { return otel.Tracer("github.com/warren-sh/warren/internal/node") }

// startSpan starts the span name for sandbox id under ctx's span.
func startSpan(ctx context.Context, name, id string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return tracer().Start(ctx, name, trace.WithAttributes(append(attrs, attribute.String("warren.sandbox_id", id))...))
}

// endSpan ends span, marking it failed with err unless err is nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
